package kds

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"hash"
	"strings"
	"unicode/utf16"
)

// Hash is the HMAC hash a root key's KDF uses, named in msKds-KDFParam.
type Hash uint8

// The hashes SP800_108_CTR_HMAC supports ([MS-GKDI] 3.1.4.1.1).
const (
	SHA1 Hash = iota + 1
	SHA256
	SHA384
	SHA512
)

var hashNames = map[Hash]string{SHA1: "SHA1", SHA256: "SHA256", SHA384: "SHA384", SHA512: "SHA512"}

// ParseHash reads a hash name (SHA1, SHA256, SHA384, SHA512; case-insensitive, an
// optional dash as in SHA-512 is accepted).
func ParseHash(name string) (Hash, error) {
	n := strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(name), "-", ""))
	for h, s := range hashNames {
		if s == n {
			return h, nil
		}
	}
	return 0, fmt.Errorf("kds: unknown KDF hash %q: want SHA1, SHA256, SHA384 or SHA512", name)
}

func (h Hash) String() string {
	if s, ok := hashNames[h]; ok {
		return s
	}
	return fmt.Sprintf("Hash(%d)", uint8(h))
}

// Valid reports whether h is one of the four supported hashes.
func (h Hash) Valid() bool { _, ok := hashNames[h]; return ok }

func (h Hash) new() hash.Hash {
	switch h {
	case SHA1:
		return sha1.New()
	case SHA256:
		return sha256.New()
	case SHA384:
		return sha512.New384()
	default:
		return sha512.New()
	}
}

// Size is the digest length in bytes.
func (h Hash) Size() int {
	return map[Hash]int{SHA1: 20, SHA256: 32, SHA384: 48, SHA512: 64}[h]
}

func (h Hash) blockSize() int {
	if h == SHA384 || h == SHA512 {
		return 128
	}
	return 64
}

// EncodeKDFParam builds the msKds-KDFParam blob naming h: u32 0, u32 1, u32 cbValue,
// u32 0, then the UTF-16LE name with its NUL (gmsa-algorithm.md §2).
func EncodeKDFParam(h Hash) []byte {
	name := utf16le(h.String())
	b := make([]byte, 0, 16+len(name))
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint32(b, 1)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(name)))
	b = binary.LittleEndian.AppendUint32(b, 0)
	return append(b, name...)
}

// DecodeKDFParam reads an msKds-KDFParam blob. An empty (absent) blob means SHA256,
// the Windows default (gmsa-algorithm.md §13.7).
func DecodeKDFParam(b []byte) (Hash, error) {
	if len(b) == 0 {
		return SHA256, nil
	}
	if len(b) < 16 {
		return 0, fmt.Errorf("kds: msKds-KDFParam: %d bytes, the header needs 16", len(b))
	}
	if v := binary.LittleEndian.Uint32(b[0:]); v != 0 {
		return 0, fmt.Errorf("kds: msKds-KDFParam: version %d at offset 0, want 0", v)
	}
	if n := binary.LittleEndian.Uint32(b[4:]); n != 1 {
		return 0, fmt.Errorf("kds: msKds-KDFParam: %d parameters at offset 4, want 1", n)
	}
	cb := binary.LittleEndian.Uint32(b[8:])
	if id := binary.LittleEndian.Uint32(b[12:]); id != 0 {
		return 0, fmt.Errorf("kds: msKds-KDFParam: parameter id %d at offset 12, want 0 (hash name)", id)
	}
	if uint64(cb) != uint64(len(b)-16) {
		return 0, fmt.Errorf("kds: msKds-KDFParam: value length %d at offset 8, but %d bytes follow the header", cb, len(b)-16)
	}
	name, err := fromUTF16Z(b[16:])
	if err != nil {
		return 0, fmt.Errorf("kds: msKds-KDFParam: hash name at offset 16: %w", err)
	}
	return ParseHash(name)
}

// utf16le encodes s as UTF-16LE with a 2-byte NUL terminator.
func utf16le(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 0, 2*len(u)+2)
	for _, c := range u {
		b = binary.LittleEndian.AppendUint16(b, c)
	}
	return append(b, 0, 0)
}

// fromUTF16Z decodes a UTF-16LE string that ends with exactly one NUL unit.
func fromUTF16Z(b []byte) (string, error) {
	if len(b) < 2 || len(b)%2 != 0 {
		return "", fmt.Errorf("%d bytes is not a NUL-terminated UTF-16 string", len(b))
	}
	if b[len(b)-2] != 0 || b[len(b)-1] != 0 {
		return "", fmt.Errorf("missing the NUL terminator")
	}
	u := make([]uint16, 0, len(b)/2-1)
	for i := 0; i < len(b)-2; i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			return "", fmt.Errorf("NUL inside the string at byte %d", i)
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u)), nil
}

var (
	labelKDSService   = utf16le("KDS service")
	labelGMSAPassword = utf16le("GMSA PASSWORD")
)

// Labels returns the two KDF labels, for tests and documentation.
func Labels() (kdsService, gmsaPassword []byte) {
	return bytes.Clone(labelKDSService), bytes.Clone(labelGMSAPassword)
}
