package store_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"gmsa/internal/store"
	"gmsa/internal/store/memory"
)

// An Update waiting for its key's turn gives up with its context; other keys do not wait.
func TestUpdateWaitsForItsTurnOrContext(t *testing.T) {
	s := memory.New()
	inside, release := make(chan struct{}), make(chan struct{})
	go store.Update(context.Background(), s, "k", func(store.KV, bool) ([]byte, []store.Op, error) {
		close(inside)
		<-release
		return []byte("first"), nil, nil
	})
	<-inside
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := store.Update(ctx, s, "k", func(store.KV, bool) ([]byte, []store.Op, error) {
		t.Error("ran while another update of the key was in progress")
		return nil, nil, nil
	}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting update: %v", err)
	}
	if _, err := store.Update(context.Background(), s, "other", func(store.KV, bool) ([]byte, []store.Op, error) {
		return []byte("x"), nil, nil
	}); err != nil {
		t.Fatalf("another key: %v", err)
	}
	close(release)
	for i := 0; ; i++ {
		if kv, err := s.Get(context.Background(), "k"); err == nil && string(kv.Value) == "first" {
			break
		}
		if i == 100 {
			t.Fatal("the first update did not finish")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := store.Update(context.Background(), s, "k", func(old store.KV, _ bool) ([]byte, []store.Op, error) {
		return append(old.Value, '+'), nil, nil
	}); err != nil {
		t.Fatalf("after the turn was released: %v", err)
	}
}

// Verify accepts a whole backup and nothing else: truncated, extended or altered
// streams are refused, so a backup is never reported written when it is not whole.
func TestVerifyBackup(t *testing.T) {
	ctx := context.Background()
	s := memory.New()
	for _, k := range []string{"a", "b", "c"} {
		if _, err := s.Apply(ctx, store.Put(k, []byte("value of "+k))); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if _, err := store.Dump(ctx, s, &buf); err != nil {
		t.Fatal(err)
	}
	whole := buf.Bytes()
	if n, err := store.Verify(bytes.NewReader(whole)); err != nil || n != 3 {
		t.Fatalf("whole backup: %d %v", n, err)
	}
	altered := bytes.Clone(whole)
	altered[len(altered)/2] ^= 1
	for name, b := range map[string][]byte{"truncated": whole[:len(whole)-1], "extended": append(bytes.Clone(whole), 0), "altered": altered, "empty": nil} {
		if _, err := store.Verify(bytes.NewReader(b)); err == nil {
			t.Errorf("%s backup verified", name)
		}
	}
}

// staleStore answers Get from a snapshot that never sees later writes, as a cache fed
// by a lagging watch would, and GetLatest from the store itself.
type staleStore struct {
	store.Store
	snapshot map[string]store.KV
}

func (s *staleStore) Get(ctx context.Context, key string) (store.KV, error) {
	if kv, ok := s.snapshot[key]; ok {
		return kv, nil
	}
	return s.Store.Get(ctx, key)
}

func (s *staleStore) GetLatest(ctx context.Context, key string) (store.KV, error) {
	return s.Store.Get(ctx, key)
}

// An Update that lost its compare-and-swap to another process's write reads the key
// again past a cache that has not seen that write, instead of failing on the stale
// value until it runs out of retries.
func TestUpdateReadsPastAStaleCache(t *testing.T) {
	ctx := context.Background()
	mem := memory.New()
	if _, err := mem.Apply(ctx, store.Put("rid", []byte("1"))); err != nil {
		t.Fatal(err)
	}
	old, _ := mem.Get(ctx, "rid")
	if _, err := mem.Apply(ctx, store.Put("rid", []byte("2"))); err != nil { // another server's write
		t.Fatal(err)
	}
	s := &staleStore{Store: mem, snapshot: map[string]store.KV{"rid": old}}
	calls := 0
	if _, err := store.Update(ctx, s, "rid", func(cur store.KV, _ bool) ([]byte, []store.Op, error) {
		calls++
		return append(bytes.Clone(cur.Value), '+'), nil, nil
	}); err != nil {
		t.Fatalf("update over a stale cache: %v", err)
	}
	if kv, _ := mem.Get(ctx, "rid"); string(kv.Value) != "2+" || calls != 2 {
		t.Fatalf("value %q after %d attempts, want 2+ after 2", kv.Value, calls)
	}
}
