package kds

import (
	"fmt"
	"sync"
)

// postProcess replaces every UTF-16 unit 0x0000 with 0x0001 (MS-ADTS
// PostProcessPasswordBuffer, gmsa-algorithm.md §7).
func postProcess(pw *Password) {
	for i := 0; i < len(pw); i += 2 {
		if pw[i] == 0 && pw[i+1] == 0 {
			pw[i] = 1
		}
	}
}

func checkSID(sid []byte) error {
	if len(sid) < 8 || sid[0] != 1 || len(sid) != 8+4*int(sid[1]) {
		return fmt.Errorf("kds: account SID: %d bytes is not a binary SID", len(sid))
	}
	return nil
}

// DerivePassword computes the gMSA password of the account with binary SID sid for key
// period g of rk, without any cache:
// PostProcess(KDF(H, L2(g), "GMSA PASSWORD", SID, 256)) (gmsa-algorithm.md §7).
func DerivePassword(rk *RootKey, g GKID, sid []byte) (Password, error) {
	var pw Password
	if !g.IsL2() {
		return pw, fmt.Errorf("kds: GKID %v is not a key period: a password needs L1 and L2", g)
	}
	if err := checkSID(sid); err != nil {
		return pw, err
	}
	l2, err := DeriveSeedKey(rk, g, gmsaSD)
	if err != nil {
		return pw, err
	}
	s := getScratch(rk.Hash)
	defer putScratch(rk.Hash, s)
	s.prepare(rk.Hash, l2[:], &s.p)
	s.kdf(&s.p, labelGMSAPassword, sid, pw[:])
	postProcess(&pw)
	return pw, nil
}

// Cache derives gMSA passwords, remembering the seed-key chains it walked. Every gMSA
// of one key period shares the L2 key, so a further account costs one final KDF; a
// neighbouring period continues a cached chain instead of starting from the root key.
// It is safe for concurrent use.
type Cache struct {
	mu        sync.Mutex
	l1        map[chainRef]*chain // (root key, L0) → L1 keys
	l2        map[chainRef]*chain // (root key, L0, L1) → L2 keys
	maxChains int
}

// chainRef names one seed-key chain. The root key's data and hash are part of the
// name, so a reused GUID with other data can never return a stale key.
type chainRef struct {
	id     [16]byte
	data   [RootKeyDataLen]byte
	hash   Hash
	l0, l1 int32
}

// chain holds the keys of one chain from index 31 down to low, and for L2 chains the
// prepared password PRF of each key that has served a password.
type chain struct {
	low  int32
	keys [32]SeedKey
	prfs [32]*prf
}

// NewCache returns a cache holding at most maxChains L2 chains (each about 2 KiB, plus
// about 0.5 KiB per key period that has derived a password) and as many L1 chains.
func NewCache(maxChains int) *Cache {
	return &Cache{l1: map[chainRef]*chain{}, l2: map[chainRef]*chain{}, maxChains: max(maxChains, 1)}
}

// Password is DerivePassword through the cache.
func (c *Cache) Password(rk *RootKey, g GKID, sid []byte) (Password, error) {
	var pw Password
	if !g.IsL2() {
		return pw, fmt.Errorf("kds: GKID %v is not a key period: a password needs L1 and L2", g)
	}
	if err := checkSID(sid); err != nil {
		return pw, err
	}
	if err := checkDerivable(rk, g); err != nil {
		return pw, err
	}
	s := getScratch(rk.Hash)
	defer putScratch(rk.Hash, s)
	c.mu.Lock()
	p := c.passwordPRF(s, rk, g)
	c.mu.Unlock()
	s.kdf(p, labelGMSAPassword, sid, pw[:])
	postProcess(&pw)
	return pw, nil
}

// SeedKey is DeriveSeedKey with the gMSA security descriptor, through the cache.
func (c *Cache) SeedKey(rk *RootKey, g GKID) (SeedKey, error) {
	if err := checkDerivable(rk, g); err != nil {
		return SeedKey{}, err
	}
	s := getScratch(rk.Hash)
	defer putScratch(rk.Hash, s)
	c.mu.Lock()
	defer c.mu.Unlock()
	if g.L2 < 0 {
		return c.l1Chain(s, rk, g).keys[g.L1], nil
	}
	return c.l2Chain(s, rk, g).keys[g.L2], nil
}

// passwordPRF returns the prepared HMAC of L2 key g. Called with c.mu held; the
// returned prf is immutable.
func (c *Cache) passwordPRF(s *scratch, rk *RootKey, g GKID) *prf {
	ch := c.l2Chain(s, rk, g)
	if ch.prfs[g.L2] == nil {
		p := new(prf)
		s.prepare(rk.Hash, ch.keys[g.L2][:], p)
		ch.prfs[g.L2] = p
	}
	return ch.prfs[g.L2]
}

func ref(rk *RootKey, l0, l1 int32) chainRef {
	r := chainRef{id: rk.ID, hash: rk.Hash, l0: l0, l1: l1}
	copy(r.data[:], rk.Data)
	return r
}

// l1Chain returns the L1 chain of (rk, g.L0) extended down to g.L1.
func (c *Cache) l1Chain(s *scratch, rk *RootKey, g GKID) *chain {
	r := ref(rk, g.L0, -1)
	ch := c.l1[r]
	if ch == nil {
		ch = &chain{low: 32}
		s.seedChain(rk, GKID{g.L0, g.L1, -1}, gmsaSD, func(n int32, k *SeedKey) { ch.keys[n], ch.low = *k, n }, nil)
		c.insert(c.l1, r, ch)
		return ch
	}
	for n := ch.low - 1; n >= g.L1; n-- { // [MS-GKDI] 3.1.4.1.2: K1[n] = KDF(K1[n+1], G‖L0‖n‖−1)
		s.step(rk.Hash, ch.keys[n+1][:], s.context(rk.ID[:], g.L0, n, -1), nil, &ch.keys[n])
		ch.low = n
	}
	return ch
}

// l2Chain returns the L2 chain of (rk, g.L0, g.L1) extended down to g.L2.
func (c *Cache) l2Chain(s *scratch, rk *RootKey, g GKID) *chain {
	r := ref(rk, g.L0, g.L1)
	ch := c.l2[r]
	if ch == nil {
		l1 := c.l1Chain(s, rk, g).keys[g.L1]
		ch = &chain{low: 31}
		s.step(rk.Hash, l1[:], s.context(rk.ID[:], g.L0, g.L1, 31), nil, &ch.keys[31])
		c.insert(c.l2, r, ch)
	}
	for n := ch.low - 1; n >= g.L2; n-- { // K2[n] = KDF(K2[n+1], G‖L0‖L1‖n)
		s.step(rk.Hash, ch.keys[n+1][:], s.context(rk.ID[:], g.L0, g.L1, n), nil, &ch.keys[n])
		ch.low = n
	}
	return ch
}

// insert adds a chain, first dropping an arbitrary one when the map is full.
func (c *Cache) insert(m map[chainRef]*chain, r chainRef, ch *chain) {
	if len(m) >= c.maxChains {
		for k := range m {
			delete(m, k)
			break
		}
	}
	m[r] = ch
}
