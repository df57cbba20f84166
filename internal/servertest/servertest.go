// Package servertest runs the whole DC-lite stack in-process on 127.0.0.1:0 for tests:
// a provisioned EXAMPLE.TEST with a usable root key, LDAP and LDAPS listeners, and the
// CA that signed the server certificate.
package servertest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"gmsa/internal/audit"
	"gmsa/internal/directory"
	"gmsa/internal/ldapserver"
	"gmsa/internal/ntsec"
	"gmsa/internal/pki"
	"gmsa/internal/store/memory"
)

// Options tune the stack; Limits are passed to the LDAP server as they are (its Dir,
// TLS, Now and Audit are the stack's).
type Options struct {
	Now    func() time.Time // default: the real clock
	Limits ldapserver.Config
}

// Stack is a running DC-lite.
type Stack struct {
	Dir           *directory.Directory
	LDAP, LDAPS   string // host:port
	CAFile        string
	CAPool        *x509.CertPool
	AdminPassword string
	Audit         *SyncBuffer // what the audit log wrote
	Server        *ldapserver.Server
}

// SyncBuffer is a goroutine-safe bytes.Buffer.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *SyncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// Start provisions and serves; the test's cleanup stops everything.
func Start(t testing.TB, opt Options) *Stack {
	t.Helper()
	if opt.Now == nil {
		opt.Now = time.Now
	}
	ctx := context.Background()
	back := ntsec.FileTimeFromTime(opt.Now()) - 2*ntsec.TicksPerDay
	auditBuf := &SyncBuffer{}
	trail := audit.New(auditBuf, audit.Options{Now: opt.Now})
	p, err := directory.Provision(ctx, memory.New(), directory.ProvisionOptions{Realm: "EXAMPLE.TEST", NetBIOS: "EXAMPLE", RootKey: &back},
		directory.Options{Now: opt.Now, Audit: trail})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tlsCfg, err := pki.Ensure(dir, []string{"dc1.example.test", "localhost", "127.0.0.1"}, opt.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, pki.CAFile)
	pem, _ := os.ReadFile(caFile)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	cfg := opt.Limits
	cfg.Dir, cfg.TLS, cfg.Now, cfg.Audit, cfg.ClientCAs = p.Directory, tlsCfg, opt.Now, trail, pool
	srv := ldapserver.New(cfg)
	s := &Stack{Dir: p.Directory, CAFile: caFile, CAPool: pool, AdminPassword: p.AdminPassword, Audit: auditBuf, Server: srv}
	for _, x := range []struct {
		ldaps bool
		dst   *string
	}{{false, &s.LDAP}, {true, &s.LDAPS}} {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		*x.dst = l.Addr().String()
		go srv.Serve(l, x.ldaps)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		trail.Close()
	})
	return s
}
