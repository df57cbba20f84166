package kds

import (
	"encoding/binary"
	"fmt"

	"gmsa/internal/ntsec"
)

// passwordIDMagic is "KDSK" as a little-endian u32.
const passwordIDMagic = 0x4B53444B

// PasswordIDFlags is the Flags value every gMSA password id carries.
const PasswordIDFlags = 2

// PasswordID is msDS-ManagedPasswordId / msDS-ManagedPasswordPreviousId: the shortened
// Group Key Envelope naming the root key and the GKID of a password period's start
// (gmsa-algorithm.md §6).
type PasswordID struct {
	Version        uint32 // the root key's msKds-Version (1)
	Flags          uint32 // 2
	GKID           GKID
	RootKeyID      ntsec.GUID
	AdditionalInfo []byte // empty for gMSA
	DomainName     string // DNS name of the domain
	ForestName     string // DNS name of the forest
}

const passwordIDHeaderLen = 52

// ParsePasswordID decodes the blob. Every field is checked; the error names the field
// and its offset and wraps ErrBadPasswordID.
func ParsePasswordID(b []byte) (*PasswordID, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("kds: msDS-ManagedPasswordId: "+format+": %w", append(a, ErrBadPasswordID)...)
	}
	if len(b) < passwordIDHeaderLen {
		return nil, bad("%d bytes, the header needs %d", len(b), passwordIDHeaderLen)
	}
	le := binary.LittleEndian
	if m := le.Uint32(b[4:]); m != passwordIDMagic {
		return nil, bad("magic 0x%08x at offset 4, want 0x%08x (\"KDSK\")", m, passwordIDMagic)
	}
	id := &PasswordID{
		Version: le.Uint32(b[0:]),
		Flags:   le.Uint32(b[8:]),
		GKID:    GKID{L0: int32(le.Uint32(b[12:])), L1: int32(le.Uint32(b[16:])), L2: int32(le.Uint32(b[20:]))},
	}
	copy(id.RootKeyID[:], b[24:40])
	if !id.GKID.IsL2() || id.GKID.Validate() != nil {
		return nil, bad("GKID %v at offset 12 is not a key period (L0 ≥ 0, L1 and L2 in 0…31)", id.GKID)
	}
	cbInfo, cbDomain, cbForest := le.Uint32(b[40:]), le.Uint32(b[44:]), le.Uint32(b[48:])
	off := uint64(passwordIDHeaderLen)
	if off+uint64(cbInfo) > uint64(len(b)) {
		return nil, bad("cbAdditionalInfo %d at offset 40 runs past the %d-byte blob", cbInfo, len(b))
	}
	if cbInfo > 0 {
		id.AdditionalInfo = append([]byte(nil), b[off:off+uint64(cbInfo)]...)
	}
	off += uint64(cbInfo)
	off += off & 1 // NDR aligns the names to 2 bytes
	for _, f := range []struct {
		cb    uint32
		field int
		name  string
		dst   *string
	}{{cbDomain, 44, "domain name", &id.DomainName}, {cbForest, 48, "forest name", &id.ForestName}} {
		if off+uint64(f.cb) > uint64(len(b)) {
			return nil, bad("%s length %d at offset %d runs past the %d-byte blob", f.name, f.cb, f.field, len(b))
		}
		s, err := fromUTF16Z(b[off : off+uint64(f.cb)])
		if err != nil {
			return nil, bad("%s at offset %d: %v", f.name, off, err)
		}
		*f.dst = s
		off += uint64(f.cb)
	}
	if off != uint64(len(b)) {
		return nil, bad("%d trailing bytes after the forest name at offset %d", uint64(len(b))-off, off)
	}
	return id, nil
}

// Bytes encodes the blob as a DC writes it.
func (id *PasswordID) Bytes() []byte {
	dom, forest := utf16le(id.DomainName), utf16le(id.ForestName)
	b := make([]byte, 0, passwordIDHeaderLen+len(id.AdditionalInfo)+1+len(dom)+len(forest))
	le := binary.LittleEndian
	b = le.AppendUint32(b, id.Version)
	b = le.AppendUint32(b, passwordIDMagic)
	b = le.AppendUint32(b, id.Flags)
	b = le.AppendUint32(b, uint32(id.GKID.L0))
	b = le.AppendUint32(b, uint32(id.GKID.L1))
	b = le.AppendUint32(b, uint32(id.GKID.L2))
	b = append(b, id.RootKeyID[:]...)
	b = le.AppendUint32(b, uint32(len(id.AdditionalInfo)))
	b = le.AppendUint32(b, uint32(len(dom)))
	b = le.AppendUint32(b, uint32(len(forest)))
	b = append(b, id.AdditionalInfo...)
	if len(b)%2 != 0 {
		b = append(b, 0)
	}
	b = append(b, dom...)
	return append(b, forest...)
}

// NewPasswordID is the id a DC writes for a password period g derived from rk.
func NewPasswordID(rk *RootKey, g GKID, domain, forest string) *PasswordID {
	return &PasswordID{Version: rk.Version, Flags: PasswordIDFlags, GKID: g, RootKeyID: rk.ID, DomainName: domain, ForestName: forest}
}
