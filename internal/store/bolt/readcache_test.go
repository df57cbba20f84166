package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"testing"

	"gmsa/internal/store"
)

// admit stores key's value as a Get would: a first miss is only noted, the second stores.
func admit(c *readCache, gen uint64, key string, raw []byte) {
	c.put(gen, key, raw)
	c.put(gen, key, raw)
}

func TestReadCacheAdmitsOnTheSecondMiss(t *testing.T) {
	var c readCache
	c.put(0, "obj/early", []byte("v"))
	if _, ok := c.get("obj/early"); !ok {
		t.Fatal("a cache with room did not store a key missed once")
	}
	c.next = c.capacity() // full: the ring has been round once
	c.put(0, "obj/a", []byte("va"))
	if _, ok := c.get("obj/a"); ok {
		t.Fatal("a key missed once was stored")
	}
	c.put(0, "obj/a", []byte("va"))
	if v, ok := c.get("obj/a"); !ok || string(v) != "va" {
		t.Fatalf("a key missed twice: %q %v", v, ok)
	}
	admit(&c, 0, "obj/gone", nil)
	if v, ok := c.get("obj/gone"); !ok || v != nil {
		t.Fatalf("a recorded absence: %q %v", v, ok)
	}
	// The value handed out is a copy: changing it changes nothing cached.
	v, _ := c.get("obj/a")
	v[0] = 'X'
	if v, _ := c.get("obj/a"); string(v) != "va" {
		t.Fatalf("the cached value changed through a copy: %q", v)
	}
}

func TestReadCacheForgetsOlderGenerations(t *testing.T) {
	var c readCache
	admit(&c, 0, "k", []byte("old"))
	c.started.Add(1) // a write begins: nothing is served
	if _, ok := c.get("k"); ok {
		t.Fatal("served while a write was in progress")
	}
	c.finished.Add(1)
	if _, ok := c.get("k"); ok {
		t.Fatal("served a value read before the last write")
	}
	c.put(0, "k", []byte("stale")) // a read that began before the write
	if _, ok := c.get("k"); ok {
		t.Fatal("stored a value read before the last write")
	}
	admit(&c, 1, "k", []byte("new"))
	if v, ok := c.get("k"); !ok || string(v) != "new" {
		t.Fatalf("after the write: %q %v", v, ok)
	}
}

// A sweep of keys read once each, far more than the cache holds, leaves the keys read
// again and again where they were; entries the ring overwrote are misses, never
// another entry's bytes.
func TestReadCacheKeepsHotKeysThroughARandomSweep(t *testing.T) {
	var c readCache
	c.next = c.capacity()
	hot := map[string][]byte{}
	for i := range 100 {
		k := fmt.Sprintf("obj/hot-%03d", i)
		hot[k] = bytes.Repeat([]byte{byte(i)}, 500)
		admit(&c, 0, k, hot[k])
	}
	value := bytes.Repeat([]byte("v"), 900)
	for i := range 200_000 { // 200 MB of records offered, each once
		c.put(0, fmt.Sprintf("obj/cold-%07d", i), value)
	}
	for k, want := range hot {
		if v, ok := c.get(k); !ok || !bytes.Equal(v, want) {
			t.Fatalf("hot key %s after the sweep: %v", k, ok)
		}
	}
	// Admitted keys past the ring's capacity overwrite the oldest.
	for i := range 3 * c.capacity() / 1000 {
		admit(&c, 0, fmt.Sprintf("obj/big-%07d", i), value)
	}
	if _, ok := c.get("obj/hot-000"); ok {
		t.Fatal("an overwritten entry was served")
	}
	last := fmt.Sprintf("obj/big-%07d", 3*c.capacity()/1000-1)
	if v, ok := c.get(last); !ok || !bytes.Equal(v, value) {
		t.Fatal("the newest entry is missing")
	}
	if n := len(c.slots); n > c.maxSlots() {
		t.Fatalf("the table has %d slots, more than its largest size %d", n, c.maxSlots())
	}
}

// An entry whose value the ring has begun to overwrite, its key still intact, is a miss.
func TestReadCacheNeverServesAPartlyOverwrittenEntry(t *testing.T) {
	var c readCache
	c.next = c.capacity() // full, at the start of chunk 0
	admit(&c, 0, "obj/a", bytes.Repeat([]byte("a"), 1000))
	// One lap later (the entries between left out), the next entry starts in a's value.
	c.next = 2*c.capacity() + entryHeader + uint64(len("obj/a")) + 10
	admit(&c, 0, "obj/b", bytes.Repeat([]byte("b"), 100))
	if v, ok := c.get("obj/a"); ok {
		t.Fatalf("served an entry partly overwritten: %q…", v[:20])
	}
	if v, ok := c.get("obj/b"); !ok || len(v) != 100 {
		t.Fatal("the newer entry is missing")
	}
}

func TestReadCacheComparesTheKey(t *testing.T) {
	var c readCache
	admit(&c, 0, "obj/a", []byte("va"))
	// Another key whose hash and tag led to a's entry (a collision) is a miss.
	first, _ := c.group(maphash.String(c.seed, "obj/a"))
	a := c.slots[first]
	first, tag := c.group(maphash.String(c.seed, "obj/b"))
	c.slots[first] = tag<<posBits | a&posMask
	if _, ok := c.get("obj/b"); ok {
		t.Fatal("a colliding key was served another key's value")
	}
}

// A full cache costs the collector a few pointers, not one per entry.
func TestReadCacheFullHoldsFewObjects(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var c readCache
	value := make([]byte, 40)
	for i := range 500_000 {
		admit(&c, 0, fmt.Sprintf("ix/sam/user%07d", i), value)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if n := int64(after.HeapObjects) - int64(before.HeapObjects); n > 10_000 {
		t.Fatalf("500 000 entries hold %d heap objects", n)
	}
	runtime.KeepAlive(&c)
}

// Through the store, with room in the cache: the reads after the first are served by it.
func TestGetServesRepeatedReadsFromTheCache(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "gmsa.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Apply(context.Background(), store.Put("obj/x", []byte("1"))); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if kv, err := s.Get(context.Background(), "obj/x"); err != nil || string(kv.Value) != "1" {
			t.Fatalf("%q %v", kv.Value, err)
		}
	}
	if hits, misses := s.CacheStats(); hits != 2 || misses != 1 {
		t.Fatalf("hits %d misses %d, want 2 and 1", hits, misses)
	}
}

// Against a model, through writes and many laps of the ring: every hit is the value the
// key has in the current generation, byte for byte (within a generation a key's value
// does not change: a change is a write, which starts the next one).
func TestReadCacheHitsAreTheCurrentValue(t *testing.T) {
	// The default size and a small one, with few keys; two chunks and more keys, so that
	// the table grows while the ring overwrites entries.
	for _, tc := range []struct{ chunks, keys, steps int }{{0, 300, 40_000}, {3, 300, 40_000}, {2, 2_000, 100_000}} {
		t.Run(fmt.Sprint(tc), func(t *testing.T) { checkAgainstAModel(t, &readCache{nchunks: tc.chunks}, tc.keys, tc.steps) })
	}
}

func checkAgainstAModel(t *testing.T, c *readCache, keys, steps int) {
	r := rand.New(rand.NewPCG(3, 4))
	seed := maphash.MakeSeed()
	value := func(gen uint64, key string) []byte {
		s := rand.New(rand.NewPCG(gen, maphash.String(seed, key)))
		if s.IntN(10) == 0 {
			return nil // absent in this generation
		}
		n := s.IntN(2000)
		if s.IntN(10) == 0 {
			n = s.IntN(maxCacheEntry + 1000) // a large record, some too large to keep
		}
		var pattern [8]byte
		binary.LittleEndian.PutUint64(pattern[:], s.Uint64())
		return append(make([]byte, 0, n), bytes.Repeat(pattern[:], n/8+1)[:n]...)
	}
	gen, hits := uint64(0), 0
	for i := range steps {
		key := fmt.Sprintf("k/%d", r.IntN(keys))
		switch op := r.IntN(1000); {
		case op < 3: // a write: older values must no longer be served
			c.started.Add(1)
			c.finished.Add(1)
			gen++
		case op < 600:
			c.put(gen, key, value(gen, key))
		default:
			got, ok := c.get(key)
			if !ok {
				continue
			}
			hits++
			if want := value(gen, key); !bytes.Equal(got, want) || (got == nil) != (want == nil) {
				t.Fatalf("step %d: %s served %d bytes, its value has %d", i, key, len(got), len(want))
			}
		}
	}
	if hits < 1000 || c.next < 3*c.capacity() {
		t.Fatalf("the test did not exercise the cache: %d hits, %d bytes written", hits, c.next)
	}
	if keys > minSlots/4 && len(c.slots) == minSlots {
		t.Fatal("the test did not exercise the table's growth")
	}
}

// The size Options give, in whole MiB and at least one; none is the default.
func TestReadCacheSizeFromOptions(t *testing.T) {
	for size, want := range map[int64]uint64{0: DefaultReadCache, 100: cacheChunk, 5<<20 + 7: 5 << 20} {
		s, err := Open(filepath.Join(t.TempDir(), "gmsa.db"), Options{ReadCache: size})
		if err != nil {
			t.Fatal(err)
		}
		if got := s.cache.capacity(); got != want {
			t.Errorf("ReadCache %d: a ring of %d bytes, want %d", size, got, want)
		}
		s.Close()
	}
}

// Positions are kept modulo 2^posBits: when the ring's position passes a multiple of it,
// every entry is forgotten, and what is stored after is found again.
func TestReadCacheForgetsAllWhenPositionsRepeat(t *testing.T) {
	var c readCache
	c.next = 1<<posBits - 1000 // the ring is full, and close to the mark
	admit(&c, 0, "obj/a", []byte("a"))
	if _, ok := c.get("obj/a"); !ok {
		t.Fatal("obj/a was not stored")
	}
	c.next = 1<<posBits - 50 // the next entry does not fit in the chunk: it starts past the mark
	admit(&c, 0, "obj/b", bytes.Repeat([]byte("b"), 100))
	for _, k := range []string{"obj/a", "obj/b"} {
		if _, ok := c.get(k); ok {
			t.Fatalf("%s was served after the positions passed 2^%d", k, posBits)
		}
	}
	admit(&c, 0, "obj/c", []byte("c"))
	if v, ok := c.get("obj/c"); !ok || string(v) != "c" {
		t.Fatalf("obj/c after the mark: %q %v", v, ok)
	}
}

// A full cache of small records takes its size and a quarter (the table), the Bloom
// filters and little else: the index does not grow with the count of entries.
func TestReadCacheMemoryIsBounded(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := readCache{nchunks: 16}
	value := make([]byte, 8)
	for i := range 4 * int(c.capacity()) / 40 { // four laps of the ring
		admit(&c, 0, fmt.Sprintf("sam/u%07d", i), value)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	bound := c.capacity() + c.capacity()/4 + 2*uint64(c.window()) + 1<<20
	if used := after.HeapAlloc - before.HeapAlloc; used > bound {
		t.Fatalf("a cache of %d MiB uses %d MiB of heap, more than %d", c.capacity()>>20, used>>20, bound>>20)
	}
	runtime.KeepAlive(&c)
}

// The table starts small and doubles as entries come, keeping every entry still whole.
func TestReadCacheTableGrowsWithTheEntries(t *testing.T) {
	var c readCache
	c.put(0, "k/0", []byte("v0"))
	if len(c.slots) != minSlots {
		t.Fatalf("a new table of %d slots", len(c.slots))
	}
	const n = 100_000 // about 4 MiB of entries: room for all
	for i := 1; i < n; i++ {
		c.put(0, fmt.Sprintf("k/%d", i), fmt.Appendf(nil, "v%d", i))
	}
	if len(c.slots) < 4*n || len(c.slots) > 8*n {
		t.Fatalf("%d entries in a table of %d slots", n, len(c.slots))
	}
	lost := 0
	for i := range n {
		v, ok := c.get(fmt.Sprintf("k/%d", i))
		if !ok {
			lost++ // its group was full
		} else if string(v) != fmt.Sprintf("v%d", i) {
			t.Fatalf("k/%d after the table grew: %q", i, v)
		}
	}
	if lost > n/1000 {
		t.Fatalf("%d of %d entries lost to full groups", lost, n)
	}
}
