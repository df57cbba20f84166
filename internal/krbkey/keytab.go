package krbkey

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// ErrMalformedKeytab wraps every keytab decoding error.
var ErrMalformedKeytab = errors.New("malformed keytab")

// Name types ([RFC 4120] 6.2).
const (
	NameTypePrincipal = 1
	NameTypeSrvHost   = 3
)

// Principal is a Kerberos principal name.
type Principal struct {
	Realm      string
	Components []string
	NameType   uint32
}

// ParsePrincipal reads "a/b@REALM"; without a realm, defaultRealm is used. "\" escapes
// "/" and "@" as in MIT's krb5_parse_name.
func ParsePrincipal(s, defaultRealm string) (Principal, error) {
	var comps []string
	var cur strings.Builder
	realm, inRealm := "", false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case c == '/' && !inRealm:
			comps = append(comps, cur.String())
			cur.Reset()
		case c == '@' && !inRealm:
			comps = append(comps, cur.String())
			cur.Reset()
			inRealm = true
		default:
			cur.WriteByte(c)
		}
	}
	if inRealm {
		realm = cur.String()
	} else {
		comps = append(comps, cur.String())
		realm = defaultRealm
	}
	for _, c := range comps {
		if c == "" {
			return Principal{}, fmt.Errorf("krbkey: principal %q has an empty component", s)
		}
	}
	if realm == "" {
		return Principal{}, fmt.Errorf("krbkey: principal %q has no realm", s)
	}
	nt := uint32(NameTypePrincipal)
	if len(comps) > 1 {
		nt = NameTypeSrvHost
	}
	return Principal{Realm: realm, Components: comps, NameType: nt}, nil
}

func (p Principal) String() string {
	esc := func(s string) string { return strings.NewReplacer("/", `\/`, "@", `\@`).Replace(s) }
	parts := make([]string, len(p.Components))
	for i, c := range p.Components {
		parts[i] = esc(c)
	}
	return strings.Join(parts, "/") + "@" + p.Realm
}

// KeytabEntry is one key of one principal in a keytab.
type KeytabEntry struct {
	Principal Principal
	Timestamp uint32 // seconds since 1970
	KVNO      uint32
	Key       Key
}

// Keytab is an MIT keytab, file format version 0x502.
type Keytab struct {
	Entries []KeytabEntry
}

const keytabVersion = 0x0502

// Marshal encodes the keytab. The 8-bit kvno field holds kvno mod 256 and the 32-bit
// extension the full value, as MIT writes it.
func (kt *Keytab) Marshal() ([]byte, error) {
	out := binary.BigEndian.AppendUint16(nil, keytabVersion)
	for _, e := range kt.Entries {
		rec, err := e.marshal()
		if err != nil {
			return nil, err
		}
		out = binary.BigEndian.AppendUint32(out, uint32(len(rec)))
		out = append(out, rec...)
	}
	return out, nil
}

func (e *KeytabEntry) marshal() ([]byte, error) {
	be := binary.BigEndian
	str := func(b []byte, s string) ([]byte, error) {
		if len(s) > 0xffff {
			return nil, fmt.Errorf("krbkey: keytab: %d-byte name component is too long", len(s))
		}
		return append(be.AppendUint16(b, uint16(len(s))), s...), nil
	}
	if len(e.Principal.Components) == 0 || len(e.Principal.Components) > 0xffff {
		return nil, fmt.Errorf("krbkey: keytab: principal %v needs 1 to 65535 components", e.Principal)
	}
	b := be.AppendUint16(nil, uint16(len(e.Principal.Components)))
	var err error
	if b, err = str(b, e.Principal.Realm); err != nil {
		return nil, err
	}
	for _, c := range e.Principal.Components {
		if b, err = str(b, c); err != nil {
			return nil, err
		}
	}
	b = be.AppendUint32(b, e.Principal.NameType)
	b = be.AppendUint32(b, e.Timestamp)
	b = append(b, byte(e.KVNO))
	b = be.AppendUint16(b, uint16(e.Key.Etype))
	if len(e.Key.Value) > 0xffff {
		return nil, fmt.Errorf("krbkey: keytab: key of %d bytes is too long", len(e.Key.Value))
	}
	b = be.AppendUint16(b, uint16(len(e.Key.Value)))
	b = append(b, e.Key.Value...)
	return be.AppendUint32(b, e.KVNO), nil
}

// ParseKeytab decodes a version 0x502 keytab. Deleted entries (negative sizes) are
// skipped; a 32-bit kvno extension, when present, overrides the 8-bit field.
func ParseKeytab(data []byte) (*Keytab, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("krbkey: keytab: "+format+": %w", append(a, ErrMalformedKeytab)...)
	}
	if len(data) < 2 {
		return nil, bad("%d bytes, the version needs 2", len(data))
	}
	if v := binary.BigEndian.Uint16(data); v != keytabVersion {
		return nil, bad("version 0x%04x, only 0x0502 is supported", v)
	}
	kt := &Keytab{}
	for pos := 2; pos < len(data); {
		if pos+4 > len(data) {
			return nil, bad("entry size at offset %d runs past the end", pos)
		}
		size := int32(binary.BigEndian.Uint32(data[pos:]))
		pos += 4
		if size < 0 {
			if int64(pos)-int64(size) > int64(len(data)) {
				return nil, bad("hole of %d bytes at offset %d runs past the end", -size, pos-4)
			}
			pos += int(-size)
			continue
		}
		if size == 0 {
			break // MIT stops at a zero size: the rest is unused space
		}
		if pos+int(size) > len(data) {
			return nil, bad("entry of %d bytes at offset %d runs past the end", size, pos-4)
		}
		e, err := parseEntry(data[pos : pos+int(size)])
		if err != nil {
			return nil, bad("entry at offset %d: %v", pos-4, err)
		}
		kt.Entries = append(kt.Entries, e)
		pos += int(size)
	}
	return kt, nil
}

func parseEntry(b []byte) (KeytabEntry, error) {
	var e KeytabEntry
	r := reader{b: b}
	n := r.u16()
	e.Principal.Realm = r.str()
	for range n {
		e.Principal.Components = append(e.Principal.Components, r.str())
	}
	e.Principal.NameType = r.u32()
	e.Timestamp = r.u32()
	e.KVNO = uint32(r.u8())
	e.Key.Etype = int32(r.u16())
	e.Key.Value = []byte(r.str())
	if r.err != nil {
		return e, r.err
	}
	if n == 0 {
		return e, fmt.Errorf("principal without components")
	}
	if len(r.b)-r.pos >= 4 {
		if v := r.u32(); v != 0 {
			e.KVNO = v
		}
	}
	return e, nil
}

type reader struct {
	b   []byte
	pos int
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if r.pos+n > len(r.b) {
		r.err = fmt.Errorf("field of %d bytes at %d runs past the %d-byte entry", n, r.pos, len(r.b))
		return nil
	}
	r.pos += n
	return r.b[r.pos-n : r.pos]
}

func (r *reader) u8() uint8 {
	if b := r.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if b := r.take(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if b := r.take(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (r *reader) str() string { return string(r.take(int(r.u16()))) }
