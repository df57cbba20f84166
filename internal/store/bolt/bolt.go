// Package bolt is the embedded default store: one bbolt file, fsynced on every commit.
// Concurrent Apply calls are coalesced into shared transactions (bbolt's Batch), so
// many writers pay for one fsync. The file is locked while open: a second process gets
// store.ErrLocked.
package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"time"

	bbolt "go.etcd.io/bbolt"
	bberrors "go.etcd.io/bbolt/errors"

	"gmsa/internal/store"
)

var (
	bucketKV   = []byte("kv")
	bucketMeta = []byte("meta")
	keyRev     = []byte("rev")
)

// Store is a store.Store in a bbolt file.
type Store struct {
	db    *bbolt.DB
	cache readCache
	store.CacheCounts
}

// Generation is the count of writes finished, while none is in progress (see
// store.Generations).
func (s *Store) Generation() (uint64, bool) { return s.cache.quiet() }

// Options tune Open.
type Options struct {
	// LockTimeout is how long Open waits for another process to release the file.
	LockTimeout time.Duration
	// ReadOnly opens the file for reading, sharing it with other readers.
	ReadOnly bool
	// ReadCache is the size in bytes of the raw records kept in memory (see readCache),
	// in whole MiB, from one to 64 GiB; 0 is DefaultReadCache.
	ReadCache int64
}

// Open opens or creates the store at path (mode 0600).
func Open(path string, opt Options) (*Store, error) {
	if opt.LockTimeout == 0 {
		opt.LockTimeout = 250 * time.Millisecond
	}
	db, err := openCurrent(path, opt)
	if errors.Is(err, bberrors.ErrTimeout) {
		return nil, fmt.Errorf("store: %s: %w (is a gmsa server running on it?)", path, store.ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("store: opening %s: %w", path, err)
	}
	db.MaxBatchDelay = 2 * time.Millisecond // a lone writer waits this long for company
	ready := false                          // the buckets exist: no write (and no fsync) at every open
	db.View(func(tx *bbolt.Tx) error {
		ready = tx.Bucket(bucketKV) != nil && tx.Bucket(bucketMeta) != nil
		return nil
	})
	if !opt.ReadOnly {
		os.Remove(compactCopy(path)) // a killed compaction's, if any
	}
	if !opt.ReadOnly && !ready {
		if err := db.Update(func(tx *bbolt.Tx) error {
			for _, b := range [][]byte{bucketKV, bucketMeta} {
				if _, err := tx.CreateBucketIfNotExists(b); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			db.Close()
			return nil, fmt.Errorf("store: initializing %s: %w", path, err)
		}
	}
	s := &Store{db: db}
	s.cache.nchunks = min(max(int(opt.ReadCache/cacheChunk), 1), maxCacheChunks)
	if opt.ReadCache == 0 {
		s.cache.nchunks = defaultCacheChunks
	}
	return s, nil
}

// openCurrent opens the file at path and locks it, and makes sure the lock is on the
// file that path names afterwards: Compact renames a new file over the one it holds, and
// an open that waited for its lock must not then serve the file that was replaced.
func openCurrent(path string, opt Options) (*bbolt.DB, error) {
	for range 3 {
		var file *os.File
		db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: opt.LockTimeout, ReadOnly: opt.ReadOnly, FreelistType: bbolt.FreelistMapType,
			OpenFile: func(name string, flag int, mode os.FileMode) (*os.File, error) {
				f, err := os.OpenFile(name, flag, mode)
				file = f
				return f, err
			}})
		if err != nil {
			return nil, err
		}
		held, herr := file.Stat()
		named, nerr := os.Stat(path)
		if herr == nil && nerr == nil && os.SameFile(held, named) {
			return db, nil
		}
		db.Close()
	}
	return nil, errors.New("the file was replaced while it was being opened, three times")
}

// decode splits a record (8-byte big-endian revision, then the value) without copying:
// raw is the store's own copy, never changed afterwards, and callers only read values
// (see store.Store).
func decode(key string, raw []byte) store.KV {
	return store.KV{Key: key, Rev: int64(binary.BigEndian.Uint64(raw)), Value: raw[8:len(raw):len(raw)]}
}

func (s *Store) view(fn func(kv *bbolt.Bucket) error) error {
	err := s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketKV)
		if b == nil {
			return store.ErrNotFound // a read-only open of a file never written
		}
		return fn(b)
	})
	if errors.Is(err, bberrors.ErrDatabaseNotOpen) {
		return store.ErrClosed
	}
	return err
}

func (s *Store) Get(_ context.Context, key string) (store.KV, error) {
	notFound := func() error { return &store.OpError{Key: key, Err: store.ErrNotFound} }
	if raw, ok := s.cache.get(key); ok {
		s.Hit()
		if raw == nil {
			return store.KV{}, notFound()
		}
		return decode(key, raw), nil
	}
	s.Miss()
	gen, quiet := s.cache.quiet()
	var kv store.KV
	var raw []byte
	err := s.view(func(b *bbolt.Bucket) error {
		if v := b.Get([]byte(key)); v != nil {
			raw = bytes.Clone(v)
		}
		return nil
	})
	if err != nil {
		return kv, err
	}
	if quiet {
		s.cache.put(gen, key, raw)
	}
	if raw == nil {
		return kv, notFound()
	}
	return decode(key, raw), nil
}

func (s *Store) List(_ context.Context, prefix string) ([]store.KV, error) {
	var out []store.KV
	err := s.view(func(b *bbolt.Bucket) error {
		c := b.Cursor()
		p := []byte(prefix)
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			out = append(out, decode(string(k), bytes.Clone(v))) // v lives only as long as the transaction
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return out, err
}

func (s *Store) Scan(_ context.Context, prefix, after string, fn func(key, value []byte, rev int64) bool) error {
	err := s.view(func(b *bbolt.Bucket) error {
		c := b.Cursor()
		p := []byte(prefix)
		start := p
		if after != "" && after >= prefix {
			start = []byte(after)
		}
		k, v := c.Seek(start)
		if after != "" && k != nil && string(k) == after {
			k, v = c.Next()
		}
		for ; k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			if !fn(k, v[8:], int64(binary.BigEndian.Uint64(v))) {
				break
			}
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

func (s *Store) Apply(_ context.Context, ops ...store.Op) (int64, error) {
	for i := range ops {
		if err := store.ValidKey(ops[i].Key); err != nil {
			return 0, err
		}
	}
	var rev int64
	s.cache.started.Add(1)
	defer s.cache.finished.Add(1)
	err := s.db.Batch(func(tx *bbolt.Tx) error {
		b, meta := tx.Bucket(bucketKV), tx.Bucket(bucketMeta)
		for i := range ops {
			var cur int64
			if raw := b.Get([]byte(ops[i].Key)); raw != nil {
				cur = int64(binary.BigEndian.Uint64(raw))
			}
			if err := ops[i].CheckCond(cur); err != nil {
				return err
			}
		}
		if r := meta.Get(keyRev); r != nil {
			rev = int64(binary.BigEndian.Uint64(r))
		}
		rev++
		var rb [8]byte
		binary.BigEndian.PutUint64(rb[:], uint64(rev))
		if err := meta.Put(keyRev, bytes.Clone(rb[:])); err != nil {
			return err
		}
		for _, op := range ops {
			var err error
			switch {
			case op.Check:
			case op.Delete:
				err = b.Delete([]byte(op.Key))
			default:
				err = b.Put([]byte(op.Key), append(rb[:], op.Value...))
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, bberrors.ErrDatabaseNotOpen) {
		return 0, store.ErrClosed
	}
	if errors.Is(err, bberrors.ErrDatabaseReadOnly) {
		return 0, fmt.Errorf("store: opened read-only: %w", err)
	}
	return rev, err
}

func (s *Store) Close() error { return s.db.Close() }

// ReadCacheBytes is the size of the read cache's ring.
func (s *Store) ReadCacheBytes() int64 { return int64(s.cache.capacity()) }

// Path is the file behind the store.
func (s *Store) Path() string { return s.db.Path() }

// Exists reports whether a store file exists at path.
func Exists(path string) bool { _, err := os.Stat(path); return err == nil }
