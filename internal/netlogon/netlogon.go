// Package netlogon encodes and decodes the domain controller's answer to an LDAP ping,
// NETLOGON_SAM_LOGON_RESPONSE_EX ([MS-ADTS] 6.3.1.9), which clients (adcli, sssd,
// Windows' DsGetDcName) ask for over CLDAP or LDAP before they pick a DC.
package netlogon

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"gmsa/internal/ntsec"
)

// Operation codes ([MS-ADTS] 6.3.1.3).
const (
	OpSAMLogonResponseEX = 23 // LOGON_SAM_LOGON_RESPONSE_EX
	OpSAMUserUnknownEX   = 25 // LOGON_SAM_USER_UNKNOWN_EX
)

// DS_FLAG bits ([MS-ADTS] 6.3.1.2).
const (
	FlagPDC           = 0x00000001
	FlagGC            = 0x00000004
	FlagLDAP          = 0x00000008
	FlagDS            = 0x00000010
	FlagKDC           = 0x00000020
	FlagTimeServ      = 0x00000040
	FlagClosest       = 0x00000080
	FlagWritable      = 0x00000100
	FlagFullSecret    = 0x00001000
	FlagDS8           = 0x00004000
	FlagDS9           = 0x00008000
	FlagDS10          = 0x00010000
	FlagDNSController = 0x20000000
	FlagDNSDomain     = 0x40000000
	FlagDNSForest     = 0x80000000
)

// NETLOGON_NT_VERSION bits a client sets in NtVer ([MS-ADTS] 6.3.1.1).
const (
	NtVersion1            = 0x00000001
	NtVersion5            = 0x00000002
	NtVersion5EX          = 0x00000004
	NtVersion5EXWithIP    = 0x00000008
	NtVersionWithClosest  = 0x00000010
	NtVersionAvoidNT4Emul = 0x01000000
)

// Response is a NETLOGON_SAM_LOGON_RESPONSE_EX.
type Response struct {
	Opcode                   uint16
	Flags                    uint32
	DomainGUID               ntsec.GUID
	DNSForest, DNSDomain     string
	DNSHost                  string
	NetBIOSDomain, NetBIOSDC string
	User                     string
	DCSite, ClientSite       string
	NextClosestSite          string     // present when NtVersion has NtVersionWithClosest
	DCAddr                   netip.Addr // present (IPv4 only) when NtVersion has NtVersion5EXWithIP
	NtVersion                uint32
}

// Marshal encodes r; names are compressed as DNS names are ([RFC 1035] 4.1.4), with
// offsets from the start of the structure.
func (r *Response) Marshal() []byte {
	b := make([]byte, 0, 256)
	b = binary.LittleEndian.AppendUint16(b, r.Opcode)
	b = binary.LittleEndian.AppendUint16(b, 0) // Sbz
	b = binary.LittleEndian.AppendUint32(b, r.Flags)
	b = append(b, r.DomainGUID[:]...)
	seen := map[string]int{}
	for _, s := range []string{r.DNSForest, r.DNSDomain, r.DNSHost, r.NetBIOSDomain, r.NetBIOSDC, r.User, r.DCSite, r.ClientSite} {
		b = appendName(b, s, seen)
	}
	if r.NtVersion&NtVersionWithClosest != 0 {
		b = appendName(b, r.NextClosestSite, seen)
	}
	if r.NtVersion&NtVersion5EXWithIP != 0 && r.DCAddr.Is4() {
		// DcSockAddrSize, then a SOCKADDR_IN: family AF_INET (little-endian), port 0,
		// the address, eight zero bytes.
		ip := r.DCAddr.As4()
		b = append(b, 16, 2, 0, 0, 0)
		b = append(b, ip[:]...)
		b = append(b, make([]byte, 8)...)
	}
	b = binary.LittleEndian.AppendUint32(b, r.NtVersion)
	return append(b, 0xff, 0xff, 0xff, 0xff) // LmNtToken, Lm20Token
}

// appendName appends s as DNS labels, pointing at an earlier copy of its longest
// suffix already written.
func appendName(b []byte, s string, seen map[string]int) []byte {
	s = strings.TrimSuffix(s, ".")
	for s != "" {
		if off, ok := seen[s]; ok && off < 0x3fff {
			return append(b, 0xc0|byte(off>>8), byte(off))
		}
		seen[s] = len(b)
		label, rest, _ := strings.Cut(s, ".")
		if len(label) > 63 {
			label = label[:63]
		}
		b = append(b, byte(len(label)))
		b = append(b, label...)
		s = rest
	}
	return append(b, 0)
}

// ErrMalformed is a response this package cannot decode.
var ErrMalformed = errors.New("netlogon: malformed NETLOGON_SAM_LOGON_RESPONSE_EX")

// Parse decodes a NETLOGON_SAM_LOGON_RESPONSE_EX; the optional fields are read as its
// trailing NtVersion says they are present.
func Parse(b []byte) (*Response, error) {
	if len(b) < 24+8 {
		return nil, fmt.Errorf("%w: %d bytes", ErrMalformed, len(b))
	}
	r := &Response{Opcode: binary.LittleEndian.Uint16(b), Flags: binary.LittleEndian.Uint32(b[4:])}
	if r.Opcode != OpSAMLogonResponseEX && r.Opcode != OpSAMUserUnknownEX {
		return nil, fmt.Errorf("%w: opcode %d", ErrMalformed, r.Opcode)
	}
	copy(r.DomainGUID[:], b[8:24])
	r.NtVersion = binary.LittleEndian.Uint32(b[len(b)-8:])
	off := 24
	var err error
	for _, dst := range []*string{&r.DNSForest, &r.DNSDomain, &r.DNSHost, &r.NetBIOSDomain, &r.NetBIOSDC, &r.User, &r.DCSite, &r.ClientSite} {
		if *dst, off, err = readName(b, off); err != nil {
			return nil, err
		}
	}
	if r.NtVersion&NtVersionWithClosest != 0 {
		if r.NextClosestSite, off, err = readName(b, off); err != nil {
			return nil, err
		}
	}
	if r.NtVersion&NtVersion5EXWithIP != 0 {
		if off+17 > len(b)-8 || b[off] != 16 {
			return nil, fmt.Errorf("%w: DcSockAddr", ErrMalformed)
		}
		r.DCAddr = netip.AddrFrom4([4]byte(b[off+5 : off+9]))
		off += 17
	}
	if off != len(b)-8 {
		return nil, fmt.Errorf("%w: %d bytes after the names", ErrMalformed, len(b)-8-off)
	}
	return r, nil
}

// readName reads a compressed name at off and returns it and the offset after it; a
// name of more than 255 bytes or more than 64 pointers is refused.
func readName(b []byte, off int) (string, int, error) {
	var sb strings.Builder
	next, jumps := -1, 0
	for {
		if off >= len(b) {
			return "", 0, fmt.Errorf("%w: a name runs past the end", ErrMalformed)
		}
		n := int(b[off])
		switch {
		case n == 0:
			if next < 0 {
				next = off + 1
			}
			return sb.String(), next, nil
		case n&0xc0 == 0xc0:
			if off+1 >= len(b) || jumps == 64 {
				return "", 0, fmt.Errorf("%w: a bad name pointer", ErrMalformed)
			}
			if next < 0 {
				next = off + 2
			}
			off = (n&0x3f)<<8 | int(b[off+1])
			jumps++
		case n&0xc0 != 0:
			return "", 0, fmt.Errorf("%w: label type %#x", ErrMalformed, n&0xc0)
		default:
			if off+1+n > len(b) || sb.Len()+n+1 > 255 {
				return "", 0, fmt.Errorf("%w: a label runs past the end", ErrMalformed)
			}
			if bytes.IndexByte(b[off+1:off+1+n], '.') >= 0 {
				return "", 0, fmt.Errorf("%w: a label holds a dot", ErrMalformed)
			}
			if sb.Len() > 0 {
				sb.WriteByte('.')
			}
			sb.Write(b[off+1 : off+1+n])
			off += 1 + n
		}
	}
}
