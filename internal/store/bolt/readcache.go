package bolt

import (
	"encoding/binary"
	"hash/maphash"
	"math"
	"math/bits"
	"slices"
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
// Size and cost: entries (a header with the write generation and the lengths, the key,
// the value) are copied into a ring of chunks of cacheChunk bytes, as many as the size
// set at Open (64 by default), the oldest overwritten first. They are found through a
// table of 8-byte slots, each holding a tag of the key's hash and the entry's place: a
// lookup reads one processor cache line of the table and the entry's own bytes. The
// table doubles when a quarter of its slots are used, up to one slot per 32 bytes of
// ring (rounded down to a power of two); a group that is full (at a quarter's load,
// about one in 4 000) gives up its oldest entry. Neither the ring nor the table holds a
// pointer per entry, so a full cache costs the collector nothing to mark, and its
// memory is at most its size and a quarter.
//
// Admission: until the ring is first full, every read is stored; then a key is stored
// on its second miss within the last window() to 2×window() misses (about as many
// entries as the ring holds), remembered in two Bloom filters of missed keys, the older
// dropped when the newer is full. A load that reads keys at random from a large
// directory, each once, passes through without pushing out the keys read over and over
// (the domain, the containers, the accounts that bind, the gMSAs whose passwords are
// read); a directory the cache can hold is all admitted on its second read.
type readCache struct {
	started, finished atomic.Uint64

	mu      sync.RWMutex
	seed    maphash.Seed
	slots   []uint64 // the table: tag<<posBits | position mod 2^posBits; 0 is empty
	used    int      // slots not empty
	missed  [2]bloom // keys missed once: since the newer filter was started, and before
	nchunks int      // the ring's chunks: set before the first use (0: defaultCacheChunks)
	chunks  [][]byte // allocated as the ring first reaches them
	next    uint64   // the ring position the next entry is written at
}

const (
	cacheChunk         = 1 << 20
	defaultCacheChunks = 64                              // 64 MiB in all
	maxCacheChunks     = 1 << 16                         // 64 GiB, far below 2^posBits
	DefaultReadCache   = defaultCacheChunks * cacheChunk // the read cache's size when Options leave it out
	maxCacheEntry      = cacheChunk / 4                  // larger records are read from the file each time
	entryHeader        = 16                              // generation, key length, value length
	absentLen          = ^uint32(0)                      // the value length of a recorded absence
	ringPerSlot        = 32                              // bytes of ring per slot of the table, at most
	minSlots           = 4096                            // the table's first size
	slotGroup          = 8                               // slots a key may be in: 64 bytes, one cache line
	posBits            = 40                              // a slot's position, modulo 1 TiB of entries written
	posMask            = 1<<posBits - 1
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

// quiet returns the write count when no write is in progress.
func (c *readCache) quiet() (uint64, bool) {
	f := c.finished.Load()
	return f, c.started.Load() == f
}

// position returns the ring position a slot names: the latest position below next
// with the slot's low posBits (exact, as the table is cleared whenever next passes a
// multiple of 2^posBits), and whether the entry there is still whole, not yet
// overwritten: the ring holds the positions from next-capacity() up to next.
func (c *readCache) position(slot uint64) (uint64, bool) {
	pos := c.next - (c.next-slot)&posMask
	return pos, pos+c.capacity() >= c.next
}

// bytes returns n bytes of the ring at position pos (never across a chunk's end).
func (c *readCache) bytes(pos uint64, n uint64) []byte {
	chunk := c.chunks[pos%c.capacity()/cacheChunk]
	off := pos % cacheChunk
	return chunk[off : off+n]
}

// group returns the first slot of h's group, and h's tag (never 0, so a used slot is
// never 0).
func (c *readCache) group(h uint64) (int, uint64) {
	return int(h & uint64(len(c.slots)-1) &^ (slotGroup - 1)), h>>posBits | 1
}

// entry reads the header of the entry at pos: its generation and lengths.
func (c *readCache) entry(pos uint64) (gen uint64, klen, vlen uint32) {
	hdr := c.bytes(pos, entryHeader)
	return binary.LittleEndian.Uint64(hdr), binary.LittleEndian.Uint32(hdr[8:]), binary.LittleEndian.Uint32(hdr[12:])
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
	if c.slots == nil {
		return nil, false
	}
	first, tag := c.group(maphash.String(c.seed, key))
	for _, slot := range c.slots[first : first+slotGroup] {
		if slot == 0 {
			break // a group fills from its start and no slot is emptied
		}
		if slot>>posBits != tag {
			continue
		}
		pos, whole := c.position(slot)
		if !whole {
			continue
		}
		egen, klen, vlen := c.entry(pos)
		if egen != gen || int(klen) != len(key) || string(c.bytes(pos+entryHeader, uint64(klen))) != key {
			continue
		}
		if vlen == absentLen {
			return nil, true
		}
		out := make([]byte, vlen)
		copy(out, c.bytes(pos+entryHeader+uint64(klen), uint64(vlen)))
		return out, true
	}
	return nil, false
}

// put records raw (nil: absent) for key, read after quiet returned gen, when the key
// was missed before within the admission window.
func (c *readCache) put(gen uint64, key string, raw []byte) {
	size := entryHeader + uint64(len(key)) + uint64(len(raw))
	if c.started.Load() != gen || size > maxCacheEntry {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.slots == nil {
		c.seed = maphash.MakeSeed()
		c.slots = make([]uint64, min(minSlots, c.maxSlots()))
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
	if c.used >= len(c.slots)/4 && len(c.slots) < c.maxSlots() {
		c.grow() // before the new entry overwrites any: grow reads the keys of those still whole
	}
	start := c.next
	if off := c.next % cacheChunk; off+size > cacheChunk {
		c.next += cacheChunk - off // entries never straddle two chunks
	}
	i := c.next % c.capacity() / cacheChunk
	if c.chunks[i] == nil {
		c.chunks[i] = make([]byte, cacheChunk)
	}
	e := c.bytes(c.next, size)
	vlen := uint32(len(raw))
	if raw == nil {
		vlen = absentLen
	}
	binary.LittleEndian.PutUint64(e, gen)
	binary.LittleEndian.PutUint32(e[8:], uint32(len(key)))
	binary.LittleEndian.PutUint32(e[12:], vlen)
	copy(e[entryHeader:], key)
	copy(e[entryHeader+len(key):], raw)
	first, tag := c.group(h)
	at := first + c.victim(first, tag)
	if c.slots[at] == 0 {
		c.used++
	}
	c.slots[at] = tag<<posBits | c.next&posMask
	c.next += size
	if c.next>>posBits != start>>posBits {
		clear(c.slots) // positions now repeat their low bits: forget every entry (once a TiB)
		c.used = 0
	}
}

// maxSlots is the table's largest size: a slot per ringPerSlot bytes of ring, rounded
// down to a power of two.
func (c *readCache) maxSlots() int { return 1 << (bits.Len64(c.capacity()/ringPerSlot) - 1) }

// grow doubles the table, placing again the entries still whole (their keys hashed
// again: a slot keeps only the hash's tag).
func (c *readCache) grow() {
	old := c.slots
	c.slots, c.used = make([]uint64, 2*len(old)), 0
	for _, slot := range old {
		pos, whole := c.position(slot)
		if slot == 0 || !whole {
			continue
		}
		_, klen, _ := c.entry(pos)
		first, tag := c.group(maphash.Bytes(c.seed, c.bytes(pos+entryHeader, uint64(klen))))
		group := c.slots[first : first+slotGroup]
		if i := slices.Index(group, 0); i >= 0 {
			group[i] = tag<<posBits | slot&posMask
			c.used++
		}
	}
}

// victim chooses the slot of the group at first for a new entry with tag: the first
// empty one, else one with the same tag (most likely an older entry of the same key),
// else one whose entry was overwritten, else the one written longest ago.
func (c *readCache) victim(first int, tag uint64) int {
	group := c.slots[first : first+slotGroup]
	oldest, oldestPos := 0, uint64(math.MaxUint64)
	for i, slot := range group {
		if slot == 0 || slot>>posBits == tag {
			return i
		}
		pos, whole := c.position(slot)
		if !whole {
			return i
		}
		if pos < oldestPos {
			oldest, oldestPos = i, pos
		}
	}
	return oldest
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
