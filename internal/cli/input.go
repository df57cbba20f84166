package cli

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"gmsa/internal/kds"
	"gmsa/internal/ldif"
	"gmsa/internal/ntsec"
)

// maxInputFile bounds what a command reads from a file given on the command line.
const maxInputFile = 16 << 20

// decodeBinary reads hex (preferred when the text is valid hex) or base64.
func decodeBinary(what, s string) ([]byte, error) {
	t := strings.Join(strings.Fields(s), "")
	t = strings.TrimPrefix(strings.TrimPrefix(t, "0x"), "0X")
	if t == "" {
		return nil, usagef("%s is empty: want hex or base64", what)
	}
	if b, err := hex.DecodeString(t); err == nil {
		return b, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(t); err == nil {
			return b, nil
		}
	}
	return nil, usagef("%s is neither hex nor base64", what)
}

// readFile reads a bounded input file.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > maxInputFile {
		return nil, usagef("%s is %d bytes; inputs are at most %d", path, st.Size(), maxInputFile)
	}
	b := make([]byte, st.Size())
	if _, err := f.Read(b); err != nil && st.Size() > 0 {
		return nil, err
	}
	return b, nil
}

// binaryInput returns a value given inline (hex/base64) or in a file (raw bytes, or hex
// or base64 text).
func binaryInput(what, inline, file string) ([]byte, error) {
	switch {
	case inline != "" && file != "":
		return nil, usagef("give %s inline or as a file, not both", what)
	case inline != "":
		return decodeBinary(what, inline)
	case file != "":
		b, err := readFile(file)
		if err != nil {
			return nil, err
		}
		if t := bytes.TrimSpace(b); len(t) > 0 && isText(t) {
			return decodeBinary(what+" in "+file, string(t))
		}
		return b, nil
	}
	return nil, usagef("%s is required", what)
}

func isText(b []byte) bool {
	for _, c := range b {
		if c < 0x20 && c != '\n' && c != '\r' && c != '\t' || c > 0x7e {
			return false
		}
	}
	return true
}

// parseSID reads a SID as S-1-… or as the hex/base64 of its binary form.
func parseSID(s string) (ntsec.SID, error) {
	if strings.HasPrefix(strings.ToUpper(strings.TrimSpace(s)), "S-") {
		sid, err := ntsec.ParseSID(s)
		return sid, asUsage(err)
	}
	b, err := decodeBinary("--sid", s)
	if err != nil {
		return ntsec.SID{}, usagef("--sid %q: want S-1-5-21-… or the hex/base64 of a binary SID", s)
	}
	sid, err := ntsec.SIDFromBytes(b)
	return sid, asUsage(err)
}

// parseGKID reads "L0,L1,L2".
func parseGKID(s string) (kds.GKID, error) {
	parts := strings.Split(s, ",")
	if len(parts) != 3 {
		return kds.GKID{}, usagef("--gkid %q: want L0,L1,L2 such as 362,0,23", s)
	}
	var v [3]int32
	for i, p := range parts {
		n, err := strconv.ParseInt(strings.TrimSpace(p), 10, 32)
		if err != nil {
			return kds.GKID{}, usagef("--gkid %q: %q is not a number", s, p)
		}
		v[i] = int32(n)
	}
	g := kds.GKID{L0: v[0], L1: v[1], L2: v[2]}
	if err := g.Validate(); err != nil || !g.IsL2() {
		return g, usagef("--gkid %q: want L0 ≥ 0 and L1, L2 in 0…31", s)
	}
	return g, nil
}

// rootKeyFlags are the ways to name root keys on the command line.
type rootKeyFlags struct {
	id, data, hash, file string
}

// load returns the root keys the flags describe. A key given by --root-key-id and
// --root-key-data has no times and is usable for any period.
func (f *rootKeyFlags) load() ([]kds.RootKey, error) {
	if f.file != "" {
		if f.data != "" {
			return nil, usagef("give --root-key-file or --root-key-data, not both")
		}
		keys, err := rootKeysFromFile(f.file)
		if err != nil {
			return nil, err
		}
		if f.id != "" { // select one key of the file
			id, err := ntsec.ParseGUID(f.id)
			if err != nil {
				return nil, asUsage(err)
			}
			k, err := kds.FindRootKey(keys, id)
			if err != nil {
				return nil, usagef("--root-key-id %s is not in %s", f.id, f.file)
			}
			return []kds.RootKey{*k}, nil
		}
		return keys, nil
	}
	if f.id == "" || f.data == "" {
		return nil, usagef("name the root key: --root-key-id GUID --root-key-data HEX, or --root-key-file FILE")
	}
	id, err := ntsec.ParseGUID(f.id)
	if err != nil {
		return nil, asUsage(err)
	}
	data, err := decodeBinary("--root-key-data", f.data)
	if err != nil {
		return nil, err
	}
	h, err := kds.ParseHash(f.hash)
	if err != nil {
		return nil, asUsage(err)
	}
	k := kds.RootKey{ID: id, Data: data, Version: 1, KDFAlgorithm: kds.KDFAlgorithm, Hash: h, UseStartTime: 1}
	if err := k.Validate(); err != nil {
		return nil, asUsage(err)
	}
	return []kds.RootKey{k}, nil
}

// rootKeysFromFile reads msKds-ProvRootKey entries from LDIF (as ldapsearch prints them)
// or JSON (an object or an array of objects keyed by attribute name).
func rootKeysFromFile(path string) ([]kds.RootKey, error) {
	b, err := readFile(path)
	if err != nil {
		return nil, err
	}
	var keys []kds.RootKey
	if t := bytes.TrimSpace(b); len(t) > 0 && (t[0] == '{' || t[0] == '[') {
		var objs []map[string]any
		if t[0] == '{' {
			t = append(append([]byte{'['}, t...), ']')
		}
		if err := json.Unmarshal(t, &objs); err != nil {
			return nil, usagef("%s: not valid JSON: %v", path, err)
		}
		for i, o := range objs {
			k, err := kds.RootKeyFromAttributes(jsonAttrs(o))
			if err != nil {
				return nil, usagef("%s: key %d: %v", path, i, err)
			}
			keys = append(keys, k)
		}
	} else {
		entries, err := ldif.Parse(b)
		if err != nil {
			return nil, usagef("%s: %v", path, err)
		}
		for _, e := range entries {
			if e.First("msKds-RootKeyData") == nil {
				continue // e.g. the containers of a subtree search
			}
			k, err := kds.RootKeyFromAttributes(ldifAttrs{e})
			if err != nil {
				return nil, usagef("%s: %s: %v", path, e.DN, err)
			}
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, usagef("%s holds no root key (no msKds-RootKeyData)", path)
	}
	return keys, nil
}

// ldifAttrs and jsonAttrs adapt a root key file to kds.Attributes: LDIF carries binary
// values raw, JSON as hex or base64 strings.
type ldifAttrs struct{ e *ldif.Entry }

func (l ldifAttrs) Text(name string) (string, bool) {
	v := l.e.First(name)
	return string(v), v != nil
}

func (l ldifAttrs) Binary(name string) ([]byte, bool, error) {
	v := l.e.First(name)
	return v, v != nil, nil
}

type jsonAttrs map[string]any

func (j jsonAttrs) Text(name string) (string, bool) {
	for k, v := range j {
		if strings.EqualFold(k, name) {
			switch x := v.(type) {
			case string:
				return x, true
			case float64:
				return strconv.FormatFloat(x, 'f', -1, 64), true
			}
			return fmt.Sprint(v), true
		}
	}
	return "", false
}

func (j jsonAttrs) Binary(name string) ([]byte, bool, error) {
	s, ok := j.Text(name)
	if !ok {
		return nil, false, nil
	}
	b, err := decodeBinary(name, s)
	return b, true, err
}
