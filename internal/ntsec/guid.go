package ntsec

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
)

// GUID is a GUID in its MS-DTYP "packet" byte order ([MS-DTYP] 2.3.4.2): Data1 as a
// little-endian uint32, Data2 and Data3 as little-endian uint16, then Data4 as written.
// This is .NET Guid.ToByteArray() and Python uuid.UUID(s).bytes_le.
type GUID [16]byte

// ParseGUID reads the textual form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, with or
// without surrounding braces, in either case.
func ParseGUID(s string) (GUID, error) {
	var g GUID
	t := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(s), "{"), "}")
	if len(t) != 36 || t[8] != '-' || t[13] != '-' || t[18] != '-' || t[23] != '-' {
		return g, fmt.Errorf("ntsec: GUID %q: want the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", s)
	}
	raw, err := hex.DecodeString(t[0:8] + t[9:13] + t[14:18] + t[19:23] + t[24:36])
	if err != nil {
		return g, fmt.Errorf("ntsec: GUID %q: not hexadecimal", s)
	}
	binary.LittleEndian.PutUint32(g[0:4], binary.BigEndian.Uint32(raw[0:4]))
	binary.LittleEndian.PutUint16(g[4:6], binary.BigEndian.Uint16(raw[4:6]))
	binary.LittleEndian.PutUint16(g[6:8], binary.BigEndian.Uint16(raw[6:8]))
	copy(g[8:], raw[8:])
	return g, nil
}

// MustParseGUID is ParseGUID for constants.
func MustParseGUID(s string) GUID {
	g, err := ParseGUID(s)
	if err != nil {
		panic(err)
	}
	return g
}

// GUIDFromBytes reads 16 bytes in packet order.
func GUIDFromBytes(b []byte) (GUID, error) {
	var g GUID
	if len(b) != 16 {
		return g, fmt.Errorf("ntsec: GUID must be 16 bytes, got %d", len(b))
	}
	copy(g[:], b)
	return g, nil
}

// String returns the lower-case textual form, as the cn of a KDS root key carries it.
func (g GUID) String() string {
	// The first three fields are little-endian, the last two are bytes in order.
	order := [16]int{3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15}
	const digits = "0123456789abcdef"
	var out [36]byte
	j := 0
	for i, k := range order {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out[j] = '-'
			j++
		}
		out[j], out[j+1] = digits[g[k]>>4], digits[g[k]&15]
		j += 2
	}
	return string(out[:])
}

// IsZero reports whether g is the nil GUID.
func (g GUID) IsZero() bool { return g == GUID{} }
