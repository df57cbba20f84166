package directory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"gmsa/internal/store"
)

// IndexReport is what a walk over the indexes found: entries an object needs that the
// store lacks or holds with another value (missing), entries no object needs (stale),
// and unique names two objects claim (conflicts, which are reported, never overwritten).
type IndexReport struct {
	Objects   int      `json:"objects"`
	Entries   int      `json:"entries"`
	Missing   int      `json:"missing"`
	Stale     int      `json:"stale"`
	Conflicts int      `json:"conflicts"`
	Examples  []string `json:"examples,omitempty"` // the first few keys at fault
	Repaired  bool     `json:"repaired"`
}

// OK reports whether the indexes match the objects.
func (r IndexReport) OK() bool {
	return r.Missing+r.Stale+r.Conflicts == 0 || r.Repaired && r.Conflicts == 0
}

func (r *IndexReport) fault(key string) {
	if len(r.Examples) < 8 {
		r.Examples = append(r.Examples, strings.ReplaceAll(key, "\x00", "␀"))
	}
}

// indexFamilies are the key prefixes the directory derives from objects (indexOps).
var indexFamilies = []string{"dn/", "sam/", "sid/", "spn/", "class/", "memberof/", "members/", "ix/", "tree/"}

// CheckIndexes compares every index entry with the objects, changing nothing.
func (d *Directory) CheckIndexes(ctx context.Context) (IndexReport, error) {
	return d.walkIndexes(ctx, false)
}

// RebuildIndexes writes the entries objects need and deletes those none needs. Each
// batch is atomic and the walk can be repeated: a rebuild interrupted midway is finished
// by the next. Unique names two objects claim are left for an administrator.
func (d *Directory) RebuildIndexes(ctx context.Context) (IndexReport, error) {
	r, err := d.walkIndexes(ctx, true)
	r.Repaired = err == nil
	return r, err
}

// upgradeIndexes rebuilds the indexes of a store written by an older layout, once.
func (d *Directory) upgradeIndexes(ctx context.Context) error {
	kv, err := d.st.Get(ctx, keyIndexVersion)
	if err == nil && string(kv.Value) == indexVersion {
		return nil
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("directory: %w", err)
	}
	r, err := d.RebuildIndexes(ctx)
	if err != nil {
		return fmt.Errorf("directory: rebuilding the indexes for layout %s: %w", indexVersion, err)
	}
	d.log.Info("indexes rebuilt for the current layout", "layout", indexVersion, "objects", r.Objects, "added", r.Missing, "removed", r.Stale)
	if _, err := d.commit(ctx, store.Put(keyIndexVersion, []byte(indexVersion))); err != nil {
		return fmt.Errorf("directory: %w", err)
	}
	return nil
}

// walkChunk is how many keys one read view of a walk covers.
const walkChunk = 2048

// scanChunks walks a key range a chunk at a time: each chunk's entries are copied out
// of the store's view and handed to fn outside it, so fn may read and write the store.
func (d *Directory) scanChunks(ctx context.Context, prefix, after string, fn func([]store.KV) error) error {
	var chunk []store.KV
	for {
		chunk = chunk[:0]
		err := d.st.Scan(ctx, prefix, after, func(k, v []byte, rev int64) bool {
			chunk = append(chunk, store.KV{Key: string(k), Value: bytes.Clone(v), Rev: rev})
			return len(chunk) < walkChunk
		})
		if err != nil {
			return err
		}
		if len(chunk) == 0 {
			return nil
		}
		if err := fn(chunk); err != nil {
			return err
		}
		if len(chunk) < walkChunk {
			return nil
		}
		after = chunk[len(chunk)-1].Key
	}
}

// walkIndexes checks (and with repair, fixes) the index entries: first every entry each
// object needs, then every stored entry against the object it names.
func (d *Directory) walkIndexes(ctx context.Context, repair bool) (IndexReport, error) {
	var r IndexReport
	err := d.scanChunks(ctx, "obj/", "", func(objs []store.KV) error {
		var fix []store.Op
		for _, kv := range objs {
			o, err := decode(kv)
			if err != nil {
				return err
			}
			r.Objects++
			for k, v := range indexOps(o) {
				cur, err := d.st.Get(ctx, k)
				switch {
				case err == nil && bytes.Equal(cur.Value, v):
					continue
				case err == nil && uniqueIndex(k):
					r.Conflicts++ // another object holds the name
				case err == nil || errors.Is(err, store.ErrNotFound):
					r.Missing++
					fix = append(fix, store.Put(k, v))
				default:
					return err
				}
				r.fault(k)
			}
		}
		if repair {
			return store.ApplyInBatches(ctx, d.st, fix)
		}
		return nil
	})
	if err != nil {
		return r, fmt.Errorf("directory: %w", err)
	}
	needs := map[string]map[string][]byte{} // per chunk: an owner's entries
	for _, family := range indexFamilies {
		err := d.scanChunks(ctx, family, "", func(entries []store.KV) error {
			clear(needs)
			var fix []store.Op
			for _, kv := range entries {
				r.Entries++
				owner := indexOwner(kv)
				want, ok := needs[owner]
				if !ok {
					if o, err := d.byGUID(ctx, owner); err == nil {
						want = indexOps(o)
					} else if !errors.Is(err, ErrNotFound) {
						return err
					}
					needs[owner] = want
				}
				if _, needed := want[kv.Key]; needed {
					continue
				}
				r.Stale++
				r.fault(kv.Key)
				fix = append(fix, store.Delete(kv.Key))
			}
			if repair {
				return store.ApplyInBatches(ctx, d.st, fix)
			}
			return nil
		})
		if err != nil {
			return r, fmt.Errorf("directory: %w", err)
		}
	}
	return r, nil
}

// indexOwner is the GUID of the object an index entry belongs to.
func indexOwner(kv store.KV) string {
	k := kv.Key
	switch {
	case strings.HasPrefix(k, "class/"):
		return k[strings.LastIndexByte(k, '/')+1:]
	case strings.HasPrefix(k, "memberof/"): // memberof/<member>/<group>: the group's
		return k[strings.LastIndexByte(k, '/')+1:]
	case strings.HasPrefix(k, "members/"): // members/<group>/<member>
		k = k[len("members/"):]
		g, _, _ := strings.Cut(k, "/")
		return g
	case strings.HasPrefix(k, "ix/"):
		return k[strings.LastIndexByte(k, 0)+1:]
	}
	return string(kv.Value) // dn/, sam/, sid/, spn/, tree/: the GUID is the value
}
