package etcd

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"gmsa/internal/store"
)

// watchCache serves repeated Gets from memory, kept current by a watch on the store's
// prefix, so that a server on etcd reads as fast as one on the embedded store while
// seeing the other servers' writes within a stated bound.
//
// The rules that keep it correct:
//   - rev is the revision of the last event the watch applied. Every entry is the key's
//     state as of asOf ≥ rev or later: an entry read from the cluster at header revision
//     H is added only while rev ≤ H (the events after H have not been applied yet and
//     will update it), and events at or below an entry's asOf are already in it.
//   - Within this process reads are linearizable, as the embedded store's cache makes
//     them: while one of this process's writes is in flight nothing is served from
//     memory, and after it the cache answers only once its event has arrived (rev ≥ the
//     write's revision).
//   - Another server's write is served once its event arrives. An entry is served only
//     while the cluster confirmed within MaxStaleness that the watch is alive: it asks
//     for a progress report every MaxStaleness/4, and a report confirms the time of the
//     oldest request still unanswered. (Only a confirmation, never a revision, is taken
//     from a report: etcd before 3.4.24 and 3.5.8 may send a requested report ahead of
//     events still queued on the stream, etcd issue 15220.) A watch that ends — no leader
//     on its member, compaction, a lost connection — empties the cache until a new one
//     runs.
//
// A hit is therefore a committed value that was current at most MaxStaleness (plus the
// time events spend queued in the stream) ago, and never older than what this process
// wrote or read before.
type watchCache struct {
	maxStale time.Duration
	now      func() time.Time

	mu        sync.Mutex
	m         map[string]cachedValue
	bytes     int
	rev       int64     // the revision of the last event applied
	confirmed time.Time // when the watch was last confirmed alive
	running   bool      // a watch is applying events; the map is meaningful
	asked     []time.Time

	ownRev            atomic.Int64  // the revision of this process's last write
	started, finished atomic.Uint64 // this process's writes begun and ended

	stop context.CancelFunc
	done chan struct{}
}

// cachedValue is a key's value (nil: absent) at its mod revision, as of revision asOf.
type cachedValue struct {
	val       []byte
	rev, asOf int64
}

const maxCacheBytes = 64 << 20

// get returns key's cached state: found is whether the key exists, ok whether the cache
// may answer at all.
func (c *watchCache) get(key string) (kv store.KV, found, ok bool) {
	f := c.finished.Load()
	if c.started.Load() != f {
		return kv, false, false // a write of this process is in flight
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running || c.rev < c.ownRev.Load() || now.Sub(c.confirmed) > c.maxStale {
		return kv, false, false
	}
	v, hit := c.m[key]
	if !hit {
		return kv, false, false
	}
	if v.val == nil {
		return kv, false, true
	}
	return store.KV{Key: key, Value: bytes.Clone(v.val), Rev: v.rev}, true, true
}

// fill records key's state as read from the cluster at header revision at.
func (c *watchCache) fill(key string, val []byte, modRev, at int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running || c.rev > at {
		return
	}
	if _, had := c.m[key]; had {
		return
	}
	if c.bytes+len(key)+len(val) > maxCacheBytes {
		return
	}
	if val != nil {
		val = bytes.Clone(val)
	}
	c.m[key] = cachedValue{val, modRev, at}
	c.bytes += len(key) + len(val)
}

// wrote records the revision of this process's write.
func (c *watchCache) wrote(rev int64) {
	for {
		cur := c.ownRev.Load()
		if rev <= cur || c.ownRev.CompareAndSwap(cur, rev) {
			return
		}
	}
}

// reset starts a new view at revision rev (from a watch that starts after it).
func (c *watchCache) reset(running bool, rev int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m, c.bytes, c.rev, c.running, c.asked = map[string]cachedValue{}, 0, rev, running, nil
	c.confirmed = time.Time{}
}

// apply takes one watch response.
func (c *watchCache) apply(prefix string, r clientv3.WatchResponse) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ev := range r.Events {
		key := string(ev.Kv.Key[len(prefix):])
		at := ev.Kv.ModRevision
		if old, had := c.m[key]; had && at > old.asOf {
			c.bytes -= len(key) + len(old.val)
			if ev.Type == clientv3.EventTypeDelete {
				c.m[key] = cachedValue{asOf: at}
				c.bytes += len(key)
			} else {
				c.m[key] = cachedValue{bytes.Clone(ev.Kv.Value), at, at}
				c.bytes += len(key) + len(ev.Kv.Value)
			}
		}
		c.rev = max(c.rev, at)
	}
	if r.IsProgressNotify() && len(c.asked) > 0 {
		// It answers the oldest request still unanswered, or a later one: conservative.
		c.confirmed, c.asked = c.asked[0], c.asked[1:]
	}
}

// asking records when a progress report was requested.
func (c *watchCache) asking(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.asked) < 64 {
		c.asked = append(c.asked, t)
	}
}

// startCache runs the watch that feeds the cache until Close.
func (s *Store) startCache(maxStale time.Duration, now func() time.Time) {
	ctx, cancel := context.WithCancel(context.Background())
	s.cache = &watchCache{maxStale: maxStale, now: now, stop: cancel, done: make(chan struct{})}
	s.cache.reset(false, 0)
	go s.watchLoop(ctx)
}

// watchLoop keeps one watch running, starting a new one (and a new view) whenever the
// last one ends.
func (s *Store) watchLoop(ctx context.Context) {
	defer close(s.cache.done)
	c := s.cache
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		gctx, cancel := context.WithTimeout(ctx, c.maxStale)
		r, err := s.c.Get(gctx, s.prefix, clientv3.WithCountOnly())
		cancel()
		if err != nil {
			c.reset(false, 0)
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		start := r.Header.Revision
		wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		ch := s.c.Watch(wctx, s.prefix, clientv3.WithPrefix(), clientv3.WithRev(start+1), clientv3.WithProgressNotify())
		c.reset(true, start)
		c.asking(c.now())
		s.c.RequestProgress(wctx)
		ticker := time.NewTicker(c.maxStale / 4)
	watching:
		for {
			select {
			case wr, open := <-ch:
				if !open || wr.Canceled || wr.Err() != nil {
					break watching
				}
				c.apply(s.prefix, wr)
			case <-ticker.C:
				c.asking(c.now())
				s.c.RequestProgress(wctx)
			}
		}
		ticker.Stop()
		wcancel()
		c.reset(false, 0)
	}
}

// closeCache stops the watch.
func (s *Store) closeCache() {
	if s.cache != nil {
		s.cache.stop()
		<-s.cache.done
	}
}
