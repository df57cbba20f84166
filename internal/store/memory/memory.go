// Package memory is a Store held in memory, for tests and throwaway servers.
package memory

import (
	"bytes"
	"context"
	"slices"
	"sort"
	"strings"
	"sync"

	"gmsa/internal/store"
)

// Store is an in-memory store.Store.
type Store struct {
	mu     sync.RWMutex
	data   map[string]store.KV
	rev    int64
	closed bool
}

// New returns an empty store.
func New() *Store { return &Store{data: map[string]store.KV{}} }

// Generation is the revision of the last write (see store.Generations).
func (s *Store) Generation() (uint64, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return uint64(s.rev), true
}

func (s *Store) Get(_ context.Context, key string) (store.KV, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return store.KV{}, store.ErrClosed
	}
	kv, ok := s.data[key]
	if !ok {
		return store.KV{}, &store.OpError{Key: key, Err: store.ErrNotFound}
	}
	return kv, nil // read-only (see store.Store); Apply stored a copy
}

func (s *Store) List(_ context.Context, prefix string) ([]store.KV, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, store.ErrClosed
	}
	var out []store.KV
	for k, kv := range s.data {
		if strings.HasPrefix(k, prefix) {
			out = append(out, kv)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func (s *Store) Scan(_ context.Context, prefix, after string, fn func(key, value []byte, rev int64) bool) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return store.ErrClosed
	}
	var keys []string
	for k := range s.data {
		if strings.HasPrefix(k, prefix) && k > after {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		kv := s.data[k]
		if !fn([]byte(k), kv.Value, kv.Rev) {
			break
		}
	}
	return nil
}

func (s *Store) Apply(_ context.Context, ops ...store.Op) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, store.ErrClosed
	}
	for i := range ops {
		if err := store.ValidKey(ops[i].Key); err != nil {
			return 0, err
		}
		if err := ops[i].CheckCond(s.data[ops[i].Key].Rev); err != nil {
			return 0, err
		}
	}
	s.rev++
	for _, op := range ops {
		switch {
		case op.Check:
		case op.Delete:
			delete(s.data, op.Key)
		default:
			s.data[op.Key] = store.KV{Key: op.Key, Value: slices.Clip(bytes.Clone(op.Value)), Rev: s.rev} // clipped: an append by a reader copies
		}
	}
	return s.rev, nil
}

func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}
