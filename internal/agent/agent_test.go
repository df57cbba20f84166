package agent_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/credentials"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/types"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"gmsa/internal/agent"
	"gmsa/internal/agent/leaseapi"
	"gmsa/internal/krbclient"
	"gmsa/internal/krbkey"
	"gmsa/internal/server"
	"gmsa/internal/servertest"
)

// lab is our DC in this process on 127.0.0.6 with a shared, movable clock, a host
// (HOST01$, keytab on disk) allowed to read WebApp01$, and a user (reader) allowed to
// read Batch01$.
type lab struct {
	dc                      *servertest.DC
	dir, hostKeytab, userPW string
	offset                  atomic.Int64
}

func (l *lab) now() time.Time { return time.Now().Add(time.Duration(l.offset.Load())) }

// advance moves the lab's clock (the DC's and the agent's) to t.
func (l *lab) advance(t time.Time) { l.offset.Add(int64(t.Sub(l.now()))) }

func newLab(t *testing.T) *lab {
	l := &lab{dir: t.TempDir()}
	// Accounts made in the first minutes of a KDS key period (10 hours, counted from
	// 1601) look just rotated, which changes what a refresh reads: start the lab's clock
	// a quarter of an hour into the period then.
	if since := time.Duration((l.now().Unix()+11644473600)%36000) * time.Second; since < 15*time.Minute {
		l.offset.Store(int64(15*time.Minute - since))
	}
	// gokrb5's clients read the wall clock: the KDC tolerates the lab's moved clock.
	l.dc = servertest.StartDC(t, "127.0.0.6", l.now, func(c *server.Config) { c.KDC.MaxClockSkew = 72 * time.Hour })
	l.hostKeytab = filepath.Join(l.dir, "host01.keytab")
	l.userPW = filepath.Join(l.dir, "reader.pw")
	os.WriteFile(l.userPW, []byte("Reader-Passw0rd!\n"), 0o600)
	l.dc.Gm(t, "group", "new", "Web Hosts")
	l.dc.Gm(t, "computer", "new", "host01", "--write-keytab", l.hostKeytab)
	l.dc.Gm(t, "group", "add-member", "Web Hosts", "HOST01$")
	l.dc.Gm(t, "user", "new", "reader", "--new-password-file", l.userPW)
	l.dc.Gm(t, "account", "new", "WebApp01", "--dns-host-name", "web01.example.test", "--spn", "http/web01.example.test",
		"--principals-allowed", "Web Hosts", "--enctypes", "aes128,aes256", "--interval-days", "1")
	l.dc.Gm(t, "account", "new", "Batch01", "--dns-host-name", "batch01.example.test", "--principals-allowed", "reader",
		"--enctypes", "aes256", "--interval-days", "1")
	return l
}

// config is an agent configuration for the lab; servers are named (the DNS resolves
// dc1.example.test), the KDCs found by SRV records.
func (l *lab) config(t *testing.T, servers string, extra string) *agent.Config {
	t.Helper()
	cfg, err := agent.ParseConfig([]byte(l.yaml(t, servers, extra)), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// yaml is the configuration's text.
func (l *lab) yaml(t *testing.T, servers string, extra string) string {
	t.Helper()
	if servers == "" {
		servers = "[ldap://dc1.example.test:" + servertest.Port(l.dc.LDAP) + "]"
	}
	for _, d := range []string{"web", "batch", "state"} {
		os.MkdirAll(filepath.Join(l.dir, d), 0o755)
	}
	y := `domain: example.test
dns_server: ` + l.dc.DNS + `
servers: ` + servers + `
ca_file: ` + l.dc.CA + `
timeout: 3s
state_dir: ` + filepath.Join(l.dir, "state") + `
identity:
  keytab: ` + l.hostKeytab + `
refresh: {jitter: 1s, settle: 2s}
accounts:
  - name: WebApp01
    keytab: {path: ` + filepath.Join(l.dir, "web", "web.keytab") + `, upn: true}
    ccache: {path: ` + filepath.Join(l.dir, "web", "krb5cc") + `}
    keys: {path: ` + filepath.Join(l.dir, "web", "keys.json") + `}
    hooks:
      - command: [/bin/sh, -c, 'echo "$GMSA_ACCOUNT $GMSA_KVNO" >> ` + filepath.Join(l.dir, "hook.log") + `']
  - name: Batch01$
    identity: {user: reader@example.test, password_file: ` + l.userPW + `}
    keytab: {path: ` + filepath.Join(l.dir, "batch", "batch.keytab") + `, mode: "0640"}
` + extra
	return y
}

func (l *lab) agent(cfg *agent.Config) *agent.Agent {
	return agent.New(cfg, agent.Deps{Now: l.now, ClockSkew: 72 * time.Hour})
}

func refreshOK(t *testing.T, a *agent.Agent) []agent.AccountStatus {
	t.Helper()
	st := a.Refresh(context.Background(), nil)
	for _, s := range st {
		if !s.OK {
			t.Fatalf("%s: %s (%s)", s.Account, s.LastError, s.Cause)
		}
	}
	return st
}

// keytabKVNOs lists principal → kvnos in a keytab.
func keytabKVNOs(t *testing.T, path string) map[string][]uint32 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	kt, err := krbkey.ParseKeytab(b)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]uint32{}
	for _, e := range kt.Entries {
		p := strings.Join(e.Principal.Components, "/")
		if vs := out[p]; len(vs) == 0 || vs[len(vs)-1] != e.KVNO {
			out[p] = append(out[p], e.KVNO)
		}
	}
	return out
}

// opens gets a fresh ticket for spn as the reader and opens it with the keytab: the
// acceptor's view of the keytab.
func (l *lab) opens(t *testing.T, keytabPath, spn string) uint32 {
	t.Helper()
	pw, _ := os.ReadFile(l.userPW)
	kc, err := krbclient.New(krbclient.Options{Principal: "reader@EXAMPLE.TEST", Password: strings.TrimSpace(string(pw)), KDCs: []string{l.dc.KDC}, ClockSkew: 72 * time.Hour},
		func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	tkt, _, err := kc.ServiceTicket(spn)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(keytabPath)
	kt, _ := krbkey.ParseKeytab(b)
	for _, e := range kt.Entries {
		if strings.Join(e.Principal.Components, "/") != spn || e.KVNO != uint32(tkt.EncPart.KVNO) || e.Key.Etype != tkt.EncPart.EType {
			continue
		}
		if _, err := crypto.DecryptEncPart(tkt.EncPart, types.EncryptionKey{KeyType: e.Key.Etype, KeyValue: e.Key.Value}, keyusage.KDC_REP_TICKET); err == nil {
			return e.KVNO
		}
	}
	t.Fatalf("a fresh ticket for %s (kvno %d, etype %d) does not open with %s: %v", spn, tkt.EncPart.KVNO, tkt.EncPart.EType, keytabPath, keytabKVNOs(t, keytabPath))
	return 0
}

func lines(path string) []string {
	b, _ := os.ReadFile(path)
	return strings.Fields(strings.ReplaceAll(string(b), "\n", " | "))
}

func hookRuns(path string) int {
	b, _ := os.ReadFile(path)
	return strings.Count(string(b), "\n")
}

// Two gMSAs, one read with the host's keytab (sealed bind), one with a user (StartTLS):
// keytabs, a ticket cache and key material written; then across a rotation: the next
// password's SPN keys are in the keytab before the KDC switches, so a fresh ticket never
// fails; the account's own key moves only after the rotation; a hook runs once per
// change and not when nothing changed.
func TestAgentAcrossRotation(t *testing.T) {
	l := newLab(t)
	cfg := l.config(t, "", "")
	a := l.agent(cfg)
	st := refreshOK(t, a)
	web := filepath.Join(l.dir, "web", "web.keytab")
	if kv := keytabKVNOs(t, web); len(kv["WebApp01$"]) != 1 || kv["WebApp01$"][0] != 1 || len(kv["http/web01.example.test"]) != 1 {
		t.Fatalf("first keytab: %v", kv)
	}
	if got := l.opens(t, web, "http/web01.example.test"); got != 1 {
		t.Fatalf("kvno %d", got)
	}
	if st[0].DC == "" || st[0].NextPassword.IsZero() || st[0].NextPasswordOut.IsZero() || st[0].TicketExpires.IsZero() {
		t.Fatalf("status lacks facts: %+v", st[0])
	}
	batch := filepath.Join(l.dir, "batch", "batch.keytab")
	if fi, err := os.Stat(batch); err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("batch keytab: %v %v", fi, err)
	}
	// The ticket cache logs on: a service ticket from it.
	kc, err := krbclient.New(krbclient.Options{CCache: filepath.Join(l.dir, "web", "krb5cc"), KDCs: []string{l.dc.KDC}, Realm: "EXAMPLE.TEST", ClockSkew: 72 * time.Hour}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := kc.ServiceTicket("http/web01.example.test"); err != nil {
		t.Fatalf("the agent's ticket cache: %v", err)
	}
	kc.Close()
	hooks := filepath.Join(l.dir, "hook.log")
	if n := hookRuns(hooks); n != 1 {
		t.Fatalf("hook ran %d times: %v", n, lines(hooks))
	}

	// Nothing changed: no file rewritten, no hook.
	before, _ := os.Stat(web)
	refreshOK(t, a)
	after, _ := os.Stat(web)
	if n := hookRuns(hooks); n != 1 || !before.ModTime().Equal(after.ModTime()) {
		t.Fatalf("an unchanged refresh ran the hook (%d) or rewrote the keytab", n)
	}

	// Into the five minutes before the change: the SPN holds the next key at kvno 2.
	l.advance(st[0].NextPasswordOut.Add(time.Minute))
	st = refreshOK(t, a)
	kv := keytabKVNOs(t, web)
	if !equal(kv["http/web01.example.test"], 2, 1) || !equal(kv["WebApp01$"], 1) {
		t.Fatalf("look-ahead keytab: %v", kv)
	}
	if got := l.opens(t, web, "http/web01.example.test"); got != 1 {
		t.Fatalf("before the change a ticket has kvno %d", got)
	}
	// The KDC switches; before the agent reads again, a fresh ticket opens.
	l.advance(st[0].NextPassword.Add(time.Second))
	if got := l.opens(t, web, "http/web01.example.test"); got != 2 {
		t.Fatalf("after the change a ticket has kvno %d", got)
	}
	refreshOK(t, a)
	if kv := keytabKVNOs(t, web); !equal(kv["WebApp01$"], 2, 1) || !equal(kv["http/web01.example.test"], 2, 1) {
		t.Fatalf("rotated keytab: %v", kv)
	}
	if got := l.opens(t, web, "http/web01.example.test"); got != 2 {
		t.Fatalf("kvno %d", got)
	}
	if n := hookRuns(hooks); n != 3 {
		t.Fatalf("hook ran %d times over 3 changes: %v", n, lines(hooks))
	}
	// The account's own keys log on after the rotation (kinit -k with the keytab).
	kc, err = krbclient.New(krbclient.Options{Keytab: web, Principal: "WebApp01$@EXAMPLE.TEST", KDCs: []string{l.dc.KDC}, ClockSkew: 72 * time.Hour}, func(string) string { return "" })
	if err != nil {
		t.Fatalf("logging on with the rotated keytab: %v", err)
	}
	kc.Close()
}

func equal(got []uint32, want ...uint32) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

// A dead DC first in the list: the agent fails over to the next one.
func TestAgentFailsOver(t *testing.T) {
	l := newLab(t)
	dead := "ldap://dc1.example.test:" + closedPort(t)
	st := refreshOK(t, l.agent(l.config(t, "["+dead+", ldap://dc1.example.test:"+servertest.Port(l.dc.LDAP)+"]", "")))
	if !strings.HasSuffix(st[0].DC, servertest.Port(l.dc.LDAP)) {
		t.Fatalf("read from %s", st[0].DC)
	}
}

func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.6:0")
	if err != nil {
		t.Fatal(err)
	}
	p := servertest.Port(ln.Addr().String())
	ln.Close()
	return p
}

// Faults leave the last good files in place and status names the cause: a DC that
// does not answer, one that answers garbage, an output directory removed, an identity
// the DC refuses.
func TestAgentKeepsLastGoodFiles(t *testing.T) {
	l := newLab(t)
	refreshOK(t, l.agent(l.config(t, "", "")))
	web := filepath.Join(l.dir, "web", "web.keytab")
	good, _ := os.ReadFile(web)

	garbage, err := net.Listen("tcp", "127.0.0.6:0")
	if err != nil {
		t.Fatal(err)
	}
	defer garbage.Close()
	go func() {
		for {
			c, err := garbage.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n\x30\x84\xff\xff\xff\xff"))
			c.Close()
		}
	}()
	for _, c := range []struct{ servers, cause string }{
		{"[ldap://dc1.example.test:" + closedPort(t) + "]", "dc-unreachable"},
		{"[ldap://dc1.example.test:" + servertest.Port(garbage.Addr().String()) + "]", "dc-reply"},
	} {
		a := l.agent(l.config(t, c.servers, ""))
		for _, s := range a.Refresh(context.Background(), nil) {
			if s.OK || s.Cause != c.cause || s.LastError == "" || s.NextRefresh.Sub(s.LastAttempt) < 9*time.Second {
				t.Fatalf("%s: %+v, want cause %s and a backoff", c.servers, s, c.cause)
			}
		}
		if now, _ := os.ReadFile(web); string(now) != string(good) {
			t.Fatalf("%s: the keytab changed", c.cause)
		}
	}

	// The ccache's directory removed: that account fails on its output, its keytab and
	// the other account are untouched.
	cfg := l.config(t, "", "")
	cfg.Accounts[0].CCache.Path = filepath.Join(l.dir, "gone", "krb5cc")
	os.MkdirAll(filepath.Join(l.dir, "gone"), 0o755)
	a := l.agent(cfg)
	os.RemoveAll(filepath.Join(l.dir, "gone"))
	st := a.Refresh(context.Background(), nil)
	if st[0].OK || st[0].Cause != "output" || !strings.Contains(st[0].LastError, "gone") || !st[1].OK {
		t.Fatalf("removed directory: %+v", st)
	}
	if now, _ := os.ReadFile(web); string(now) != string(good) {
		t.Fatal("the keytab changed")
	}

	// A status another run reads: agent status shows the failure and its cause.
	got, err := agent.ReadStatus(filepath.Join(l.dir, "state"))
	if err != nil || len(got) != 2 || got[0].Cause != "output" || got[0].Failures != 3 /* after the two faults above */ {
		t.Fatalf("status file: %+v %v", got, err)
	}

	// The user's password wrong: the identity is named.
	os.WriteFile(l.userPW, []byte("wrong\n"), 0o600)
	st = l.agent(l.config(t, "", "")).Refresh(context.Background(), nil)
	if !st[0].OK || st[1].OK || st[1].Cause != "identity" {
		t.Fatalf("a wrong password: %+v", st[1])
	}
}

// Every problem of a configuration is listed at once, each naming its key.
func TestConfigListsEveryProblem(t *testing.T) {
	_, err := agent.ParseConfig([]byte(`domain: nodots
servers: [http://dc1]
identity: {user: bob}
accounts:
  - name: web
    enctypes: [des]
    keytab: {path: relative.keytab, mode: "0644", owner: no-such-user-here}
    hooks:
      - signal: KILLME
  - name: web$
`), "bad.yaml")
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"domain: \"nodots\"", "servers[0]", "identity.password_file: required", "accounts[0] (web).enctypes",
		"keytab.path: \"relative.keytab\"", "keytab.mode: 0644 lets every user read", "keytab.owner: no user", "hooks[0].signal",
		"hooks[0].pid_file", "accounts[1] (web$): configured twice", "accounts[1] (web$): nothing to write"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("does not say %q:\n%v", want, err)
		}
	}
	if _, err := agent.ParseConfig([]byte("domain: example.test\nfoo: 1\n"), "x.yaml"); err == nil || !strings.Contains(err.Error(), "field foo not found") {
		t.Fatalf("unknown key: %v", err)
	}
}

// The daemon as systemd and a container runtime meet it: READY=1, WATCHDOG=1 and
// RELOADING=1 on its notify socket, a configuration reloaded (an invalid one refused),
// metrics and health, and the credentials-fetcher lease API through a client generated
// from the same service definition: health, a lease for the host, one for a user
// (non-domain-joined), renewal, deletion.
func TestAgentDaemon(t *testing.T) {
	l := newLab(t)
	notify := filepath.Join(l.dir, "notify.sock")
	nl, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notify, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer nl.Close()
	msgs := make(chan string, 64)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := nl.ReadFromUnix(buf)
			if err != nil {
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	waitFor := func(want string) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case m := <-msgs:
				if strings.Contains(m, want) {
					return
				}
			case <-deadline:
				t.Fatalf("no %q from the daemon", want)
			}
		}
	}
	leases := filepath.Join(l.dir, "leases")
	sock := filepath.Join(l.dir, "agent.sock")
	cfgPath := filepath.Join(l.dir, "agent.yaml")
	base := l.yaml(t, "", "metrics: {listen: 127.0.0.6:0}\nlease_api: {socket: "+sock+", directory: "+leases+"}\n")
	os.WriteFile(cfgPath, []byte(base), 0o600)
	env := map[string]string{"NOTIFY_SOCKET": notify, "WATCHDOG_USEC": "200000"}
	reload := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- agent.Run(ctx, agent.RunOptions{ConfigPath: cfgPath, Reload: reload, Getenv: func(k string) string { return env[k] },
			Started: func(m, _ string) { started <- m }}, agent.Deps{Now: l.now, ClockSkew: 72 * time.Hour})
	}()
	var metricsAddr string
	select {
	case metricsAddr = <-started:
	case err := <-done:
		t.Fatalf("the daemon stopped: %v", err)
	}
	waitFor("READY=1")
	waitFor("WATCHDOG=1")

	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + metricsAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/healthz"); code != 200 {
		t.Fatalf("healthz %d %s", code, body)
	}
	_, body := get("/metrics")
	for _, want := range []string{`gmsa_agent_kvno{account="WebApp01$"} 1`, `gmsa_agent_account_ok{account="Batch01$"} 1`,
		"gmsa_agent_ticket_expiry_timestamp_seconds{account=\"WebApp01$\"}", "gmsa_agent_dc_requests_total"} {
		if !strings.Contains(body, want) {
			t.Fatalf("metrics lack %q:\n%s", want, body)
		}
	}

	// An invalid configuration is refused and the running one stays; a valid one is read.
	os.WriteFile(cfgPath, []byte("domain: example.test\naccounts: []\n"), 0o600)
	reload <- struct{}{}
	waitFor("RELOADING=1")
	waitFor("READY=1")
	os.WriteFile(cfgPath, []byte(base), 0o600)
	reload <- struct{}{}
	waitFor("RELOADING=1")
	waitFor("READY=1")

	// The lease API.
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	api := leaseapi.NewCredentialsFetcherServiceClient(conn)
	h, err := api.HealthCheck(ctx, &leaseapi.HealthCheckRequest{Service: "cfservice"})
	if err != nil || h.GetStatus() != "OK" {
		t.Fatalf("health: %v %v", h, err)
	}
	spec := func(name string) string {
		return l.dc.Gm(t, "credspec", "new", "--account", name)
	}
	lease, err := api.AddKerberosLease(ctx, &leaseapi.CreateKerberosLeaseRequest{CredspecContents: []string{spec("WebApp01")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(lease.GetCreatedKerberosFilePaths()) != 1 {
		t.Fatalf("lease: %v", lease)
	}
	cc := filepath.Join(lease.GetCreatedKerberosFilePaths()[0], "krb5cc")
	if _, err := credentials.LoadCCache(cc); err != nil {
		t.Fatalf("the lease's ticket cache: %v", err)
	}
	pw, _ := os.ReadFile(l.userPW)
	user, err := api.AddNonDomainJoinedKerberosLease(ctx, &leaseapi.CreateNonDomainJoinedKerberosLeaseRequest{
		CredspecContents: []string{spec("Batch01")}, Username: "reader", Password: strings.TrimSpace(string(pw)), Domain: "example.test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.AddNonDomainJoinedKerberosLease(ctx, &leaseapi.CreateNonDomainJoinedKerberosLeaseRequest{
		CredspecContents: []string{spec("Batch01")}, Username: "reader", Password: "wrong", Domain: "example.test"}); status.Code(err) != codes.Unavailable {
		t.Fatalf("a wrong password made a lease: %v", err)
	}
	renewed, err := api.RenewNonDomainJoinedKerberosLease(ctx, &leaseapi.RenewNonDomainJoinedKerberosLeaseRequest{
		Username: "reader", Password: strings.TrimSpace(string(pw)), Domain: "example.test"})
	if err != nil || len(renewed.GetRenewedKerberosFilePaths()) != 1 || renewed.GetRenewedKerberosFilePaths()[0] != user.GetCreatedKerberosFilePaths()[0] {
		t.Fatalf("renew: %v %v", renewed, err)
	}
	del, err := api.DeleteKerberosLease(ctx, &leaseapi.DeleteKerberosLeaseRequest{LeaseId: lease.GetLeaseId()})
	if err != nil || del.GetLeaseId() != lease.GetLeaseId() {
		t.Fatalf("delete: %v %v", del, err)
	}
	if _, err := os.Stat(cc); !os.IsNotExist(err) {
		t.Fatalf("the deleted lease's cache is still there: %v", err)
	}
	if _, err := api.DeleteKerberosLease(ctx, &leaseapi.DeleteKerberosLeaseRequest{LeaseId: lease.GetLeaseId()}); status.Code(err) != codes.NotFound {
		t.Fatalf("deleting twice: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	waitFor("STOPPING=1")
}

// Twenty accounts of one identity cost the DC one bind, the RootDSE and domain reads,
// and one search: not a request per account.
func TestRefreshReadsAllAccountsInOneSearch(t *testing.T) {
	l := newLab(t)
	var y strings.Builder
	y.WriteString("domain: example.test\nservers: [ldap://dc1.example.test:" + servertest.Port(l.dc.LDAP) + "]\ndns_server: " + l.dc.DNS +
		"\nca_file: " + l.dc.CA + "\nstate_dir: " + filepath.Join(l.dir, "state") + "\nidentity: {user: reader@example.test, password_file: " + l.userPW + "}\naccounts:\n")
	for i := range 20 {
		name := "many" + string(rune('a'+i))
		l.dc.Gm(t, "account", "new", name, "--dns-host-name", name+".example.test", "--principals-allowed", "reader")
		y.WriteString("  - name: " + name + "\n    keys: {path: " + filepath.Join(l.dir, name+".json") + "}\n")
	}
	cfg, err := agent.ParseConfig([]byte(y.String()), "many.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a := l.agent(cfg)
	if st := refreshOK(t, a); len(st) != 20 {
		t.Fatalf("%d statuses", len(st))
	}
	if n := a.Requests(); n != 4 {
		t.Fatalf("%d LDAP requests for 20 accounts, want 4 (bind, RootDSE, domain, one search)", n)
	}
}

// No servers and no KDCs configured: the agent finds both through the domain's DNS
// (SRV records of our DC's DNS), as AD hosts do.
func TestAgentFindsDCsByDNS(t *testing.T) {
	l := newLab(t)
	y := l.yaml(t, "[]", "")
	y = y[:strings.Index(y, "  - name: Batch01$")] // the user's account would be sought on LDAPS 636
	cfg, err := agent.ParseConfig([]byte(y), "dns.yaml")
	if err != nil {
		t.Fatal(err)
	}
	st := refreshOK(t, l.agent(cfg))
	if st[0].DC != "ldap://dc1.example.test:"+servertest.Port(l.dc.LDAP) {
		t.Fatalf("read from %s", st[0].DC)
	}
}

// The identity's ticket cache (as after kinit -k) reads the password too.
func TestAgentReadsWithATicketCache(t *testing.T) {
	l := newLab(t)
	kc, err := krbclient.New(krbclient.Options{Keytab: l.hostKeytab, KDCs: []string{l.dc.KDC}, Realm: "EXAMPLE.TEST", ClockSkew: 72 * time.Hour}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cred, err := kc.NewTGT()
	kc.Close()
	if err != nil {
		t.Fatal(err)
	}
	cc := filepath.Join(l.dir, "host.cc")
	os.WriteFile(cc, krbclient.MarshalCCache(cred.Client, cred.ClientRealm, []*krbclient.Credential{cred}), 0o600)
	y := strings.Replace(l.yaml(t, "", ""), "identity:\n  keytab: "+l.hostKeytab, "identity:\n  ccache: "+cc, 1)
	y = y[:strings.Index(y, "  - name: Batch01$")]
	if !strings.Contains(y, "identity:\n  ccache: ") || strings.Contains(y, "keytab: "+l.hostKeytab) {
		t.Fatalf("the identity is not the cache:\n%s", y)
	}
	cfg, err := agent.ParseConfig([]byte(y), "cc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	refreshOK(t, l.agent(cfg))
}

// A user identity with bind: kerberos logs on with its password and reads over a
// sealed bind on ldap:// (found by DNS).
func TestAgentUserWithKerberosBind(t *testing.T) {
	l := newLab(t)
	y := strings.Replace(l.yaml(t, "[]", ""), "identity: {user: reader@example.test, password_file: "+l.userPW+"}",
		"identity: {user: reader@example.test, password_file: "+l.userPW+", bind: kerberos}", 1)
	if !strings.Contains(y, "bind: kerberos") {
		t.Fatal("the identity was not replaced")
	}
	cfg, err := agent.ParseConfig([]byte(y), "krb.yaml")
	if err != nil {
		t.Fatal(err)
	}
	st := refreshOK(t, l.agent(cfg))
	if st[1].DC != "ldap://dc1.example.test:"+servertest.Port(l.dc.LDAP) {
		t.Fatalf("the user read from %s", st[1].DC)
	}
}

// A DC that reports a lower kvno than the keytab holds is behind in replication: the
// keytab stays and the status says so.
func TestAgentKeepsANewerKeytab(t *testing.T) {
	l := newLab(t)
	web := filepath.Join(l.dir, "web", "web.keytab")
	os.MkdirAll(filepath.Dir(web), 0o755)
	newer := &krbkey.Keytab{Entries: []krbkey.KeytabEntry{{Principal: krbkey.Principal{Realm: "EXAMPLE.TEST", Components: []string{"WebApp01$"}, NameType: 1},
		KVNO: 7, Key: krbkey.Key{Etype: krbkey.EtypeAES256CTSHMACSHA, Value: make([]byte, 32)}}}}
	b, _ := newer.Marshal()
	os.WriteFile(web, b, 0o600)
	st := l.agent(l.config(t, "", "")).Refresh(context.Background(), nil)
	if st[0].OK || !strings.Contains(st[0].LastError, "already holds kvno 7") || !strings.Contains(st[0].LastError, "replication") {
		t.Fatalf("%+v", st[0])
	}
	if now, _ := os.ReadFile(web); string(now) != string(b) {
		t.Fatal("the newer keytab was replaced")
	}
}
