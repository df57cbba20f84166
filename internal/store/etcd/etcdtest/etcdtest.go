// Package etcdtest runs a real etcd cluster on loopback for tests: Debian's etcd-server
// binary as test/interop/peers.sh unpacks it (or etcd on PATH), one process per member,
// stopped by PID when the test ends.
package etcdtest

import (
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"gmsa/internal/pki"
)

// Cluster is a running cluster; member i listens for clients on Clients[i].
type Cluster struct {
	Clients []string // host:port
	procs   []*exec.Cmd
	dirs    []string
	args    [][]string
	bin     string
	scheme  string
	tls     *tls.Config // the tests' own client, with TLS
}

// Binary is the etcd that peers.sh unpacked ($GMSA_PEERS/etcd), else one on PATH, or "".
func Binary() string {
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

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Start runs n members with --max-txn-ops 512 and waits until the cluster answers. In CI
// (CI set) a missing etcd fails the test; elsewhere it is skipped with the install hint.
func Start(t testing.TB, n int) *Cluster { return start(t, n, "") }

// StartTLS runs one member that serves clients over TLS with a certificate of the CA
// in tlsDir (made by pki.Ensure) and requires client certificates of that CA
// (--client-cert-auth), as a production cluster does.
func StartTLS(t testing.TB, tlsDir string) *Cluster { return start(t, 1, tlsDir) }

func start(t testing.TB, n int, tlsDir string) *Cluster {
	bin := Binary()
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("etcd is not installed: the test command unpacks etcd-server (test/interop/peers.sh install)")
		}
		t.Skip("etcd is not installed: run test/interop/peers.sh install (or apt-get install etcd-server)")
	}
	c := &Cluster{bin: bin, scheme: "http"}
	var tlsArgs []string
	if tlsDir != "" {
		c.scheme = "https"
		tlsArgs = []string{"--cert-file", filepath.Join(tlsDir, pki.CertFile), "--key-file", filepath.Join(tlsDir, pki.KeyFile),
			"--trusted-ca-file", filepath.Join(tlsDir, pki.CAFile), "--client-cert-auth"}
		certPEM, keyPEM, err := pki.IssueClient(tlsDir, "etcdtest", "", time.Hour, time.Now(), crand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		pool, err := pki.ClientPool(tlsDir)
		if err != nil {
			t.Fatal(err)
		}
		c.tls = &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}}
	}
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
			"--listen-client-urls", fmt.Sprintf("%s://127.0.0.1:%d", c.scheme, client), "--advertise-client-urls", fmt.Sprintf("%s://127.0.0.1:%d", c.scheme, client),
			"--listen-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", peers[i]), "--initial-advertise-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", peers[i]),
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new", "--initial-cluster-token", "gmsa-test",
			"--max-txn-ops", "512", "--log-level", "error"}
		args = append(args, tlsArgs...)
		c.Clients = append(c.Clients, fmt.Sprintf("127.0.0.1:%d", client))
		c.dirs = append(c.dirs, dir)
		c.args = append(c.args, args)
		c.procs = append(c.procs, nil)
		c.StartMember(t, i)
	}
	t.Cleanup(func() {
		for i := range c.procs {
			c.StopMember(i)
		}
	})
	c.Wait(t)
	return c
}

// URLs are the client endpoints as URLs.
func (c *Cluster) URLs() []string {
	var out []string
	for _, a := range c.Clients {
		out = append(out, c.scheme+"://"+a)
	}
	return out
}

// StartMember (re)starts member i with its data.
func (c *Cluster) StartMember(t testing.TB, i int) {
	cmd := exec.Command(c.bin, c.args[i]...)
	log, _ := os.OpenFile(filepath.Join(c.dirs[i], "etcd.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c.procs[i] = cmd
}

// StopMember kills member i (SIGKILL: no clean leave).
func (c *Cluster) StopMember(i int) {
	if p := c.procs[i]; p != nil {
		p.Process.Kill()
		p.Wait()
		c.procs[i] = nil
	}
}

// Signal sends sig to member i (SIGSTOP freezes it: a partition from peers and clients).
func (c *Cluster) Signal(i int, sig os.Signal) { c.procs[i].Process.Signal(sig) }

// client is a short-lived client of the running members.
func (c *Cluster) client(t testing.TB) *clientv3.Client {
	cl, err := clientv3.New(clientv3.Config{Endpoints: c.Clients, DialTimeout: 2 * time.Second, Logger: zap.NewNop(), TLS: c.tls})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// Wait waits until the cluster answers a linearizable read.
func (c *Cluster) Wait(t testing.TB) {
	cl := c.client(t)
	defer cl.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := cl.Get(ctx, "health")
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the etcd cluster does not answer: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Leader returns the index of the cluster's leader among the running members.
func (c *Cluster) Leader(t testing.TB) int {
	cl := c.client(t)
	defer cl.Close()
	for try := 0; try < 100; try++ {
		for i, ep := range c.Clients {
			if c.procs[i] == nil {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			st, err := cl.Status(ctx, ep)
			cancel()
			if err == nil && st.Leader != 0 && st.Leader == st.Header.MemberId {
				return i
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("the cluster has no leader")
	return -1
}
