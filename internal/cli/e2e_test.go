package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"gmsa/internal/krbkey"
	"gmsa/internal/server"
	"gmsa/internal/store"
	"gmsa/internal/store/bolt"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// The directory driven through the command line: provision → root key → a group of
// hosts → a gMSA allowing that group → Test-ADServiceAccount yes / no / yes → passwords
// across a rotation equal 'kds compute' for the same inputs, previous included.
func TestDirectoryEndToEnd(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	clk := &testClock{t: time.Date(2026, 5, 4, 9, 30, 0, 0, time.UTC)}
	e := &env{now: clk.now}
	gm := func(args ...string) (string, string, error) {
		return runEnv(e, append(args, "--data", data)...)
	}
	ok := func(args ...string) string {
		t.Helper()
		out, errOut, err := gm(args...)
		if err != nil {
			t.Fatalf("gmsa %v: %v\n%s%s", args, err, out, errOut)
		}
		return out
	}
	js := func(args ...string) map[string]any {
		t.Helper()
		var m map[string]any
		out := ok(append(args, "-o", "json")...)
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return m
	}
	fails := func(code int, want string, args ...string) {
		t.Helper()
		out, errOut, err := gm(args...)
		if err == nil || ExitCode(err) != code || !strings.Contains(err.Error()+out, want) {
			t.Fatalf("gmsa %v: exit %d %v %s%s; want exit %d mentioning %q", args, ExitCode(err), err, out, errOut, code, want)
		}
	}

	ok("domain", "provision", "--realm", "EXAMPLE.TEST", "--netbios", "EXAMPLE")
	if st, err := os.Stat(filepath.Join(data, server.AdminPWFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("admin password file: %v %v", st, err)
	}
	fails(ExitUsage, "holds data", "domain", "provision", "--realm", "OTHER.TEST")

	// Root keys: Add-KdsRootKey's default waits 10 days, and gMSA creation says so.
	_, warn, err := gm("kds", "add")
	if err != nil || !strings.Contains(warn, "2026-05-14T19:35:00Z") {
		t.Fatalf("kds add: %v %s", err, warn)
	}
	fails(ExitUsage, "gmsa kds add --effective-time", "account", "new", "svc", "--dns-host-name", "svc.example.test")
	key := js("kds", "add", "--effective-time", "2026-05-03T00:00:00Z")
	keys := ok("kds", "list")
	if strings.Count(keys, "SHA512") != 2 {
		t.Fatalf("kds list:\n%s", keys)
	}
	ok("kds", "test", key["name"].(string))

	// Hosts and a group.
	kt := filepath.Join(dir, "web01.keytab")
	ok("computer", "new", "WEB01", "--write-keytab", kt)
	raw, _ := os.ReadFile(kt)
	ktab, err := krbkey.ParseKeytab(raw)
	if err != nil || len(ktab.Entries) != 2*5 || ktab.Entries[0].Principal.String() != "WEB01$@EXAMPLE.TEST" {
		t.Fatalf("computer keytab: %v %v", ktab, err)
	}
	ok("computer", "new", "WEB02")
	ok("group", "new", "Web Hosts")
	ok("group", "add-member", "Web Hosts", "WEB01$")
	acct := js("account", "new", "svc", "--dns-host-name", "svc.example.test", "--principals-allowed", "Web Hosts",
		"--interval-days", "1", "--spn", "http/svc.example.test", "--enctypes", "aes128,aes256")
	if acct["sam_account_name"] != "svc$" || acct["managed_password_root_key"] != key["name"] || acct["supported_encryption_types"] != 24.0 {
		t.Fatalf("%v", acct)
	}

	// Test-ADServiceAccount semantics.
	if out := ok("account", "test", "svc", "--as", "WEB01$"); !strings.HasPrefix(out, "yes: ") || !strings.Contains(out, "WEB01$ → Web Hosts") {
		t.Fatalf("member: %s", out)
	}
	fails(ExitFailure, "no: no entry", "account", "test", "svc", "--as", "WEB02$")
	ok("group", "add-member", "Web Hosts", "WEB02$")
	ok("account", "test", "svc", "--as", "WEB02")

	// Passwords across a rotation, compared with the offline engine.
	first := js("account", "password", "svc", "--as", "WEB01$")
	if first["previous_password_hex"] != nil {
		t.Fatal("a new account has a previous password")
	}
	clk.add(25 * time.Hour)
	second := js("account", "password", "svc", "--as", "WEB02$")
	if second["previous_password_hex"] != first["current_password_hex"] || second["current_password_hex"] == first["current_password_hex"] {
		t.Fatal("no rotation after 25 hours on a 1-day interval")
	}
	if got := js("account", "get", "svc"); got["key_version_number"] != 2.0 {
		t.Fatalf("kvno after rotation: %v", got["key_version_number"])
	}
	export := filepath.Join(dir, "root.json")
	ok("kds", "export", key["name"].(string), "--out", export)
	if st, _ := os.Stat(export); st.Mode().Perm() != 0o600 {
		t.Fatal("exported root key is not 0600")
	}
	offline := runJSONEnv(t, e, "kds", "compute", "--root-key-file", export, "--sid", acct["sid"].(string), "--created", acct["when_created"].(string),
		"--interval-days", "1", "--at", clk.now().Format(time.RFC3339), "--account", "svc$", "--domain", "example.test")
	if offline["password_hex"] != second["current_password_hex"] || offline["previous_password_hex"] != second["previous_password_hex"] ||
		offline["aes256_key"] != second["current_aes256_key"] {
		t.Fatal("the directory's passwords differ from kds compute for the same inputs")
	}

	// Rules seen from the command line.
	fails(ExitUsage, "only be set when the account is created", "account", "set", "svc", "--interval-days", "7")
	fails(ExitUsage, "may not retrieve", "account", "password", "svc", "--as", "Administrator")
	fails(ExitUsage, "at most 15", "account", "new", "averyveryverylongname", "--dns-host-name", "x")
	if out := ok("account", "set", "svc", "--disable", "--add-spn", "http/svc2.example.test"); !strings.Contains(out, "enabled") {
		t.Fatal(out)
	}
	fails(ExitFailure, "disabled", "account", "test", "svc", "--as", "WEB01$")

	// A running server holds the data directory; backup still works through it.
	ctx, stop := context.WithCancel(context.Background())
	cfg := server.DefaultConfig()
	cfg.Data = data
	cfg.LDAP.Listen, cfg.LDAP.LDAPSListen, cfg.KDC.Listen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	done := make(chan error, 1)
	go func() {
		done <- server.Run(ctx, cfg, server.Deps{Now: clk.now, Stdout: os.Stderr, Logger: server.NewLogger(&cfg, os.Stderr, false)})
	}()
	for i := 0; ; i++ {
		if _, err := os.Stat(filepath.Join(data, server.EndpointsFile)); err == nil {
			break
		}
		if i == 500 {
			t.Fatal("server did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	fails(ExitFailure, "held by gmsa server pid", "account", "list")
	fails(ExitFailure, "--server ldaps://127.0.0.1:", "account", "list") // the form that works while it runs
	fails(ExitFailure, "held by gmsa server pid", "compact")
	backup := filepath.Join(dir, "backup.bin")
	ok("backup", "--out", backup)
	auditedWrite(t, data, clk.now)
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Every directory change is in the audit trail, a 0600 file in the data directory.
	auditPath := filepath.Join(data, server.AuditFile)
	if st, err := os.Stat(auditPath); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("audit log: %v %v", st, err)
	}
	if b, _ := os.ReadFile(auditPath); !strings.Contains(string(b), `"msg":"directory changed","principal":"Administrator"`) ||
		!strings.Contains(string(b), `"dn":"CN=Administrator,CN=Users,DC=example,DC=test"`) {
		t.Fatalf("audit log lacks the change:\n%s", b)
	}
	restored := filepath.Join(dir, "restored")
	if _, _, err := runEnv(e, "restore", "--in", backup, "--data", restored); err != nil {
		t.Fatal(err)
	}
	out, _, err := runEnv(e, "account", "get", "svc", "--data", restored, "-o", "json")
	if err != nil || !strings.Contains(out, acct["sid"].(string)) {
		t.Fatalf("restored: %v %s", err, out)
	}
	if list := ok("account", "list"); !strings.Contains(list, "svc") {
		t.Fatal(list)
	}
	// The restored directory's indexes match its objects; a damaged index is found,
	// rebuilt, and found whole again.
	if out, _, err := runEnv(e, "index", "check", "--data", restored); err != nil || !strings.Contains(out, "0 missing or wrong, 0 stale") {
		t.Fatalf("index check: %v %s", err, out)
	}
	st, err := bolt.Open(filepath.Join(restored, "gmsa.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	kvs, _ := st.List(context.Background(), "tree/")
	st.Apply(context.Background(), store.Delete(kvs[0].Key))
	st.Close()
	if out, _, err := runEnv(e, "index", "check", "--data", restored); err == nil || !strings.Contains(out, "1 missing or wrong") {
		t.Fatalf("index check of a damaged index: %v %s", err, out)
	}
	if out, _, err := runEnv(e, "index", "rebuild", "--data", restored); err != nil || !strings.Contains(out, "repaired: 1 missing") {
		t.Fatalf("index rebuild: %v %s", err, out)
	}
	if _, _, err := runEnv(e, "index", "check", "--data", restored); err != nil {
		t.Fatalf("index check after the rebuild: %v", err)
	}
	// A CSV import, as Import-Csv | New-ADUser: New-ADUser's column names, any case.
	csvFile := filepath.Join(dir, "users.csv")
	os.WriteFile(csvFile, []byte("samAccountName,Name,Description\nalice,Alice A,first\nbob,,second\n"), 0o600)
	if out, _, err := runEnv(e, "user", "import", csvFile, "--data", restored); err != nil || !strings.Contains(out, "imported 2 users") {
		t.Fatalf("user import: %v %s", err, out)
	}
	if out, _, err := runEnv(e, "user", "get", "alice", "--data", restored); err != nil || !strings.Contains(out, "CN=Alice A,CN=Users,") {
		t.Fatalf("imported user: %v %s", err, out)
	}
	// Compaction keeps every object and index entry and never grows the file.
	compacted := runJSONEnv(t, e, "compact", "--data", restored)
	if compacted["keys"].(float64) < 10 || compacted["bytes_after"].(float64) > compacted["bytes_before"].(float64) {
		t.Fatalf("compact: %v", compacted)
	}
	if out, _, err := runEnv(e, "index", "check", "--data", restored); err != nil || !strings.Contains(out, "0 missing or wrong, 0 stale") {
		t.Fatalf("index check after compaction: %v %s", err, out)
	}
	if out, _, err := runEnv(e, "user", "get", "alice", "--data", restored); err != nil || !strings.Contains(out, "CN=Alice A,CN=Users,") {
		t.Fatalf("a user after compaction: %v %s", err, out)
	}
	if _, _, err := runEnv(e, "compact", "--data", filepath.Join(dir, "none")); err == nil || !strings.Contains(err.Error(), "no gmsa data directory") {
		t.Fatalf("compacting a directory without a store: %v", err)
	}
	os.WriteFile(csvFile, []byte("samAccountName,Mail\ncarol,c@example.test\n"), 0o600)
	if _, _, err := runEnv(e, "user", "import", csvFile, "--data", restored); err == nil || !strings.Contains(err.Error(), `column "Mail"`) {
		t.Fatalf("an unknown column: %v", err)
	}
}

// auditedWrite changes Administrator's description over LDAPS on the running server.
func auditedWrite(t *testing.T, data string, now func() time.Time) {
	t.Helper()
	var ep server.Endpoints
	b, err := os.ReadFile(filepath.Join(data, server.EndpointsFile))
	if err == nil {
		err = json.Unmarshal(b, &ep)
	}
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if ca, err := os.ReadFile(ep.CA); err != nil || !pool.AppendCertsFromPEM(ca) {
		t.Fatalf("CA %s: %v", ep.CA, err)
	}
	pw, err := os.ReadFile(filepath.Join(data, server.AdminPWFile))
	if err != nil {
		t.Fatal(err)
	}
	c, err := ldap.DialURL(ep.LDAPS, ldap.DialWithTLSConfig(&tls.Config{RootCAs: pool, ServerName: "localhost", Time: now}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Bind("Administrator@example.test", strings.TrimSpace(string(pw))); err != nil {
		t.Fatal(err)
	}
	m := ldap.NewModifyRequest("CN=Administrator,CN=Users,DC=example,DC=test", nil)
	m.Replace("description", []string{"audited"})
	if err := c.Modify(m); err != nil {
		t.Fatal(err)
	}
}

// runJSONEnv runs an offline command (no --data) with e's clock and decodes its JSON.
func runJSONEnv(t *testing.T, e *env, args ...string) map[string]any {
	t.Helper()
	out, _, err := runEnv(e, append(args, "-o", "json")...)
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestServerConfig(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "gmsa.yaml")
	os.WriteFile(cfgFile, []byte("data: /nonexistent/deeper/data\nlog:\n  level: loud\n  format: xml\n"), 0o600)
	_, _, err := runCLI("server", "--config", cfgFile, "--check-config")
	if ExitCode(err) != ExitUsage {
		t.Fatalf("%v", err)
	}
	for _, want := range []string{"data:", "log.level", "log.format"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate did not report %s: %v", want, err)
		}
	}
	os.WriteFile(cfgFile, []byte("nosuchkey: 1\n"), 0o600)
	if _, _, err := runCLI("server", "--config", cfgFile, "--check-config"); ExitCode(err) != ExitUsage || !strings.Contains(err.Error(), "nosuchkey") {
		t.Fatalf("unknown key: %v", err)
	}
	os.WriteFile(cfgFile, []byte("data: "+dir+"\nlog:\n  level: debug\n"), 0o600)
	out, _, err := runEnv(&env{now: time.Now, getenv: func(k string) string {
		return map[string]string{"GMSA_LOG_FORMAT": "json"}[k]
	}}, "server", "--config", cfgFile, "--check-config")
	if err != nil || !strings.Contains(out, "valid") {
		t.Fatalf("%v %s", err, out)
	}
	// The store: section, the environment and the flags layer as the rest does.
	os.WriteFile(cfgFile, []byte("data: "+dir+"\nstore:\n  backend: etcd\n  etcd:\n    prefix: nodelimiter\n    dial_timeout: 1s\n"), 0o600)
	_, _, err = runCLI("server", "--config", cfgFile, "--check-config")
	if ExitCode(err) != ExitUsage || !strings.Contains(err.Error(), "store.etcd.endpoints") || !strings.Contains(err.Error(), "store.etcd.prefix") {
		t.Fatalf("store settings: %v", err)
	}
	_, _, err = runCLI("server", "--config", cfgFile, "--check-config", "--store", "bolt")
	if err != nil {
		t.Fatalf("--store bolt over the file's etcd: %v", err)
	}
	_, _, err = runEnv(&env{now: time.Now, getenv: func(k string) string {
		return map[string]string{"GMSA_ETCD_ENDPOINTS": "http://127.0.0.1:1"}[k]
	}}, "server", "--config", cfgFile, "--check-config", "--etcd-prefix", "d/")
	if err == nil || ExitCode(err) == ExitUsage || !strings.Contains(err.Error(), "the cluster did not answer") {
		t.Fatalf("an unreachable cluster: %v", err)
	}
}
