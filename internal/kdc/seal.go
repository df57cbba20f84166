package kdc

import (
	"crypto/hmac"
	"crypto/sha1"
	"errors"
	"io"
	"sync"

	"github.com/jcmturner/aescts/v2"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/crypto/common"
	"github.com/jcmturner/gokrb5/v8/types"

	"gmsa/internal/krbkey"
)

// usageKeys are the keys RFC 3961 5.3 derives from a base key for one usage:
// Ke (encryption, usage|0xAA), Ki (integrity, usage|0x55), Kc (checksum, usage|0x99).
type usageKeys struct{ ke, ki, kc []byte }

// keyCache keeps the usage keys of long-term keys (krbtgt, services, clients): a busy
// KDC uses the same few many times a second, and deriving them costs as much as the
// encryption itself. Session keys are used once and are not kept.
type keyCache struct {
	mu sync.Mutex
	m  map[keyCacheKey]*usageKeys
}

type keyCacheKey struct {
	etype int32
	key   string
	usage uint32
}

const keyCacheSize = 1 << 14

func (c *keyCache) get(k types.EncryptionKey, usage uint32, keep bool) (*usageKeys, error) {
	id := keyCacheKey{k.KeyType, string(k.KeyValue), usage}
	if keep {
		c.mu.Lock()
		u, ok := c.m[id]
		c.mu.Unlock()
		if ok {
			return u, nil
		}
	}
	et, err := crypto.GetEtype(k.KeyType)
	if err != nil {
		return nil, err
	}
	u := &usageKeys{}
	if u.ke, err = et.DeriveKey(k.KeyValue, common.GetUsageKe(usage)); err != nil {
		return nil, err
	}
	if u.ki, err = et.DeriveKey(k.KeyValue, common.GetUsageKi(usage)); err != nil {
		return nil, err
	}
	if u.kc, err = et.DeriveKey(k.KeyValue, common.GetUsageKc(usage)); err != nil {
		return nil, err
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
	u, err := x.keys.get(key, usage, longTerm)
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
	if !isAES(key.KeyType) {
		return crypto.DecryptEncPart(ed, key, usage)
	}
	if len(ed.Cipher) < 16+12 {
		return nil, errIntegrity
	}
	u, err := x.keys.get(key, usage, true)
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
	u, err := x.keys.get(key, usage, true)
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha1.New, u.kc)
	m.Write(data)
	return m.Sum(nil)[:12], nil
}
