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
	db *bbolt.DB
}

// Options tune Open.
type Options struct {
	// LockTimeout is how long Open waits for another process to release the file.
	LockTimeout time.Duration
	// ReadOnly opens the file for reading, sharing it with other readers.
	ReadOnly bool
}

// Open opens or creates the store at path (mode 0600).
func Open(path string, opt Options) (*Store, error) {
	if opt.LockTimeout == 0 {
		opt.LockTimeout = 250 * time.Millisecond
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: opt.LockTimeout, ReadOnly: opt.ReadOnly, FreelistType: bbolt.FreelistMapType})
	if errors.Is(err, bberrors.ErrTimeout) {
		return nil, fmt.Errorf("store: %s: %w (is a gmsa server running on it?)", path, store.ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("store: opening %s: %w", path, err)
	}
	db.MaxBatchDelay = 2 * time.Millisecond // a lone writer waits this long for company
	if !opt.ReadOnly {
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
	return &Store{db: db}, nil
}

// value layout: 8-byte big-endian revision, then the value.
func decode(key, raw []byte) store.KV {
	return store.KV{Key: string(key), Rev: int64(binary.BigEndian.Uint64(raw)), Value: append([]byte(nil), raw[8:]...)}
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
	var kv store.KV
	err := s.view(func(b *bbolt.Bucket) error {
		raw := b.Get([]byte(key))
		if raw == nil {
			return &store.OpError{Key: key, Err: store.ErrNotFound}
		}
		kv = decode([]byte(key), raw)
		return nil
	})
	return kv, err
}

func (s *Store) List(_ context.Context, prefix string) ([]store.KV, error) {
	var out []store.KV
	err := s.view(func(b *bbolt.Bucket) error {
		c := b.Cursor()
		p := []byte(prefix)
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			out = append(out, decode(k, v))
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return out, err
}

func (s *Store) Apply(_ context.Context, ops ...store.Op) (int64, error) {
	for i := range ops {
		if err := store.ValidKey(ops[i].Key); err != nil {
			return 0, err
		}
	}
	var rev int64
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

// Path is the file behind the store.
func (s *Store) Path() string { return s.db.Path() }

// Exists reports whether a store file exists at path.
func Exists(path string) bool { _, err := os.Stat(path); return err == nil }
