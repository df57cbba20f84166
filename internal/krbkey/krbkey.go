// Package krbkey turns passwords into Kerberos and NT keys with Active Directory's salt
// rules, and reads and writes MIT keytab files. It is pure: files are bytes in and out.
package krbkey

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"log/slog"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	//lint:ignore SA1019 the NT hash is MD4 by definition ([MS-NLMP] 3.3.1)
	"golang.org/x/crypto/md4"
)

// Encryption types ([RFC 3961] 8, [RFC 4757], [RFC 3962]).
const (
	EtypeRC4HMAC          = 23
	EtypeAES128CTSHMACSHA = 17
	EtypeAES256CTSHMACSHA = 18
)

// EtypeName returns the MIT name of an encryption type.
func EtypeName(e int32) string {
	switch e {
	case EtypeAES256CTSHMACSHA:
		return "aes256-cts-hmac-sha1-96"
	case EtypeAES128CTSHMACSHA:
		return "aes128-cts-hmac-sha1-96"
	case EtypeRC4HMAC:
		return "arcfour-hmac"
	}
	return fmt.Sprintf("etype-%d", e)
}

// ParseEtype reads aes256, aes128, rc4 or their full MIT names.
func ParseEtype(s string) (int32, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "aes256", "aes256-cts-hmac-sha1-96", "aes256-cts", "18":
		return EtypeAES256CTSHMACSHA, nil
	case "aes128", "aes128-cts-hmac-sha1-96", "aes128-cts", "17":
		return EtypeAES128CTSHMACSHA, nil
	case "rc4", "rc4-hmac", "arcfour-hmac", "arcfour-hmac-md5", "23":
		return EtypeRC4HMAC, nil
	}
	return 0, fmt.Errorf("krbkey: unknown encryption type %q: want aes256, aes128 or rc4", s)
}

// Key is a Kerberos key. It never prints its value.
type Key struct {
	Etype int32
	Value []byte
}

func (k Key) String() string { return fmt.Sprintf("krbkey.Key{%s, [REDACTED]}", EtypeName(k.Etype)) }

// LogValue implements slog.LogValuer without the key bytes.
func (k Key) LogValue() slog.Value { return slog.StringValue(k.String()) }

// NTHash is MD4 over the raw UTF-16LE password ([MS-NLMP] 3.3.1; gmsa-algorithm.md §10),
// which is also the RC4-HMAC key ([RFC 4757] 2).
func NTHash(utf16le []byte) [16]byte {
	h := md4.New()
	h.Write(utf16le)
	var out [16]byte
	h.Sum(out[:0])
	return out
}

// UTF16ToUTF8 converts a UTF-16LE password to the UTF-8 string Kerberos string-to-key
// takes: unpaired surrogates become U+FFFD and consume only their own unit, as Windows
// and Samba's UTF16_MUNGED do (gmsa-algorithm.md §10).
func UTF16ToUTF8(b []byte) []byte {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	out := make([]byte, 0, len(b)*3/2)
	for i := 0; i < len(u); i++ {
		r := rune(u[i])
		switch {
		case utf16.IsSurrogate(r) && r < 0xdc00 && i+1 < len(u) && u[i+1] >= 0xdc00 && u[i+1] < 0xe000:
			r = utf16.DecodeRune(r, rune(u[i+1]))
			i++
		case utf16.IsSurrogate(r):
			r = utf8.RuneError
		}
		out = utf8.AppendRune(out, r)
	}
	return out
}

// ComputerSalt is the AES salt of a computer account or gMSA: REALM ‖ "host" ‖
// lower(name without $) ‖ "." ‖ lower(dns domain) (gmsa-algorithm.md §10).
func ComputerSalt(realm, sAMAccountName, dnsDomain string) string {
	name := strings.ToLower(strings.TrimSuffix(sAMAccountName, "$"))
	return strings.ToUpper(realm) + "host" + name + "." + strings.ToLower(dnsDomain)
}

// UserSalt is the AES salt of a user account: REALM ‖ sAMAccountName, case kept
// ([RFC 4120] 4, as AD applies it).
func UserSalt(realm, sAMAccountName string) string {
	return strings.ToUpper(realm) + sAMAccountName
}

// AESKey derives an aes128/aes256-cts-hmac-sha1-96 key ([RFC 3962] 4): PBKDF2-HMAC-SHA1
// with the given iterations (4096 by default in Kerberos), then DK(tkey, "kerberos").
func AESKey(etype int32, password []byte, salt string, iterations int) (Key, error) {
	size := map[int32]int{EtypeAES128CTSHMACSHA: 16, EtypeAES256CTSHMACSHA: 32}[etype]
	if size == 0 {
		return Key{}, fmt.Errorf("krbkey: %s is not an AES encryption type", EtypeName(etype))
	}
	tkey, err := pbkdf2.Key(sha1.New, string(password), []byte(salt), iterations, size)
	if err != nil {
		return Key{}, fmt.Errorf("krbkey: PBKDF2: %w", err)
	}
	return Key{Etype: etype, Value: derive(tkey, []byte("kerberos"))}, nil
}

// derive is DK(key, constant) of [RFC 3961] 5.1 for AES: encrypt n-fold(constant) and
// chain encryptions until enough bytes are produced.
func derive(key, constant []byte) []byte { return DeriveFolded(key, NFold(constant, aes.BlockSize)) }

// DeriveFolded is DK for an AES key and a constant already n-folded to one block, so
// that callers deriving usage keys ([RFC 3961] 5.3) fold each usage constant once.
func DeriveFolded(key, folded []byte) []byte {
	b, err := NewBaseKey(key)
	if err != nil {
		return nil
	}
	return b.Derive(folded)
}

// BaseKey is an AES base key with its cipher expanded once, for the several DK
// derivations of its usage keys ([RFC 3961] 5.1).
type BaseKey struct {
	c   cipher.Block
	len int
}

// NewBaseKey prepares an AES key (16 or 32 bytes).
func NewBaseKey(key []byte) (*BaseKey, error) {
	c, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("krbkey: %w", err)
	}
	return &BaseKey{c, len(key)}, nil
}

// Derive is DK(base, constant) for a constant n-folded to one block: the folded block
// encrypted repeatedly until the key length is filled.
func (b *BaseKey) Derive(folded []byte) []byte {
	block := append(make([]byte, 0, aes.BlockSize), folded...)
	out := make([]byte, 0, b.len+aes.BlockSize)
	for len(out) < b.len {
		b.c.Encrypt(block, block)
		out = append(out, block...)
	}
	return out[:b.len]
}

// NFold is the n-fold operation of [RFC 3961] 5.1, to n bytes.
func NFold(in []byte, n int) []byte {
	inBits, outBits := len(in)*8, n*8
	lcm := inBits * outBits / gcd(inBits, outBits)
	// Concatenate copies of in, each rotated right by 13 bits more than the last, and
	// add the n-byte chunks with end-around carry.
	buf := make([]byte, lcm/8)
	for i := 0; i < lcm/inBits; i++ {
		rot := 13 * i
		for b := 0; b < inBits; b++ {
			src := ((b-rot)%inBits + inBits) % inBits
			if in[src/8]&(0x80>>(src%8)) != 0 {
				pos := i*inBits + b
				buf[pos/8] |= 0x80 >> (pos % 8)
			}
		}
	}
	out := make([]byte, n)
	for off := 0; off < len(buf); off += n {
		carry := 0
		for i := n - 1; i >= 0; i-- {
			s := int(out[i]) + int(buf[off+i]) + carry
			out[i], carry = byte(s), s>>8
		}
		for i := n - 1; carry != 0 && i >= 0; i-- {
			s := int(out[i]) + carry
			out[i], carry = byte(s), s>>8
		}
	}
	return out
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// AccountKeys derives the keys of a gMSA or computer account from its UTF-16LE password
// for each requested encryption type.
func AccountKeys(utf16le []byte, salt string, etypes []int32) ([]Key, error) {
	keys := make([]Key, 0, len(etypes))
	utf8pw := UTF16ToUTF8(utf16le)
	for _, e := range etypes {
		if e == EtypeRC4HMAC {
			h := NTHash(utf16le)
			keys = append(keys, Key{Etype: e, Value: h[:]})
			continue
		}
		k, err := AESKey(e, utf8pw, salt, 4096)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}
