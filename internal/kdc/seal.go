package kdc

import (
	"crypto/hmac"
	"crypto/sha1"
	"errors"
	"io"
	"sync"

	"github.com/jcmturner/aescts/v2"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/types"

	"gmsa/internal/krbkey"
)

// usageKeys are the keys RFC 3961 5.3 derives from a base key for one usage:
// Ke (encryption, usage|0xAA), Ki (integrity, usage|0x55), Kc (checksum, usage|0x99).
type usageKeys struct{ ke, ki, kc []byte }

// keyCache keeps the usage keys of long-term keys (krbtgt, services, clients): a busy
// KDC uses the same few many times a second, and deriving them costs as much as the
// encryption itself. Session keys are used once and are not kept. The usage constants
// are n-folded once each.
type keyCache struct {
	mu    sync.Mutex
	m     map[keyCacheKey]*usageKeys
	folds map[uint32][]byte // n-fold(usage ‖ kind) by usage<<8 | kind
}

type keyCacheKey struct {
	etype int32
	key   string
	usage uint32
}

const keyCacheSize = 1 << 14

// Which usage keys a caller needs.
const (
	needSeal     = 1 // Ke and Ki
	needChecksum = 2 // Kc
)

// fold returns n-fold(usage ‖ kind) to one AES block, computed once per constant.
func (c *keyCache) fold(usage uint32, kind byte) []byte {
	id := usage<<8 | uint32(kind)
	c.mu.Lock()
	f, ok := c.folds[id]
	c.mu.Unlock()
	if ok {
		return f
	}
	f = krbkey.NFold([]byte{byte(usage >> 24), byte(usage >> 16), byte(usage >> 8), byte(usage), kind}, 16)
	c.mu.Lock()
	if c.folds == nil {
		c.folds = map[uint32][]byte{}
	}
	c.folds[id] = f
	c.mu.Unlock()
	return f
}

func (c *keyCache) get(k types.EncryptionKey, usage uint32, keep bool, need int) (*usageKeys, error) {
	id := keyCacheKey{k.KeyType, string(k.KeyValue), usage}
	if keep {
		c.mu.Lock()
		u, ok := c.m[id]
		c.mu.Unlock()
		if ok {
			return u, nil
		}
		need = needSeal | needChecksum // a kept entry serves every later use
	}
	if len(k.KeyValue) != 16 && len(k.KeyValue) != 32 {
		return nil, errors.New("kdc: not an AES key")
	}
	u := &usageKeys{}
	if need&needSeal != 0 {
		u.ke, u.ki = krbkey.DeriveFolded(k.KeyValue, c.fold(usage, 0xaa)), krbkey.DeriveFolded(k.KeyValue, c.fold(usage, 0x55))
	}
	if need&needChecksum != 0 {
		u.kc = krbkey.DeriveFolded(k.KeyValue, c.fold(usage, 0x99))
	}
	if keep {
		c.mu.Lock()
		if c.m == nil || len(c.m) >= keyCacheSize {
			c.m = map[keyCacheKey]*usageKeys{}
		}
		c.m[id] = u
		c.mu.Unlock()
	}
	return u, nil
}

func isAES(etype int32) bool {
	return etype == krbkey.EtypeAES256CTSHMACSHA || etype == krbkey.EtypeAES128CTSHMACSHA
}

// seal encrypts plain under key for usage ([RFC 3962] 6: a random confounder,
// AES-CTS under Ke, HMAC-SHA1-96 under Ki), keeping the usage keys of long-term keys;
// other key types go through gokrb5.
func (x *Exchange) seal(key types.EncryptionKey, usage uint32, plain []byte, kvno uint32, longTerm bool) (types.EncryptedData, error) {
	if !isAES(key.KeyType) {
		return crypto.GetEncryptedData(plain, key, usage, int(kvno))
	}
	u, err := x.keys.get(key, usage, longTerm, needSeal)
	if err != nil {
		return types.EncryptedData{}, err
	}
	msg := make([]byte, 16, 16+len(plain))
	if _, err := io.ReadFull(x.Rand, msg); err != nil {
		return types.EncryptedData{}, err
	}
	msg = append(msg, plain...)
	_, ct, err := aescts.Encrypt(u.ke, make([]byte, 16), msg)
	if err != nil {
		return types.EncryptedData{}, err
	}
	m := hmac.New(sha1.New, u.ki)
	m.Write(msg)
	return types.EncryptedData{EType: key.KeyType, KVNO: int(kvno), Cipher: append(ct, m.Sum(nil)[:12]...)}, nil
}

var errIntegrity = errors.New("integrity check failed")

// open decrypts ed under a long-term key for usage, checking its HMAC first.
func (x *Exchange) open(key types.EncryptionKey, usage uint32, ed types.EncryptedData) ([]byte, error) {
	return x.openKey(key, usage, ed, true)
}

// openKey is open; with longTerm false the usage keys are not kept (a session key).
func (x *Exchange) openKey(key types.EncryptionKey, usage uint32, ed types.EncryptedData, longTerm bool) ([]byte, error) {
	if !isAES(key.KeyType) {
		return crypto.DecryptEncPart(ed, key, usage)
	}
	if len(ed.Cipher) < 16+12 {
		return nil, errIntegrity
	}
	u, err := x.keys.get(key, usage, longTerm, needSeal)
	if err != nil {
		return nil, err
	}
	ct, mac := ed.Cipher[:len(ed.Cipher)-12], ed.Cipher[len(ed.Cipher)-12:]
	msg, err := aescts.Decrypt(u.ke, make([]byte, 16), ct)
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha1.New, u.ki)
	m.Write(msg)
	if !hmac.Equal(m.Sum(nil)[:12], mac) {
		return nil, errIntegrity
	}
	return msg[16:], nil
}

// checksum is the keyed checksum of an AES key for usage ([RFC 3962]: HMAC-SHA1-96
// under Kc), keeping the usage keys of long-term keys.
func (x *Exchange) checksum(key types.EncryptionKey, usage uint32, data []byte) ([]byte, error) {
	return x.checksumKey(key, usage, data, true)
}

func (x *Exchange) checksumKey(key types.EncryptionKey, usage uint32, data []byte, longTerm bool) ([]byte, error) {
	u, err := x.keys.get(key, usage, longTerm, needChecksum)
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha1.New, u.kc)
	m.Write(data)
	return m.Sum(nil)[:12], nil
}
