package bolt

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gmsa/internal/store"
)

// fill writes n keys in random order with values of random length, then deletes every
// third, and returns what the store holds.
func fill(t *testing.T, s *Store, n int) map[string]store.KV {
	t.Helper()
	ctx := context.Background()
	r := rand.New(rand.NewPCG(7, 7))
	var puts, deletes []store.Op
	for i := range n {
		k := fmt.Sprintf("obj/%08x-%d", r.Uint32(), i)
		v := make([]byte, 50+r.IntN(400))
		for j := range v {
			v[j] = byte(r.Uint32())
		}
		puts = append(puts, store.Put(k, v))
		if i%3 == 0 {
			deletes = append(deletes, store.Delete(k))
		}
	}
	for _, ops := range [][]store.Op{puts, deletes} {
		for len(ops) > 0 {
			m := min(len(ops), 500)
			if _, err := s.Apply(ctx, ops[:m]...); err != nil {
				t.Fatal(err)
			}
			ops = ops[m:]
		}
	}
	want := map[string]store.KV{}
	if err := s.Scan(ctx, "", "", func(k, v []byte, rev int64) bool {
		want[string(k)] = store.KV{Key: string(k), Value: append([]byte(nil), v...), Rev: rev}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return want
}

func TestCompactKeepsEveryKeyAndShrinksTheFile(t *testing.T) {
	ctx := context.Background()
	p := filepath.Join(t.TempDir(), "gmsa.db")
	s, err := Open(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := fill(t, s, 20000)
	lastRev, _ := s.Apply(ctx, store.Put("last", []byte("x")))
	want["last"] = store.KV{Key: "last", Value: []byte("x"), Rev: lastRev}
	s.Close()

	st, err := Compact(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Keys < len(want) || st.After >= st.Before*3/4 {
		t.Fatalf("compaction: %+v for %d keys, want at least a quarter smaller", st, len(want))
	}
	if fi, err := os.Stat(p); err != nil || fi.Size() != st.After || fi.Mode().Perm() != 0o600 {
		t.Fatalf("compacted file: %v %v", fi, err)
	}
	if _, err := os.Stat(p + ".compact"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the copy is left beside the file: %v", err)
	}

	s, err = Open(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := 0
	s.Scan(ctx, "", "", func(k, v []byte, rev int64) bool {
		got++
		w, ok := want[string(k)]
		if !ok || string(w.Value) != string(v) || w.Rev != rev {
			t.Fatalf("after compaction %q = %d bytes at rev %d, want %+v", k, len(v), rev, ok)
		}
		return true
	})
	if got != len(want) {
		t.Fatalf("after compaction %d keys, want %d", got, len(want))
	}
	if rev, err := s.Apply(ctx, store.Put("next", []byte("y"))); err != nil || rev != lastRev+1 {
		t.Fatalf("the revision after compaction: %d %v, want %d", rev, err, lastRev+1)
	}
}

func TestCompactRefusesAHeldFileAndLeavesItOnError(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "gmsa.db")
	s, err := Open(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Apply(context.Background(), store.Put("k", []byte("v")))
	if _, err := Compact(p); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("compacting a held file: %v", err)
	}
	s.Close()

	// The copy a killed compaction left is removed by the next open that holds the lock.
	os.WriteFile(p+".compact", []byte("every key"), 0o600)
	s, err = Open(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := os.Stat(p + ".compact"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a killed compaction's copy is still there: %v", err)
	}

	// A leftover the copy cannot replace: the error says so, and the store is as it was.
	os.MkdirAll(filepath.Join(p+".compact", "x"), 0o700)
	if _, err := Compact(p); err == nil {
		t.Fatal("compaction over an unremovable leftover succeeded")
	}
	os.RemoveAll(p + ".compact")
	s, err = Open(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if kv, err := s.Get(context.Background(), "k"); err != nil || string(kv.Value) != "v" {
		t.Fatalf("after a failed compaction: %v %v", kv, err)
	}
}

// An open that waits for the lock while Compact renames a new file over the old one
// must end up on the new file, not on the replaced one it first opened.
func TestOpenWaitingForTheLockFollowsARename(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p, other := filepath.Join(dir, "gmsa.db"), filepath.Join(dir, "new.db")
	for path, v := range map[string]string{p: "old", other: "new"} {
		s, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		s.Apply(ctx, store.Put("k", []byte(v)))
		s.Close()
	}
	holder, err := Open(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	opened := make(chan *Store, 1)
	go func() {
		s, err := Open(p, Options{LockTimeout: 10 * time.Second})
		if err != nil {
			t.Error(err)
		}
		opened <- s
	}()
	time.Sleep(200 * time.Millisecond) // the open above is now waiting on the old file's lock
	if err := os.Rename(other, p); err != nil {
		t.Fatal(err)
	}
	holder.Close()
	s := <-opened
	if s == nil {
		return
	}
	defer s.Close()
	if kv, err := s.Get(ctx, "k"); err != nil || string(kv.Value) != "new" {
		t.Fatalf("the waiting open reads %q (%v), want the file now at the path", kv.Value, err)
	}
}
