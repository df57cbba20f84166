//go:build interop

package interop

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// target is a DC the admin commands run against with --server.
type target struct {
	name, url, admin, adminPW string
	flags                     []string // --ca-file or --insecure-skip-verify
}

// gm runs our binary against a target as user/pw, returning stdout, stderr, exit code.
func (tg target) gm(t *testing.T, user, pw, stdin string, args ...string) (string, string, int) {
	t.Helper()
	pwFile := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pwFile, []byte(pw), 0o600)
	args = append(args, append([]string{"--server", tg.url, "--user", user, "--password-file", pwFile}, tg.flags...)...)
	// Samba's own certificate has a negative serial number, which Go refuses by default.
	return run([]string{"GODEBUG=x509negativeserial=1"}, stdin, gmsaBin, args...)
}

// adminScenario runs one scenario of admin commands over LDAP and returns the new
// gMSA's blob and key version, as read by the allowed user.
func adminScenario(t *testing.T, tg target) (blob, kvno string) {
	ok := func(user, pw, stdin string, args ...string) string {
		t.Helper()
		out, stderr, code := tg.gm(t, user, pw, stdin, args...)
		if code != 0 {
			t.Fatalf("%s: gmsa %v: exit %d\n%s%s", tg.name, args, code, out, stderr)
		}
		return out
	}
	as := func(args ...string) string { return ok(tg.admin, tg.adminPW, "", args...) }
	as("kds", "add", "--effective-time", time.Now().Add(-48*time.Hour).UTC().Format(time.RFC3339))
	if out := as("kds", "list"); strings.Count(out, "SHA512") < 1 {
		t.Fatalf("%s: kds list:\n%s", tg.name, out)
	}
	as("group", "new", "App Hosts")
	ok(tg.admin, tg.adminPW, "App-Pass-123!\n", "user", "new", "apphost", "--password-stdin")
	ok(tg.admin, tg.adminPW, "Other-Pass-123!\n", "user", "new", "stranger", "--password-stdin")
	as("group", "add-member", "App Hosts", "apphost")
	var acct map[string]any
	json.Unmarshal([]byte(as("account", "new", "app", "--dns-host-name", "app.example.test", "--principals-allowed", "App Hosts",
		"--interval-days", "5", "--enctypes", "aes128,aes256", "--spn", "http/app.example.test", "-o", "json")), &acct)
	if acct["sam_account_name"] != "app$" || acct["managed_password_interval_days"] != 5.0 || acct["enabled"] != true {
		t.Fatalf("%s: account new: %v", tg.name, acct)
	}
	if out := as("account", "test", "app", "--as", "apphost"); !strings.HasPrefix(out, "yes: ") {
		t.Fatalf("%s: account test member: %s", tg.name, out)
	}
	if out, _, code := tg.gm(t, tg.admin, tg.adminPW, "", "account", "test", "app", "--as", "stranger"); code != 1 || !strings.HasPrefix(out, "no: ") {
		t.Fatalf("%s: account test stranger: exit %d %s", tg.name, code, out)
	}
	if _, stderr, code := tg.gm(t, tg.admin, tg.adminPW, "", "account", "set", "app", "--interval-days", "30"); code != 2 {
		t.Fatalf("%s: interval change: exit %d %s", tg.name, code, stderr)
	}
	var pw map[string]any
	json.Unmarshal([]byte(ok("apphost@example.test", "App-Pass-123!", "", "account", "password", "app", "--as", "apphost", "-o", "json")), &pw)
	if len(str(pw, "current_password_hex")) != 512 {
		t.Fatalf("%s: password read: %v", tg.name, pw)
	}
	if _, stderr, code := tg.gm(t, "stranger@example.test", "Other-Pass-123!", "", "account", "password", "app", "--as", "stranger"); code != 2 || !strings.Contains(stderr, "may not retrieve") {
		t.Fatalf("%s: stranger's password read: exit %d %s", tg.name, code, stderr)
	}
	var got map[string]any
	json.Unmarshal([]byte(as("account", "get", "app", "-o", "json")), &got)
	out := ok("apphost@example.test", "App-Pass-123!", "", "account", "password", "app", "--as", "apphost")
	for _, l := range strings.Split(out, "\n") {
		if _, v, found := strings.Cut(l, "): "); found && strings.HasPrefix(l, "msDS-ManagedPassword") {
			blob = v
		}
	}
	return blob, strings.TrimSuffix(strings.TrimSpace(jsonNum(got["key_version_number"])), ".0")
}

func jsonNum(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// The admin commands behave the same over LDAP against our server and Samba 4.22.
func TestAdminCommandsOverLDAP(t *testing.T) {
	// Ours.
	data, ep := ourServer(t)
	ourPW, _ := os.ReadFile(filepath.Join(data, "admin-password"))
	ours := target{"ours", ep["ldaps"], "Administrator@example.test", strings.TrimSpace(string(ourPW)), []string{"--ca-file", ep["ca"]}}
	if blob, _ := adminScenario(t, ours); blob == "" {
		t.Fatal("ours: no blob")
	}

	// Samba 4.22, then Kerberos: a keytab from the blob gets a TGT from Samba's KDC.
	peers(t, "samba-provision")
	peers(t, "samba-start")
	defer peers(t, "samba-stop")
	samba := target{"samba", "ldaps://127.0.0.1:636", "Administrator@example.test", adminPass, []string{"--insecure-skip-verify"}}
	blob, kvno := adminScenario(t, samba)
	if blob == "" || kvno == "" {
		t.Fatalf("samba: blob %q kvno %q", blob, kvno)
	}
	kt := filepath.Join(t.TempDir(), "app.keytab")
	sh(t, nil, gmsaBin, "keytab", "create", "--blob", blob, "--account", "app$", "--domain", "example.test", "--kvno", kvno,
		"--spn", "http/app.example.test", "--out", kt)
	krbEnv := []string{"KRB5_CONFIG=" + filepath.Join(dcDir, "krb5.conf"), "KRB5CCNAME=FILE:" + filepath.Join(t.TempDir(), "cc")}
	sh(t, krbEnv, "kinit", "-k", "-t", kt, "app$@EXAMPLE.TEST")
	if out := sh(t, krbEnv, "kvno", "-k", kt, "http/app.example.test@EXAMPLE.TEST"); !strings.Contains(out, "keytab entry valid") {
		t.Fatalf("kvno -k: %s", out)
	}
	t.Log("the same admin scenario passed against our server and Samba 4.22; Samba's KDC accepted the keytab made from the password read over LDAP")
}
