package ntsec

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// MaxSubAuthorities is the most sub-authorities a SID may carry ([MS-DTYP] 2.4.2).
const MaxSubAuthorities = 15

// SID is a security identifier ([MS-DTYP] 2.4.2). The zero value is not a valid SID.
// SIDs are compared with Equal; String gives the canonical S-1-… form.
type SID struct {
	Authority uint64 // 48-bit identifier authority
	Sub       []uint32
}

// ParseSID reads the S-R-I-S-S… string form. The identifier authority may be decimal or
// 0x-prefixed hexadecimal ([MS-DTYP] 2.4.2.1).
func ParseSID(s string) (SID, error) {
	parts := strings.Split(strings.TrimSpace(s), "-")
	if len(parts) < 3 || !strings.EqualFold(parts[0], "S") {
		return SID{}, fmt.Errorf("ntsec: SID %q: want the form S-1-5-21-…", s)
	}
	if parts[1] != "1" {
		return SID{}, fmt.Errorf("ntsec: SID %q: revision must be 1", s)
	}
	var auth uint64
	var err error
	if a := parts[2]; strings.HasPrefix(a, "0x") || strings.HasPrefix(a, "0X") {
		auth, err = strconv.ParseUint(a[2:], 16, 48)
	} else {
		auth, err = strconv.ParseUint(a, 10, 48)
	}
	if err != nil {
		return SID{}, fmt.Errorf("ntsec: SID %q: identifier authority %q is not a 48-bit number", s, parts[2])
	}
	subs := parts[3:]
	if len(subs) > MaxSubAuthorities {
		return SID{}, fmt.Errorf("ntsec: SID %q: %d sub-authorities, at most %d allowed", s, len(subs), MaxSubAuthorities)
	}
	sid := SID{Authority: auth, Sub: make([]uint32, len(subs))}
	for i, p := range subs {
		v, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return SID{}, fmt.Errorf("ntsec: SID %q: sub-authority %q is not a 32-bit number", s, p)
		}
		sid.Sub[i] = uint32(v)
	}
	return sid, nil
}

// MustParseSID is ParseSID for constants; it panics on error.
func MustParseSID(s string) SID {
	sid, err := ParseSID(s)
	if err != nil {
		panic(err)
	}
	return sid
}

// SIDFromBytes reads a binary SID that must fill b exactly.
func SIDFromBytes(b []byte) (SID, error) {
	sid, n, err := readSID(b)
	if err != nil {
		return SID{}, err
	}
	if n != len(b) {
		return SID{}, fmt.Errorf("ntsec: binary SID: %d trailing bytes after the %d-byte SID", len(b)-n, n)
	}
	return sid, nil
}

// readSID reads a binary SID at the start of b and returns its length.
func readSID(b []byte) (SID, int, error) {
	if len(b) < 8 {
		return SID{}, 0, fmt.Errorf("ntsec: binary SID: %d bytes, need at least 8", len(b))
	}
	if b[0] != 1 {
		return SID{}, 0, fmt.Errorf("ntsec: binary SID: revision %d, want 1", b[0])
	}
	count := int(b[1])
	if count > MaxSubAuthorities {
		return SID{}, 0, fmt.Errorf("ntsec: binary SID: %d sub-authorities, at most %d allowed", count, MaxSubAuthorities)
	}
	n := 8 + 4*count
	if len(b) < n {
		return SID{}, 0, fmt.Errorf("ntsec: binary SID: %d sub-authorities need %d bytes, have %d", count, n, len(b))
	}
	var auth uint64
	for _, c := range b[2:8] {
		auth = auth<<8 | uint64(c)
	}
	sid := SID{Authority: auth, Sub: make([]uint32, count)}
	for i := range count {
		sid.Sub[i] = binary.LittleEndian.Uint32(b[8+4*i:])
	}
	return sid, n, nil
}

// Len is the size of the binary form.
func (s SID) Len() int { return 8 + 4*len(s.Sub) }

// Bytes returns the binary form ([MS-DTYP] 2.4.2.2).
func (s SID) Bytes() []byte { return s.AppendBinary(make([]byte, 0, s.Len())) }

// AppendBinary appends the binary form to b.
func (s SID) AppendBinary(b []byte) []byte {
	b = append(b, 1, byte(len(s.Sub)))
	for i := 5; i >= 0; i-- {
		b = append(b, byte(s.Authority>>(8*i)))
	}
	for _, v := range s.Sub {
		b = binary.LittleEndian.AppendUint32(b, v)
	}
	return b
}

// String returns the S-1-… form; authorities of 2^32 and above are written in hex.
func (s SID) String() string {
	var b strings.Builder
	b.WriteString("S-1-")
	if s.Authority >= 1<<32 {
		fmt.Fprintf(&b, "0x%012X", s.Authority)
	} else {
		b.WriteString(strconv.FormatUint(s.Authority, 10))
	}
	for _, v := range s.Sub {
		b.WriteByte('-')
		b.WriteString(strconv.FormatUint(uint64(v), 10))
	}
	return b.String()
}

// IsZero reports whether s is the zero value.
func (s SID) IsZero() bool { return s.Authority == 0 && len(s.Sub) == 0 }

// Equal reports whether two SIDs are the same.
func (s SID) Equal(o SID) bool {
	if s.Authority != o.Authority || len(s.Sub) != len(o.Sub) {
		return false
	}
	for i := range s.Sub {
		if s.Sub[i] != o.Sub[i] {
			return false
		}
	}
	return true
}

// RID is the last sub-authority, or 0 for a SID without any.
func (s SID) RID() uint32 {
	if len(s.Sub) == 0 {
		return 0
	}
	return s.Sub[len(s.Sub)-1]
}

// Child returns the SID of domain s with relative identifier rid appended.
func (s SID) Child(rid uint32) SID {
	sub := make([]uint32, len(s.Sub)+1)
	copy(sub, s.Sub)
	sub[len(s.Sub)] = rid
	return SID{Authority: s.Authority, Sub: sub}
}

// Domain returns s without its RID.
func (s SID) Domain() SID {
	if len(s.Sub) == 0 {
		return s
	}
	return SID{Authority: s.Authority, Sub: append([]uint32(nil), s.Sub[:len(s.Sub)-1]...)}
}

// Well-known SIDs ([MS-DTYP] 2.4.2.4) used by the gMSA rules.
var (
	SIDEveryone           = MustParseSID("S-1-1-0")
	SIDCreatorOwner       = MustParseSID("S-1-3-0")
	SIDCreatorGroup       = MustParseSID("S-1-3-1")
	SIDEnterpriseDCs      = MustParseSID("S-1-5-9")
	SIDPrincipalSelf      = MustParseSID("S-1-5-10")
	SIDAuthenticatedUsers = MustParseSID("S-1-5-11")
	SIDSystem             = MustParseSID("S-1-5-18")
	SIDBuiltinAdmins      = MustParseSID("S-1-5-32-544")
	SIDOwnerRights        = MustParseSID("S-1-3-4")
)

// Domain-relative RIDs of well-known accounts and groups ([MS-DTYP] 2.4.2.4).
const (
	RIDAdministrator     = 500
	RIDKrbtgt            = 502
	RIDDomainAdmins      = 512
	RIDDomainUsers       = 513
	RIDDomainComputers   = 515
	RIDDomainControllers = 516
	RIDSchemaAdmins      = 518
	RIDEnterpriseAdmins  = 519
)
