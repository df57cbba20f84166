// Package store is the one storage contract of the directory: an ordered key-value
// space with per-key revisions and atomic, conditional batches. It is what an embedded
// single file (store/bolt), memory (store/memory) and a distributed store (etcd, whose
// Txn(If(…).Then(…)) it mirrors) all provide; storetest holds the conformance suite
// every backend runs. Storage never sees LDAP, Kerberos or directory rules.
package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// Sentinel errors, checked with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	ErrConflict = errors.New("changed concurrently")
	ErrClosed   = errors.New("store is closed")
	ErrLocked   = errors.New("data directory is in use by another process")
	// ErrUnavailable is a store that cannot answer now (a distributed store without a
	// quorum): the request may succeed later, against this server or another.
	ErrUnavailable = errors.New("the store is unavailable")
)

// KV is a stored value with the revision of its last change.
type KV struct {
	Key   string
	Value []byte
	Rev   int64
}

// Cond is the condition an Op places on its key's current state.
type Cond uint8

const (
	Always  Cond = iota // no condition
	Absent              // the key must not exist (ErrExists otherwise)
	Present             // the key must exist (ErrNotFound otherwise)
	AtRev               // the key must exist with revision Rev (ErrConflict otherwise)
)

// Op is one step of an atomic batch: a write (Put or Delete) or, with Check, only a
// condition on a key that the batch depends on.
type Op struct {
	Key    string
	Value  []byte
	Delete bool
	Check  bool
	Cond   Cond
	Rev    int64
}

// Put writes key unconditionally.
func Put(key string, value []byte) Op { return Op{Key: key, Value: value} }

// Create writes key, which must not exist.
func Create(key string, value []byte) Op { return Op{Key: key, Value: value, Cond: Absent} }

// PutAt overwrites key only if it is still at revision rev.
func PutAt(key string, value []byte, rev int64) Op {
	return Op{Key: key, Value: value, Cond: AtRev, Rev: rev}
}

// Delete removes key if it exists.
func Delete(key string) Op { return Op{Key: key, Delete: true} }

// DeleteAt removes key only if it is still at revision rev.
func DeleteAt(key string, rev int64) Op { return Op{Key: key, Delete: true, Cond: AtRev, Rev: rev} }

// CheckAbsent makes the batch depend on key not existing.
func CheckAbsent(key string) Op { return Op{Key: key, Check: true, Cond: Absent} }

// CheckAt makes the batch depend on key being at revision rev.
func CheckAt(key string, rev int64) Op { return Op{Key: key, Check: true, Cond: AtRev, Rev: rev} }

// OpError names the key whose condition failed; it wraps ErrExists, ErrNotFound or
// ErrConflict.
type OpError struct {
	Key string
	Err error
}

func (e *OpError) Error() string { return fmt.Sprintf("store: %s: %v", e.Key, e.Err) }
func (e *OpError) Unwrap() error { return e.Err }

// CheckCond evaluates op's condition against the key's current revision (0 when absent).
func (op *Op) CheckCond(cur int64) error {
	switch {
	case op.Cond == Absent && cur != 0:
		return &OpError{op.Key, ErrExists}
	case op.Cond == Present && cur == 0:
		return &OpError{op.Key, ErrNotFound}
	case op.Cond == AtRev && cur != op.Rev:
		return &OpError{op.Key, ErrConflict}
	}
	return nil
}

// Store is the storage contract.
type Store interface {
	// Get returns the value of key, or ErrNotFound.
	//
	// Values returned by Get and List are read-only: they may be shared with the
	// store's read cache and with other callers, so a caller that needs to change one
	// copies it first. (Values passed to Apply are copied by the store.)
	Get(ctx context.Context, key string) (KV, error)
	// List returns every key with the prefix, in key order, from one consistent view.
	List(ctx context.Context, prefix string) ([]KV, error)
	// Apply runs ops atomically: either every condition holds and every write happens
	// under one new revision, which it returns, or nothing changes and the error names
	// the first failed condition.
	Apply(ctx context.Context, ops ...Op) (int64, error)
	// Scan walks the keys with the prefix that sort after `after` ("" for all), in key
	// order and from one consistent view, calling fn for each until fn returns false or
	// the keys run out. It is how large ranges are read without holding them: fn runs
	// while the store holds its view, so it must be quick and must not call the store,
	// and key and value are valid only during the call (fn copies what it keeps).
	Scan(ctx context.Context, prefix, after string, fn func(key, value []byte, rev int64) bool) error
	// Close releases the store.
	Close() error
}

// Generations is a store that can tell cheaply whether anything changed, for caches of
// values derived from many keys (a token from an account's group memberships):
// Generation returns a value that differs after every write the store has applied, and
// ok false while it cannot vouch that its reads are current (a write of this process
// in flight; a distributed store's view not confirmed recent). A value derived from
// reads made after Generation returned (g, true) may be kept while Generation keeps
// returning (g, true).
type Generations interface {
	Generation() (gen uint64, ok bool)
}

// CacheCounts counts a read cache's answers: Gets it served, and Gets that went to the
// storage.
type CacheCounts struct{ hits, misses atomic.Uint64 }

// Hit counts a Get the cache answered; Miss one it did not.
func (c *CacheCounts) Hit()  { c.hits.Add(1) }
func (c *CacheCounts) Miss() { c.misses.Add(1) }

// CacheStats returns the counts so far.
func (c *CacheCounts) CacheStats() (hits, misses uint64) { return c.hits.Load(), c.misses.Load() }

// CacheReporter is a store with a read cache (for metrics).
type CacheReporter interface {
	CacheStats() (hits, misses uint64)
}

// LatestGetter is a store whose Get may answer from a cache that sees other processes'
// writes only after a delay: GetLatest reads the key's committed value, as Update does
// after losing a compare-and-swap.
type LatestGetter interface {
	GetLatest(ctx context.Context, key string) (KV, error)
}

// MaxRetries bounds the compare-and-swap retries of Update.
const MaxRetries = 16

// Update reads key, calls fn with its record (exists false when absent) and writes the
// result if key has not changed meanwhile, retrying up to MaxRetries times. fn returns
// the new value, or nil to delete; extra ops join the same atomic batch. Updates of one
// key within this process take turns (fn must not update the same key): they do not
// fail each other's compare-and-swap, which under batched commits would let the writer
// that just won keep winning. Writers in other processes still meet the CAS.
func Update(ctx context.Context, s Store, key string, fn func(old KV, exists bool) (new []byte, extra []Op, err error)) (int64, error) {
	unlock, err := updating.lock(ctx, key)
	if err != nil {
		return 0, err
	}
	defer unlock()
	get := s.Get
	for range MaxRetries {
		cur, err := get(ctx, key)
		exists := err == nil
		if err != nil && !errors.Is(err, ErrNotFound) {
			return 0, err
		}
		val, extra, err := fn(cur, exists)
		if err != nil {
			return 0, err
		}
		var op Op
		switch {
		case val == nil && exists:
			op = DeleteAt(key, cur.Rev)
		case val == nil:
			op = CheckAbsent(key)
		case exists:
			op = PutAt(key, val, cur.Rev)
		default:
			op = Create(key, val)
		}
		rev, err := s.Apply(ctx, append([]Op{op}, extra...)...)
		var oe *OpError
		if errors.As(err, &oe) && oe.Key == key && (errors.Is(err, ErrConflict) || errors.Is(err, ErrExists)) {
			if l, ok := s.(LatestGetter); ok {
				get = l.GetLatest // another process's write: read past any cache that has not seen it yet
			}
			continue // key changed between read and write: read again
		}
		return rev, err
	}
	return 0, fmt.Errorf("store: %s: %w after %d attempts", key, ErrConflict, MaxRetries)
}

// keyTurns queues the Update calls of each key in this process, in arrival order.
type keyTurns struct {
	mu sync.Mutex
	m  map[string]*turn
}

type turn struct {
	slot    chan struct{} // holds a token while an Update of the key runs
	waiting int           // Update calls holding or waiting for the slot
}

var updating keyTurns

// lock waits for key's turn, or for ctx.
func (k *keyTurns) lock(ctx context.Context, key string) (unlock func(), err error) {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*turn{}
	}
	t := k.m[key]
	if t == nil {
		t = &turn{slot: make(chan struct{}, 1)}
		k.m[key] = t
	}
	t.waiting++
	k.mu.Unlock()
	leave := func() {
		k.mu.Lock()
		if t.waiting--; t.waiting == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
	select {
	case t.slot <- struct{}{}:
		return func() { <-t.slot; leave() }, nil
	case <-ctx.Done():
		leave()
		return nil, ctx.Err()
	}
}

// MaxKeyLen bounds keys, as etcd and bolt do in their own ways.
const MaxKeyLen = 1024

// ValidKey rejects empty and oversized keys.
func ValidKey(key string) error {
	if key == "" || len(key) > MaxKeyLen {
		return fmt.Errorf("store: key of %d bytes: want 1 to %d", len(key), MaxKeyLen)
	}
	return nil
}
