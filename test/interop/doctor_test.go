//go:build interop

package interop

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// doctorOn runs gmsa doctor against a target with -o json and returns its steps by
// check, and the exit code.
func doctorOn(t *testing.T, tg target, env []string, args ...string) (map[string]map[string]string, int) {
	t.Helper()
	pwFile := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pwFile, []byte(tg.adminPW), 0o600)
	args = append(append([]string{"doctor", "-o", "json"}, args...), append([]string{"--server", tg.url, "--user", tg.admin, "--password-file", pwFile}, tg.flags...)...)
	out, stderr, code := run(append(env, "GODEBUG=x509negativeserial=1"), "", gmsaBin, args...)
	var r struct {
		Steps []map[string]string `json:"steps"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("gmsa %v: %v\n%s%s", args, err, out, stderr)
	}
	steps := map[string]map[string]string{}
	for _, s := range r.Steps {
		steps[s["check"]] = s
	}
	return steps, code
}

// want checks a step's status and that its evidence and fix say each text.
func want(t *testing.T, steps map[string]map[string]string, check, status string, texts ...string) {
	t.Helper()
	s := steps[check]
	if s == nil || s["status"] != status {
		t.Fatalf("%s: %v, want %s (all: %v)", check, s, status, steps)
	}
	for _, text := range texts {
		if !strings.Contains(s["evidence"]+" "+s["fix"], text) {
			t.Fatalf("%s does not say %q: %v", check, text, s)
		}
	}
}

// The doctor against Samba 4.22: a healthy gMSA read with a machine keytab (sealed),
// then each item broken and repaired: a host outside the group, a nested group, a host
// ticket older than its membership, WORKSTATION_TRUST_ACCOUNT cleared, a disabled
// gMSA, a namesake user, RC4-only enctypes, a credential spec with another SID. A
// duplicate SPN cannot be made: Samba refuses it, as ours does.
func TestDoctorAgainstSamba(t *testing.T) {
	peers(t, "samba-provision")
	peers(t, "samba-start")
	defer peers(t, "samba-stop")
	samba := target{"samba", "ldaps://dc1.example.test:636", "Administrator@example.test", adminPass, []string{"--insecure-skip-verify"}}
	dir := t.TempDir()
	ok := func(args ...string) string {
		t.Helper()
		out, stderr, code := samba.gm(t, samba.admin, samba.adminPW, "", args...)
		if code != 0 {
			t.Fatalf("gmsa %v: exit %d\n%s%s", args, code, out, stderr)
		}
		return out
	}
	for _, h := range []string{"chost01", "chost02", "chost03"} {
		ok("computer", "new", h, "--write-keytab", filepath.Join(dir, h+".keytab"))
	}
	ok("group", "new", "Container Hosts")
	ok("group", "new", "Nested")
	ok("group", "add-member", "Container Hosts", "CHOST01$", "Nested")
	ok("group", "add-member", "Nested", "CHOST03$")
	ok("account", "new", "WebApp01", "--dns-host-name", "webapp01.example.test", "--spn", "http/webapp01.example.test",
		"--principals-allowed", "Container Hosts", "--enctypes", "aes128,aes256")
	keytab := []string{"--account", "WebApp01", "--identity-keytab", filepath.Join(dir, "chost01.keytab")}

	steps, code := doctorOn(t, samba, nil, keytab...)
	if code != 0 {
		t.Fatalf("a healthy gMSA: exit %d: %v", code, steps)
	}
	want(t, steps, "password", "pass", "sealed Kerberos bind")
	want(t, steps, "spn.tickets", "pass", "opened with the gMSA's key")
	want(t, steps, "access", "pass", "CHOST01$ → Container Hosts")

	steps, code = doctorOn(t, samba, nil, "--account", "WebApp01", "--host", "CHOST02$")
	want(t, steps, "access", "fail", "CHOST02$ may not retrieve", "gmsa group add-member 'Container Hosts' CHOST02$")
	if code != 1 {
		t.Fatalf("exit %d with a failing step", code)
	}
	steps, _ = doctorOn(t, samba, nil, "--account", "WebApp01", "--host", "CHOST03$")
	want(t, steps, "access", "pass", "CHOST03$ → Nested → Container Hosts")

	// CHOST02 logs on, then joins the group: its ticket predates the membership.
	cc := filepath.Join(dir, "chost02.cc")
	krb5 := []string{"KRB5_CONFIG=" + filepath.Join(dcDir, "krb5.conf"), "KRB5CCNAME=" + cc}
	sh(t, krb5, "kinit", "-k", "-t", filepath.Join(dir, "chost02.keytab"), "CHOST02$")
	ok("group", "add-member", "Container Hosts", "CHOST02$")
	steps, _ = doctorOn(t, samba, krb5, "--account", "WebApp01", "--identity-ccache", cc)
	want(t, steps, "host.ticket", "warn", "before its membership", "kdestroy; kinit -k CHOST02$")
	time.Sleep(1100 * time.Millisecond) // authtime and the membership's time are whole seconds
	sh(t, krb5, "kinit", "-k", "-t", filepath.Join(dir, "chost02.keytab"), "CHOST02$")
	steps, _ = doctorOn(t, samba, krb5, "--account", "WebApp01", "--identity-ccache", cc)
	want(t, steps, "host.ticket", "pass")

	gmsaDN := "CN=WebApp01," + msaDN
	ldapmodify(t, false, "dn: "+gmsaDN+"\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 512\n")
	steps, _ = doctorOn(t, samba, nil, keytab...)
	want(t, steps, "account.flags", "fail", "lacks WORKSTATION_TRUST_ACCOUNT", "set userAccountControl to 4096")
	ldapmodify(t, false, "dn: "+gmsaDN+"\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 4096\n")

	ok("account", "set", "WebApp01", "--disable")
	steps, _ = doctorOn(t, samba, nil, keytab...)
	want(t, steps, "account.enabled", "fail", "is disabled", "gmsa account set WebApp01 --enable")
	ok("account", "set", "WebApp01", "--enable")

	ok("account", "set", "WebApp01", "--enctypes", "rc4")
	steps, _ = doctorOn(t, samba, nil, keytab...)
	want(t, steps, "account.enctypes", "fail", "shares nothing with this host's", "--enctypes aes128,aes256")
	ok("account", "set", "WebApp01", "--enctypes", "aes128,aes256")

	pw := filepath.Join(dir, "user-pw")
	os.WriteFile(pw, []byte("Us3r-Passw0rd!x\n"), 0o600)
	ok("user", "new", "WebApp01", "--new-password-file", pw)
	steps, _ = doctorOn(t, samba, nil, keytab...)
	want(t, steps, "account.name", "fail", "a user named WebApp01 exists beside WebApp01$")
	ok("user", "remove", "WebApp01")

	spec := filepath.Join(dir, "spec.json")
	ok("credspec", "new", "--account", "WebApp01", "--out", spec)
	steps, _ = doctorOn(t, samba, nil, append(keytab, "--credspec", spec)...)
	want(t, steps, "credspec", "pass")
	// The spec names the domain, so the locator records are looked up: this lab's Samba
	// runs without its DNS service, and nothing else fails.
	want(t, steps, "dns", "fail", "_ldap._tcp.dc._msdcs.example.test")
	for check, s := range steps {
		if s["status"] == "fail" && check != "dns" {
			t.Fatalf("repaired, %s still fails: %v", check, s)
		}
	}
	b, _ := os.ReadFile(spec)
	os.WriteFile(spec, []byte(strings.Replace(string(b), `"Sid": "S-1-5-21-`, `"Sid": "S-1-5-21-9-`, 1)), 0o644)
	steps, _ = doctorOn(t, samba, nil, append(keytab, "--credspec", spec)...)
	want(t, steps, "credspec", "fail", "is not this domain's SID")

	// A client that does not trust the DC's certificate has no encrypted channel.
	untrusting := samba
	untrusting.flags = []string{"--ca-file", otherCAFile(t)}
	steps, _ = doctorOn(t, untrusting, nil, "--account", "WebApp01")
	want(t, steps, "channel", "fail", "no encrypted channel to the DC", "trust the DC's CA")

	// Samba refuses a second holder of an SPN, as ours does (Windows too, since 2012 R2).
	out, stderr, code := run([]string{"LDAPTLS_REQCERT=never"}, "dn: CN=chost02,CN=Computers,"+baseDN+"\nchangetype: modify\nadd: servicePrincipalName\nservicePrincipalName: http/webapp01.example.test\n",
		"ldapmodify", "-x", "-H", "ldaps://127.0.0.1", "-D", "Administrator@example.test", "-w", adminPass)
	if code == 0 || !strings.Contains(out+stderr, "Constraint violation") {
		t.Fatalf("Samba took a duplicate SPN: %d %s%s", code, out, stderr)
	}

	// The root key removed under the account, then only one that starts in the future.
	var keys []map[string]any
	if err := json.Unmarshal([]byte(ok("kds", "list", "-o", "json")), &keys); err != nil || len(keys) == 0 {
		t.Fatalf("kds list: %v %v", keys, err)
	}
	for _, k := range keys {
		ok("kds", "remove", k["name"].(string))
	}
	steps, _ = doctorOn(t, samba, nil, keytab...)
	want(t, steps, "rootkey", "fail", "which no longer exists")
	ok("kds", "add")
	steps, _ = doctorOn(t, samba, nil, keytab...)
	want(t, steps, "rootkey", "fail", "start in the future", "wait until")

	// The DC's clock ten minutes ahead (libfaketime).
	peers(t, "samba-stop")
	peers(t, "samba-start", "+10m")
	steps, _ = doctorOn(t, samba, nil, "--account", "WebApp01")
	want(t, steps, "clock", "fail", "the DC's clock is 10m", "ahead of this host's", "synchronize this host's clock")
}

// otherCAFile is a CA certificate that signed nothing the DCs present.
func otherCAFile(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "another CA"}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "other-ca.pem")
	os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	return f
}

// A host ticket older than the membership that allows the host, against our server
// with MIT's kinit: the doctor names it (our DC builds an LDAP bind's token from the
// directory, so the read itself works; Windows and Samba decide from the ticket).
func TestDoctorStaleTicketOnOurs(t *testing.T) {
	data, ep := ourServer(t)
	pw, _ := os.ReadFile(filepath.Join(data, "admin-password"))
	ours := target{"ours", dcURL(ep["ldaps"]), "Administrator@example.test", strings.TrimSpace(string(pw)), []string{"--ca-file", ep["ca"]}}
	keytab := filepath.Join(t.TempDir(), "chost02.keytab")
	if out, stderr, code := ours.gm(t, ours.admin, ours.adminPW, "", "computer", "new", "chost02", "--write-keytab", keytab); code != 0 {
		t.Fatalf("computer new: %s%s", out, stderr)
	}
	cc := filepath.Join(t.TempDir(), "chost02.cc")
	krb5 := []string{"KRB5_CONFIG=" + filepath.Join(data, "krb5.conf"), "KRB5CCNAME=" + cc}
	sh(t, krb5, "kinit", "-k", "-t", keytab, "CHOST02$")
	if out, stderr, code := ours.gm(t, ours.admin, ours.adminPW, "", "group", "add-member", "Web Hosts", "CHOST02$"); code != 0 {
		t.Fatalf("add-member: %s%s", out, stderr)
	}
	steps, _ := doctorOn(t, ours, krb5, "--account", "svc", "--identity-ccache", cc)
	want(t, steps, "access", "pass", "CHOST02$ → Web Hosts")
	want(t, steps, "host.ticket", "warn", "before its membership", "kdestroy; kinit -k CHOST02$")
	want(t, steps, "password", "pass", "Kerberos bind over LDAPS")
}
