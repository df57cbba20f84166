package bolt

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"gmsa/internal/store"
	"gmsa/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := Open(filepath.Join(t.TempDir(), "gmsa.db"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestLockedAndReopen(t *testing.T) {
	p := filepath.Join(t.TempDir(), "gmsa.db")
	s, err := Open(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(p, Options{}); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second open: %v", err)
	}
	s.Apply(context.Background(), store.Put("k", []byte("v")))
	s.Close()
	s, err = Open(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if kv, err := s.Get(context.Background(), "k"); err != nil || string(kv.Value) != "v" {
		t.Fatalf("after reopen: %v %v", kv, err)
	}
}
