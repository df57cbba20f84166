// Package storetest is the conformance suite every store.Store backend runs.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gmsa/internal/store"
)

// Run runs every conformance test against stores made by open (each call a new,
// empty store; the suite closes it).
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := map[string]func(*testing.T, store.Store){
		"GetMissing":        testGetMissing,
		"CreateGetConflict": testCreate,
		"CompareAndSwap":    testCAS,
		"AtomicBatch":       testAtomic,
		"Delete":            testDelete,
		"ListPrefix":        testList,
		"ScanRange":         testScan,
		"Checks":            testChecks,
		"Revisions":         testRevisions,
		"ValueIsolation":    testIsolation,
		"ConcurrentUpdate":  testConcurrentUpdate,
		"ReadsSeeWrites":    testReadsSeeWrites,
		"DumpRestore":       func(t *testing.T, s store.Store) { testDumpRestore(t, s, open(t)) },
		"BadKeys":           testBadKeys,
		"Closed":            testClosed,
		"Generations":       testGenerations,
	}
	for name, fn := range tests {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			defer s.Close()
			fn(t, s)
		})
	}
}

var ctx = context.Background()

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, target error, key string) {
	t.Helper()
	var oe *store.OpError
	if !errors.Is(err, target) || !errors.As(err, &oe) || oe.Key != key {
		t.Fatalf("got %v, want %v on key %q", err, target, key)
	}
}

func testGetMissing(t *testing.T, s store.Store) {
	_, err := s.Get(ctx, "nope")
	wantErr(t, err, store.ErrNotFound, "nope")
	kvs, err := s.List(ctx, "")
	if err != nil || len(kvs) != 0 {
		t.Fatalf("empty store lists %v %v", kvs, err)
	}
}

func testCreate(t *testing.T, s store.Store) {
	rev, err := s.Apply(ctx, store.Create("a", []byte("1")))
	must(t, err)
	kv, err := s.Get(ctx, "a")
	if err != nil || string(kv.Value) != "1" || kv.Rev != rev || kv.Key != "a" {
		t.Fatalf("%+v %v", kv, err)
	}
	_, err = s.Apply(ctx, store.Create("a", []byte("2")))
	wantErr(t, err, store.ErrExists, "a")
	if kv, _ := s.Get(ctx, "a"); string(kv.Value) != "1" {
		t.Fatal("a failed create changed the value")
	}
	if _, err := s.Apply(ctx, store.Create("empty", nil)); err != nil {
		t.Fatal(err)
	}
	if kv, err := s.Get(ctx, "empty"); err != nil || len(kv.Value) != 0 {
		t.Fatalf("empty value: %v %v", kv, err)
	}
}

func testCAS(t *testing.T, s store.Store) {
	r1, _ := s.Apply(ctx, store.Put("k", []byte("v1")))
	r2, err := s.Apply(ctx, store.PutAt("k", []byte("v2"), r1))
	must(t, err)
	_, err = s.Apply(ctx, store.PutAt("k", []byte("v3"), r1))
	wantErr(t, err, store.ErrConflict, "k")
	_, err = s.Apply(ctx, store.PutAt("missing", []byte("x"), 5))
	wantErr(t, err, store.ErrConflict, "missing")
	if kv, _ := s.Get(ctx, "k"); string(kv.Value) != "v2" || kv.Rev != r2 {
		t.Fatalf("%+v", kv)
	}
}

func testAtomic(t *testing.T, s store.Store) {
	s.Apply(ctx, store.Put("taken", []byte("x")))
	_, err := s.Apply(ctx, store.Put("x1", []byte("1")), store.Put("x2", []byte("2")), store.Create("taken", []byte("y")))
	wantErr(t, err, store.ErrExists, "taken")
	for _, k := range []string{"x1", "x2"} {
		if _, err := s.Get(ctx, k); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("%s written by a failed batch", k)
		}
	}
	rev, err := s.Apply(ctx, store.Put("x1", []byte("1")), store.Put("x2", []byte("2")), store.Delete("taken"))
	must(t, err)
	a, _ := s.Get(ctx, "x1")
	b, _ := s.Get(ctx, "x2")
	if a.Rev != rev || b.Rev != rev {
		t.Fatal("a batch's writes do not share its revision")
	}
	if _, err := s.Get(ctx, "taken"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("delete in batch lost")
	}
}

func testDelete(t *testing.T, s store.Store) {
	r, _ := s.Apply(ctx, store.Put("d", []byte("1")))
	_, err := s.Apply(ctx, store.DeleteAt("d", r+100))
	wantErr(t, err, store.ErrConflict, "d")
	must(t, func() error { _, err := s.Apply(ctx, store.DeleteAt("d", r)); return err }())
	if _, err := s.Get(ctx, "d"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("not deleted")
	}
	must(t, func() error { _, err := s.Apply(ctx, store.Delete("d")); return err }()) // deleting the absent is fine
}

func testList(t *testing.T, s store.Store) {
	for _, k := range []string{"obj/b", "obj/a", "obj/c", "ob", "objx", "name/a"} {
		s.Apply(ctx, store.Put(k, []byte(k)))
	}
	kvs, err := s.List(ctx, "obj/")
	must(t, err)
	var got []string
	for _, kv := range kvs {
		got = append(got, kv.Key)
		if string(kv.Value) != kv.Key {
			t.Fatal("value mismatch")
		}
	}
	if fmt.Sprint(got) != "[obj/a obj/b obj/c]" {
		t.Fatalf("List(obj/) = %v", got)
	}
	all, _ := s.List(ctx, "")
	if len(all) != 6 || all[0].Key != "name/a" || all[5].Key != "objx" {
		t.Fatalf("List() = %v", all)
	}
}

// testScan walks ranges: the prefix's bounds, resumption after a key (present or not),
// early stops, revisions, and a view that later writes do not disturb.
func testScan(t *testing.T, s store.Store) {
	revs := map[string]int64{}
	for _, k := range []string{"ix/b\x00g2", "ix/b\x00g1", "ix/a\x00g9", "ix/c\x00g0", "ix", "ix0", "iw/z"} {
		r, err := s.Apply(ctx, store.Put(k, []byte("v:"+k)))
		must(t, err)
		revs[k] = r
	}
	scan := func(prefix, after string, stopAt int) []string {
		t.Helper()
		var got []string
		must(t, s.Scan(ctx, prefix, after, func(k, v []byte, rev int64) bool {
			if string(v) != "v:"+string(k) || rev != revs[string(k)] {
				t.Fatalf("Scan gave %q = %q at %d", k, v, rev)
			}
			got = append(got, string(k))
			return len(got) != stopAt
		}))
		return got
	}
	for _, c := range []struct {
		prefix, after string
		stop          int
		want          string
	}{
		{"ix/", "", 0, "[ix/a\x00g9 ix/b\x00g1 ix/b\x00g2 ix/c\x00g0]"},
		{"ix/b\x00", "", 0, "[ix/b\x00g1 ix/b\x00g2]"},
		{"ix/", "ix/b\x00g1", 0, "[ix/b\x00g2 ix/c\x00g0]"},
		{"ix/", "ix/b", 0, "[ix/b\x00g1 ix/b\x00g2 ix/c\x00g0]"}, // after a key that does not exist
		{"ix/", "ix/", 0, "[ix/a\x00g9 ix/b\x00g1 ix/b\x00g2 ix/c\x00g0]"},
		{"ix/", "ix/c\x00g0", 0, "[]"},
		{"ix/", "a", 0, "[ix/a\x00g9 ix/b\x00g1 ix/b\x00g2 ix/c\x00g0]"}, // before the prefix: from its start
		{"ix/", "", 2, "[ix/a\x00g9 ix/b\x00g1]"},
		{"nothing/", "", 0, "[]"},
		{"", "ix0", 0, "[]"},
	} {
		if got := fmt.Sprint(scan(c.prefix, c.after, c.stop)); got != c.want {
			t.Errorf("Scan(%q, after %q, stop %d) = %q, want %q", c.prefix, c.after, c.stop, got, c.want)
		}
	}
	if got := scan("", "", 0); len(got) != 7 || got[0] != "iw/z" || got[6] != "ix0" {
		t.Fatalf("Scan of everything = %q", got)
	}
}

func testChecks(t *testing.T, s store.Store) {
	r, _ := s.Apply(ctx, store.Put("guard", []byte("g")))
	_, err := s.Apply(ctx, store.CheckAbsent("guard"), store.Put("w", []byte("1")))
	wantErr(t, err, store.ErrExists, "guard")
	_, err = s.Apply(ctx, store.CheckAt("guard", r), store.Put("w", []byte("1")))
	must(t, err)
	if kv, _ := s.Get(ctx, "guard"); kv.Rev != r {
		t.Fatal("a check changed the revision of its key")
	}
	_, err = s.Apply(ctx, store.Op{Key: "nothere", Check: true, Cond: store.Present})
	wantErr(t, err, store.ErrNotFound, "nothere")
}

func testRevisions(t *testing.T, s store.Store) {
	var last int64
	for i := range 20 {
		r, err := s.Apply(ctx, store.Put("r"+strconv.Itoa(i%3), []byte{byte(i)}))
		must(t, err)
		if r <= last {
			t.Fatalf("revision %d after %d", r, last)
		}
		last = r
	}
}

// A value given to Apply is the store's own copy: the writer changing its slice later
// changes nothing stored. (Values read back are read-only by contract, and may be
// shared between readers.)
func testIsolation(t *testing.T, s store.Store) {
	v := []byte("abc")
	s.Apply(ctx, store.Put("iso", v))
	v[0] = 'X'
	kv, _ := s.Get(ctx, "iso")
	list, _ := s.List(ctx, "iso")
	if string(kv.Value) != "abc" || len(list) != 1 || string(list[0].Value) != "abc" {
		t.Fatalf("stored value shares memory with its writer: %q, %v", kv.Value, list)
	}
}

// Concurrent read-modify-write through store.Update loses no update: every increment
// that reports success is in the final value, and within one process every one
// succeeds (Update calls of a key take turns).
func testConcurrentUpdate(t *testing.T, s store.Store) {
	const workers, each = 4, 50
	var ok sync.WaitGroup
	var mu sync.Mutex
	succeeded := 0
	ok.Add(workers)
	for range workers {
		go func() {
			defer ok.Done()
			for range each {
				_, err := store.Update(ctx, s, "counter", func(old store.KV, exists bool) ([]byte, []store.Op, error) {
					n := 0
					if exists {
						n, _ = strconv.Atoi(string(old.Value))
					}
					return []byte(strconv.Itoa(n + 1)), nil, nil
				})
				if err == nil {
					mu.Lock()
					succeeded++
					mu.Unlock()
				} else if !errors.Is(err, store.ErrConflict) {
					t.Error(err)
				}
			}
		}()
	}
	ok.Wait()
	kv, err := s.Get(ctx, "counter")
	must(t, err)
	if n, _ := strconv.Atoi(string(kv.Value)); n != succeeded || succeeded != workers*each {
		t.Fatalf("counter %d, %d updates reported success of %d", n, succeeded, workers*each)
	}
	// Update deletes when fn returns nil, and extra ops join the batch.
	_, err = store.Update(ctx, s, "counter", func(store.KV, bool) ([]byte, []store.Op, error) {
		return nil, []store.Op{store.Put("side", []byte("s"))}, nil
	})
	must(t, err)
	if _, err := s.Get(ctx, "counter"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("Update did not delete")
	}
	if _, err := s.Get(ctx, "side"); err != nil {
		t.Fatal("extra op lost")
	}
}

// Reads are linearizable: once a write has returned, no read started afterwards sees
// an older value, and each reader's successive reads never go back in time (a read
// cache must not serve a value a finished write replaced).
func testReadsSeeWrites(t *testing.T, s store.Store) {
	const writes, readers = 300, 3
	var committed atomic.Int64
	must(t, func() error { _, err := s.Apply(ctx, store.Put("seq", []byte("0"))); return err }())
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := int64(0)
			for {
				select {
				case <-stop:
					return
				default:
				}
				floor := committed.Load()
				kv, err := s.Get(ctx, "seq")
				if err != nil {
					t.Error(err)
					return
				}
				n, _ := strconv.ParseInt(string(kv.Value), 10, 64)
				if n < floor || n < last {
					t.Errorf("read %d after write %d had returned (previous read %d)", n, floor, last)
					return
				}
				last = n
				if _, err := s.Get(ctx, "absent-key"); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("absent key: %v", err)
					return
				}
			}
		}()
	}
	for i := int64(1); i <= writes; i++ {
		if _, err := s.Apply(ctx, store.Put("seq", []byte(strconv.FormatInt(i, 10)))); err != nil {
			t.Fatal(err)
		}
		committed.Store(i)
		if kv, err := s.Get(ctx, "seq"); err != nil || string(kv.Value) != strconv.FormatInt(i, 10) {
			t.Fatalf("the writer read %q after writing %d (%v)", kv.Value, i, err)
		}
	}
	close(stop)
	wg.Wait()
	if _, err := s.Apply(ctx, store.Put("absent-key", []byte("x"))); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "absent-key"); err != nil {
		t.Fatal("a cached absence outlived the write that created the key")
	}
}

func testDumpRestore(t *testing.T, s, dst store.Store) {
	defer dst.Close()
	for i := range 100 {
		s.Apply(ctx, store.Put(fmt.Sprintf("k/%03d", i), bytes.Repeat([]byte{byte(i)}, i)))
	}
	var buf bytes.Buffer
	n, err := store.Dump(ctx, s, &buf)
	if err != nil || n != 100 {
		t.Fatalf("dump %d %v", n, err)
	}
	raw := buf.Bytes()
	bad := append([]byte(nil), raw...)
	bad[len(bad)/2] ^= 1
	if _, err := store.Restore(ctx, dst, bytes.NewReader(bad)); err == nil {
		t.Fatal("a damaged backup restored")
	}
	if _, err := store.Restore(ctx, dst, bytes.NewReader(raw[:len(raw)-10])); err == nil {
		t.Fatal("a truncated backup restored")
	}
	if kvs, _ := dst.List(ctx, ""); len(kvs) != 0 {
		t.Fatal("a failed restore wrote keys")
	}
	if n, err := store.Restore(ctx, dst, bytes.NewReader(raw)); err != nil || n != 100 {
		t.Fatalf("restore %d %v", n, err)
	}
	a, _ := s.List(ctx, "")
	b, _ := dst.List(ctx, "")
	for i := range a {
		if a[i].Key != b[i].Key || !bytes.Equal(a[i].Value, b[i].Value) {
			t.Fatalf("restored %v differs", b[i].Key)
		}
	}
	if _, err := store.Restore(ctx, dst, bytes.NewReader(raw)); err == nil {
		t.Fatal("restore into a non-empty store")
	}
}

func testBadKeys(t *testing.T, s store.Store) {
	for _, k := range []string{"", string(bytes.Repeat([]byte("k"), store.MaxKeyLen+1))} {
		if _, err := s.Apply(ctx, store.Put(k, []byte("x"))); err == nil {
			t.Fatalf("key of %d bytes accepted", len(k))
		}
	}
}

func testClosed(t *testing.T, s store.Store) {
	s.Close()
	if _, err := s.Get(ctx, "x"); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
	if _, err := s.Apply(ctx, store.Put("x", nil)); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Apply after Close: %v", err)
	}
}

// testGenerations: a store that offers generations never reports the generation from
// before a write as current after the write returned, and vouches again once its reads
// are current (a watch-fed cache when the write's event has arrived).
func testGenerations(t *testing.T, s store.Store) {
	g, ok := s.(store.Generations)
	if !ok {
		t.Skip("the store offers no generations")
	}
	_, err := s.Apply(ctx, store.Put("gen/a", []byte("1")))
	must(t, err)
	var before uint64
	deadline := time.Now().Add(10 * time.Second)
	for {
		var ok bool
		if before, ok = g.Generation(); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the store never vouched for its reads")
		}
		time.Sleep(5 * time.Millisecond)
	}
	_, err = s.Apply(ctx, store.Put("gen/b", []byte("2")))
	must(t, err)
	for {
		gen, ok := g.Generation()
		if ok && gen == before {
			t.Fatalf("generation %d still reported after a write", gen)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the store never vouched for its reads after the write")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
