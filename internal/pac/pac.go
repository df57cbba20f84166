// Package pac encodes, signs and reads the Privilege Attribute Certificate AD puts in
// Kerberos tickets ([MS-PAC]): the PACTYPE container, KERB_VALIDATION_INFO in NDR
// type serialization version 1 ([MS-RPCE] 2.2.6), the client, UPN/DNS, attributes
// and requestor buffers, and the server, KDC, ticket and full signatures. It takes
// bytes and keys' checksum functions and returns bytes: it is pure.
package pac

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf16"

	"gmsa/internal/ntsec"
)

// Buffer types ([MS-PAC] 2.4).
const (
	TypeLogonInfo      = 1
	TypeServerChecksum = 6
	TypeKDCChecksum    = 7
	TypeClientInfo     = 10
	TypeDelegationInfo = 11
	TypeUPNDNSInfo     = 12
	TypeTicketChecksum = 16
	TypeAttributes     = 17
	TypeRequestor      = 18
	TypeFullChecksum   = 19
)

// Buffer is one PAC_INFO_BUFFER's contents.
type Buffer struct {
	Type uint32
	Data []byte
}

// Encode lays buffers out as a PACTYPE ([MS-PAC] 2.3): the header, the info buffers,
// then each buffer's data at an 8-byte aligned offset.
func Encode(bufs []Buffer) []byte {
	off := align8(8 + 16*len(bufs))
	total := off
	for _, b := range bufs {
		total = align8(total + len(b.Data))
	}
	out := make([]byte, 8, total) // one allocation, the final size
	binary.LittleEndian.PutUint32(out, uint32(len(bufs)))
	for _, b := range bufs {
		out = binary.LittleEndian.AppendUint32(out, b.Type)
		out = binary.LittleEndian.AppendUint32(out, uint32(len(b.Data)))
		out = binary.LittleEndian.AppendUint64(out, uint64(off))
		off = align8(off + len(b.Data))
	}
	out = out[:align8(len(out))]
	for _, b := range bufs {
		out = append(out, b.Data...)
		out = out[:align8(len(out))] // zero padding: the capacity is fresh
	}
	return out
}

func align8(n int) int { return (n + 7) &^ 7 }

// Decode splits a PACTYPE into its buffers (data slices point into b).
func Decode(b []byte) ([]Buffer, error) {
	if len(b) < 8 {
		return nil, errors.New("pac: shorter than its header")
	}
	n := binary.LittleEndian.Uint32(b)
	if binary.LittleEndian.Uint32(b[4:]) != 0 || n == 0 || n > 64 || 8+16*int(n) > len(b) {
		return nil, fmt.Errorf("pac: bad header (%d buffers, version %d)", n, binary.LittleEndian.Uint32(b[4:]))
	}
	out := make([]Buffer, 0, n)
	for i := range int(n) {
		e := b[8+16*i:]
		typ, size, off := binary.LittleEndian.Uint32(e), binary.LittleEndian.Uint32(e[4:]), binary.LittleEndian.Uint64(e[8:])
		if off > uint64(len(b)) || uint64(size) > uint64(len(b))-off {
			return nil, fmt.Errorf("pac: buffer %d (type %d) lies outside the PAC", i, typ)
		}
		out = append(out, Buffer{Type: typ, Data: b[off : off+uint64(size)]})
	}
	return out, nil
}

// ClientInfo is PAC_CLIENT_INFO ([MS-PAC] 2.7): the ticket's authtime and the client's
// name without realm.
func ClientInfo(authTime ntsec.FileTime, name string) []byte {
	u := utf16le(name)
	b := binary.LittleEndian.AppendUint64(nil, uint64(authTime))
	b = binary.LittleEndian.AppendUint16(b, uint16(len(u)))
	return append(b, u...)
}

// UPNDNSInfo is UPN_DNS_INFO ([MS-PAC] 2.10) in its extended form with the SAM name and
// SID (flag S), as DCs write it since the CVE-2021-42287 hardening; constructed tells
// that the UPN was built from sam@domain (flag U).
func UPNDNSInfo(upn, dnsDomain string, constructed bool, sam string, sid ntsec.SID) []byte {
	const fixed = 24
	fields := [][]byte{utf16le(upn), utf16le(dnsDomain), utf16le(sam), sid.Bytes()}
	b := make([]byte, fixed)
	off := align8(fixed)
	data := make([]byte, off-fixed)
	for i, f := range fields {
		slot := []int{0, 4, 12, 16}[i]
		binary.LittleEndian.PutUint16(b[slot:], uint16(len(f)))
		binary.LittleEndian.PutUint16(b[slot+2:], uint16(off))
		data = append(data, f...)
		off += len(f)
		pad := align8(off) - off
		data = append(data, make([]byte, pad)...)
		off += pad
	}
	flags := uint32(2) // S: SAM name and SID present
	if constructed {
		flags |= 1 // U: the UPN was constructed
	}
	binary.LittleEndian.PutUint32(b[8:], flags)
	return append(b, data...)
}

// UPNDNSInfoSID reads the account SID an extended UPN_DNS_INFO carries ([MS-PAC] 2.10:
// flag S, SidLength at 16, SidOffset at 18).
func UPNDNSInfoSID(b []byte) (ntsec.SID, error) {
	if len(b) < 24 || binary.LittleEndian.Uint32(b[8:])&2 == 0 {
		return ntsec.SID{}, errors.New("pac: UPN_DNS_INFO carries no SID")
	}
	n, off := int(binary.LittleEndian.Uint16(b[16:])), int(binary.LittleEndian.Uint16(b[18:]))
	if off+n > len(b) {
		return ntsec.SID{}, errors.New("pac: UPN_DNS_INFO's SID runs past its end")
	}
	return ntsec.SIDFromBytes(b[off : off+n])
}

// Attributes is PAC_ATTRIBUTES_INFO ([MS-PAC] 2.14): the PAC was requested.
func Attributes(requested bool) []byte {
	flags := uint32(2) // PAC_WAS_GIVEN_IMPLICITLY
	if requested {
		flags = 1 // PAC_WAS_REQUESTED
	}
	return binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, 2), flags)
}

// Requestor is PAC_REQUESTOR ([MS-PAC] 2.15): the SID of the account the TGT was
// issued to.
func Requestor(sid ntsec.SID) []byte { return sid.Bytes() }

func utf16le(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b
}
