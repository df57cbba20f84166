package server

import (
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"gmsa/internal/atomicfile"
	"gmsa/internal/audit"
	"gmsa/internal/directory"
	"gmsa/internal/dnsserver"
	"gmsa/internal/kdc"
	"gmsa/internal/kds"
	"gmsa/internal/ldapserver"
	"gmsa/internal/metrics"
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

// NewLogger builds the slog logger a config asks for. Under journald (JOURNAL_STREAM set,
// as systemd sets it for a service's standard error) text lines leave out their time:
// the journal stamps every line itself.
func NewLogger(c *Config, w io.Writer, underJournal bool) *slog.Logger {
	var lvl slog.Level
	lvl.UnmarshalText([]byte(strings.ToUpper(c.Log.Level)))
	opt := &slog.HandlerOptions{Level: lvl}
	if underJournal && !strings.EqualFold(c.Log.Format, "json") {
		opt.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
	}
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
	var m *metrics.Metrics // nil: metrics.listen is off
	if cfg.metricsAddr() != "" {
		m = metrics.New()
	}
	st, release, err := OpenConfigured(ctx, cfg, false, true)
	if err != nil {
		return err
	}
	defer release()
	st = instrument(m, st)
	pidPath := filepath.Join(cfg.Data, PIDFile)
	if err := atomicfile.WriteRuntime(pidPath, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return err
	}
	defer os.Remove(pidPath)

	auditPath := cfg.Audit.Path
	if auditPath == "" {
		auditPath = filepath.Join(cfg.Data, AuditFile)
	}
	trail, err := audit.OpenFile(auditPath, audit.Options{Fsync: cfg.Audit.Fsync, Now: deps.Now, OnError: func(err error) {
		log.Error("the audit trail cannot be written: operations are refused until it can", "path", auditPath, "err", err)
	}, Observe: m.AuditEvent, OnWrite: m.AuditWrite})
	if err != nil {
		return fmt.Errorf("%w (audit.path or GMSA_AUDIT_PATH names another file)", err)
	}
	defer trail.Close()
	hup := make(chan os.Signal, 1) // SIGHUP reopens the audit file after log rotation
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	opts := directory.Options{Now: deps.Now, Rand: deps.Rand, Logger: log, Audit: trail,
		ObjectCache: cfg.Memory.ObjectCache, MaxIndexCandidates: cfg.Memory.IndexCandidates, TombstoneLifetime: cfg.TombstoneLifetime}
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
	failed := make(chan error, 4) // a listener that fails for good
	ep, certs, stopLDAP, err := startLDAP(cfg, deps, dir, trail, m, failed)
	if err != nil {
		l.Close()
		<-done
		return err
	}
	stopKDC, err := startKDC(cfg, deps, dir, trail, m, failed, &ep)
	if err != nil {
		stopLDAP()
		l.Close()
		<-done
		return err
	}
	stopDNS, err := startDNS(cfg, deps, dom, failed, &ep)
	if err != nil {
		stopKDC()
		stopLDAP()
		l.Close()
		<-done
		return err
	}
	stopHTTP := func() {}
	if addr := cfg.metricsAddr(); addr != "" {
		hl, err := net.Listen("tcp", addr)
		if err != nil {
			stopDNS()
			stopKDC()
			stopLDAP()
			l.Close()
			<-done
			return fmt.Errorf("metrics listener %s: %w", addr, err)
		}
		h := &health{dir: dir, trail: trail, listeners: ep.listeners()}
		m.Gauge("gmsa_ready", "1 when the server is ready (store, listeners, a usable root key, the audit trail), else 0.", func() float64 {
			if h.check(ctx).Ready {
				return 1
			}
			return 0
		})
		m.Gauge("gmsa_tls_certificate_expiry_days", "Days until the LDAPS certificate expires.", certs.daysLeft)
		ep.Health = "http://" + hl.Addr().String() + "/"
		stopHTTP = serveHTTP(ctx, hl, m, h, log)
	}
	certs.metrics = m
	if ep.KDC != "" {
		krb5 := filepath.Join(cfg.Data, Krb5ConfFile)
		if err := atomicfile.WriteRuntime(krb5, krb5Conf(dom, ep.KDC, ep.Kpasswd), 0o644); err != nil {
			log.Warn("krb5.conf not written", "path", krb5, "err", err)
		}
		defer os.Remove(krb5)
	}
	epPath := filepath.Join(cfg.Data, EndpointsFile)
	if b, err := json.MarshalIndent(ep, "", "  "); err == nil {
		atomicfile.WriteRuntime(epPath, append(b, '\n'), 0o644)
	}
	defer os.Remove(epPath)
	log.Info("gmsa server running", "realm", dom.Realm, "data", cfg.Data, "store", cfg.Store.describe(), "pid", os.Getpid(), "ldap", ep.LDAP, "ldaps", ep.LDAPS, "kdc", ep.KDC,
		"dns", ep.DNS, "ca", ep.CA, "audit", auditPath, "health", ep.Health)
	if cfg.Dev {
		fmt.Fprintf(deps.Stdout, "LDAP %s, LDAPS %s, KDC %s; clients trust %s; KRB5_CONFIG=%s\n", ep.LDAP, ep.LDAPS, ep.KDC, ep.CA,
			filepath.Join(cfg.Data, Krb5ConfFile))
	}
	certPoll := time.NewTicker(CertPollInterval)
	defer certPoll.Stop()
	collect := time.NewTicker(GarbageCollectionPeriod)
	defer collect.Stop()
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
			if err := certs.reload(true); err != nil {
				log.Error("SIGHUP: the TLS certificate was not replaced; the current one stays", "err", err)
			}
			certs.checkExpiry()
		case <-certPoll.C: // a certificate renewed in place (cert-manager, certbot, a copy) is taken up
			if err := certs.reload(false); err != nil {
				log.Error("the TLS certificate files changed but were not taken; the current one stays", "err", err)
			}
			certs.checkExpiry()
		case <-collect.C: // expired tombstones go for good
			if n, err := dir.CollectTombstones(ctx); err != nil {
				log.Warn("tombstone collection stopped; the next period resumes it", "removed", n, "err", err)
			}
		case err := <-failed: // a listener that stops accepting ends the server, loudly
			log.Error("shutting down: a listener failed", "err", err)
			runErr, running = err, false
		}
	}
	stopHTTP()
	stopDNS()
	stopKDC()
	stopLDAP()
	l.Close()
	<-done
	return runErr
}

// GarbageCollectionPeriod is how often expired tombstones are removed (AD's
// garbageCollPeriod, 12 hours).
const GarbageCollectionPeriod = 12 * time.Hour

// CertPollInterval is how often the operator's certificate files are checked for a
// change.
const CertPollInterval = 2 * time.Second

// AuditFile is the audit trail's default name in the data directory.
const AuditFile = "audit.log"

// Endpoints tells clients (and tests) where a running server listens.
type Endpoints struct {
	LDAP    string `json:"ldap,omitempty"`    // ldap://host:port
	LDAPS   string `json:"ldaps,omitempty"`   // ldaps://host:port
	CLDAP   string `json:"cldap,omitempty"`   // host:port, UDP: LDAP pings
	KDC     string `json:"kdc,omitempty"`     // host:port, UDP and TCP
	Kpasswd string `json:"kpasswd,omitempty"` // host:port, UDP and TCP: password changes
	DNS     string `json:"dns,omitempty"`     // host:port, UDP and TCP: the DC locator records
	CA      string `json:"ca,omitempty"`      // the CA certificate clients trust
	// Health is the base URL of /metrics, /healthz and /readyz (metrics.listen).
	Health string `json:"health,omitempty"`
}

// listeners are the TCP addresses readiness dials.
func (ep Endpoints) listeners() map[string]string {
	m := map[string]string{}
	for name, u := range map[string]string{"ldap": ep.LDAP, "ldaps": ep.LDAPS, "kdc": ep.KDC, "dns": ep.DNS} {
		if _, hostport, ok := strings.Cut(u, "://"); ok {
			m[name] = hostport
		} else if u != "" {
			m[name] = u
		}
	}
	return m
}

// EndpointsFile is written in the data directory while the server runs.
const EndpointsFile = "endpoints.json"

// startLDAP opens the LDAP and LDAPS listeners; a listener that fails for good is sent
// on failed; the returned function shuts them down.
func startLDAP(cfg Config, deps Deps, dir *directory.Directory, trail *audit.Log, m *metrics.Metrics, failed chan<- error) (Endpoints, *certSource, func(), error) {
	var ep Endpoints
	dom := dir.Domain()
	host := strings.ToLower(dom.DCName) + "." + dom.DNSName
	certs, tlsCfg, err := newCertSource(cfg, deps, host)
	if err != nil {
		return ep, nil, nil, err
	}
	if certs.certFile == "" {
		ep.CA = filepath.Join(cfg.Data, "tls", pki.CAFile)
	}
	lim := cfg.LDAP.Limits
	binding, _ := cfg.channelBinding() // checked by Validate
	if certs.certFile != "" {          // SASL EXTERNAL's client certificates are the self-made CA's (gmsa cert issue)
		if _, err := pki.Ensure(filepath.Join(cfg.Data, "tls"), []string{host, "localhost", "127.0.0.1"}, deps.Now(), deps.Rand); err != nil {
			return ep, nil, nil, fmt.Errorf("TLS: %w", err)
		}
	}
	clientCAs, err := pki.ClientPool(filepath.Join(cfg.Data, "tls"))
	if err != nil {
		return ep, nil, nil, fmt.Errorf("TLS: %w", err)
	}
	srv := ldapserver.New(ldapserver.Config{Dir: dir, MaxClockSkew: cfg.KDC.MaxClockSkew, TLS: tlsCfg, Certificate: certs.Current, Logger: deps.Logger, Audit: trail, Metrics: m, Now: deps.Now, Rand: deps.Rand,
		AllowPlainSimpleBind: cfg.LDAP.AllowPlainSimpleBind, DNSHostName: host, ChannelBinding: binding, ClientCAs: clientCAs,
		MaxPDU: lim.MaxReceiveBuffer, MaxUnboundPDU: lim.MaxUnboundRequest, UnboundMemory: lim.UnboundMemory,
		MaxConns: lim.MaxConnections, MaxConnsPerSource: lim.MaxConnectionsPerSource, InitRecvTimeout: lim.InitRecvTimeout,
		IdleTimeout: lim.MaxConnIdleTime, MaxQueryDuration: lim.MaxQueryDuration, MaxPageSize: lim.MaxPageSize,
		MaxResultSetsPerConn: lim.MaxResultSetsPerConn, MaxResultSetSize: lim.MaxResultSetSize})
	ldapAddr, ldapsAddr, _ := cfg.listenAddrs()
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
		if !x.ldaps { // LDAP pings over UDP on the LDAP port ([MS-ADTS] 6.3.3)
			pcs, err := listenUDP(l.Addr().String(), 1)
			if err != nil {
				closeAll()
				return ep, nil, nil, fmt.Errorf("CLDAP listener %s: %w", l.Addr(), err)
			}
			ep.CLDAP = pcs[0].LocalAddr().String()
			perSecond := lim.PingsPerSecond
			if perSecond == 0 {
				perSecond = 50
			}
			go func() {
				if err := srv.ServeCLDAP(pcs[0], perSecond); !errors.Is(err, ldapserver.ErrServerClosed) {
					failed <- err
				}
			}()
		}
		go func(l net.Listener, ldaps bool) {
			if err := srv.Serve(l, ldaps); !errors.Is(err, ldapserver.ErrServerClosed) {
				failed <- err
			}
		}(l, x.ldaps)
	}
	return ep, certs, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}

// newCertSource loads the certificate LDAPS and StartTLS serve — the operator's files
// or the self-made CA's — and the TLS policy around it.
func newCertSource(cfg Config, deps Deps, dcName string) (*certSource, *tls.Config, error) {
	minVersion, ciphers, _ := cfg.tlsPolicy() // checked by Validate
	warn := cfg.LDAP.TLSExpiryWarning
	if warn == 0 {
		warn = 30 * 24 * time.Hour
	}
	src := &certSource{dcName: dcName, warnBefore: warn, now: deps.Now, log: deps.Logger}
	if certFile, keyFile := cfg.operatorFiles(); certFile != "" {
		src.certFile, src.keyFile = certFile, keyFile
		if err := src.reload(true); err != nil {
			return nil, nil, fmt.Errorf("TLS: %w", err)
		}
	} else {
		names := append([]string{dcName, "localhost", "127.0.0.1"}, cfg.LDAP.TLSNames...)
		self, err := pki.Ensure(filepath.Join(cfg.Data, "tls"), names, deps.Now(), deps.Rand)
		if err != nil {
			return nil, nil, fmt.Errorf("TLS: %w", err)
		}
		cert := self.Certificates[0]
		if cert.Leaf == nil {
			if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
				return nil, nil, fmt.Errorf("TLS: %w", err)
			}
		}
		src.cur.Store(&cert)
	}
	src.checkExpiry()
	// Client certificates are asked for, not required: the LDAP server checks one
	// against the CA for a SASL EXTERNAL bind, and ignores it otherwise.
	base := &tls.Config{MinVersion: minVersion, CipherSuites: ciphers, ClientAuth: tls.RequestClientCert,
		Certificates: []tls.Certificate{*src.Current()}}
	return src, base, nil
}

// Krb5ConfFile is the krb5.conf written in the data directory while the KDC runs.
const Krb5ConfFile = "krb5.conf"

// startKDC opens the KDC's UDP and TCP listeners on one port; a listener that fails for
// good is sent on failed; the returned function shuts them down.
func startKDC(cfg Config, deps Deps, dir *directory.Directory, trail *audit.Log, m *metrics.Metrics, failed chan<- error, ep *Endpoints) (func(), error) {
	_, _, addr := cfg.listenAddrs()
	if addr == "" {
		return func() {}, nil
	}
	pol := kdc.DefaultPolicy()
	for dst, v := range map[*time.Duration]time.Duration{&pol.MaxTicketAge: cfg.KDC.MaxTicketAge, &pol.MaxRenewAge: cfg.KDC.MaxRenewAge,
		&pol.MaxServiceAge: cfg.KDC.MaxServiceAge, &pol.MaxClockSkew: cfg.KDC.MaxClockSkew} {
		if v > 0 {
			*dst = v
		}
	}
	pol.ImplicitDollar = !cfg.KDC.NoImplicitDollar
	x := &kdc.Exchange{Dir: dir, Realm: dir.Domain().Realm, Policy: pol, Now: deps.Now, Rand: deps.Rand, Log: deps.Logger}
	srv := kdc.New(kdc.Config{Handler: x, Audit: trail, Logger: deps.Logger, Metrics: m})
	l, pcs, err := listenTwin(addr, kdcUDPSockets)
	if err != nil {
		return nil, fmt.Errorf("KDC listener %s: %w", addr, err)
	}
	ep.KDC = l.Addr().String()
	stopKDC := serveTwin(srv, l, pcs, kdc.ErrServerClosed, failed)
	addr = cfg.kpasswdAddr()
	if addr == "" {
		return stopKDC, nil
	}
	kl, kpcs, err := listenTwin(addr, 2)
	if err != nil {
		stopKDC()
		return nil, fmt.Errorf("kpasswd listener %s: %w", addr, err)
	}
	ep.Kpasswd = kl.Addr().String()
	local, _ := netip.ParseAddrPort(ep.Kpasswd)
	kp := kdc.New(kdc.Config{Handler: kdc.NewKpasswd(x, local.Addr()), Audit: trail, Logger: deps.Logger, MaxRequest: 16 << 10})
	stopKpasswd := serveTwin(kp, kl, kpcs, kdc.ErrServerClosed, failed)
	return func() { stopKpasswd(); stopKDC() }, nil
}

// startDNS answers the domain's locator records on dns.listen (UDP and TCP on one
// port), publishing the listeners' actual ports.
func startDNS(cfg Config, deps Deps, dom directory.Domain, failed chan<- error, ep *Endpoints) (func(), error) {
	addr := cfg.dnsAddr()
	if addr == "" {
		return func() {}, nil
	}
	addrs, err := cfg.dnsAddresses()
	if err != nil {
		return nil, err
	}
	port := func(u string) uint16 {
		_, hostport, ok := strings.Cut(u, "://")
		if !ok {
			hostport = u
		}
		_, p, _ := net.SplitHostPort(hostport)
		n, _ := strconv.ParseUint(p, 10, 16)
		return uint16(n)
	}
	srv, err := dnsserver.New(dnsserver.Config{Logger: deps.Logger, Now: deps.Now, QueriesPerSecond: cfg.DNS.QueriesPerSecond, Records: dnsserver.Records{
		Domain: dom.DNSName, DCHost: strings.ToLower(dom.DCName) + "." + strings.ToLower(dom.DNSName), Addrs: addrs,
		LDAP: port(ep.LDAP), KDC: port(ep.KDC), Kpasswd: port(ep.Kpasswd)}})
	if err != nil {
		return nil, err
	}
	l, pcs, err := listenTwin(addr, 1) // the DNS server runs several readers on one socket
	if err != nil {
		return nil, fmt.Errorf("DNS listener %s: %w", addr, err)
	}
	ep.DNS = l.Addr().String()
	return serveTwin(srv, l, pcs, dnsserver.ErrServerClosed, failed), nil
}

// twinServer serves one protocol over TCP and UDP (the KDC, DNS).
type twinServer interface {
	ServeTCP(net.Listener) error
	ServeUDP(net.PacketConn) error
	Shutdown(context.Context) error
}

// serveTwin runs srv on l and each of pcs; a listener that ends with anything but
// closed is sent on failed. The returned function shuts srv down.
func serveTwin(srv twinServer, l net.Listener, pcs []net.PacketConn, closed error, failed chan<- error) func() {
	serve := func(f func() error) {
		if err := f(); !errors.Is(err, closed) {
			failed <- err
		}
	}
	go serve(func() error { return srv.ServeTCP(l) })
	for _, pc := range pcs {
		go serve(func() error { return srv.ServeUDP(pc) })
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}
}

// kdcUDPSockets is how many Kerberos datagrams are answered at once: one per socket.
const kdcUDPSockets = 32

// listenTwin opens TCP and n UDP sockets on one port: with port 0, a free TCP port
// whose UDP twin is free too. Several UDP sockets share the port with SO_REUSEPORT
// (only sockets of this user can join them).
func listenTwin(addr string, n int) (net.Listener, []net.PacketConn, error) {
	var err error
	for try := 0; try < 10; try++ {
		var l net.Listener
		if l, err = net.Listen("tcp", addr); err != nil {
			return nil, nil, err
		}
		var pcs []net.PacketConn
		if pcs, err = listenUDP(l.Addr().String(), n); err == nil {
			return l, pcs, nil
		}
		l.Close()
		if _, port, _ := net.SplitHostPort(addr); port != "0" {
			return nil, nil, fmt.Errorf("UDP: %w", err)
		}
	}
	return nil, nil, fmt.Errorf("UDP: %w", err)
}

// listenUDP opens n UDP sockets on addr, sharing it with SO_REUSEPORT when n > 1.
func listenUDP(addr string, n int) ([]net.PacketConn, error) {
	var lc net.ListenConfig
	if n > 1 {
		lc.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1) }); err != nil {
				return err
			}
			return serr
		}
	}
	pcs := make([]net.PacketConn, 0, n)
	for range n {
		pc, err := lc.ListenPacket(context.Background(), "udp", addr)
		if err != nil {
			for _, p := range pcs {
				p.Close()
			}
			return nil, err
		}
		pcs = append(pcs, pc)
	}
	return pcs, nil
}

// krb5Conf is a krb5.conf pointing MIT and Heimdal clients at the KDC.
func krb5Conf(dom directory.Domain, kdcAddr, kpasswdAddr string) []byte {
	kpasswd := ""
	if kpasswdAddr != "" {
		kpasswd = "\n\t\tkpasswd_server = " + kpasswdAddr
	}
	return []byte(fmt.Sprintf(`# written by gmsa server while it runs: KRB5_CONFIG=<this file> kinit …
[libdefaults]
	default_realm = %[1]s
	dns_lookup_kdc = false
	dns_lookup_realm = false
	rdns = false
	dns_canonicalize_hostname = false
	forwardable = true

[realms]
	%[1]s = {
		kdc = %[2]s%[4]s
	}

[domain_realm]
	.%[3]s = %[1]s
	%[3]s = %[1]s
`, dom.Realm, kdcAddr, dom.DNSName, kpasswd))
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
