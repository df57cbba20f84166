//go:build interop

package interop

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// ourDC is where the join tests run our DC: the standard ports, as adcli and msktutil
// expect, on an address of its own beside Samba's 127.0.0.1; peers.sh maps
// dc1.ours.test to it.
const ourDC = "127.0.0.9"

var kvnoLine = regexp.MustCompile(`(?m)^\s*(\d+) HOST1\$@OURS\.TEST`)

// keytabKVNOs lists the key versions a keytab holds for HOST1$.
func keytabKVNOs(t *testing.T, env []string, kt string) map[string]bool {
	t.Helper()
	out, errOut, code := run(env, "", "klist", "-k", kt)
	if code != 0 {
		t.Fatalf("klist -k: %s%s", out, errOut)
	}
	kvnos := map[string]bool{}
	for _, m := range kvnoLine.FindAllStringSubmatch(out, -1) {
		kvnos[m[1]] = true
	}
	return kvnos
}

// A Linux host joins our DC as it joins AD: adcli finds the DC by an LDAP ping (CLDAP),
// binds with the administrator's Kerberos credentials, creates its computer account
// and sets its password through kpasswd (RFC 3244 set), writes its keytab; the host's
// keytab then gets tickets and reads a gMSA password it is allowed, over a sealed
// Kerberos bind. adcli update changes the machine password through kpasswd (change,
// with an initial ticket), MIT's kpasswd changes a user's, msktutil creates a second
// computer and pre-creates a third that its host then takes over with the default
// password, and adcli delete-computer removes the first.
func TestJoinWithAdcliAndMsktutil(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	g := func(stdin string, args ...string) string {
		t.Helper()
		out, errOut, code := run(nil, stdin, gmsaBin, append(args, "--data", data)...)
		if code != 0 {
			t.Fatalf("gmsa %v: %s%s", args, out, errOut)
		}
		return out
	}
	g("", "domain", "provision", "--realm", "OURS.TEST", "--netbios", "OURS",
		"--root-key-effective-time", time.Now().Add(-48*time.Hour).UTC().Format(time.RFC3339))
	g("", "group", "new", "Linux Hosts")
	g("", "account", "new", "app", "--dns-host-name", "app.ours.test", "--principals-allowed", "Linux Hosts", "--interval-days", "30")
	g("Alice-Pass-123!\n", "user", "new", "alice", "--password-stdin")
	ep, _ := startServer(t, data, "ldap:\n  listen: "+ourDC+":389\n  ldaps_listen: "+ourDC+":636\nkdc:\n  listen: "+ourDC+":88\n")
	if ep["cldap"] != ourDC+":389" || ep["kpasswd"] != ourDC+":464" {
		t.Fatalf("endpoints: %v", ep)
	}
	adminPW, err := os.ReadFile(filepath.Join(data, "admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	krb5 := filepath.Join(data, "krb5.conf")
	env := []string{"KRB5_CONFIG=" + krb5, "KRB5CCNAME=FILE:" + filepath.Join(dir, "host.cc")}
	kt := filepath.Join(dir, "host1.keytab")
	adcli := func(stdin string, args ...string) string {
		t.Helper()
		out, errOut, code := run(env, stdin, "adcli", append(args, "-v", "--domain=ours.test", "--domain-controller="+ourDC)...)
		if code != 0 {
			t.Fatalf("adcli %s: exit %d\n%s%s", args[0], code, out, errOut)
		}
		return out + errOut
	}
	adminLDAP := []string{"-LLL", "-o", "ldif-wrap=no", "-x", "-H", "ldaps://dc1.ours.test", "-D", "Administrator@ours.test", "-w", strings.TrimSpace(string(adminPW))}
	tlsEnv := []string{"LDAPTLS_CACERT=" + ep["ca"]}
	computer := func(filter string, attrs ...string) string {
		t.Helper()
		out, errOut, _ := run(tlsEnv, "", "ldapsearch", append(append(adminLDAP, "-b", "DC=ours,DC=test", filter), attrs...)...)
		if errOut != "" {
			t.Fatalf("ldapsearch %s: %s", filter, errOut)
		}
		return out
	}

	// The LDAP ping names the DC and the domain.
	info := adcli("", "info")
	for _, want := range []string{"domain-controller = dc1.ours.test", "domain-short = OURS", "domain-controller-flags = pdc ldap ds kdc", "writable"} {
		if !strings.Contains(info, want) {
			t.Fatalf("adcli info: no %q in\n%s", want, info)
		}
	}

	// Join: the account, its SPNs, its password set through kpasswd, the keytab.
	out := adcli(string(adminPW), "join", "--host-fqdn=host1.ours.test", "--host-keytab="+kt, "-U", "Administrator", "--stdin-password")
	if strings.Contains(out, "Couldn't lookup domain short name") {
		t.Fatalf("adcli join could not read the domain's NetBIOS name (CN=Partitions):\n%s", out)
	}
	for _, want := range []string{"Looked up short domain name: OURS", "Created computer account: CN=HOST1,CN=Computers,DC=ours,DC=test", "Set computer password", "Added host/host1.ours.test"} {
		if !strings.Contains(out, want) {
			t.Fatalf("adcli join: no %q in\n%s", want, out)
		}
	}
	entry := computer("(sAMAccountName=HOST1$)", "msDS-KeyVersionNumber", "servicePrincipalName", "dNSHostName", "userAccountControl")
	kvno := regexp.MustCompile(`msDS-KeyVersionNumber: (\d+)`).FindStringSubmatch(entry)
	if kvno == nil || !strings.Contains(entry, "servicePrincipalName: host/host1.ours.test") || !strings.Contains(entry, "dNSHostName: host1.ours.test") {
		t.Fatalf("the joined computer:\n%s", entry)
	}
	if kvnos := keytabKVNOs(t, env, kt); !kvnos[kvno[1]] {
		t.Fatalf("the keytab holds kvnos %v, the directory says %s", kvnos, kvno[1])
	}
	if out, errOut, code := run(env, "", "kinit", "-k", "-t", kt, "HOST1$"); code != 0 {
		t.Fatalf("kinit -k with the join keytab: %s%s", out, errOut)
	}

	// Allowed to the gMSA, the host reads its password over a sealed Kerberos bind.
	if out, errOut, code := run(nil, "", gmsaBin, "group", "add-member", "Linux Hosts", "HOST1$", "--server", "ldaps://dc1.ours.test", "--ca-file", ep["ca"],
		"--user", "Administrator@ours.test", "--password-file", filepath.Join(data, "admin-password")); code != 0 {
		t.Fatalf("group add-member: %s%s", out, errOut)
	}
	if out, errOut, code := run(env, "", "kinit", "-k", "-t", kt, "HOST1$"); code != 0 { // a TGT with the new group
		t.Fatalf("kinit -k: %s%s", out, errOut)
	}
	out, errOut, _ := run(env, "", "ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-Y", "GSSAPI", "-N", "-H", "ldap://dc1.ours.test",
		"-b", "CN=Managed Service Accounts,DC=ours,DC=test", "(sAMAccountName=app$)", "msDS-ManagedPassword")
	if !blobLine.MatchString(out) || !strings.Contains(errOut, "SASL data security layer installed") {
		t.Fatalf("the joined host reading the gMSA's password:\n%s%s", out, errOut)
	}

	// adcli update: a new machine password through kpasswd's change request.
	before := kvno[1]
	adcli("", "update", "--host-fqdn=host1.ours.test", "--host-keytab="+kt, "--computer-password-lifetime=0")
	kvno = regexp.MustCompile(`msDS-KeyVersionNumber: (\d+)`).FindStringSubmatch(computer("(sAMAccountName=HOST1$)", "msDS-KeyVersionNumber"))
	if kvno == nil || kvno[1] == before || !keytabKVNOs(t, env, kt)[kvno[1]] {
		t.Fatalf("adcli update: the directory's kvno %v (was %s), keytab %v", kvno, before, keytabKVNOs(t, env, kt))
	}
	if out, errOut, code := run(env, "", "kinit", "-k", "-t", kt, "HOST1$"); code != 0 {
		t.Fatalf("kinit -k after the update: %s%s", out, errOut)
	}
	audit, _ := os.ReadFile(filepath.Join(data, "audit.log"))
	if !regexp.MustCompile(`"password changed","principal":"HOST1\$".*"account":"HOST1\$"`).Match(audit) {
		t.Fatal("the audit trail has no record of HOST1$ changing its password")
	}

	// MIT's kpasswd: a password the domain's policy refuses (one kind of character) is
	// refused with the reason; then a user changes its own password and the old one
	// stops working.
	if out, errOut, code := run(env, "Alice-Pass-123!\nalicealice\nalicealice\n", "kpasswd", "alice"); code == 0 || !strings.Contains(out+errOut, "complexity rule") {
		t.Fatalf("kpasswd alice to a password without complexity: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code := run(env, "Alice-Pass-123!\nAlice-New-456!\nAlice-New-456!\n", "kpasswd", "alice"); code != 0 || !strings.Contains(out, "Password changed") {
		t.Fatalf("kpasswd alice: exit %d\n%s%s", code, out, errOut)
	}
	if _, _, code := run(env, "Alice-Pass-123!\n", "kinit", "alice"); code == 0 {
		t.Fatal("kinit with alice's old password still works")
	}
	if out, errOut, code := run(env, "Alice-New-456!\n", "kinit", "alice"); code != 0 {
		t.Fatalf("kinit with alice's new password: %s%s", out, errOut)
	}

	// msktutil creates a computer with the administrator's ticket, and its keytab works.
	adminCC := []string{"KRB5_CONFIG=" + krb5, "KRB5CCNAME=FILE:" + filepath.Join(dir, "admin.cc")}
	if out, errOut, code := run(adminCC, string(adminPW), "kinit", "Administrator"); code != 0 {
		t.Fatalf("kinit Administrator: %s%s", out, errOut)
	}
	kt3 := filepath.Join(dir, "host3.keytab")
	if out, errOut, code := run(adminCC, "", "msktutil", "create", "--server", "dc1.ours.test", "--no-reverse-lookups", "--realm", "OURS.TEST",
		"--computer-name", "host3", "--hostname", "host3.ours.test", "-k", kt3); code != 0 {
		t.Fatalf("msktutil create: exit %d\n%s%s", code, out, errOut)
	}
	if e := computer("(sAMAccountName=host3$)", "servicePrincipalName"); !strings.Contains(e, "servicePrincipalName: host/host3.ours.test") {
		t.Fatalf("msktutil's computer:\n%s", e)
	}
	if out, errOut, code := run(env, "", "kinit", "-k", "-t", kt3, "host3$"); code != 0 {
		t.Fatalf("kinit -k with msktutil's keytab: %s%s", out, errOut)
	}

	// msktutil pre-create: the administrator makes host4's account with the default
	// machine password; the host then, with no credentials of its own, logs on with that
	// password, changes it through kpasswd and writes its keytab.
	if out, errOut, code := run(adminCC, "", "msktutil", "pre-create", "--server", "dc1.ours.test", "--no-reverse-lookups", "--realm", "OURS.TEST",
		"--computer-name", "host4", "--hostname", "host4.ours.test"); code != 0 {
		t.Fatalf("msktutil pre-create: exit %d\n%s%s", code, out, errOut)
	}
	if e := computer("(sAMAccountName=host4$)", "dNSHostName", "userAccountControl"); !strings.Contains(e, "dNSHostName: host4.ours.test") || !strings.Contains(e, "userAccountControl: 4096") {
		t.Fatalf("msktutil's pre-created computer:\n%s", e)
	}
	kt4 := filepath.Join(dir, "host4.keytab")
	hostEnv := []string{"KRB5_CONFIG=" + krb5, "KRB5CCNAME=FILE:" + filepath.Join(dir, "host4.cc")}
	if out, errOut, code := run(hostEnv, "", "msktutil", "update", "--server", "dc1.ours.test", "--no-reverse-lookups", "--realm", "OURS.TEST",
		"--computer-name", "host4", "--hostname", "host4.ours.test", "-k", kt4); code != 0 {
		t.Fatalf("msktutil update on the pre-created host: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code := run(hostEnv, "", "kinit", "-k", "-t", kt4, "host4$"); code != 0 {
		t.Fatalf("kinit -k with the pre-created host's keytab: %s%s", out, errOut)
	}
	if out, errOut, code := run(hostEnv, "host4\n", "kinit", "host4$"); code == 0 {
		t.Fatalf("the default machine password still works after the host changed it: %s%s", out, errOut)
	}

	// adcli delete-computer removes the account.
	adcli(string(adminPW), "delete-computer", "-U", "Administrator", "--stdin-password", "host1")
	if e := computer("(sAMAccountName=HOST1$)", "dn"); e != "" {
		t.Fatalf("HOST1$ is still there:\n%s", e)
	}
}
