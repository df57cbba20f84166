package etcd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gmsa/internal/store"
	"gmsa/internal/store/storetest"
)

// cluster is a real etcd cluster of etcd-server's binary on loopback ports.
type cluster struct {
	clients []string
	procs   []*exec.Cmd
	dirs    []string
	args    [][]string
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startCluster runs n members; the test's cleanup stops them by PID.
func startCluster(t *testing.T, n int) *cluster {
	bin := etcdBinary()
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("etcd is not installed: the test command unpacks etcd-server (test/interop/peers.sh install)")
		}
		t.Skip("etcd is not installed: run test/interop/peers.sh install (or apt-get install etcd-server)")
	}
	c := &cluster{}
	var initial []string
	peers := make([]int, n)
	for i := range n {
		peers[i] = freePort(t)
		initial = append(initial, fmt.Sprintf("m%d=http://127.0.0.1:%d", i, peers[i]))
	}
	for i := range n {
		client := freePort(t)
		dir := t.TempDir()
		args := []string{"--name", fmt.Sprintf("m%d", i), "--data-dir", filepath.Join(dir, "data"),
			"--listen-client-urls", fmt.Sprintf("http://127.0.0.1:%d", client), "--advertise-client-urls", fmt.Sprintf("http://127.0.0.1:%d", client),
			"--listen-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", peers[i]), "--initial-advertise-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", peers[i]),
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new", "--initial-cluster-token", "gmsa-test",
			"--max-txn-ops", "512", "--log-level", "error"}
		c.clients = append(c.clients, fmt.Sprintf("127.0.0.1:%d", client))
		c.dirs = append(c.dirs, dir)
		c.args = append(c.args, args)
		c.procs = append(c.procs, nil)
		c.start(t, bin, i)
	}
	t.Cleanup(func() {
		for i := range c.procs {
			c.stop(i)
		}
	})
	return c
}

// etcdBinary is the etcd that peers.sh unpacked ($GMSA_PEERS/etcd), else one on PATH.
func etcdBinary() string {
	peers := os.Getenv("GMSA_PEERS")
	if peers == "" {
		peers = "/var/tmp/gmsa-peers"
	}
	if p := filepath.Join(peers, "etcd", "usr", "bin", "etcd"); fileExists(p) {
		return p
	}
	p, _ := exec.LookPath("etcd")
	return p
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func (c *cluster) start(t *testing.T, bin string, i int) {
	cmd := exec.Command(bin, c.args[i]...)
	log, _ := os.Create(filepath.Join(c.dirs[i], "etcd.log"))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c.procs[i] = cmd
}

func (c *cluster) stop(i int) {
	if p := c.procs[i]; p != nil {
		p.Process.Kill()
		p.Wait()
		c.procs[i] = nil
	}
}

// open connects a store under its own prefix, waiting for the cluster to answer.
func (c *cluster) open(t *testing.T, prefix string) *Store {
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		s, err := Open(ctx, Options{Endpoints: c.clients, Prefix: prefix, MaxOps: 512, DialTimeout: 2 * time.Second})
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
	c.stop(0)
	for i := 20; i < 40; i++ {
		if err := write(i); err != nil {
			t.Fatalf("with one member down, a write kept failing: %v", err)
		}
	}
	c.stop(1)
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
	bin := etcdBinary()
	c.start(t, bin, 0)
	c.start(t, bin, 1)
	s2 := c.open(t, "quorum/")
	defer s2.Close()
	kvs, err := s2.List(ctx, "k")
	twins, err2 := s2.List(ctx, "twin/")
	if err != nil || err2 != nil || len(kvs) != len(acked) || len(twins) != len(kvs) {
		t.Fatalf("after the members came back: %d keys and %d twins for %d acknowledged, %v %v", len(kvs), len(twins), len(acked), err, err2)
	}
}
