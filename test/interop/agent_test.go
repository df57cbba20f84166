//go:build interop

package interop

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gmsa/internal/krbkey"
	"gmsa/internal/store/etcd/etcdtest"
)

// agentStatus runs gmsa agent status -o json on a configuration.
func agentStatus(t *testing.T, cfg string) []map[string]any {
	t.Helper()
	out, errOut, _ := run(nil, "", gmsaBin, "agent", "status", "--config", cfg, "-o", "json")
	var st []map[string]any
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("agent status: %v\n%s%s", err, out, errOut)
	}
	return st
}

// agentOnce runs gmsa agent once and fails the test unless every account succeeded.
func agentOnce(t *testing.T, cfg string) []map[string]any {
	t.Helper()
	out, errOut, code := run([]string{"GODEBUG=x509negativeserial=1"}, "", gmsaBin, "agent", "once", "--config", cfg, "-o", "json")
	if code != 0 {
		t.Fatalf("agent once: exit %d\n%s%s", code, out, errOut)
	}
	var st []map[string]any
	json.Unmarshal([]byte(out), &st)
	return st
}

func statusTime(t *testing.T, s map[string]any, key string) time.Time {
	t.Helper()
	v, _ := s[key].(string)
	tm, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		t.Fatalf("status %s: %q", key, v)
	}
	return tm
}

// kvnosOf lists a keytab's kvnos per principal, newest first as written.
func kvnosOf(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	kt, err := krbkey.ParseKeytab(b)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	out := map[string]string{}
	for _, e := range kt.Entries {
		p := strings.Join(e.Principal.Components, "/")
		k := fmt.Sprintf("%s %d", p, e.KVNO)
		if !seen[k] {
			seen[k] = true
			out[p] = strings.TrimSpace(out[p] + fmt.Sprintf(" %d", e.KVNO))
		}
	}
	return out
}

// rotationLab is a DC whose clock can be moved by restarting it, and what MIT's tools
// need to talk to it under the same clock.
type rotationLab struct {
	name    string
	restart func(offset time.Duration) string // the agent's servers:, kdcs: and TLS lines for the DC as it now runs
	krb5    string                            // krb5.conf for MIT's tools
}

// agentAcrossRotation: the agent keeps a keytab of a gMSA (read by a user over LDAPS)
// across a rotation with the DC's clock moved: MIT's kvno -k validates a fresh service
// ticket at every step, including right after the KDC switches and before the agent
// has read again; the hook runs once per change.
func agentAcrossRotation(t *testing.T, lab rotationLab, readerPW string) {
	dir := t.TempDir()
	keytab := filepath.Join(dir, "rot.keytab")
	keysFile := filepath.Join(dir, "rot.json")
	hookLog := filepath.Join(dir, "hook.log")
	pwFile := filepath.Join(dir, "reader.pw")
	os.WriteFile(pwFile, []byte(readerPW+"\n"), 0o600)
	cfg := filepath.Join(dir, "agent.yaml")
	write := func(dcLines string) {
		y := "domain: example.test\n" + dcLines +
			"state_dir: " + filepath.Join(dir, "state") + "\nidentity: {user: agreader@example.test, password_file: " + pwFile + "}\n" +
			"accounts:\n  - name: RotAgent\n    keytab: {path: " + keytab + "}\n    keys: {path: " + keysFile + "}\n    hooks:\n      - command: [/bin/sh, -c, 'echo $GMSA_KVNO >> " + hookLog + "']\n"
		os.WriteFile(cfg, []byte(y), 0o600)
	}
	var offset time.Duration
	mit := func(cc string) []string {
		e := []string{"KRB5_CONFIG=" + lab.krb5, "KRB5CCNAME=FILE:" + filepath.Join(dir, cc)}
		if offset != 0 {
			e = append(e, "LD_PRELOAD="+faketimeLib, fmt.Sprintf("FAKETIME=+%ds", int(offset.Seconds())), "FAKETIME_DONT_RESET=1")
		}
		return e
	}
	// validate gets a fresh ticket as the reader and has kvno -k open it with the keytab.
	validate := func(step string) string {
		t.Helper()
		cc := fmt.Sprintf("cc-%d", time.Now().UnixNano())
		if out, errOut, code := run(mit(cc), readerPW+"\n", "kinit", "agreader"); code != 0 {
			t.Fatalf("%s: kinit: %s%s", step, out, errOut)
		}
		out, errOut, code := run(mit(cc), "", "kvno", "-k", keytab, "http/rotagent.example.test")
		if code != 0 || !strings.Contains(out, "keytab entry valid") {
			t.Fatalf("%s (%s, clock +%s): a fresh service ticket does not open with the agent's keytab (%v): %s%s", step, lab.name, offset, kvnosOf(t, keytab), out, errOut)
		}
		t.Logf("%s, %s (clock +%s): keytab %v; %s", lab.name, step, offset.Round(time.Second), kvnosOf(t, keytab), strings.TrimSpace(out))
		return out
	}
	hooks := func() int { b, _ := os.ReadFile(hookLog); return strings.Count(string(b), "\n") }

	write(lab.restart(0))
	st := agentOnce(t, cfg)
	validate("first")
	kv := kvnosOf(t, keytab)
	first := kv["RotAgent$"]
	passwordOut, passwordChange := statusTime(t, st[0], "next_password_out"), statusTime(t, st[0], "next_password")
	agentOnce(t, cfg)
	if hooks() != 1 {
		t.Fatalf("hook ran %d times for one change", hooks())
	}

	// A minute into the look-ahead window: the SPN gets the next key ahead.
	offset = time.Until(passwordOut) + time.Minute
	write(lab.restart(offset))
	agentOnce(t, cfg)
	kv = kvnosOf(t, keytab)
	if len(strings.Fields(kv["http/rotagent.example.test"])) != len(strings.Fields(first))+1 || kv["RotAgent$"] != first {
		t.Fatalf("%s look-ahead keytab: %v (before: %s)", lab.name, kv, first)
	}
	validate("look-ahead")
	// The KDC still issues tickets under the password in use: a keytab of that key alone
	// opens a fresh ticket, one of the next password's key at the same kvno does not.
	var km struct {
		Current struct {
			KVNO uint32
			Keys map[string]string
		}
		Next *struct{ Keys map[string]string }
	}
	if b, _ := os.ReadFile(keysFile); json.Unmarshal(b, &km) != nil || km.Next == nil {
		t.Fatalf("%s: the key material lacks the next password in the window", lab.name)
	}
	single := func(name, hexKey string) string {
		v, _ := hex.DecodeString(hexKey)
		kt := &krbkey.Keytab{Entries: []krbkey.KeytabEntry{{Principal: krbkey.Principal{Realm: "EXAMPLE.TEST",
			Components: []string{"http", "rotagent.example.test"}, NameType: 2}, KVNO: km.Current.KVNO, Key: krbkey.Key{Etype: 18, Value: v}}}}
		b, _ := kt.Marshal()
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o600)
		return p
	}
	cc := fmt.Sprintf("cc-%d", time.Now().UnixNano())
	run(mit(cc), readerPW+"\n", "kinit", "agreader")
	if out, errOut, code := run(mit(cc), "", "kvno", "-k", single("cur.kt", km.Current.Keys["aes256-cts-hmac-sha1-96"]), "http/rotagent.example.test"); code != 0 {
		t.Fatalf("%s: in the window the KDC's ticket is not under the password in use: %s%s", lab.name, out, errOut)
	}
	if _, _, code := run(mit(cc), "", "kvno", "-k", single("next.kt", km.Next.Keys["aes256-cts-hmac-sha1-96"]), "http/rotagent.example.test"); code == 0 {
		t.Fatalf("%s: in the window the KDC's ticket opens with the next password's key", lab.name)
	}

	// Half a minute past the change, before the agent reads: a fresh ticket opens.
	offset = time.Until(passwordChange) + 30*time.Second
	write(lab.restart(offset))
	out := validate("switched, before the agent read")
	agentOnce(t, cfg)
	kv = kvnosOf(t, keytab)
	if kv["RotAgent$"] == first || !strings.Contains(out, "kvno = "+strings.Fields(kv["RotAgent$"])[0]) {
		t.Fatalf("%s after the change: keytab %v, ticket %s", lab.name, kv, out)
	}
	validate("rotated")
	if hooks() != 3 {
		t.Fatalf("hook ran %d times for three changes", hooks())
	}
	st = agentStatus(t, cfg)
	if st[0]["ok"] != true || st[0]["kvno"] == nil {
		t.Fatalf("status: %v", st)
	}
}

// The agent against Samba 4.22: two gMSAs, one read with a machine keytab over a sealed
// bind (keytab, ticket cache with a copy for a non-root user, key material), one with a
// user over LDAPS; MIT's kvno validates tickets with the keytab, klist and kvno run as
// the non-root user that owns the cache; then the rotation with Samba's clock moved.
func TestAgentAgainstSamba(t *testing.T) {
	peers(t, "samba-provision")
	peers(t, "samba-start")
	defer peers(t, "samba-stop")
	samba := target{"samba", "ldaps://dc1.example.test:636", "Administrator@example.test", adminPass, []string{"--insecure-skip-verify"}}
	dir := t.TempDir()
	ok := func(args ...string) {
		t.Helper()
		if out, stderr, code := samba.gm(t, samba.admin, samba.adminPW, "", args...); code != 0 {
			t.Fatalf("gmsa %v: exit %d\n%s%s", args, code, out, stderr)
		}
	}
	const readerPW = "Agent-Reader-1!"
	pwFile := filepath.Join(dir, "reader.pw")
	os.WriteFile(pwFile, []byte(readerPW+"\n"), 0o600)
	hostKeytab := filepath.Join(dir, "aghost01.keytab")
	ok("computer", "new", "aghost01", "--write-keytab", hostKeytab)
	ok("group", "new", "Agent Hosts")
	ok("group", "add-member", "Agent Hosts", "AGHOST01$")
	ok("user", "new", "agreader", "--new-password-file", pwFile)
	ok("account", "new", "WebAgent", "--dns-host-name", "webagent.example.test", "--spn", "http/webagent.example.test",
		"--principals-allowed", "Agent Hosts", "--enctypes", "aes128,aes256")
	ok("account", "new", "BatchAgent", "--dns-host-name", "batchagent.example.test", "--principals-allowed", "agreader", "--enctypes", "aes256")
	ok("account", "new", "RotAgent", "--dns-host-name", "rotagent.example.test", "--spn", "http/rotagent.example.test",
		"--principals-allowed", "agreader", "--interval-days", "1", "--enctypes", "aes128,aes256")

	// Outputs for a non-root user in a directory it can reach.
	out := filepath.Join(os.TempDir(), fmt.Sprintf("gmsa-agent-%d", time.Now().UnixNano()))
	os.MkdirAll(out, 0o755)
	os.Chmod(out, 0o755)
	defer os.RemoveAll(out)
	krb5 := filepath.Join(out, "krb5.conf")
	b, _ := os.ReadFile(filepath.Join(dcDir, "krb5.conf"))
	os.WriteFile(krb5, b, 0o644)
	keytab, cc, keys := filepath.Join(out, "web.keytab"), filepath.Join(out, "web.cc"), filepath.Join(out, "web.json")
	cfg := filepath.Join(dir, "agent.yaml")
	os.WriteFile(cfg, []byte(`domain: example.test
servers: [dc1.example.test]
kdcs: [127.0.0.1:88]
insecure_skip_verify: true
state_dir: `+filepath.Join(dir, "state")+`
identity: {keytab: `+hostKeytab+`}
accounts:
  - name: WebAgent
    keytab: {path: `+keytab+`, owner: nobody, mode: "0600"}
    ccache: {path: `+cc+`, owner: nobody, users: [nobody]}
    keys: {path: `+keys+`}
  - name: BatchAgent
    identity: {user: agreader@example.test, password_file: `+pwFile+`}
    keytab: {path: `+filepath.Join(out, "batch.keytab")+`}
`), 0o600)
	st := agentOnce(t, cfg)
	if len(st) != 2 || !strings.HasPrefix(st[0]["dc"].(string), "ldap://") || !strings.HasPrefix(st[1]["dc"].(string), "ldaps://") {
		t.Fatalf("status: %v", st)
	}
	for _, f := range []string{keytab, cc, filepath.Join(out, "krb5cc_65534")} {
		fi, err := os.Stat(f)
		if err != nil || fi.Mode().Perm() != 0o600 || fi.Sys().(*syscall.Stat_t).Uid != 65534 {
			t.Fatalf("%s: %v %v", f, fi, err)
		}
	}
	// MIT's kvno validates a ticket with the keytab.
	env := []string{"KRB5_CONFIG=" + krb5, "KRB5CCNAME=FILE:" + filepath.Join(dir, "reader.cc")}
	sh(t, env, "sh", "-c", "echo '"+readerPW+"' | kinit agreader >/dev/null")
	if o := sh(t, env, "kvno", "-k", keytab, "http/webagent.example.test"); !strings.Contains(o, "keytab entry valid") {
		t.Fatalf("kvno -k: %s", o)
	}
	// The cache, as the non-root user that owns it.
	asNobody := func(args ...string) string {
		t.Helper()
		o, errOut, code := run([]string{"KRB5_CONFIG=" + krb5}, "", "setpriv", append([]string{"--reuid=65534", "--regid=65534", "--clear-groups"}, args...)...)
		if code != 0 {
			t.Fatalf("as nobody: %v: %s%s", args, o, errOut)
		}
		return o
	}
	if o := asNobody("klist", "-c", filepath.Join(out, "krb5cc_65534")); !strings.Contains(o, "WebAgent$@EXAMPLE.TEST") || !strings.Contains(o, "krbtgt/EXAMPLE.TEST") {
		t.Fatalf("klist: %s", o)
	}
	if o := asNobody("kvno", "-c", cc, "http/webagent.example.test"); !strings.Contains(o, "kvno = ") {
		t.Fatalf("kvno as the cache's owner: %s", o)
	}
	var km map[string]any
	if b, _ := os.ReadFile(keys); json.Unmarshal(b, &km) != nil || km["current"] == nil {
		t.Fatalf("keys: %s", b)
	}
	if st := agentStatus(t, cfg); st[0]["ticket_expires"] == nil {
		t.Fatalf("status without the ticket's expiry: %v", st)
	}

	agentAcrossRotation(t, rotationLab{name: "Samba", krb5: krb5,
		restart: func(offset time.Duration) string {
			if offset != 0 {
				peers(t, "samba-stop")
				peers(t, "samba-start", fmt.Sprintf("+%ds", int(offset.Seconds())))
			}
			return "servers: [dc1.example.test]\nkdcs: [127.0.0.1:88]\ninsecure_skip_verify: true\n"
		}}, readerPW)
}

// The same rotation on our server, its clock moved by --dev-clock-offset.
func TestAgentAgainstOurs(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	srv := newClockedServer(t, data)
	start, stop := srv.start, srv.stop
	start(0)
	const readerPW = "Agent-Reader-1!"
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte(readerPW+"\n"), 0o600)
	admin := func(args ...string) {
		t.Helper()
		if out, errOut, code := run(nil, "", gmsaBin, append(args, "--server", srv.ep["ldaps"], "--ca-file", srv.ep["ca"], "--user", "Administrator@example.test",
			"--password-file", filepath.Join(data, "admin-password"))...); code != 0 {
			t.Fatalf("gmsa %v: %s%s", args, out, errOut)
		}
	}
	admin("user", "new", "agreader", "--new-password-file", pw)
	admin("account", "new", "RotAgent", "--dns-host-name", "rotagent.example.test", "--spn", "http/rotagent.example.test",
		"--principals-allowed", "agreader", "--interval-days", "1", "--enctypes", "aes128,aes256")
	agentAcrossRotation(t, rotationLab{name: "ours", krb5: filepath.Join(data, "krb5.conf"),
		restart: func(offset time.Duration) string {
			if offset != 0 {
				stop()
				start(offset)
			}
			return "servers: [" + srv.ep["ldaps"] + "]\nkdcs: [" + srv.ep["kdc"] + "]\nca_file: " + srv.ep["ca"] + "\n"
		}}, readerPW)
}

// A DC stopped while the agent runs: the next refresh (here at once, on SIGHUP) reads
// from the other, with no change to the files and no hook run. Then the disk fills: the
// keytab the agent cannot replace stays as it was and status says why.
func TestAgentFailsOverAndSurvivesAFullDisk(t *testing.T) {
	cl := etcdtest.Start(t, 1)
	base := t.TempDir()
	dataA, dataB := filepath.Join(base, "a"), filepath.Join(base, "b")
	storeArgs := []string{"--store", "etcd", "--etcd-endpoints", strings.Join(cl.URLs(), ","), "--etcd-prefix", "example.test/"}
	g := func(stdin string, args ...string) {
		t.Helper()
		if out, errOut, code := run(nil, stdin, gmsaBin, append(append(args, "--data", dataA), storeArgs...)...); code != 0 {
			t.Fatalf("gmsa %v: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	g("", "domain", "provision", "--realm", "EXAMPLE.TEST", "--netbios", "EXAMPLE",
		"--root-key-effective-time", time.Now().Add(-48*time.Hour).UTC().Format(time.RFC3339))
	g("Agent-Reader-1!\n", "user", "new", "agreader", "--password-stdin")
	g("", "account", "new", "FoAgent", "--dns-host-name", "foagent.example.test", "--spn", "http/foagent.example.test",
		"--principals-allowed", "agreader", "--enctypes", "aes128,aes256")
	settings := fmt.Sprintf("store:\n  backend: etcd\n  etcd:\n    endpoints: [%s]\n    prefix: example.test/\n"+
		"ldap:\n  listen: 127.0.0.1:0\n  ldaps_listen: 127.0.0.1:0\n", strings.Join(cl.URLs(), ", "))
	epA, srvA := startServer(t, dataA, settings)
	epB, _ := startServer(t, dataB, settings)

	// The keytab on a small file system of its own.
	fs := filepath.Join(base, "small")
	os.MkdirAll(fs, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", fs).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v %s", err, out)
	}
	defer exec.Command("umount", "-l", fs).Run()
	keytab, hookLog, pwFile := filepath.Join(fs, "fo.keytab"), filepath.Join(base, "hook.log"), filepath.Join(base, "pw")
	os.WriteFile(pwFile, []byte("Agent-Reader-1!\n"), 0o600)
	cfg := filepath.Join(base, "agent.yaml")
	caA, _ := os.ReadFile(epA["ca"])
	caB, _ := os.ReadFile(epB["ca"])
	cas := filepath.Join(base, "cas.pem") // each server made its own CA
	os.WriteFile(cas, append(caA, caB...), 0o644)
	writeCfg := func(enctypes string) {
		os.WriteFile(cfg, []byte(fmt.Sprintf(`domain: example.test
servers: [%s, %s]
kdcs: [%s, %s]
ca_file: %s
state_dir: %s
identity: {user: agreader@example.test, password_file: %s}
refresh: {retry_min: 1h}
accounts:
  - name: FoAgent
    enctypes: [%s]
    keytab: {path: %s}
    hooks:
      - command: [/bin/sh, -c, 'echo $GMSA_KVNO >> %s']
`, epA["ldaps"], epB["ldaps"], epA["kdc"], epB["kdc"], cas, filepath.Join(base, "state"), pwFile, enctypes, keytab, hookLog)), 0o600)
	}
	writeCfg("aes256, aes128")
	agentProc := exec.Command(gmsaBin, "agent", "run", "--config", cfg, "--log-level", "debug")
	agentProc.Stdout, agentProc.Stderr = os.Stderr, os.Stderr
	if err := agentProc.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { agentProc.Process.Signal(syscall.SIGTERM); agentProc.Wait() }()
	waitStatus := func(what string, cond func(s map[string]any) bool) map[string]any {
		t.Helper()
		for i := 0; i < 200; i++ {
			out, _, _ := run(nil, "", gmsaBin, "agent", "status", "--config", cfg, "-o", "json")
			var st []map[string]any
			if json.Unmarshal([]byte(out), &st) == nil && len(st) == 1 && cond(st[0]) {
				return st[0]
			}
			time.Sleep(50 * time.Millisecond)
		}
		out, _, _ := run(nil, "", gmsaBin, "agent", "status", "--config", cfg)
		t.Fatalf("agent status never showed %s:\n%s", what, out)
		return nil
	}
	first := waitStatus("a read from A", func(s map[string]any) bool { return s["ok"] == true && s["dc"] == epA["ldaps"] })
	good, _ := os.ReadFile(keytab)

	srvA.Process.Signal(syscall.SIGTERM)
	srvA.Wait()
	agentProc.Process.Signal(syscall.SIGHUP)
	waitStatus("a read from B", func(s map[string]any) bool {
		return s["ok"] == true && s["dc"] == epB["ldaps"] && s["last_attempt"] != first["last_attempt"]
	})
	if now, _ := os.ReadFile(keytab); string(now) != string(good) {
		t.Fatal("the keytab changed on failover")
	}
	if b, _ := os.ReadFile(hookLog); strings.Count(string(b), "\n") != 1 {
		t.Fatalf("the hook ran %q", b)
	}

	// The disk full: a change (AES256 keys only) cannot be written.
	if out, err := exec.Command("dd", "if=/dev/zero", "of="+filepath.Join(fs, "filler"), "bs=4k").CombinedOutput(); err == nil {
		t.Fatalf("dd filled nothing: %s", out)
	}
	writeCfg("aes256")
	agentProc.Process.Signal(syscall.SIGHUP)
	s := waitStatus("the full disk", func(s map[string]any) bool { return s["ok"] == false })
	if s["cause"] != "output" || !strings.Contains(fmt.Sprint(s["last_error"]), "no space left on device") {
		t.Fatalf("status: %v", s)
	}
	if now, _ := os.ReadFile(keytab); string(now) != string(good) {
		t.Fatal("the keytab changed on a full disk")
	}
	if out, _, code := run(nil, "", gmsaBin, "agent", "status", "--config", cfg); code != 1 || !strings.Contains(out, "no space left on device") {
		t.Fatalf("agent status: exit %d\n%s", code, out)
	}
}
