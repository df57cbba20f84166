package krbkey

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash"
	"slices"
	"sync"
)

// UsageKey is an aes*-cts-hmac-sha1-96 key prepared for one key usage ([RFC 3961] 5.3):
// Ke (encryption, usage‖0xAA) as a ready block cipher, Ki (integrity, usage‖0x55) and
// Kc (checksum, usage‖0x99). A Kerberos peer that uses one key for one purpose many
// times (a KDC's long-term keys, a GSS context's wrap tokens) derives them once.
// Safe for concurrent use.
type UsageKey struct {
	ke        cipher.Block
	integrity macPool // HMAC-SHA1 under Ki
	checksum  macPool // HMAC-SHA1 under Kc
}

// macPool hands out HMAC-SHA1 states keyed once: Reset returns one to its keyed start
// without hashing the key blocks again.
type macPool struct {
	key  []byte
	pool sync.Pool
}

// sum appends HMAC-SHA1(key, parts…) to dst.
func (p *macPool) sum(dst []byte, parts ...[]byte) []byte {
	m, _ := p.pool.Get().(hash.Hash)
	if m == nil {
		m = hmac.New(sha1.New, p.key)
	} else {
		m.Reset()
	}
	for _, b := range parts {
		m.Write(b)
	}
	dst = m.Sum(dst)
	p.pool.Put(m)
	return dst
}

// ChecksumSize is the length of an HMAC-SHA1-96 checksum ([RFC 3962] 6).
const ChecksumSize = 12

// ConfounderSize is the length of the random confounder an encryption begins with.
const ConfounderSize = aes.BlockSize

// ErrIntegrity is ciphertext or a checksum that does not verify under the key.
var ErrIntegrity = errors.New("krbkey: integrity check failed")

// NewUsageKey derives the usage keys of an AES base key (16 or 32 bytes) for usage.
func NewUsageKey(key []byte, usage uint32) (*UsageKey, error) {
	if len(key) != 16 && len(key) != 32 {
		return nil, fmt.Errorf("krbkey: a %d-byte key is not an AES key", len(key))
	}
	base, err := NewBaseKey(key)
	if err != nil {
		return nil, err
	}
	c := func(kind byte) []byte {
		return NFold([]byte{byte(usage >> 24), byte(usage >> 16), byte(usage >> 8), byte(usage), kind}, aes.BlockSize)
	}
	return UsageKeyFromDerived(base.Derive(c(0xaa)), base.Derive(c(0x55)), base.Derive(c(0x99)))
}

// UsageKeyFromDerived prepares usage keys already derived (by a caller that caches
// the n-folded constants); ke may be nil when only checksums are needed.
func UsageKeyFromDerived(ke, ki, kc []byte) (*UsageKey, error) {
	u := &UsageKey{integrity: macPool{key: ki}, checksum: macPool{key: kc}}
	if ke != nil {
		b, err := aes.NewCipher(ke)
		if err != nil {
			return nil, fmt.Errorf("krbkey: %w", err)
		}
		u.ke = b
	}
	return u, nil
}

// Encrypt is the RFC 3961 encryption of plain: AES-CTS (CBC with the last two blocks
// swapped, IV zero, [RFC 3962] 5) of confounder ‖ plain, followed by HMAC-SHA1-96
// under Ki of the same. The result is appended to dst.
func (u *UsageKey) Encrypt(dst, confounder, plain []byte) []byte {
	n := ConfounderSize + len(plain)
	dst = slices.Grow(dst, n+sha1.Size)
	start := len(dst)
	msg := dst[start : start+n]
	clear(msg[:ConfounderSize])
	copy(msg, confounder)
	copy(msg[ConfounderSize:], plain)
	dst = u.integrity.sum(dst[:start+n], msg) // the MAC of the plaintext, after it
	u.ctsEncrypt(msg)
	return dst[:start+n+ChecksumSize]
}

// Decrypt reverses Encrypt, checking the HMAC, and returns the plaintext without its
// confounder.
func (u *UsageKey) Decrypt(ciphertext []byte) ([]byte, error) {
	if len(ciphertext) < ConfounderSize+ChecksumSize {
		return nil, ErrIntegrity
	}
	ct, mac := ciphertext[:len(ciphertext)-ChecksumSize], ciphertext[len(ciphertext)-ChecksumSize:]
	msg := make([]byte, len(ct), len(ct)+sha1.Size)
	copy(msg, ct)
	u.ctsDecrypt(msg)
	if subtle.ConstantTimeCompare(u.integrity.sum(msg[len(msg):], msg)[:ChecksumSize], mac) != 1 {
		return nil, ErrIntegrity
	}
	return msg[ConfounderSize:], nil
}

// Checksum is the keyed checksum HMAC-SHA1-96 under Kc of the concatenated parts
// ([RFC 3962] 6).
func (u *UsageKey) Checksum(parts ...[]byte) []byte {
	return u.checksum.sum(make([]byte, 0, sha1.Size), parts...)[:ChecksumSize]
}

// ctsEncrypt encrypts b (at least one block) in place with AES-CBC-CS3, IV zero.
func (u *UsageKey) ctsEncrypt(b []byte) {
	const bs = aes.BlockSize
	n := len(b)
	if n == bs {
		u.ke.Encrypt(b, b)
		return
	}
	m := (n + bs - 1) / bs // blocks, the last possibly partial
	var prev [bs]byte
	for i := 0; i < m-2; i++ { // plain CBC up to the last two blocks
		blk := b[i*bs : (i+1)*bs]
		subtle.XORBytes(blk, blk, prev[:])
		u.ke.Encrypt(blk, blk)
		copy(prev[:], blk)
	}
	var pen, last [bs]byte
	copy(pen[:], b[(m-2)*bs:(m-1)*bs])
	copy(last[:], b[(m-1)*bs:]) // zero-padded
	subtle.XORBytes(pen[:], pen[:], prev[:])
	u.ke.Encrypt(pen[:], pen[:])
	subtle.XORBytes(last[:], last[:], pen[:])
	u.ke.Encrypt(last[:], last[:])
	tail := n - (m-1)*bs
	copy(b[(m-2)*bs:], last[:])
	copy(b[(m-1)*bs:], pen[:tail])
}

// ctsDecrypt decrypts b (at least one block) in place.
func (u *UsageKey) ctsDecrypt(b []byte) {
	const bs = aes.BlockSize
	n := len(b)
	if n == bs {
		u.ke.Decrypt(b, b)
		return
	}
	m := (n + bs - 1) / bs
	var prev, cur [bs]byte
	for i := 0; i < m-2; i++ {
		blk := b[i*bs : (i+1)*bs]
		copy(cur[:], blk)
		u.ke.Decrypt(blk, blk)
		subtle.XORBytes(blk, blk, prev[:])
		prev = cur
	}
	tail := n - (m-1)*bs
	var x, d, pen [bs]byte
	copy(x[:], b[(m-2)*bs:(m-1)*bs]) // the last CBC block, sent first
	u.ke.Decrypt(d[:], x[:])         // = penultimate CBC block XOR (last plain ‖ zeros)
	copy(pen[:], b[(m-1)*bs:])       // the penultimate CBC block's first tail bytes …
	copy(pen[tail:], d[tail:])       // … and the rest recovered from d
	var lastPlain [bs]byte
	subtle.XORBytes(lastPlain[:tail], d[:tail], pen[:tail])
	u.ke.Decrypt(pen[:], pen[:])
	subtle.XORBytes(pen[:], pen[:], prev[:])
	copy(b[(m-2)*bs:], pen[:])
	copy(b[(m-1)*bs:], lastPlain[:tail])
}
