package server

import (
	"context"
	crand "crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"gmsa/internal/atomicfile"
	"gmsa/internal/audit"
	"gmsa/internal/directory"
	"gmsa/internal/kds"
	"gmsa/internal/ldapserver"
	"gmsa/internal/ntsec"
	"gmsa/internal/pki"
	"gmsa/internal/store"
)

// Deps are the server's injected dependencies.
type Deps struct {
	Now    func() time.Time
	Rand   io.Reader
	Stdout io.Writer // where first-start notices go
	Logger *slog.Logger
}

// NewLogger builds the slog logger a config asks for.
func NewLogger(c *Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	lvl.UnmarshalText([]byte(strings.ToUpper(c.Log.Level)))
	opt := &slog.HandlerOptions{Level: lvl}
	if strings.EqualFold(c.Log.Format, "json") {
		return slog.New(slog.NewJSONHandler(w, opt))
	}
	return slog.New(slog.NewTextHandler(w, opt))
}

// Run serves until ctx ends (SIGTERM, SIGINT), then shuts down in order.
func Run(ctx context.Context, cfg Config, deps Deps) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Rand == nil {
		deps.Rand = crand.Reader
	}
	if deps.Stdout == nil {
		deps.Stdout = io.Discard
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	log := deps.Logger
	st, err := OpenStore(cfg.Data)
	if err != nil {
		return err
	}
	defer st.Close()
	pidPath := filepath.Join(cfg.Data, PIDFile)
	if err := atomicfile.Write(pidPath, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return err
	}
	defer os.Remove(pidPath)

	auditPath := cfg.Audit.Path
	if auditPath == "" {
		auditPath = filepath.Join(cfg.Data, AuditFile)
	}
	trail, err := audit.OpenFile(auditPath, audit.Options{Fsync: cfg.Audit.Fsync, Now: deps.Now, OnError: func(err error) {
		log.Error("the audit trail cannot be written: operations are refused until it can", "path", auditPath, "err", err)
	}})
	if err != nil {
		return fmt.Errorf("%w (audit.path or GMSA_AUDIT_PATH names another file)", err)
	}
	defer trail.Close()
	hup := make(chan os.Signal, 1) // SIGHUP reopens the audit file after log rotation
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	opts := directory.Options{Now: deps.Now, Rand: deps.Rand, Logger: log, Audit: trail}
	dir, err := directory.Open(ctx, st, opts)
	if errors.Is(err, directory.ErrNotProvisioned) && cfg.Dev {
		dir, err = provisionDev(ctx, cfg, deps, st, opts)
	}
	if err != nil {
		return err
	}
	sock := filepath.Join(cfg.Data, AdminSocket)
	os.Remove(sock) // left by a killed server; the store lock proves none runs
	l, err := net.Listen("unix", sock)
	if err != nil {
		return fmt.Errorf("admin socket: %w", err)
	}
	os.Chmod(sock, 0o600)
	defer os.Remove(sock)
	done := make(chan struct{})
	go func() { serveAdmin(ctx, l, st, log.Info); close(done) }()

	dom := dir.Domain()
	ep, failed, stopLDAP, err := startLDAP(cfg, deps, dir, trail)
	if err != nil {
		l.Close()
		<-done
		return err
	}
	epPath := filepath.Join(cfg.Data, EndpointsFile)
	if b, err := json.MarshalIndent(ep, "", "  "); err == nil {
		atomicfile.Write(epPath, append(b, '\n'), 0o644)
	}
	defer os.Remove(epPath)
	log.Info("gmsa server running", "realm", dom.Realm, "data", cfg.Data, "pid", os.Getpid(), "ldap", ep.LDAP, "ldaps", ep.LDAPS, "ca", ep.CA, "audit", auditPath)
	if cfg.Dev {
		fmt.Fprintf(deps.Stdout, "LDAP %s, LDAPS %s; clients trust %s\n", ep.LDAP, ep.LDAPS, ep.CA)
	}
	var runErr error
	for running := true; running; {
		select {
		case <-ctx.Done():
			log.Info("shutting down")
			running = false
		case <-hup:
			if err := trail.Reopen(); err != nil {
				log.Error("SIGHUP: the audit file cannot be reopened; records go to the old file", "path", auditPath, "err", err)
			} else {
				log.Info("SIGHUP: audit file reopened", "path", auditPath)
			}
		case err := <-failed: // a listener that stops accepting ends the server, loudly
			log.Error("shutting down: a listener failed", "err", err)
			runErr, running = err, false
		}
	}
	stopLDAP()
	l.Close()
	<-done
	return runErr
}

// AuditFile is the audit trail's default name in the data directory.
const AuditFile = "audit.log"

// Endpoints tells clients (and tests) where a running server listens.
type Endpoints struct {
	LDAP  string `json:"ldap,omitempty"`  // ldap://host:port
	LDAPS string `json:"ldaps,omitempty"` // ldaps://host:port
	CA    string `json:"ca,omitempty"`    // the CA certificate clients trust
}

// EndpointsFile is written in the data directory while the server runs.
const EndpointsFile = "endpoints.json"

// startLDAP opens the LDAP and LDAPS listeners; a listener that fails for good is sent
// on the returned channel; the returned function shuts them down.
func startLDAP(cfg Config, deps Deps, dir *directory.Directory, trail *audit.Log) (Endpoints, <-chan error, func(), error) {
	var ep Endpoints
	dom := dir.Domain()
	host := strings.ToLower(dom.DCName) + "." + dom.DNSName
	names := append([]string{host, "localhost", "127.0.0.1"}, cfg.LDAP.TLSNames...)
	tlsCfg, err := pki.Ensure(filepath.Join(cfg.Data, "tls"), names, deps.Now(), deps.Rand)
	if err != nil {
		return ep, nil, nil, fmt.Errorf("TLS: %w", err)
	}
	ep.CA = filepath.Join(cfg.Data, "tls", pki.CAFile)
	lim := cfg.LDAP.Limits
	srv := ldapserver.New(ldapserver.Config{Dir: dir, TLS: tlsCfg, Logger: deps.Logger, Audit: trail, Now: deps.Now,
		AllowPlainSimpleBind: cfg.LDAP.AllowPlainSimpleBind, DNSHostName: host,
		MaxPDU: lim.MaxReceiveBuffer, MaxUnboundPDU: lim.MaxUnboundRequest, UnboundMemory: lim.UnboundMemory,
		MaxConns: lim.MaxConnections, MaxConnsPerSource: lim.MaxConnectionsPerSource, InitRecvTimeout: lim.InitRecvTimeout,
		IdleTimeout: lim.MaxConnIdleTime, MaxQueryDuration: lim.MaxQueryDuration, MaxPageSize: lim.MaxPageSize,
		MaxResultSetsPerConn: lim.MaxResultSetsPerConn, MaxResultSetSize: lim.MaxResultSetSize})
	failed := make(chan error, 2)
	ldapAddr, ldapsAddr := cfg.listenAddrs()
	var ls []net.Listener
	closeAll := func() {
		for _, l := range ls {
			l.Close()
		}
	}
	for _, x := range []struct {
		addr  string
		ldaps bool
		dst   *string
	}{{ldapAddr, false, &ep.LDAP}, {ldapsAddr, true, &ep.LDAPS}} {
		if x.addr == "" {
			continue
		}
		l, err := net.Listen("tcp", x.addr)
		if err != nil {
			closeAll()
			return ep, nil, nil, fmt.Errorf("LDAP listener %s: %w", x.addr, err)
		}
		ls = append(ls, l)
		*x.dst = map[bool]string{false: "ldap://", true: "ldaps://"}[x.ldaps] + l.Addr().String()
		go func(l net.Listener, ldaps bool) {
			if err := srv.Serve(l, ldaps); !errors.Is(err, ldapserver.ErrServerClosed) {
				failed <- err
			}
		}(l, x.ldaps)
	}
	return ep, failed, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}

// provisionDev creates EXAMPLE.TEST with a root key back-dated past the 10-hour wait,
// and writes the Administrator password to a 0600 file.
func provisionDev(ctx context.Context, cfg Config, deps Deps, st store.Store, opts directory.Options) (*directory.Directory, error) {
	now := ntsec.FileTimeFromTime(deps.Now())
	back := now - kds.CreationLag - ntsec.TicksPerHour
	p, err := directory.Provision(ctx, st, directory.ProvisionOptions{Realm: cfg.Realm, NetBIOS: cfg.NetBIOS, RootKey: &back}, opts)
	if err != nil {
		return nil, err
	}
	pwPath := filepath.Join(cfg.Data, AdminPWFile)
	if err := atomicfile.Write(pwPath, []byte(p.AdminPassword+"\n"), 0o600); err != nil {
		return nil, err
	}
	dom := p.Directory.Domain()
	fmt.Fprintf(deps.Stdout, "provisioned %s (%s) for development, with a KDS root key usable now\n"+
		"Administrator's password is in %s (mode 0600)\n", dom.Realm, dom.SID, pwPath)
	return p.Directory, nil
}
