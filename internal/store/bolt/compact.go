package bolt

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	bbolt "go.etcd.io/bbolt"
)

// CompactStats is what Compact did: the file's size before and after, and the keys it
// copied and compared.
type CompactStats struct {
	Before, After int64
	Keys          int
}

// compactTxSize bounds each transaction of the copy, so that the copy's memory does
// not grow with the store.
const compactTxSize = 64 << 20

// Compact rewrites the store file at path with every page full and no free page, the
// offline defragmentation AD does with ntdsutil's "files compact to". A bbolt file
// never shrinks: pages freed by deletes stay in it, and pages split by inserts in
// random order (names, GUIDs) stay half full, so a store loaded in bulk is near twice
// its data and each read walks more pages than it needs.
//
// The copy goes to path.compact beside the file, is compared key by key with the
// original, synced, and then renamed over it; the directory is synced after. Compact
// holds the file's lock throughout, so no server can open it (store.ErrLocked when one
// holds it already), and an interrupted compaction leaves the original untouched.
func Compact(path string) (CompactStats, error) {
	var st CompactStats
	fi, err := os.Stat(path)
	if err != nil {
		return st, fmt.Errorf("store: %w", err)
	}
	st.Before = fi.Size()
	src, err := Open(path, Options{})
	if err != nil {
		return st, err
	}
	defer src.Close()
	tmp := compactCopy(path)
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return st, fmt.Errorf("store: removing the leftover %s: %w", tmp, err)
	}
	dst, err := bbolt.Open(tmp, 0o600, &bbolt.Options{NoSync: true, FreelistType: bbolt.FreelistMapType})
	if err != nil {
		return st, fmt.Errorf("store: creating %s: %w", tmp, err)
	}
	err = bbolt.Compact(dst, src.db, compactTxSize)
	if err == nil {
		st.Keys, err = sameContent(src.db, dst)
	}
	if err == nil {
		err = dst.Sync() // NoSync skipped every commit's sync: one for the whole file
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return st, fmt.Errorf("store: compacting %s (the original is unchanged): %w", path, err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil { // the rename is on disk too
		d.Sync()
		d.Close()
	}
	if fi, err := os.Stat(path); err == nil {
		st.After = fi.Size()
	}
	return st, nil
}

// compactCopy is where Compact writes the copy of the store at path. A copy left there
// by a compaction that was killed holds every key, as the store does: Open removes it
// once it holds the store's lock, when no compaction can be running.
func compactCopy(path string) string { return path + ".compact" }

// sameContent compares every bucket, key and value of a and b (the store's buckets hold
// no nested ones) and returns the count of keys; an error names the first difference.
func sameContent(a, b *bbolt.DB) (int, error) {
	n := 0
	err := a.View(func(ta *bbolt.Tx) error {
		return b.View(func(tb *bbolt.Tx) error {
			return sameKeys(ta.Cursor(), tb.Cursor(), func(name []byte) error {
				ba, bb := ta.Bucket(name), tb.Bucket(name)
				if ba == nil || bb == nil {
					return fmt.Errorf("bucket %q is not in both", name)
				}
				return sameKeys(ba.Cursor(), bb.Cursor(), func(k []byte) error {
					n++
					return nil
				})
			})
		})
	})
	return n, err
}

// sameKeys walks ca and cb together and calls each for every key, which must be alike
// in both with the same value.
func sameKeys(ca, cb *bbolt.Cursor, each func(k []byte) error) error {
	ka, va := ca.First()
	kb, vb := cb.First()
	for ka != nil || kb != nil {
		if !bytes.Equal(ka, kb) || !bytes.Equal(va, vb) {
			return fmt.Errorf("the copy differs from the original at key %q", ka)
		}
		if err := each(ka); err != nil {
			return err
		}
		ka, va = ca.Next()
		kb, vb = cb.Next()
	}
	return nil
}
