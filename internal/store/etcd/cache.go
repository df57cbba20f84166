package etcd

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"gmsa/internal/store"
)

// watchCache serves Gets from memory: a mirror of the domain's keys, loaded at one
// revision when the watch starts and kept current by the watch's events (up to
// maxBytes of keys and values, 64 MiB by default; keys beyond are read from the cluster
// and cached as read), so that a server on etcd reads as fast as one on the embedded
// store while seeing the other servers' writes within a stated bound.
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
//     while the watch was confirmed current within MaxStaleness: every MaxStaleness/4 a
//     linearizable read at local time t returns the cluster's revision H, and a progress
//     report is requested; a report at revision P ≥ H was made after that read, so it
//     confirms t. (Only a confirmation, never a revision, is taken from a report: etcd
//     before 3.4.24 and 3.5.8 may send a requested report ahead of events still queued
//     on the stream, etcd issue 15220.) A watch that ends — no leader on its member,
//     compaction, a lost connection — empties the cache until a new one runs.
//
// A hit is therefore a committed value that was current at most MaxStaleness (plus the
// time events spend queued in the stream) ago, and never older than what this process
// wrote or read before.
type watchCache struct {
	maxStale time.Duration
	maxBytes int
	now      func() time.Time

	mu        sync.Mutex
	m         map[string]cachedValue
	bytes     int
	rev       int64       // the revision of the last event applied
	confirmed time.Time   // when the watch was last confirmed alive
	running   bool        // a watch is applying events; the map is meaningful
	beats     []heartbeat // reads not yet confirmed by a progress report, oldest first

	ownRev            atomic.Int64  // the revision of this process's last write
	started, finished atomic.Uint64 // this process's writes begun and ended

	stop context.CancelFunc
	done chan struct{}
}

// heartbeat is a linearizable read made at local time t that saw revision rev.
type heartbeat struct {
	t   time.Time
	rev int64
}

// cachedValue is a key's value at its mod revision, as of revision asOf.
type cachedValue struct {
	val       []byte
	rev, asOf int64
	present   bool
}

// DefaultCacheBytes is the cache's size when Options leave it out.
const DefaultCacheBytes = 64 << 20

// lockServing takes c.mu when the cache may serve reads: no write of this process in
// flight, the watch running, past this process's last write and confirmed recently.
// Otherwise it returns false without the lock.
func (c *watchCache) lockServing() bool {
	f := c.finished.Load()
	if c.started.Load() != f {
		return false // a write of this process is in flight
	}
	now := c.now()
	c.mu.Lock()
	if !c.running || c.rev < c.ownRev.Load() || now.Sub(c.confirmed) > c.maxStale {
		c.mu.Unlock()
		return false
	}
	return true
}

// generation is the revision of the last event applied, while the cache could serve
// reads (see store.Generations).
func (c *watchCache) generation() (uint64, bool) {
	if !c.lockServing() {
		return 0, false
	}
	defer c.mu.Unlock()
	return uint64(c.rev), true
}

// get returns key's cached state: found is whether the key exists, ok whether the cache
// may answer at all.
func (c *watchCache) get(key string) (kv store.KV, found, ok bool) {
	if !c.lockServing() {
		return kv, false, false
	}
	defer c.mu.Unlock()
	v, hit := c.m[key]
	if !hit {
		return kv, false, false
	}
	if !v.present {
		return kv, false, true
	}
	return store.KV{Key: key, Value: slices.Clip(v.val), Rev: v.rev}, true, true // read-only (see store.Store)
}

// fill records key's state as read from the cluster at header revision at (present
// false: absent).
func (c *watchCache) fill(key string, present bool, val []byte, modRev, at int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running || c.rev > at {
		return
	}
	if _, had := c.m[key]; had {
		return
	}
	if c.bytes+len(key)+len(val) > c.maxBytes {
		return
	}
	c.m[key] = cachedValue{bytes.Clone(val), modRev, at, present}
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
	c.m, c.bytes, c.rev, c.running, c.beats = map[string]cachedValue{}, 0, rev, running, nil
	c.confirmed = time.Time{}
}

// apply takes one watch response.
func (c *watchCache) apply(prefix string, r clientv3.WatchResponse) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ev := range r.Events {
		// An event carries the key's whole new state, so it is taken whether the key was
		// cached or not: the cache stays a mirror of the domain as far as its size allows.
		key := string(ev.Kv.Key[len(prefix):])
		at := ev.Kv.ModRevision
		c.rev = max(c.rev, at)
		old, had := c.m[key]
		if had && at <= old.asOf {
			continue // already in the value read at asOf
		}
		next := cachedValue{asOf: at}
		if ev.Type != clientv3.EventTypeDelete {
			next = cachedValue{bytes.Clone(ev.Kv.Value), at, at, true}
		}
		grow := len(next.val) - len(old.val)
		if !had {
			grow += len(key)
		}
		if c.bytes+grow > c.maxBytes {
			if had { // no room for the new value: forget the key rather than keep the old one
				delete(c.m, key)
				c.bytes -= len(key) + len(old.val)
			}
			continue
		}
		c.m[key] = next
		c.bytes += grow
	}
	if r.IsProgressNotify() {
		n := 0
		for n < len(c.beats) && c.beats[n].rev <= r.Header.Revision {
			c.confirmed = c.beats[n].t
			n++
		}
		c.beats = c.beats[n:]
	}
}

// beat records a heartbeat read.
func (c *watchCache) beat(b heartbeat) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.beats) >= 64 { // reports stopped: the oldest no longer matter
		c.beats = c.beats[1:]
	}
	c.beats = append(c.beats, b)
}

// heartbeat reads the cluster's revision and asks the watch for a progress report.
func (s *Store) heartbeat(ctx context.Context) {
	c := s.cache
	t := c.now()
	hctx, cancel := context.WithTimeout(ctx, c.maxStale/4)
	r, err := s.c.Get(hctx, s.prefix, clientv3.WithCountOnly())
	cancel()
	if err != nil {
		return
	}
	c.beat(heartbeat{t, r.Header.Revision})
	s.c.RequestProgress(ctx)
}

// startCache runs the watch that feeds the cache until Close.
func (s *Store) startCache(maxStale time.Duration, maxBytes int, now func() time.Time) {
	ctx, cancel := context.WithCancel(context.Background())
	s.cache = &watchCache{maxStale: maxStale, maxBytes: maxBytes, now: now, stop: cancel, done: make(chan struct{})}
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
		// The view starts full: every key of the domain read at one revision (as far as
		// the cache's size allows), so that first reads cost no round trip either.
		gctx, cancel := context.WithTimeout(ctx, 4*c.maxStale)
		kvs, start, err := s.list(gctx, "")
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
		wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		ch := s.c.Watch(wctx, s.prefix, clientv3.WithPrefix(), clientv3.WithRev(start+1), clientv3.WithProgressNotify())
		c.reset(true, start)
		for _, kv := range kvs {
			c.fill(kv.Key, true, kv.Value, kv.Rev, start)
		}
		kvs = nil
		beats := make(chan struct{})
		go func() { // heartbeats run beside the watch, so that a slow read never holds up events
			defer close(beats)
			ticker := time.NewTicker(c.maxStale / 4)
			defer ticker.Stop()
			for {
				s.heartbeat(wctx)
				select {
				case <-wctx.Done():
					return
				case <-ticker.C:
				}
			}
		}()
		for wr := range ch {
			if wr.Canceled || wr.Err() != nil {
				break
			}
			c.apply(s.prefix, wr)
		}
		wcancel()
		<-beats
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
