package kds

import (
	"fmt"
	"strconv"

	"gmsa/internal/ntsec"
)

// Attributes gives the values of a directory object's attributes: Text for strings and
// numbers, Binary for octet strings (decoded from whatever form the source carries).
type Attributes interface {
	Text(name string) (string, bool)
	Binary(name string) ([]byte, bool, error)
}

// RootKeyFromAttributes builds a root key from the attributes of an msKds-ProvRootKey
// object (gmsa-algorithm.md §2). Absent optional attributes take the Windows defaults:
// version 1, SP800_108_CTR_HMAC, SHA256 when msKds-KDFParam is absent; a key without
// msKds-UseStartTime is usable for any period.
func RootKeyFromAttributes(a Attributes) (RootKey, error) {
	k := RootKey{Version: 1, KDFAlgorithm: KDFAlgorithm, UseStartTime: 1}
	cn, ok := a.Text("cn")
	if !ok {
		cn, ok = a.Text("id")
	}
	if !ok {
		return k, fmt.Errorf("no cn (the root key GUID)")
	}
	var err error
	if k.ID, err = ntsec.ParseGUID(cn); err != nil {
		return k, err
	}
	data, ok, err := a.Binary("msKds-RootKeyData")
	if err != nil || !ok {
		return k, fmt.Errorf("msKds-RootKeyData missing or not hex/base64")
	}
	k.Data = data
	param, _, err := a.Binary("msKds-KDFParam")
	if err != nil {
		return k, err
	}
	if k.Hash, err = DecodeKDFParam(param); err != nil {
		return k, err
	}
	if h, ok := a.Text("kdf_hash"); ok { // JSON convenience: a hash name instead of the blob
		if k.Hash, err = ParseHash(h); err != nil {
			return k, err
		}
	}
	if s, ok := a.Text("msKds-KDFAlgorithmID"); ok {
		k.KDFAlgorithm = s
	}
	if s, ok := a.Text("msKds-Version"); ok {
		v, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return k, fmt.Errorf("msKds-Version %q is not a number", s)
		}
		k.Version = uint32(v)
	}
	for _, f := range []struct {
		name string
		dst  *ntsec.FileTime
	}{{"msKds-CreateTime", &k.CreateTime}, {"msKds-UseStartTime", &k.UseStartTime}} {
		if s, ok := a.Text(f.name); ok {
			if *f.dst, err = ntsec.ParseFileTime(s); err != nil {
				return k, fmt.Errorf("%s: %v", f.name, err)
			}
		}
	}
	k.DomainID, _ = a.Text("msKds-DomainID")
	return k, k.Validate()
}
