package pac

import (
	"encoding/binary"

	"gmsa/internal/ntsec"
)

// LogonInfo is KERB_VALIDATION_INFO ([MS-PAC] 2.5) as a DC fills it for a network logon.
type LogonInfo struct {
	LogonTime          ntsec.FileTime
	PasswordLastSet    ntsec.FileTime
	PasswordMustChange ntsec.FileTime // never (0x7fff…) for computers and gMSAs
	EffectiveName      string         // sAMAccountName
	FullName           string
	BadPasswordCount   uint16
	UserID             uint32 // RID
	PrimaryGroupID     uint32
	GroupIDs           []uint32 // RIDs of the domain groups, primary included, attributes 7
	LogonServer        string   // the DC's NetBIOS name
	LogonDomainName    string   // NetBIOS domain
	LogonDomainID      ntsec.SID
	UserAccountControl uint32      // SAMR ACB_* flags, not AD's UF_*
	ExtraSIDs          []ntsec.SID // attributes 7; S-1-18-1 for an AS logon
}

// SE_GROUP_MANDATORY | SE_GROUP_ENABLED_BY_DEFAULT | SE_GROUP_ENABLED.
const groupAttributes = 7

// never is the FILETIME of "never" (LogoffTime, KickOffTime …).
const never = 0x7fffffffffffffff

// UserFlags bits ([MS-PAC] 2.5).
const logonExtraSIDs = 0x20

// ndr writes NDR in little-endian with 4-byte alignment, deferring pointed-to data
// as NDR requires: the fixed part first, then each pointer's referent in order.
type ndr struct {
	b        []byte
	deferred []func()
	ref      uint32
}

func (w *ndr) align(n int) {
	for len(w.b)%n != 0 {
		w.b = append(w.b, 0)
	}
}
func (w *ndr) u16(v uint16) { w.align(2); w.b = binary.LittleEndian.AppendUint16(w.b, v) }
func (w *ndr) u32(v uint32) { w.align(4); w.b = binary.LittleEndian.AppendUint32(w.b, v) }
func (w *ndr) filetime(t ntsec.FileTime) {
	w.u32(uint32(t))
	w.u32(uint32(uint64(t) >> 32))
}

// ptr writes a referent id (or null) and defers the referent's encoding.
func (w *ndr) ptr(present bool, referent func()) {
	if !present {
		w.u32(0)
		return
	}
	w.ref += 4
	w.u32(0x00020000 + w.ref - 4)
	w.deferred = append(w.deferred, referent)
}

// flush writes the deferred referents in order, each followed at once by its own
// (NDR's depth-first order of embedded pointers).
func (w *ndr) flush() {
	d := w.deferred
	w.deferred = nil
	for _, f := range d {
		f()
		w.flush()
	}
}

// unicodeString is RPC_UNICODE_STRING: lengths in bytes, then a conformant varying
// array of UTF-16 units.
func (w *ndr) unicodeString(s string) {
	u := utf16le(s)
	w.u16(uint16(len(u)))
	w.u16(uint16(len(u)))
	w.ptr(len(u) > 0, func() {
		w.u32(uint32(len(u) / 2)) // MaximumCount
		w.u32(0)                  // Offset
		w.u32(uint32(len(u) / 2)) // ActualCount
		w.b = append(w.b, u...)
	})
}

// sid is RPC_SID: the conformant SubAuthority count first.
func (w *ndr) sid(s ntsec.SID) {
	w.u32(uint32(len(s.Sub)))
	b := s.Bytes()
	w.b = append(w.b, b...)
}

// serialized wraps an NDR body in the type serialization v1 headers ([MS-RPCE]
// 2.2.6.1, 2.2.6.2): the common header, then the private header with the body's length.
func (w *ndr) serialized() []byte {
	w.flush()
	w.align(8)
	hdr := []byte{0x01, 0x10, 0x08, 0x00, 0xcc, 0xcc, 0xcc, 0xcc}
	hdr = binary.LittleEndian.AppendUint32(hdr, uint32(len(w.b)))
	hdr = binary.LittleEndian.AppendUint32(hdr, 0)
	return append(hdr, w.b...)
}

// DelegationInfo is S4U_DELEGATION_INFO ([MS-PAC] 2.9): the S4U2Proxy target and the
// services the user's identity was delegated through.
func DelegationInfo(target string, transited []string) []byte {
	w := &ndr{}
	w.ptr(true, nil) // the top-level pointer to the structure
	w.deferred = nil
	w.unicodeString(target)
	w.u32(uint32(len(transited)))
	w.ptr(len(transited) > 0, func() {
		w.u32(uint32(len(transited)))
		for _, s := range transited {
			w.unicodeString(s)
		}
	})
	return w.serialized()
}

// Bytes encodes the KERB_VALIDATION_INFO with its type serialization v1 headers
// ([MS-RPCE] 2.2.6.1, 2.2.6.2).
func (l *LogonInfo) Bytes() []byte {
	w := &ndr{}
	w.ptr(true, nil) // the top-level pointer to the structure
	w.deferred = nil
	w.filetime(l.LogonTime)
	w.filetime(never) // LogoffTime
	w.filetime(never) // KickOffTime
	w.filetime(l.PasswordLastSet)
	w.filetime(0) // PasswordCanChange
	must := l.PasswordMustChange
	if must == 0 {
		must = never
	}
	w.filetime(must)
	w.unicodeString(l.EffectiveName)
	w.unicodeString(l.FullName)
	for range 4 { // LogonScript, ProfilePath, HomeDirectory, HomeDirectoryDrive
		w.unicodeString("")
	}
	w.u16(0) // LogonCount
	w.u16(l.BadPasswordCount)
	w.u32(l.UserID)
	w.u32(l.PrimaryGroupID)
	w.u32(uint32(len(l.GroupIDs)))
	groups := l.GroupIDs
	w.ptr(len(groups) > 0, func() {
		w.u32(uint32(len(groups)))
		for _, g := range groups {
			w.u32(g)
			w.u32(groupAttributes)
		}
	})
	flags := uint32(0)
	if len(l.ExtraSIDs) > 0 {
		flags |= logonExtraSIDs
	}
	w.u32(flags)
	w.b = append(w.b, make([]byte, 16)...) // UserSessionKey
	w.unicodeString(l.LogonServer)
	w.unicodeString(l.LogonDomainName)
	dom := l.LogonDomainID
	w.ptr(true, func() { w.sid(dom) })
	w.u32(0) // Reserved1[0]
	w.u32(0) // Reserved1[1]
	w.u32(l.UserAccountControl)
	w.u32(0)      // SubAuthStatus
	w.filetime(0) // LastSuccessfulILogon
	w.filetime(0) // LastFailedILogon
	w.u32(0)      // FailedILogonCount
	w.u32(0)      // Reserved3
	w.u32(uint32(len(l.ExtraSIDs)))
	extra := l.ExtraSIDs
	w.ptr(len(extra) > 0, func() {
		w.u32(uint32(len(extra)))
		for _, s := range extra {
			s := s
			w.ptr(true, func() { w.sid(s) })
			w.u32(groupAttributes)
		}
	})
	w.ptr(false, nil) // ResourceGroupDomainSid
	w.u32(0)          // ResourceGroupCount
	w.ptr(false, nil) // ResourceGroupIds
	return w.serialized()
}

// ACB flags ([MS-SAMR] 2.2.1.12) for AD's userAccountControl.
func ACB(uac uint32) uint32 {
	var acb uint32
	for _, m := range [][2]uint32{{0x2, 0x1}, {0x20, 0x4}, {0x200, 0x10}, {0x1000, 0x80}, {0x2000, 0x100}, {0x10000, 0x200}, {0x10, 0x400}} {
		if uac&m[0] != 0 {
			acb |= m[1]
		}
	}
	return acb
}
