// Package tlv encodes and splits BER elements with definite lengths ([X.690] 8.1) in
// the subset LDAP uses: single-octet identifiers and lengths of at most four octets.
// It serves the hot paths that frame, write or walk LDAP messages without building
// trees, in the server and in the load tool.
package tlv

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// Size is the encoded size of an element with n content octets.
func Size(n int) int {
	switch {
	case n < 0x80:
		return 2 + n
	case n < 0x100:
		return 3 + n
	case n < 0x10000:
		return 4 + n
	case n < 0x1000000:
		return 5 + n
	}
	return 6 + n
}

// AppendLength appends n in the shortest definite form ([X.690] 8.1.3).
func AppendLength(b []byte, n int) []byte {
	switch {
	case n < 0x80:
		return append(b, byte(n))
	case n < 0x100:
		return append(b, 0x81, byte(n))
	case n < 0x10000:
		return append(b, 0x82, byte(n>>8), byte(n))
	case n < 0x1000000:
		return append(b, 0x83, byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, 0x84, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// Append appends an element: identifier, length, contents.
func Append(b []byte, tag byte, content []byte) []byte {
	return append(AppendLength(append(b, tag), len(content)), content...)
}

// AppendInt appends v as a minimal two's-complement INTEGER (tag 0x02) or ENUMERATED
// (0x0a) ([X.690] 8.3).
func AppendInt(b []byte, tag byte, v int64) []byte {
	var tmp [9]byte
	n := 0
	for {
		tmp[8-n] = byte(v)
		n++
		v >>= 8
		if (v == 0 && tmp[9-n]&0x80 == 0) || (v == -1 && tmp[9-n]&0x80 != 0) {
			break
		}
	}
	return Append(b, tag, tmp[9-n:])
}

// Header reads the identifier and length at the start of buf: the contents are
// buf[pos:pos+length], checked to lie within buf.
func Header(buf []byte) (tag byte, pos, length int, err error) {
	if len(buf) < 2 {
		return 0, 0, 0, errors.New("ber: truncated element")
	}
	tag = buf[0]
	if tag&0x1f == 0x1f {
		return 0, 0, 0, errors.New("ber: multi-byte tags are not used by LDAP")
	}
	pos, length = 2, int(buf[1])
	if buf[1]&0x80 != 0 {
		n := int(buf[1] & 0x7f)
		if n == 0 || n > 4 || len(buf) < 2+n {
			return 0, 0, 0, errors.New("ber: bad length")
		}
		length = 0
		for _, x := range buf[2 : 2+n] {
			length = length<<8 | int(x)
		}
		pos += n
	}
	if length < 0 || length > len(buf)-pos {
		return 0, 0, 0, errors.New("ber: length runs past the data")
	}
	return tag, pos, length, nil
}

// Split returns the element at the start of b as its identifier and contents, and what
// follows it.
func Split(b []byte) (tag byte, content, rest []byte, err error) {
	tag, pos, n, err := Header(b)
	if err != nil {
		return 0, nil, nil, err
	}
	return tag, b[pos : pos+n], b[pos+n:], nil
}

// ErrTooLarge is a message longer than the reader allows.
var ErrTooLarge = errors.New("message exceeds the maximum size")

// ReadMessage reads one LDAPMessage from r: a SEQUENCE with a definite length of at most
// max octets, checked before the contents are read. The whole element is returned in
// buf when it has room, else in a new slice. admit, when set, is asked before the
// contents are read (and memory for them is taken) whether a message of that many
// octets may be read now.
func ReadMessage(r *bufio.Reader, buf []byte, max int, admit func(length int) error) ([]byte, error) {
	tag, err := r.ReadByte()
	if err != nil {
		return nil, err
	}
	if tag != 0x30 {
		return nil, fmt.Errorf("LDAPMessage starts with tag 0x%02x, want a SEQUENCE (0x30)", tag)
	}
	first, err := r.ReadByte()
	if err != nil {
		return nil, err
	}
	hdr := [6]byte{tag, first}
	hl, length := 2, int(first)
	if first&0x80 != 0 {
		n := int(first & 0x7f)
		if n == 0 || n > 4 {
			return nil, fmt.Errorf("length of %d octets (indefinite or too long) is not allowed", n)
		}
		length = 0
		for range n {
			b, err := r.ReadByte()
			if err != nil {
				return nil, err
			}
			hdr[hl] = b
			hl++
			length = length<<8 | int(b)
		}
	}
	if length > max {
		return nil, fmt.Errorf("%w (%d > %d bytes)", ErrTooLarge, length, max)
	}
	if admit != nil {
		if err := admit(hl + length); err != nil {
			return nil, err
		}
	}
	if cap(buf) < hl+length {
		buf = make([]byte, hl+length)
	}
	buf = buf[:hl+length]
	copy(buf, hdr[:hl])
	if _, err := io.ReadFull(r, buf[hl:]); err != nil {
		return nil, err
	}
	return buf, nil
}
