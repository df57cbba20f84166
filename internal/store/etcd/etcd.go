// Package etcd is the store contract on an etcd cluster (v3 API), so that several
// 'gmsa server' processes share one directory: a batch is one etcd transaction
// (Txn(If(conditions…).Then(writes…))), a key's revision is its etcd mod revision,
// and lists read one revision of the key space, page by page.
package etcd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"gmsa/internal/store"
)

// Options say how to reach the cluster.
type Options struct {
	Endpoints   []string
	Prefix      string // keys live under it: several domains share a cluster (default "gmsa/")
	DialTimeout time.Duration
	// MaxOps is the cluster's --max-txn-ops (etcd's default 128): a batch over it is
	// refused before it is sent, and Restore writes batches of this size.
	MaxOps int
	Config clientv3.Config // TLS, credentials; Endpoints and DialTimeout above win
	// MaxStaleness bounds how old a value Get serves from the watch-fed cache may be
	// (see watchCache; default 2 s); negative turns the cache off.
	MaxStaleness time.Duration
	// CacheBytes bounds the keys and values the cache holds (default DefaultCacheBytes).
	CacheBytes int
	// Now is the clock the cache's staleness is measured by (default time.Now).
	Now func() time.Time
}

// Store is a store.Store on etcd.
type Store struct {
	c      *clientv3.Client
	prefix string
	maxOps int
	closed atomic.Bool
	cache  *watchCache // nil: off
	store.CacheCounts
}

// ErrNoQuorum is a cluster that did not answer in time: no member reachable, or no
// leader. It is a store.ErrUnavailable.
var ErrNoQuorum error = noQuorum{}

type noQuorum struct{}

func (noQuorum) Error() string {
	return "the cluster did not answer (no reachable member or no quorum)"
}
func (noQuorum) Is(target error) bool { return target == store.ErrUnavailable }

// pageSize is how many keys a List reads per request.
const pageSize = 1000

// Open connects to the cluster and checks that it answers.
func Open(ctx context.Context, opt Options) (*Store, error) {
	if len(opt.Endpoints) == 0 {
		return nil, errors.New("etcd: no endpoints")
	}
	if opt.Prefix == "" {
		opt.Prefix = "gmsa/"
	}
	if opt.DialTimeout <= 0 {
		opt.DialTimeout = 5 * time.Second
	}
	if opt.MaxOps <= 0 {
		opt.MaxOps = 128
	}
	cfg := opt.Config
	cfg.Endpoints, cfg.DialTimeout = opt.Endpoints, opt.DialTimeout
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop() // failures come back as errors; the client's own log would repeat them
	}
	c, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	s := &Store{c: c, prefix: opt.Prefix, maxOps: opt.MaxOps}
	cctx, cancel := context.WithTimeout(ctx, opt.DialTimeout)
	defer cancel()
	if _, err := c.Get(cctx, opt.Prefix, clientv3.WithCountOnly()); err != nil {
		c.Close()
		return nil, s.wrap(cctx, err)
	}
	if opt.MaxStaleness == 0 {
		opt.MaxStaleness = DefaultMaxStaleness
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.MaxStaleness > 0 {
		if opt.CacheBytes <= 0 {
			opt.CacheBytes = DefaultCacheBytes
		}
		s.startCache(opt.MaxStaleness, opt.CacheBytes, opt.Now)
	}
	return s, nil
}

// DefaultMaxStaleness is how old a cached value may be by default: another server's
// write is served here at most this long after it was acknowledged there.
const DefaultMaxStaleness = 2 * time.Second

// MaxBatch is the largest batch Apply takes (store.Restore writes batches of it).
func (s *Store) MaxBatch() int { return s.maxOps }

func (s *Store) wrap(ctx context.Context, err error) error {
	switch {
	case ctx.Err() != nil: // the caller's deadline passed first, whatever code the server gave
		return fmt.Errorf("etcd: %w: %v", ErrNoQuorum, err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, rpctypes.ErrTimeout), errors.Is(err, rpctypes.ErrTimeoutDueToLeaderFail),
		errors.Is(err, rpctypes.ErrNoLeader), errors.Is(err, rpctypes.ErrTimeoutDueToConnectionLost),
		status.Code(err) == codes.Unavailable, status.Code(err) == codes.DeadlineExceeded,
		// A member that cannot commit in time answers with its own deadline as an
		// untyped error.
		status.Code(err) == codes.Unknown && strings.Contains(status.Convert(err).Message(), context.DeadlineExceeded.Error()):
		return fmt.Errorf("etcd: %w: %v", ErrNoQuorum, err)
	}
	return fmt.Errorf("etcd: %w", err)
}

// Generation is the revision of the watch's last event while the cache serves reads;
// without the cache it cannot vouch for anything (see store.Generations).
func (s *Store) Generation() (uint64, bool) {
	if s.cache == nil {
		return 0, false
	}
	return s.cache.generation()
}

func (s *Store) Get(ctx context.Context, key string) (store.KV, error) {
	if s.closed.Load() {
		return store.KV{}, store.ErrClosed
	}
	if s.cache != nil {
		if kv, found, ok := s.cache.get(key); ok {
			s.Hit()
			if !found {
				return store.KV{}, &store.OpError{Key: key, Err: store.ErrNotFound}
			}
			return kv, nil
		}
		s.Miss()
	}
	return s.GetLatest(ctx, key)
}

// GetLatest reads key from the cluster (a linearizable read), bypassing the cache and
// filling it (store.LatestGetter).
func (s *Store) GetLatest(ctx context.Context, key string) (store.KV, error) {
	if s.closed.Load() {
		return store.KV{}, store.ErrClosed
	}
	r, err := s.c.Get(ctx, s.prefix+key)
	if err != nil {
		return store.KV{}, s.wrap(ctx, err)
	}
	if len(r.Kvs) == 0 {
		if s.cache != nil {
			s.cache.fill(key, false, nil, 0, r.Header.Revision)
		}
		return store.KV{}, &store.OpError{Key: key, Err: store.ErrNotFound}
	}
	kv := r.Kvs[0]
	if s.cache != nil {
		s.cache.fill(key, true, kv.Value, kv.ModRevision, r.Header.Revision)
	}
	return store.KV{Key: key, Value: kv.Value, Rev: kv.ModRevision}, nil
}

// List reads every key with the prefix at one revision, in pages.
func (s *Store) List(ctx context.Context, prefix string) ([]store.KV, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	out, _, err := s.list(ctx, prefix)
	return out, err
}

// list reads every key with the prefix at one revision, which it returns.
func (s *Store) list(ctx context.Context, prefix string) ([]store.KV, int64, error) {
	var out []store.KV
	rev, err := s.scan(ctx, prefix, "", func(key, value []byte, rev int64) bool {
		out = append(out, store.KV{Key: string(key), Value: value, Rev: rev}) // the response's own bytes
		return true
	})
	if err != nil {
		return nil, 0, err
	}
	return out, rev, nil
}

// Scan reads the keys with the prefix after `after` at one revision, a page at a time.
func (s *Store) Scan(ctx context.Context, prefix, after string, fn func(key, value []byte, rev int64) bool) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	_, err := s.scan(ctx, prefix, after, fn)
	return err
}

// scan pages through the range at the revision of its first page, which it returns.
func (s *Store) scan(ctx context.Context, prefix, after string, fn func(key, value []byte, rev int64) bool) (int64, error) {
	from, end := s.prefix+prefix, clientv3.GetPrefixRangeEnd(s.prefix+prefix)
	if after != "" && after >= prefix {
		from = s.prefix + after + "\x00"
	}
	var rev int64
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(pageSize), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		r, err := s.c.Get(ctx, from, opts...)
		if err != nil {
			return 0, s.wrap(ctx, err)
		}
		if rev == 0 {
			rev = r.Header.Revision
		}
		for _, kv := range r.Kvs {
			if !fn(kv.Key[len(s.prefix):], kv.Value, kv.ModRevision) {
				return rev, nil
			}
		}
		if !r.More || len(r.Kvs) == 0 {
			return rev, nil
		}
		from = string(r.Kvs[len(r.Kvs)-1].Key) + "\x00"
	}
}

// Apply runs the batch as one transaction: the conditions as comparisons, the writes
// (the last write of a key wins, as etcd takes one per key) as its success branch, and
// on failure reads of the conditions' keys to name the first that failed.
func (s *Store) Apply(ctx context.Context, ops ...store.Op) (int64, error) {
	if s.closed.Load() {
		return 0, store.ErrClosed
	}
	var cmps []clientv3.Cmp
	var reads []clientv3.Op
	var conds []store.Op
	writes := map[string]clientv3.Op{}
	var order []string
	for _, op := range ops {
		if err := store.ValidKey(op.Key); err != nil {
			return 0, err
		}
		k := s.prefix + op.Key
		switch op.Cond {
		case store.Absent:
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(k), "=", 0))
		case store.Present:
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(k), ">", 0))
		case store.AtRev:
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(k), "=", op.Rev))
		}
		if op.Cond != store.Always {
			conds = append(conds, op)
			reads = append(reads, clientv3.OpGet(k, clientv3.WithKeysOnly()))
		}
		if op.Check {
			continue
		}
		if _, seen := writes[k]; !seen {
			order = append(order, k)
		}
		if op.Delete {
			writes[k] = clientv3.OpDelete(k)
		} else {
			writes[k] = clientv3.OpPut(k, string(op.Value))
		}
	}
	then := make([]clientv3.Op, 0, len(order))
	for _, k := range order {
		then = append(then, writes[k])
	}
	// etcd bounds the comparisons, the writes and the reads of a transaction each.
	if n := max(len(cmps), len(then), len(reads)); n > s.maxOps {
		return 0, fmt.Errorf("etcd: a batch of %d operations is over the cluster's %d (--max-txn-ops)", n, s.maxOps)
	}
	if s.cache != nil {
		s.cache.started.Add(1)
		defer s.cache.finished.Add(1)
	}
	r, err := s.c.Txn(ctx).If(cmps...).Then(then...).Else(reads...).Commit()
	if err != nil {
		return 0, s.wrap(ctx, err)
	}
	if r.Succeeded {
		if s.cache != nil {
			s.cache.wrote(r.Header.Revision)
		}
		return r.Header.Revision, nil
	}
	for i, op := range conds {
		var cur int64
		if rr := r.Responses[i].GetResponseRange(); rr != nil && len(rr.Kvs) > 0 {
			cur = rr.Kvs[0].ModRevision
		}
		if err := op.CheckCond(cur); err != nil {
			return 0, err
		}
	}
	return 0, fmt.Errorf("etcd: the transaction's conditions failed: %w", store.ErrConflict)
}

// Close releases the client; the cluster keeps the data.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.closeCache()
	return s.c.Close()
}
