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
