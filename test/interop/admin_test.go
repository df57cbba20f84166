//go:build interop

package interop

import (
	"encoding/json"
	"fmt"
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
	// A CSV import, one LDAP add per row on any DC: a user with a password is enabled,
	// one without starts disabled, the Name column is the cn.
	csvFile := filepath.Join(t.TempDir(), "users.csv")
	os.WriteFile(csvFile, []byte("SamAccountName,Name,Description,Password\nimported1,Imported One,from csv,Imp-Pass-123!\nimported2,,no password,\n"), 0o600)
	if out := as("user", "import", csvFile); !strings.Contains(out, "imported 2 users") {
		t.Fatalf("%s: user import: %s", tg.name, out)
	}
	var imp map[string]any
	json.Unmarshal([]byte(as("user", "get", "imported1", "-o", "json")), &imp)
	if !strings.HasPrefix(fmt.Sprint(imp["dn"]), "CN=Imported One,CN=Users,") || imp["enabled"] != true || imp["description"] != "from csv" {
		t.Fatalf("%s: imported user: %v", tg.name, imp)
	}
	json.Unmarshal([]byte(as("user", "get", "imported2", "-o", "json")), &imp)
	if imp["enabled"] != false {
		t.Fatalf("%s: an imported user without a password: %v", tg.name, imp)
	}
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

// kerberosScenario runs one MIT client scenario against a DC's KDC: a keytab from the
// gMSA's blob gets a TGT and validates a service ticket for its SPN; the allowed user
// logs on with its password and gets that service ticket; the ticket carries the kvno
// the directory reports. It returns what klist shows, without times.
func kerberosScenario(t *testing.T, name, krb5conf, blob, kvno string) string {
	dir := t.TempDir()
	kt := filepath.Join(dir, "app.keytab")
	sh(t, nil, gmsaBin, "keytab", "create", "--blob", blob, "--account", "app$", "--domain", "example.test", "--kvno", kvno,
		"--spn", "http/app.example.test", "--out", kt)
	gmsaEnv := []string{"KRB5_CONFIG=" + krb5conf, "KRB5CCNAME=FILE:" + filepath.Join(dir, "gmsa")}
	sh(t, gmsaEnv, "kinit", "-k", "-t", kt, "app$@EXAMPLE.TEST")
	if out := sh(t, gmsaEnv, "kvno", "-k", kt, "http/app.example.test@EXAMPLE.TEST"); !strings.Contains(out, "kvno = "+kvno+", keytab entry valid") {
		t.Fatalf("%s: kvno -k: %s", name, out)
	}
	userEnv := []string{"KRB5_CONFIG=" + krb5conf, "KRB5CCNAME=FILE:" + filepath.Join(dir, "user")}
	if out, errOut, code := run(userEnv, "App-Pass-123!\n", "kinit", "apphost@EXAMPLE.TEST"); code != 0 {
		t.Fatalf("%s: kinit apphost: %s%s", name, out, errOut)
	}
	if out := sh(t, userEnv, "kvno", "http/app.example.test@EXAMPLE.TEST"); !strings.Contains(out, "kvno = "+kvno) {
		t.Fatalf("%s: kvno: %s", name, out)
	}
	var principals []string
	for _, l := range strings.Split(sh(t, userEnv, "klist"), "\n") {
		if f := strings.Fields(l); len(f) >= 5 && strings.Contains(f[4], "@") {
			principals = append(principals, f[4])
		} else if strings.HasPrefix(l, "Default principal:") {
			principals = append(principals, l)
		}
	}
	return strings.Join(principals, " ")
}

// The admin commands, then MIT's clients against the KDC, behave the same against our
// server and Samba 4.22.
func TestAdminCommandsOverLDAP(t *testing.T) {
	// Ours.
	data, ep := ourServer(t)
	ourPW, _ := os.ReadFile(filepath.Join(data, "admin-password"))
	ours := target{"ours", ep["ldaps"], "Administrator@example.test", strings.TrimSpace(string(ourPW)), []string{"--ca-file", ep["ca"]}}
	blob, kvno := adminScenario(t, ours)
	if blob == "" || kvno == "" {
		t.Fatalf("ours: blob %q kvno %q", blob, kvno)
	}
	ourKerberos := kerberosScenario(t, "ours", filepath.Join(data, "krb5.conf"), blob, kvno)
	ourHost := hostScenario(t, ours, dcURL(ep["ldap"]), filepath.Join(data, "krb5.conf"))
	ourSpec := credspecScenario(t, ours)

	// Samba 4.22.
	peers(t, "samba-provision")
	peers(t, "samba-start")
	defer peers(t, "samba-stop")
	samba := target{"samba", "ldaps://127.0.0.1:636", "Administrator@example.test", adminPass, []string{"--insecure-skip-verify"}}
	blob, kvno = adminScenario(t, samba)
	if blob == "" || kvno == "" {
		t.Fatalf("samba: blob %q kvno %q", blob, kvno)
	}
	sambaKerberos := kerberosScenario(t, "samba", filepath.Join(dcDir, "krb5.conf"), blob, kvno)
	if ourKerberos != sambaKerberos {
		t.Fatalf("the Kerberos scenario differs:\n ours:  %s\n samba: %s", ourKerberos, sambaKerberos)
	}
	sambaHost := hostScenario(t, samba, "ldap://dc1.example.test", filepath.Join(dcDir, "krb5.conf"))
	if ourHost != sambaHost {
		t.Fatalf("the host scenario differs:\n ours:  %s\n samba: %s", ourHost, sambaHost)
	}
	if sambaSpec := credspecScenario(t, samba); ourSpec != sambaSpec {
		t.Fatalf("the credential specs differ:\n ours:  %s\n samba: %s", ourSpec, sambaSpec)
	}
	t.Logf("the same admin, Kerberos and host scenario passed against our server and Samba 4.22: %s; %s", ourKerberos, ourHost)
}
