package agent

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/jcmturner/gokrb5/v8/credentials"

	"gmsa/internal/atomicfile"
	"gmsa/internal/krbclient"
	"gmsa/internal/krbkey"
)

// material is one account's keys as the agent writes them.
type material struct {
	sam, realm string
	d          *gmsaData
	salt       string
	etypes     []int32
}

// inUse is the password the KDC holds now and its kvno: in the look-ahead window the
// blob's previous password, else its current one.
func (m *material) inUse() []byte {
	if lookAhead(m.d.blob) {
		return m.d.blob.Previous
	}
	return m.d.blob.Current
}

// etypesFor is wanted ∩ msDS-SupportedEncryptionTypes ([MS-KILE] 2.2.7: bit 2 RC4, 3
// AES128, 4 AES256); an account without the attribute takes what is wanted.
func etypesFor(wanted []string, supported *uint32) ([]int32, error) {
	if len(wanted) == 0 {
		wanted = []string{"aes256", "aes128"}
	}
	bits := map[int32]uint32{krbkey.EtypeRC4HMAC: 1 << 2, krbkey.EtypeAES128CTSHMACSHA: 1 << 3, krbkey.EtypeAES256CTSHMACSHA: 1 << 4}
	var out []int32
	for _, w := range wanted {
		et, err := krbkey.ParseEtype(w)
		if err != nil {
			return nil, err
		}
		if supported == nil || *supported&bits[et] != 0 {
			out = append(out, et)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("the account's msDS-SupportedEncryptionTypes (%d) allows none of %s: change enctypes: or the account (gmsa account set NAME --enctypes …)",
			*supported, strings.Join(wanted, ", "))
	}
	return out, nil
}

// keytab builds the account's keytab ([MS-KILE] 3.1.5.8 keys; the rotation model hosts
// learned from AD): outside the look-ahead window every principal has the current keys
// at kvno and the previous at kvno−1; inside it the SPNs already get the next password
// at kvno+1 beside the one in use, so services accept tickets from the moment the KDC
// switches, while the account's own principal (and UPN) keep the key in use until the
// DC has rotated, so that kinit -k never offers a key the KDC does not hold yet. Keys
// already in old keep their timestamp, so an unchanged keytab is byte-identical; old's
// keys at kvno−1 stay when the DC sends no previous password.
func (m *material) keytab(withUPN bool, old []byte, now time.Time) ([]byte, error) {
	self := []krbkey.Principal{{Realm: m.realm, Components: []string{m.sam}, NameType: krbkey.NameTypePrincipal}}
	if withUPN && m.d.upn != "" {
		p, err := krbkey.ParsePrincipal(m.d.upn, m.realm)
		if err != nil {
			return nil, fmt.Errorf("userPrincipalName %q: %w", m.d.upn, err)
		}
		p.NameType = krbkey.NameTypePrincipal
		self = append(self, p)
	}
	var spns []krbkey.Principal
	for _, s := range m.d.spns {
		p, err := krbkey.ParsePrincipal(s, m.realm)
		if err != nil {
			return nil, fmt.Errorf("servicePrincipalName %q: %w", s, err)
		}
		spns = append(spns, p)
	}
	stamps := map[string]uint32{}
	var oldEntries []krbkey.KeytabEntry
	if old != nil {
		if kt, err := krbkey.ParseKeytab(old); err == nil {
			oldEntries = kt.Entries
			for _, e := range kt.Entries {
				stamps[entryKey(e)] = e.Timestamp
			}
		}
	}
	kt := &krbkey.Keytab{}
	add := func(ps []krbkey.Principal, pw []byte, kvno uint32) error {
		if pw == nil || kvno == 0 {
			return nil
		}
		keys, err := krbkey.AccountKeys(pw, m.salt, m.etypes)
		if err != nil {
			return err
		}
		for _, p := range ps {
			for _, k := range keys {
				e := krbkey.KeytabEntry{Principal: p, KVNO: kvno, Key: k, Timestamp: uint32(now.Unix())}
				if ts, ok := stamps[entryKey(e)]; ok {
					e.Timestamp = ts
				}
				kt.Entries = append(kt.Entries, e)
			}
		}
		return nil
	}
	b, k := m.d.blob, m.d.kvno
	var err error
	if lookAhead(b) {
		err = firstErr(add(spns, b.Current, k+1), add(append(self, spns...), b.Previous, k))
	} else {
		err = firstErr(add(append(self, spns...), b.Current, k), add(append(self, spns...), b.Previous, k-1))
		if b.Previous == nil && k > 1 {
			// A DC sends no previous password while the account is younger than one
			// interval; tickets issued under kvno−1 are still about: keep its keys.
			for _, e := range oldEntries {
				if e.KVNO == k-1 && hasPrincipal(append(self, spns...), e.Principal) {
					kt.Entries = append(kt.Entries, e)
				}
			}
		}
	}
	if err != nil {
		return nil, err
	}
	return kt.Marshal()
}

func hasPrincipal(ps []krbkey.Principal, p krbkey.Principal) bool {
	for _, q := range ps {
		if strings.EqualFold(q.String(), p.String()) {
			return true
		}
	}
	return false
}

func entryKey(e krbkey.KeytabEntry) string {
	return fmt.Sprintf("%s\x00%d\x00%d\x00%x", e.Principal.String(), e.KVNO, e.Key.Etype, e.Key.Value)
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// highestKVNO is the largest kvno of the account's own principal in a keytab.
func highestKVNO(b []byte, sam string) uint32 {
	kt, err := krbkey.ParseKeytab(b)
	if err != nil {
		return 0
	}
	var max uint32
	for _, e := range kt.Entries {
		if len(e.Principal.Components) == 1 && strings.EqualFold(e.Principal.Components[0], sam) && e.KVNO > max {
			max = e.KVNO
		}
	}
	return max
}

// keyMaterial is the JSON of keys for tooling: NT hash and AES keys of each password.
type keyMaterial struct {
	Account  string  `json:"account"`
	Realm    string  `json:"realm"`
	Salt     string  `json:"salt"`
	Current  keySet  `json:"current"`
	Previous *keySet `json:"previous,omitempty"`
	Next     *keySet `json:"next,omitempty"`
}

type keySet struct {
	KVNO   uint32            `json:"kvno"`
	NTHash string            `json:"nt_hash"`
	Keys   map[string]string `json:"keys"` // MIT enctype name → hex
}

func (m *material) keysJSON() ([]byte, error) {
	set := func(pw []byte, kvno uint32) (*keySet, error) {
		if pw == nil || kvno == 0 {
			return nil, nil
		}
		nt := krbkey.NTHash(pw)
		s := &keySet{KVNO: kvno, NTHash: hex.EncodeToString(nt[:]), Keys: map[string]string{}}
		keys, err := krbkey.AccountKeys(pw, m.salt, []int32{krbkey.EtypeAES256CTSHMACSHA, krbkey.EtypeAES128CTSHMACSHA})
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			s.Keys[krbkey.EtypeName(k.Etype)] = hex.EncodeToString(k.Value)
		}
		return s, nil
	}
	b, k := m.d.blob, m.d.kvno
	out := keyMaterial{Account: m.sam, Realm: m.realm, Salt: m.salt}
	var cur, prev, next *keySet
	var err error
	if lookAhead(b) {
		if next, err = set(b.Current, k+1); err == nil {
			cur, err = set(b.Previous, k)
		}
	} else if cur, err = set(b.Current, k); err == nil {
		prev, err = set(b.Previous, k-1)
	}
	if err != nil {
		return nil, err
	}
	out.Current, out.Previous, out.Next = *cur, prev, next
	return json.MarshalIndent(out, "", "  ")
}

// ticketLeft reads a ticket cache we wrote: its TGT's start and end, when it is the
// account's.
func ticketLeft(path, sam, realm string) (start, end time.Time, ok bool) {
	cc, err := credentials.LoadCCache(path)
	if err != nil || !strings.EqualFold(cc.GetClientPrincipalName().PrincipalNameString(), sam) || !strings.EqualFold(cc.GetClientRealm(), realm) {
		return start, end, false
	}
	for _, e := range cc.GetEntries() {
		if len(e.Server.PrincipalName.NameString) == 2 && e.Server.PrincipalName.NameString[0] == "krbtgt" {
			return e.StartTime, e.EndTime, true
		}
	}
	return start, end, false
}

// needsTicket says whether a TGT from start to end should be replaced at now: past two
// thirds of its life (renewed well before it expires, as MIT's k5start does).
func needsTicket(start, end, now time.Time) bool {
	if end.IsZero() || !end.After(now) {
		return true
	}
	return now.After(renewAt(start, end))
}

func renewAt(start, end time.Time) time.Time { return start.Add(end.Sub(start) * 2 / 3) }

// tgt logs on as the gMSA with the password in use and returns the ticket cache.
func (m *material) tgt(kdcs []string, skew time.Duration) ([]byte, *krbclient.Credential, error) {
	keys, err := krbkey.AccountKeys(m.inUse(), m.salt, m.etypes)
	if err != nil {
		return nil, nil, err
	}
	kt := &krbkey.Keytab{}
	p := krbkey.Principal{Realm: m.realm, Components: []string{m.sam}, NameType: krbkey.NameTypePrincipal}
	for _, k := range keys {
		kt.Entries = append(kt.Entries, krbkey.KeytabEntry{Principal: p, KVNO: m.d.kvno, Key: k})
	}
	data, err := kt.Marshal()
	if err != nil {
		return nil, nil, err
	}
	kc, err := krbclient.New(krbclient.Options{KeytabData: data, Principal: m.sam + "@" + m.realm, Realm: m.realm, KDCs: kdcs, ClockSkew: skew},
		func(string) string { return "" })
	if err != nil {
		return nil, nil, err
	}
	defer kc.Close()
	cred, err := kc.NewTGT()
	if err != nil {
		return nil, nil, err
	}
	return krbclient.MarshalCCache(cred.Client, cred.ClientRealm, []*krbclient.Credential{cred}), cred, nil
}

// write replaces o's file with data when it differs, owned and moded as configured;
// it says whether it changed anything.
func (o *Output) write(data []byte) (bool, error) {
	return writeOwned(o.Path, data, o.mode, o.uid, o.gid)
}

func writeOwned(path string, data []byte, mode os.FileMode, uid, gid int) (bool, error) {
	if _, err := os.Stat(filepath.Dir(path)); err != nil {
		return false, fmt.Errorf("cannot write %s: its directory %s is gone (%w); the agent does not create it", path, filepath.Dir(path), errors.Unwrap(err))
	}
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		if st, err := os.Stat(path); err == nil && st.Mode().Perm() == mode && owned(st, uid, gid) {
			return false, nil
		}
	}
	if err := atomicfile.WriteOwned(path, data, mode, uid, gid); err != nil {
		return false, err
	}
	return true, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
