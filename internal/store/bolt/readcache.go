package bolt

import (
	"hash/maphash"
	"math/bits"
	"sync"
	"sync/atomic"
)

// readCache keeps values Get read, so that a read-mostly load (password reads, binds,
// indexed searches) does not open a bbolt transaction for the keys it reads again and
// again.
//
// Consistency: the process holds the file's lock, so every write goes through Apply,
// which counts writes begun and finished around the commit. An entry is served only
// while no write has begun since it was read and none is in progress; it is stored only
// when no write began between the counters' check and the end of the read. Every hit is
// therefore the committed value at the moment the counters were checked.
//
// Size and cost: entries are copied into a ring of fixed chunks (of cacheChunk bytes,
// as many as the size set at Open: 64 by default), the oldest overwritten first, and found through a map from the
// key's hash to the entry's place. Neither holds a pointer per entry, so a full cache
// of a million small records costs the collector nothing to mark.
//
// Admission: until the ring is first full, every read is stored; then a key is
// stored on its second miss within the last window() to 2×window() misses (about as
// many entries as the ring holds), remembered in two
// Bloom filters of missed keys, the older dropped when the newer is full. A load that
// reads keys at random from a large directory, each once, passes through without
// pushing out the keys read over and over (the domain, the containers, the accounts
// that bind, the gMSAs whose passwords are read); a directory the cache can hold is
// all admitted on its second read.
type readCache struct {
	started, finished atomic.Uint64

	mu      sync.RWMutex
	seed    maphash.Seed
	index   map[uint64]cacheRef
	missed  [2]bloom // keys missed once: since the newer filter was started, and before
	nchunks int      // the ring's chunks: set before the first use (0: defaultCacheChunks)
	chunks  [][]byte // allocated as the ring first reaches them
	next    uint64   // the ring position the next entry is written at
	swept   int      // len(index) after the last sweep of dead references
}

const (
	cacheChunk         = 1 << 20
	defaultCacheChunks = 64                              // 64 MiB in all
	DefaultReadCache   = defaultCacheChunks * cacheChunk // the read cache's size when Options leave it out
	maxCacheEntry      = cacheChunk / 4                  // larger records are read from the file each time
	sweepSlack         = 1 << 16                         // references the index may gain past twice the last sweep's
	absentLen          = ^uint32(0)                      // vlen of a recorded absence
)

// capacity is the ring's size in bytes.
func (c *readCache) capacity() uint64 {
	if c.nchunks == 0 {
		return defaultCacheChunks * cacheChunk
	}
	return uint64(c.nchunks) * cacheChunk
}

// window is the count of misses a Bloom filter records: about the entries the ring
// holds (2^20 for 64 MiB), a power of two.
func (c *readCache) window() int { return 1 << (bits.Len64(c.capacity()/64) - 1) }

// cacheRef is where an entry is: its key at position pos of the ring (positions only
// grow; pos mod capacity() is the byte), klen key bytes followed by vlen value bytes,
// valid for write generation gen.
type cacheRef struct {
	pos        uint64
	gen        uint64
	klen, vlen uint32
}

// quiet returns the write count when no write is in progress.
func (c *readCache) quiet() (uint64, bool) {
	f := c.finished.Load()
	return f, c.started.Load() == f
}

// live reports whether the bytes of r are still in the ring, not yet overwritten: the
// ring holds the positions from next-capacity() up to next.
func (c *readCache) live(r cacheRef) bool { return r.pos+c.capacity() >= c.next }

// bytes returns n bytes of the ring at position pos (never across a chunk's end).
func (c *readCache) bytes(pos uint64, n uint32) []byte {
	chunk := c.chunks[pos%c.capacity()/cacheChunk]
	off := pos % cacheChunk
	return chunk[off : off+uint64(n)]
}

// get returns a copy of the value cached for key (nil: recorded absent) and whether
// there was one.
func (c *readCache) get(key string) ([]byte, bool) {
	gen, ok := c.quiet()
	if !ok {
		return nil, false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.index == nil {
		return nil, false
	}
	r, ok := c.index[maphash.String(c.seed, key)]
	if !ok || r.gen != gen || !c.live(r) || string(c.bytes(r.pos, r.klen)) != key {
		return nil, false
	}
	if r.vlen == absentLen {
		return nil, true
	}
	out := make([]byte, r.vlen)
	copy(out, c.bytes(r.pos+uint64(r.klen), r.vlen))
	return out, true
}

// put records raw (nil: absent) for key, read after quiet returned gen, when the key
// was missed before within the admission window.
func (c *readCache) put(gen uint64, key string, raw []byte) {
	size := uint64(len(key)) + uint64(len(raw))
	if c.started.Load() != gen || size > maxCacheEntry {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.index == nil {
		c.seed, c.index = maphash.MakeSeed(), map[uint64]cacheRef{}
		c.chunks = make([][]byte, c.capacity()/cacheChunk)
	}
	h := maphash.String(c.seed, key)
	full := c.next >= c.capacity()
	if full && c.missed[0].bits == nil {
		c.missed = [2]bloom{newBloom(c.window()), newBloom(c.window())} // needed once the ring is full
	}
	if full && !c.missed[0].has(h) && !c.missed[1].has(h) {
		if c.missed[0].n >= c.window() {
			c.missed[0], c.missed[1] = c.missed[1], c.missed[0]
			c.missed[0].reset()
		}
		c.missed[0].add(h)
		return
	}
	if off := c.next % cacheChunk; off+size > cacheChunk {
		c.next += cacheChunk - off // entries never straddle two chunks
	}
	i := c.next % c.capacity() / cacheChunk
	if c.chunks[i] == nil {
		c.chunks[i] = make([]byte, cacheChunk)
	}
	off := c.next % cacheChunk
	copy(c.chunks[i][off:], key)
	copy(c.chunks[i][off+uint64(len(key)):], raw)
	r := cacheRef{pos: c.next, gen: gen, klen: uint32(len(key)), vlen: uint32(len(raw))}
	if raw == nil {
		r.vlen = absentLen
	}
	c.index[h] = r
	c.next += size
	if len(c.index) > 2*c.swept+sweepSlack {
		c.sweep(gen)
	}
}

// sweep drops the references to entries overwritten or of an older generation; run
// when the index has doubled since the last sweep, its cost is constant per put.
func (c *readCache) sweep(gen uint64) {
	for h, r := range c.index {
		if r.gen != gen || !c.live(r) {
			delete(c.index, h)
		}
	}
	c.swept = len(c.index)
}

// bloom is a Bloom filter of key hashes: three probes into 8 bits per key of the
// window it is made for, about 3 % false positives when it holds that many keys (a
// false positive admits a key on its first miss, no more).
type bloom struct {
	bits []uint64
	n    int
}

// newBloom makes a filter for window keys, a power of two.
func newBloom(window int) bloom { return bloom{bits: make([]uint64, window/8)} }

// probes are the bits of h: h1 + i·h2 of its two halves (Kirsch and Mitzenmacher).
func (b *bloom) probes(h uint64) [3]uint64 {
	mask := uint64(len(b.bits))*64 - 1
	h1, h2 := h&0xffffffff, h>>32|1
	return [3]uint64{h1 & mask, (h1 + h2) & mask, (h1 + 2*h2) & mask}
}

func (b *bloom) has(h uint64) bool {
	for _, p := range b.probes(h) {
		if b.bits[p/64]&(1<<(p%64)) == 0 {
			return false
		}
	}
	return true
}

func (b *bloom) add(h uint64) {
	for _, p := range b.probes(h) {
		b.bits[p/64] |= 1 << (p % 64)
	}
	b.n++
}

func (b *bloom) reset() { clear(b.bits); b.n = 0 }
