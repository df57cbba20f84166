package etcd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gmsa/internal/store"
	"gmsa/internal/store/etcd/etcdtest"
	"gmsa/internal/store/storetest"
)

// cluster is a real etcd cluster.
type cluster struct{ *etcdtest.Cluster }

func startCluster(t *testing.T, n int) cluster { return cluster{etcdtest.Start(t, n)} }

// open connects a store under its own prefix, waiting for the cluster to answer.
func (c cluster) open(t *testing.T, prefix string) *Store {
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		s, err := Open(ctx, Options{Endpoints: c.Clients, Prefix: prefix, MaxOps: 512, DialTimeout: 2 * time.Second})
		cancel()
		if err == nil {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("the etcd cluster does not answer: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// The conformance suite every backend passes, against a real three-member cluster;
// each store gets its own key prefix.
func TestConformance(t *testing.T) {
	c := startCluster(t, 3)
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T) store.Store { return c.open(t, fmt.Sprintf("test%d/", n.Add(1))) })
}

// writers keep writing batches of two keys (a key and its twin, both or neither) from
// several goroutines, retrying each like store.Update's callers do, and record what was
// acknowledged.
type writers struct {
	s     *Store
	stop  atomic.Bool
	done  chan struct{}
	mu    sync.Mutex
	acked []string
	fails atomic.Int64
}

func startWriters(s *Store, n int) *writers {
	w := &writers{s: s, done: make(chan struct{})}
	var wg sync.WaitGroup
	for g := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !w.stop.Load(); i++ {
				k := fmt.Sprintf("k%d-%05d", g, i)
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_, err := s.Apply(ctx, store.Create(k, []byte{byte(i)}), store.Create("twin/"+k, []byte{byte(i)}))
				cancel()
				if err != nil {
					// The outcome is unknown (a timeout may have committed): a retry under
					// a new name keeps the check simple.
					w.fails.Add(1)
					time.Sleep(50 * time.Millisecond)
					continue
				}
				w.mu.Lock()
				w.acked = append(w.acked, k)
				w.mu.Unlock()
			}
		}()
	}
	go func() { wg.Wait(); close(w.done) }()
	return w
}

func (w *writers) finish() []string { w.stop.Store(true); <-w.done; return w.acked }

// checkBatches verifies that every acknowledged batch is there, and that no batch is
// torn: each key has its twin and each twin its key.
func checkBatches(t *testing.T, s *Store, acked []string) {
	t.Helper()
	ctx := context.Background()
	kvs, err := s.List(ctx, "k")
	twins, err2 := s.List(ctx, "twin/")
	if err != nil || err2 != nil {
		t.Fatal(err, err2)
	}
	have := map[string]bool{}
	for _, kv := range kvs {
		have[kv.Key] = true
	}
	for _, kv := range twins {
		if !have[strings.TrimPrefix(kv.Key, "twin/")] {
			t.Errorf("torn batch: %s without its key", kv.Key)
		}
	}
	if len(twins) != len(kvs) {
		t.Errorf("torn batches: %d keys, %d twins", len(kvs), len(twins))
	}
	for _, k := range acked {
		if !have[k] {
			t.Errorf("acknowledged write %s lost", k)
		}
	}
}

// Failures under load, as a network store meets them: the leader frozen (a partition:
// neither its peers nor its clients hear from it) and later killed while batches are in
// flight, so a leader change happens mid-batch. Writes may fail for a moment with a
// clear error — callers retry them, as store.Update does —, but no acknowledged write is
// lost and no batch is torn.
func TestLeaderChangeAndPartitionUnderLoad(t *testing.T) {
	c := startCluster(t, 3)
	s := c.open(t, "load/")
	defer s.Close()
	w := startWriters(s, 4)
	time.Sleep(500 * time.Millisecond)

	frozen := c.Leader(t)
	c.Signal(frozen, syscall.SIGSTOP)
	time.Sleep(3 * time.Second) // longer than the election timeout: the others elect a leader
	c.Signal(frozen, syscall.SIGCONT)
	time.Sleep(time.Second)

	killed := c.Leader(t)
	c.StopMember(killed)
	time.Sleep(2 * time.Second)
	c.StartMember(t, killed)
	time.Sleep(time.Second)
	acked := w.finish()
	t.Logf("%d batches acknowledged, %d attempts failed during the partition and the leader change", len(acked), w.fails.Load())
	if len(acked) < 50 {
		t.Fatalf("only %d batches acknowledged: the cluster did not keep serving", len(acked))
	}
	checkBatches(t, s, acked)
}

// The watch-fed cache: this process reads its own writes at once; another client's
// write is served here within the staleness bound (measured); and a member that lost
// its quorum stops the cache, so that reads fail with ErrNoQuorum instead of serving
// what may no longer be true.
func TestWatchCache(t *testing.T) {
	c := startCluster(t, 3)
	a := c.open(t, "cache/")
	defer a.Close()
	b := c.open(t, "cache/")
	defer b.Close()
	ctx := context.Background()
	waitCached := func(s *Store, key string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			s.Get(ctx, key)
			if _, _, ok := s.cache.get(key); ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s is never served from the cache", key)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if _, err := a.Apply(ctx, store.Put("x", []byte("0"))); err != nil {
		t.Fatal(err)
	}
	waitCached(a, "x")
	waitCached(a, "absent")
	// Read your writes, every time.
	for i := 1; i <= 200; i++ {
		v := []byte(fmt.Sprint(i))
		if _, err := a.Apply(ctx, store.Put("x", v)); err != nil {
			t.Fatal(err)
		}
		if kv, err := a.Get(ctx, "x"); err != nil || string(kv.Value) != string(v) {
			t.Fatalf("after writing %s this process read %q, %v", v, kv.Value, err)
		}
	}
	// Another writer: served here within the bound.
	var worst time.Duration
	for i := range 50 {
		v := []byte(fmt.Sprint("b", i))
		rev, err := b.Apply(ctx, store.Put("x", v), store.Put("absent", v))
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		for {
			kv, err := a.Get(ctx, "x")
			kv2, err2 := a.Get(ctx, "absent")
			if err == nil && err2 == nil && kv.Rev == rev && kv2.Rev == rev {
				break
			}
			if time.Since(start) > DefaultMaxStaleness {
				t.Fatalf("a write on another client was not served within %s: %q %v %v", DefaultMaxStaleness, kv.Value, err, err2)
			}
			time.Sleep(100 * time.Microsecond)
		}
		worst = max(worst, time.Since(start))
		waitCached(a, "x")
	}
	t.Logf("another client's write served from this cache after at most %s", worst)
	if _, err := b.Apply(ctx, store.Delete("absent")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(DefaultMaxStaleness)
	for {
		if _, err := a.Get(ctx, "absent"); errors.Is(err, store.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a delete on another client is not seen")
		}
		time.Sleep(time.Millisecond)
	}

	// No quorum: within the bound (and the election timeout) cached reads stop.
	waitCached(a, "x")
	c.StopMember(0)
	c.StopMember(1)
	deadline = time.Now().Add(DefaultMaxStaleness + 5*time.Second)
	for {
		gctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := a.Get(gctx, "x")
		cancel()
		if errors.Is(err, ErrNoQuorum) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("without a quorum a cached read still answers: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A member down (the leader, or not): while the others elect a leader a write may fail
// with a clear error — a caller retries it, as store.Update does —, and then they keep
// a quorum; every acknowledged write stays, and every batch is whole. With two down
// there is no quorum and Apply says so within its deadline.
func TestMemberDownAndNoQuorum(t *testing.T) {
	c := startCluster(t, 3)
	s := c.open(t, "quorum/")
	defer s.Close()
	ctx := context.Background()
	var acked []string
	write := func(i int) error {
		k := fmt.Sprintf("k%03d", i)
		var err error
		for try := 0; try < 10; try++ {
			wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			// A batch of two: the key and its twin, both or neither.
			_, err = s.Apply(wctx, store.Put(k, []byte{byte(i)}), store.Put("twin/"+k, []byte{byte(i)}))
			cancel()
			if err == nil {
				acked = append(acked, k)
				return nil
			}
		}
		return err
	}
	for i := range 20 {
		if err := write(i); err != nil {
			t.Fatal(err)
		}
	}
	c.StopMember(0)
	for i := 20; i < 40; i++ {
		if err := write(i); err != nil {
			t.Fatalf("with one member down, a write kept failing: %v", err)
		}
	}
	c.StopMember(1)
	// Without a quorum nothing is written, and once the survivor has noticed, every
	// attempt says so within its deadline.
	var err error
	for try := 0; try < 3; try++ {
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err = s.Apply(qctx, store.Put("lost", []byte("x")))
		cancel()
		if err == nil {
			t.Fatal("a write was acknowledged without a quorum")
		}
	}
	if !errors.Is(err, ErrNoQuorum) {
		t.Fatalf("without quorum: %v", err)
	}
	c.StartMember(t, 0)
	c.StartMember(t, 1)
	s2 := c.open(t, "quorum/")
	defer s2.Close()
	kvs, err := s2.List(ctx, "k")
	twins, err2 := s2.List(ctx, "twin/")
	if err != nil || err2 != nil || len(kvs) != len(acked) || len(twins) != len(kvs) {
		t.Fatalf("after the members came back: %d keys and %d twins for %d acknowledged, %v %v", len(kvs), len(twins), len(acked), err, err2)
	}
}
