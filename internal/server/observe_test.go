package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	krbclient "github.com/jcmturner/gokrb5/v8/client"
	krbconfig "github.com/jcmturner/gokrb5/v8/config"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"gmsa/internal/directory"
	"gmsa/internal/metrics"
	"gmsa/internal/ntsec"
	"gmsa/internal/store"
	"gmsa/internal/store/memory"
)

// testClock is a clock a test moves.
type testClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *testClock) add(d time.Duration) { c.mu.Lock(); c.off += d; c.mu.Unlock() }

// lockedBuffer collects a server's log.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// fixture is a provisioned data directory: Administrator, alice (allowed to read svc$'s
// password), bob (not allowed), and the gMSA svc with a one-day interval.
type fixture struct {
	cfg      Config
	adminPW  string
	clock    *testClock
	log      *lockedBuffer
	ep       Endpoints
	stop     func()
	stopped  chan error
	alicePW  string
	bobPW    string
	rootKeys int
}

func provisioned(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{clock: &testClock{}, log: &lockedBuffer{}, alicePW: "Alice-Passw0rd!", bobPW: "Bob-Passw0rd!"}
	f.cfg = DefaultConfig()
	f.cfg.Data = t.TempDir()
	f.cfg.LDAP.Listen, f.cfg.LDAP.LDAPSListen, f.cfg.KDC.Listen, f.cfg.Metrics.Listen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	st, release, err := OpenConfigured(ctx, f.cfg, false, true)
	if err != nil {
		t.Fatal(err)
	}
	back := ntsec.FileTimeFromTime(f.clock.now()) - 2*ntsec.TicksPerDay
	p, err := directory.Provision(ctx, st, directory.ProvisionOptions{Realm: "EXAMPLE.TEST", NetBIOS: "EXAMPLE", RootKey: &back},
		directory.Options{Now: f.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	f.adminPW, f.rootKeys = p.AdminPassword, 1
	d, sys := p.Directory, directory.LocalSystem()
	for _, u := range []directory.UserOptions{{Name: "alice", Password: f.alicePW}, {Name: "bob", Password: f.bobPW}} {
		if _, err := d.NewUser(ctx, sys, u); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.NewGMSA(ctx, sys, directory.GMSAOptions{Name: "svc", DNSHostName: "svc.example.test", PrincipalsAllowed: []string{"alice"}, IntervalDays: 1}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	release()
	return f
}

// start runs the server in this process until the test ends.
func (f *fixture) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f.stopped = make(chan error, 1)
	os.Remove(filepath.Join(f.cfg.Data, EndpointsFile))
	logger := slog.New(slog.NewTextHandler(f.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	go func() { f.stopped <- Run(ctx, f.cfg, Deps{Now: f.clock.now, Logger: logger}) }()
	f.stop = func() {
		cancel()
		if err := <-f.stopped; err != nil {
			t.Errorf("server: %v", err)
		}
	}
	t.Cleanup(func() {
		if ctx.Err() == nil {
			f.stop()
		}
	})
	for i := 0; ; i++ {
		b, err := os.ReadFile(filepath.Join(f.cfg.Data, EndpointsFile))
		if err == nil && json.Unmarshal(b, &f.ep) == nil && f.ep.LDAPS != "" {
			return
		}
		select {
		case err := <-f.stopped:
			t.Fatalf("the server stopped: %v\n%s", err, f.log)
		default:
		}
		if i == 500 {
			t.Fatal("the server did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// trust is the TLS configuration of a client that trusts the CA files given.
func trust(t *testing.T, caFiles ...string) *tls.Config {
	pool := x509.NewCertPool()
	for _, f := range caFiles {
		b, err := os.ReadFile(f)
		if err != nil || !pool.AppendCertsFromPEM(b) {
			t.Fatalf("CA %s: %v", f, err)
		}
	}
	return &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
}

func (f *fixture) dial(t *testing.T, tc *tls.Config) *ldap.Conn {
	t.Helper()
	c, err := ldap.DialURL(f.ep.LDAPS, ldap.DialWithTLSConfig(tc))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// scrape reads /metrics.
func (f *fixture) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(f.ep.Health + "metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// value is the sample of fam whose labels include want (a counter, gauge or a
// histogram's count); -1 when there is none.
func value(fams map[string]*dto.MetricFamily, name string, want ...string) float64 {
	fam := fams[name]
	if fam == nil {
		return -1
	}
	for _, m := range fam.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		match := true
		for i := 0; i+1 < len(want); i += 2 {
			match = match && labels[want[i]] == want[i+1]
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

// A scripted workload over real protocols: every count the metrics give equals what
// was done — binds by mechanism and result, searches, password reads granted and
// denied, root-key reads, a rotation, Kerberos requests by type and result — and the
// names exported are the ones the dashboard is checked against.
func TestMetricsCountWhatWasDone(t *testing.T) {
	f := provisioned(t)
	f.start(t)
	tc := trust(t, f.ep.CA)
	svcFilter := "(sAMAccountName=svc$)"
	msa := "CN=Managed Service Accounts,DC=example,DC=test"

	const anonymous = 3
	for range anonymous {
		c := f.dial(t, tc)
		if err := c.UnauthenticatedBind(""); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	// alice: two password reads granted; one wrong password. bob: one read denied.
	alice := f.dial(t, tc)
	if err := alice.Bind("alice@example.test", "wrong"); err == nil {
		t.Fatal("a wrong password bound")
	}
	if err := alice.Bind("alice@example.test", f.alicePW); err != nil {
		t.Fatal(err)
	}
	read := func(c *ldap.Conn) []byte {
		res, err := c.Search(ldap.NewSearchRequest(msa, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false, svcFilter, []string{"msDS-ManagedPassword"}, nil))
		if err != nil || len(res.Entries) != 1 {
			t.Fatalf("search: %v", err)
		}
		return res.Entries[0].GetRawAttributeValue("msDS-ManagedPassword")
	}
	for range 2 {
		if len(read(alice)) == 0 {
			t.Fatal("alice was not given the password")
		}
	}
	bob := f.dial(t, tc)
	if err := bob.Bind("bob@example.test", f.bobPW); err != nil {
		t.Fatal(err)
	}
	if len(read(bob)) != 0 {
		t.Fatal("bob was given the password")
	}
	admin := f.dial(t, tc)
	if err := admin.Bind("Administrator@example.test", f.adminPW); err != nil {
		t.Fatal(err)
	}
	res, err := admin.Search(ldap.NewSearchRequest("CN=Master Root Keys,CN=Group Key Distribution Service,CN=Services,CN=Configuration,DC=example,DC=test",
		ldap.ScopeSingleLevel, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=msKds-ProvRootKey)", []string{"msKds-RootKeyData"}, nil))
	if err != nil || len(res.Entries) != f.rootKeys {
		t.Fatalf("root keys: %v", err)
	}

	// Kerberos: alice's TGT (gokrb5 sends an AS-REQ without pre-authentication first,
	// as MIT does, and is asked for it), then a service ticket.
	krb5, err := krbconfig.NewFromString(fmt.Sprintf("[libdefaults]\n default_realm = EXAMPLE.TEST\n dns_lookup_kdc = false\n udp_preference_limit = 1\n[realms]\n EXAMPLE.TEST = {\n  kdc = %s\n }\n", f.ep.KDC))
	if err != nil {
		t.Fatal(err)
	}
	kc := krbclient.NewWithPassword("alice", "EXAMPLE.TEST", f.alicePW, krb5, krbclient.DisablePAFXFAST(true))
	if err := kc.Login(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := kc.GetServiceTicket("ldap/dc1.example.test"); err != nil {
		t.Fatal(err)
	}

	// The next key period: alice's read rotates the password, once.
	f.clock.add(25 * time.Hour)
	if len(read(alice)) == 0 {
		t.Fatal("alice was not given the rotated password")
	}
	alice.Close()
	bob.Close()
	admin.Close()

	fams := f.scrape(t)
	for _, want := range []struct {
		name   string
		labels []string
		n      float64
	}{
		{"gmsa_ldap_binds_total", []string{"mechanism", "anonymous", "result", "success"}, anonymous},
		{"gmsa_ldap_binds_total", []string{"mechanism", "simple", "result", "success"}, 3},
		{"gmsa_ldap_binds_total", []string{"mechanism", "simple", "result", "failure"}, 1},
		{"gmsa_ldap_requests_total", []string{"operation", "bind"}, anonymous + 4},
		{"gmsa_ldap_requests_total", []string{"operation", "search"}, 5},
		{"gmsa_ldap_request_duration_seconds", []string{"operation", "search"}, 5},
		{"gmsa_password_reads_total", []string{"result", "granted"}, 3},
		{"gmsa_password_reads_total", []string{"result", "denied"}, 1},
		{"gmsa_root_key_reads_total", nil, float64(f.rootKeys)},
		{"gmsa_password_rotations_total", nil, 1},
		{"gmsa_kdc_requests_total", []string{"type", "as", "result", "KDC_ERR_PREAUTH_REQUIRED"}, 1},
		{"gmsa_kdc_requests_total", []string{"type", "as", "result", "ok"}, 1},
		{"gmsa_kdc_requests_total", []string{"type", "tgs", "result", "ok"}, 1},
		{"gmsa_audit_write_failures_total", nil, 0},
		{"gmsa_ready", nil, 1},
	} {
		if got := value(fams, want.name, want.labels...); got != want.n {
			t.Errorf("%s%v = %v, want %v", want.name, want.labels, got, want.n)
		}
	}
	if v := value(fams, "gmsa_store_commit_duration_seconds"); v < 1 {
		t.Errorf("store commits: %v (the rotation commits one)", v)
	}
	if v := value(fams, "gmsa_audit_write_duration_seconds"); v < 1 {
		t.Errorf("audit writes: %v", v)
	}
	if h, m := value(fams, "gmsa_store_cache_requests_total", "result", "hit"), value(fams, "gmsa_store_cache_requests_total", "result", "miss"); h <= 0 || m <= 0 {
		t.Errorf("store cache hits %v, misses %v", h, m)
	}
	if d := value(fams, "gmsa_tls_certificate_expiry_days"); d < 300 || d > 400 {
		t.Errorf("the self-made certificate's days left: %v", d)
	}
	// What the server exports is what metrics.Names (the dashboard's check) says.
	var exported []string
	for name := range fams {
		if strings.HasPrefix(name, "gmsa_") {
			exported = append(exported, name)
		}
	}
	for _, n := range metrics.Names {
		if !slices.Contains(exported, n) && n != "gmsa_tls_certificate_reloads_total" { // no reload yet: TestCertificateReplacedUnderLoad
			t.Errorf("%s is in metrics.Names but not exported", n)
		}
	}
	for _, n := range exported {
		if !slices.Contains(metrics.Names, n) {
			t.Errorf("%s is exported but not in metrics.Names (the dashboard's check)", n)
		}
	}
}

// Readiness follows the audit trail: when its file becomes unwritable (the path's
// link turned to /dev/full, then SIGHUP as logrotate sends), the first operation's
// record fails, /readyz and 'gmsa server status' say not ready and name the audit
// trail; once the path is writable again (and SIGHUP), ready again — noticed without
// waiting for an operation, and the recovery is in the trail.
func TestReadinessFollowsTheAuditTrail(t *testing.T) {
	f := provisioned(t)
	dir := t.TempDir()
	real, link := filepath.Join(dir, "audit.log"), filepath.Join(dir, "current")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	f.cfg.Audit.Path = link
	f.start(t)
	rd, _, err := Status(context.Background(), f.cfg.Data)
	if err != nil || !rd.Ready {
		t.Fatalf("not ready at start: %+v %v", rd, err)
	}
	for _, c := range []string{"directory", "ldap", "ldaps", "kdc", "audit"} {
		if !slices.ContainsFunc(rd.Checks, func(ch Check) bool { return ch.Name == c && ch.OK }) {
			t.Errorf("no passing %s check in %+v", c, rd.Checks)
		}
	}
	relink := func(target string) {
		tmp := link + ".new"
		os.Remove(tmp)
		if err := os.Symlink(target, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, link); err != nil {
			t.Fatal(err)
		}
		syscall.Kill(os.Getpid(), syscall.SIGHUP)
	}
	relink("/dev/full")
	tc := trust(t, f.ep.CA)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := ldap.DialURL(f.ep.LDAPS, ldap.DialWithTLSConfig(tc))
		if err == nil {
			c.Bind("bob@example.test", "wrong") // an audited failure: its record is written, or fails to be
			c.Close()
		}
		if rd, _, err = Status(context.Background(), f.cfg.Data); err != nil {
			t.Fatal(err)
		}
		if !rd.Ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("still ready with the audit trail on /dev/full")
		}
		time.Sleep(50 * time.Millisecond)
	}
	failed := slices.IndexFunc(rd.Checks, func(ch Check) bool { return !ch.OK })
	if failed < 0 || rd.Checks[failed].Name != "audit" || !strings.Contains(rd.Checks[failed].Detail, "no space left on device") {
		t.Fatalf("not ready, but not for the audit trail: %+v", rd.Checks)
	}
	resp, err := http.Get(f.ep.Health + "readyz")
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz: %v %v", resp.Status, err)
	}
	resp.Body.Close()
	if v := value(f.scrape(t), "gmsa_audit_write_failures_total"); v < 1 {
		t.Fatalf("audit write failures: %v", v)
	}
	// A liveness probe does not restart a server that only waits for its disk.
	if resp, err := http.Get(f.ep.Health + "healthz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: %v", err)
	}

	relink(real)
	deadline = time.Now().Add(10 * time.Second)
	for {
		if rd, _, err = Status(context.Background(), f.cfg.Data); err == nil && rd.Ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready again after the audit path was restored: %+v %v", rd, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	f.stop()
	b, _ := os.ReadFile(real)
	if !strings.Contains(string(b), "audit log: writable again") {
		t.Fatal("the trail does not record its recovery")
	}
	if _, _, err := Status(context.Background(), f.cfg.Data); err == nil || !strings.Contains(err.Error(), "no server is running") {
		t.Fatalf("status of a stopped server: %v", err)
	}
}

// A flood of readiness probes costs one check a second: the checks' own connections do
// not pile up on the LDAP listener (whose per-source limit local clients share).
func TestReadinessProbesShareOneCheck(t *testing.T) {
	f := provisioned(t)
	f.start(t)
	accepted := func() float64 {
		return value(f.scrape(t), "gmsa_ldap_connections_total", "listener", "ldap", "result", "accepted")
	}
	before := accepted()
	start := time.Now()
	var wg sync.WaitGroup
	var bad atomic.Int64
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(f.ep.Health + "readyz")
			if err != nil || resp.StatusCode != http.StatusOK {
				bad.Add(1)
				return
			}
			resp.Body.Close()
		}()
	}
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d of 200 concurrent probes failed", bad.Load())
	}
	// One check per second of the flood (and one for each scrape's gmsa_ready).
	if n, most := accepted()-before, time.Since(start).Seconds()+3; n > most {
		t.Fatalf("200 probes in %s dialled LDAP %v times", time.Since(start), n)
	}
}

// Under journald text lines carry no time of their own (the journal stamps them); JSON
// lines keep theirs, and outside the journal text lines do too.
func TestLogLinesUnderTheJournal(t *testing.T) {
	for _, c := range []struct {
		format   string
		journal  bool
		withTime bool
	}{{"text", true, false}, {"text", false, true}, {"json", true, true}} {
		cfg := DefaultConfig()
		cfg.Log.Format = c.format
		var b bytes.Buffer
		NewLogger(&cfg, &b, c.journal).Info("gmsa server running", "realm", "EXAMPLE.TEST")
		line := b.String()
		if hasTime := strings.Contains(line, "time=") || strings.Contains(line, `"time":`); hasTime != c.withTime || !strings.Contains(line, "EXAMPLE.TEST") {
			t.Errorf("%s, journal %v: %q", c.format, c.journal, line)
		}
	}
}

// The commit timer keeps the store's generations visible, so the directory's token
// cache works behind it, and reports none for a store that has none.
func TestStoreTimerPassesGenerationsThrough(t *testing.T) {
	m := metrics.New()
	st := memory.New()
	g, ok := instrument(m, st).(store.Generations).Generation()
	if !ok || g != 0 {
		t.Fatalf("generation %d %v of an empty store", g, ok)
	}
	if _, err := st.Apply(t.Context(), store.Put("k", []byte("v"))); err != nil {
		t.Fatal(err)
	}
	if g, ok := instrument(m, st).(store.Generations).Generation(); !ok || g != 1 {
		t.Fatalf("generation %d %v after a write", g, ok)
	}
	if _, ok := (storeTimer{Store: noGenerations{st}, m: m}).Generation(); ok {
		t.Fatal("a generation vouched for a store without any")
	}
}

type noGenerations struct{ store.Store }
