package kdc

import (
	"errors"
	"io"
	"sync"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/types"

	"gmsa/internal/krbkey"
)

// keyCache keeps the usage keys of long-term keys (krbtgt, services, clients): a busy
// KDC uses the same few many times a second, and deriving them costs as much as the
// encryption itself. Session keys are used once and are not kept. The usage constants
// are n-folded once each.
type keyCache struct {
	mu    sync.Mutex
	m     map[keyCacheKey]*krbkey.UsageKey
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

func (c *keyCache) get(k types.EncryptionKey, usage uint32, keep bool, need int) (*krbkey.UsageKey, error) {
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
	base, err := krbkey.NewBaseKey(k.KeyValue)
	if err != nil {
		return nil, err
	}
	var ke, ki, kc []byte
	if need&needSeal != 0 {
		ke, ki = base.Derive(c.fold(usage, 0xaa)), base.Derive(c.fold(usage, 0x55))
	}
	if need&needChecksum != 0 {
		kc = base.Derive(c.fold(usage, 0x99))
	}
	u, err := krbkey.UsageKeyFromDerived(ke, ki, kc)
	if err != nil {
		return nil, err
	}
	if keep {
		c.mu.Lock()
		if c.m == nil || len(c.m) >= keyCacheSize {
			c.m = map[keyCacheKey]*krbkey.UsageKey{}
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
	var conf [krbkey.ConfounderSize]byte
	if _, err := io.ReadFull(x.Rand, conf[:]); err != nil {
		return types.EncryptedData{}, err
	}
	return types.EncryptedData{EType: key.KeyType, KVNO: int(kvno), Cipher: u.Encrypt(nil, conf[:], plain)}, nil
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
	u, err := x.keys.get(key, usage, longTerm, needSeal)
	if err != nil {
		return nil, err
	}
	msg, err := u.Decrypt(ed.Cipher)
	if err != nil {
		return nil, errIntegrity
	}
	return msg, nil
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
	return u.Checksum(data), nil
}
