package store_test

import (
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
