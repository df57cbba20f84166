// Package managedpw encodes and decodes msDS-ManagedPassword, the
// MSDS-MANAGEDPASSWORD_BLOB of [MS-ADTS] 2.2.19, exactly as Windows and Samba produce it:
// no alignment padding before the intervals (gmsa-algorithm.md §9). Readers go by the
// offsets. The package is pure.
package managedpw

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
)

// ErrMalformed wraps every decoding error.
var ErrMalformed = errors.New("malformed msDS-ManagedPassword blob")

// Blob is a decoded msDS-ManagedPassword. Passwords are the raw UTF-16LE bytes without
// the NUL terminator (256 bytes from a DC). Previous is nil when absent.
type Blob struct {
	Current           []byte
	Previous          []byte
	QueryInterval     uint64 // QueryPasswordInterval: 100 ns units until the current password expires
	UnchangedInterval uint64 // UnchangedPasswordInterval: 100 ns units it will not change
}

// String and LogValue keep the passwords out of logs.
func (b *Blob) String() string {
	return fmt.Sprintf("managedpw.Blob{current:[REDACTED], previous:%v, query:%d, unchanged:%d}", b.Previous != nil, b.QueryInterval, b.UnchangedInterval)
}

// LogValue implements slog.LogValuer without the passwords.
func (b *Blob) LogValue() slog.Value {
	return slog.GroupValue(slog.Bool("previous", b.Previous != nil), slog.Uint64("query", b.QueryInterval), slog.Uint64("unchanged", b.UnchangedInterval))
}

const headerLen = 16

// Encode lays the blob out as a DC does: header, current password + NUL, previous
// password + NUL (optional), QueryPasswordInterval, UnchangedPasswordInterval.
func (b *Blob) Encode() []byte {
	size := headerLen + len(b.Current) + 2 + 16
	if b.Previous != nil {
		size += len(b.Previous) + 2
	}
	out := make([]byte, headerLen, size)
	le := binary.LittleEndian
	le.PutUint16(out[0:], 1) // Version
	le.PutUint32(out[4:], uint32(size))
	le.PutUint16(out[8:], headerLen)
	out = append(append(out, b.Current...), 0, 0)
	if b.Previous != nil {
		le.PutUint16(out[10:], uint16(len(out)))
		out = append(append(out, b.Previous...), 0, 0)
	}
	le.PutUint16(out[12:], uint16(len(out)))
	out = le.AppendUint64(out, b.QueryInterval)
	le.PutUint16(out[14:], uint16(len(out)))
	return le.AppendUint64(out, b.UnchangedInterval)
}

// Decode parses a blob. Length must equal len(data); each offset must point inside the
// blob, in order; each password ends at its first aligned NUL unit before the next field.
// Errors name the field and its offset and wrap ErrMalformed.
func Decode(data []byte) (*Blob, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("managedpw: "+format+": %w", append(a, ErrMalformed)...)
	}
	if len(data) < headerLen {
		return nil, bad("%d bytes, the header needs %d", len(data), headerLen)
	}
	le := binary.LittleEndian
	if v := le.Uint16(data[0:]); v != 1 {
		return nil, bad("Version %d at offset 0, want 1", v)
	}
	if n := le.Uint32(data[4:]); uint64(n) != uint64(len(data)) {
		return nil, bad("Length %d at offset 4, but the blob has %d bytes", n, len(data))
	}
	cur, prev := int(le.Uint16(data[8:])), int(le.Uint16(data[10:]))
	query, unchanged := int(le.Uint16(data[12:])), int(le.Uint16(data[14:]))
	next := query
	if prev != 0 {
		next = prev
	}
	switch {
	case cur < headerLen:
		return nil, bad("CurrentPasswordOffset %d at offset 8 points into the header", cur)
	case prev != 0 && prev <= cur:
		return nil, bad("PreviousPasswordOffset %d at offset 10 is not after the current password at %d", prev, cur)
	case query <= max(cur, prev):
		return nil, bad("QueryPasswordIntervalOffset %d at offset 12 is not after the passwords", query)
	case unchanged < query+8:
		return nil, bad("UnchangedPasswordIntervalOffset %d at offset 14 overlaps the query interval at %d", unchanged, query)
	case unchanged+8 > len(data):
		return nil, bad("UnchangedPasswordIntervalOffset %d at offset 14 runs past the %d-byte blob", unchanged, len(data))
	}
	b := &Blob{QueryInterval: le.Uint64(data[query:]), UnchangedInterval: le.Uint64(data[unchanged:])}
	var err error
	if b.Current, err = password(data[cur:next], "current", cur); err != nil {
		return nil, bad("%v", err)
	}
	if prev != 0 {
		if b.Previous, err = password(data[prev:query], "previous", prev); err != nil {
			return nil, bad("%v", err)
		}
	}
	return b, nil
}

// password returns the bytes before the first aligned NUL unit of field.
func password(field []byte, name string, off int) ([]byte, error) {
	for i := 0; i+1 < len(field); i += 2 {
		if field[i] == 0 && field[i+1] == 0 {
			if i == 0 {
				return nil, fmt.Errorf("%s password at offset %d is empty", name, off)
			}
			return append([]byte(nil), field[:i]...), nil
		}
	}
	return nil, fmt.Errorf("%s password at offset %d has no NUL terminator before the next field at %d", name, off, off+len(field))
}
