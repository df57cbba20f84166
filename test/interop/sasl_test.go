//go:build interop

package interop

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gmsa/internal/krbkey"
)

// dcURL is a DC's LDAP URL by the name Kerberos binds need (ldap/dc1.example.test):
// peers.sh maps dc1.example.test to 127.0.0.1.
func dcURL(ldapURL string) string {
	return strings.Replace(ldapURL, "127.0.0.1", "dc1.example.test", 1)
}

var blobLine = regexp.MustCompile(`(?m)^msDS-ManagedPassword:: (\S+)$`)

// Kerberos binds to our server from real clients: ldapsearch -Y GSSAPI with Cyrus SASL's
// MIT and Heimdal plugins (the password only under the confidentiality layer or TLS),
// samba-tool over GSS-SPNEGO with sealing, and our own client from a ticket cache, a
// password and a keytab, over both mechanisms.
func TestSASLBindsWithRealClients(t *testing.T) {
	// Channel bindings required over LDAPS (AD's LdapEnforceChannelBinding 2).
	data, ep := ourServerWith(t, "  channel_binding: always\n")
	dir := filepath.Dir(data)
	krb5 := filepath.Join(data, "krb5.conf")
	url := dcURL(ep["ldap"])
	cc := filepath.Join(dir, "websvc.cc")
	env := []string{"KRB5_CONFIG=" + krb5, "KRB5CCNAME=FILE:" + cc}
	if out, errOut, code := run(env, "Web-Pass-123!\n", "kinit", "websvc"); code != 0 {
		t.Fatalf("kinit: %s%s", out, errOut)
	}
	search := func(extraEnv []string, args ...string) (string, string) {
		t.Helper()
		base := []string{"-LLL", "-o", "ldif-wrap=no", "-Y", "GSSAPI", "-N", "-b", msaBase}
		out, errOut, _ := run(append(append([]string{}, env...), extraEnv...), "", "ldapsearch",
			append(append(base, args...), "(sAMAccountName=svc$)", "msDS-ManagedPassword", "sAMAccountName")...)
		return out, errOut
	}
	heimdal := []string{"SASL_PATH=" + strings.TrimSpace(peers(t, "heimdal-sasl"))}
	for _, plugin := range []struct {
		name string
		env  []string
		ssf  string // what each plugin reports for the sealed layer
	}{{"MIT", nil, "SASL SSF: 256"}, {"Heimdal", heimdal, "SASL SSF: 56"}} {
		out, errOut := search(plugin.env, "-H", url)
		if !strings.Contains(errOut, plugin.ssf) || !strings.Contains(errOut, "SASL data security layer installed") || !blobLine.MatchString(out) {
			t.Fatalf("%s plugin, default (sealed): no blob\n%s%s", plugin.name, out, errOut)
		}
		for _, weak := range []string{"maxssf=1", "maxssf=0"} {
			out, errOut := search(plugin.env, "-H", url, "-O", weak)
			if strings.Contains(out, "msDS-ManagedPassword") || !strings.Contains(errOut, "0000202D") {
				t.Fatalf("%s plugin, %s: the password crossed an unsealed connection\n%s%s", plugin.name, weak, out, errOut)
			}
		}
		// Over LDAPS: no layer, as AD requires, and OpenLDAP's tls-server-end-point
		// bindings in the GSS checksum, without which this server refuses the bind.
		tlsEnv := append([]string{"LDAPTLS_CACERT=" + ep["ca"], "LDAPSASL_CBINDING=tls-endpoint"}, plugin.env...)
		out, errOut = search(tlsEnv, "-H", dcURL(ep["ldaps"]))
		if !strings.Contains(errOut, "SASL SSF: 0") || !blobLine.MatchString(out) {
			t.Fatalf("%s plugin over LDAPS with channel bindings: %s%s", plugin.name, out, errOut)
		}
		tlsEnv[1] = "LDAPSASL_CBINDING=none"
		if out, errOut = search(tlsEnv, "-H", dcURL(ep["ldaps"])); !strings.Contains(errOut, "channel binding is required") {
			t.Fatalf("%s plugin over LDAPS without channel bindings: %s%s", plugin.name, out, errOut)
		}
	}

	// Samba's client: GSS-SPNEGO, sealed by default.
	inside := chrootFiles(t, map[string]string{"krb5.conf": krb5, "cc": cc}, map[string]string{})
	out, errOut, code := run(nil, "", "bash", "peers.sh", "chroot", "env", "KRB5_CONFIG="+inside+"/krb5.conf", "KRB5CCNAME=FILE:"+inside+"/cc",
		"samba-tool", "user", "list", "-H", url, "--use-kerberos=required")
	if code != 0 || !strings.Contains(out, "websvc") || !strings.Contains(out, "Administrator") {
		t.Fatalf("samba-tool user list over GSS-SPNEGO: exit %d\n%s%s", code, out, errOut)
	}

	// Our client: the ticket cache, a password, a machine keytab; GSSAPI and GSS-SPNEGO.
	admin := []string{"--server", ep["ldaps"], "--ca-file", ep["ca"], "--user", "Administrator@example.test",
		"--password-file", filepath.Join(data, "admin-password")}
	kt := filepath.Join(dir, "web01.keytab")
	if out, errOut, code := run(nil, "", gmsaBin, append([]string{"computer", "new", "WEB01", "--write-keytab", kt}, admin...)...); code != 0 {
		t.Fatalf("computer new: %s%s", out, errOut)
	}
	run(nil, "", gmsaBin, append([]string{"group", "add-member", "Web Hosts", "WEB01$"}, admin...)...)
	pwFile := filepath.Join(dir, "websvc.pw")
	os.WriteFile(pwFile, []byte("Web-Pass-123!\n"), 0o600)
	var want string
	for _, c := range []struct {
		name string
		args []string
	}{
		{"ccache", []string{"--kerberos"}},
		{"ccache, GSS-SPNEGO", []string{"--ccache", cc, "--sasl-mech", "GSS-SPNEGO"}},
		{"password", []string{"--kerberos", "--principal", "websvc", "--password-file", pwFile}},
		{"machine keytab", []string{"--keytab", kt}},
		{"machine keytab, GSS-SPNEGO", []string{"--keytab", kt, "--sasl-mech", "GSS-SPNEGO"}},
		{"over LDAPS with channel bindings", []string{"--keytab", kt, "--server", dcURL(ep["ldaps"]), "--ca-file", ep["ca"]}},
		{"a dead DC first, then ours", []string{"--keytab", kt, "--server", "ldap://dc1.example.test:1," + url}},
	} {
		server := []string{"--server", url}
		if strings.Contains(strings.Join(c.args, " "), "--server") {
			server = nil
		}
		out, errOut, code := run(env, "", gmsaBin, append(append([]string{"account", "password", "svc", "-o", "json"}, server...), c.args...)...)
		var pw map[string]any
		if code != 0 || json.Unmarshal([]byte(out), &pw) != nil || len(str(pw, "current_password_hex")) != 512 {
			t.Fatalf("our client, %s: exit %d\n%s%s", c.name, code, out, errOut)
		}
		if want == "" {
			want = str(pw, "current_password_hex")
		} else if str(pw, "current_password_hex") != want {
			t.Fatalf("our client, %s: another password", c.name)
		}
	}
	// SASL EXTERNAL: a client certificate 'cert issue' signs with the server's CA (the
	// SID from the running server over LDAPS, the CA from the data directory) binds
	// ldapsearch as WEB01$ over LDAPS.
	certFile, keyFile := filepath.Join(dir, "web01.pem"), filepath.Join(dir, "web01.key")
	if out, errOut, code := run(nil, "", gmsaBin, append([]string{"cert", "issue", "WEB01$", "--data", data, "--cert-out", certFile, "--key-out", keyFile}, admin...)...); code != 0 {
		t.Fatalf("cert issue: %s%s", out, errOut)
	}
	certEnv := []string{"LDAPTLS_CACERT=" + ep["ca"], "LDAPTLS_CERT=" + certFile, "LDAPTLS_KEY=" + keyFile}
	out, errOut, code = run(certEnv, "", "ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-Y", "EXTERNAL", "-H", ep["ldaps"], "-b", msaBase, "(sAMAccountName=svc$)", "msDS-ManagedPassword")
	if code != 0 || !blobLine.MatchString(out) {
		t.Fatalf("ldapsearch -Y EXTERNAL: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code := run(certEnv, "", "ldapwhoami", "-Y", "EXTERNAL", "-H", ep["ldaps"]); code != 0 || !strings.Contains(out, "u:EXAMPLE\\WEB01$") {
		t.Fatalf("ldapwhoami -Y EXTERNAL: exit %d\n%s%s", code, out, errOut)
	}

	// A principal outside PrincipalsAllowedToRetrieveManagedPassword gets none.
	os.WriteFile(pwFile, []byte("Out-Pass-123!\n"), 0o600)
	if out, errOut, code := run(env, "", gmsaBin, "account", "password", "svc", "--server", url, "--kerberos", "--principal", "outsider", "--password-file", pwFile); code != 2 || !strings.Contains(errOut, "may not retrieve") {
		t.Fatalf("outsider: exit %d\n%s%s", code, out, errOut)
	}
}

// hostScenario is what a Linux host does to run a service as a gMSA, against a DC at
// ldapURL (by name) with its KDC in krb5conf. The host is a computer the admin commands
// create with its keytab and allow to read the gMSA app$. First the credentials-fetcher
// sequence with MIT's tools: kinit -k as HOST$ (upper-cased), ldapsearch -Y GSSAPI
// (sealed), the blob decoded, kinit as the gMSA with the password on standard input,
// kvno of its SPN; then our client reads the same password with the same keytab over a
// sealed port-389 connection. It returns what the scenario saw, for comparison.
func hostScenario(t *testing.T, tg target, ldapURL, krb5conf string) string {
	dir := t.TempDir()
	kt := filepath.Join(dir, "host.keytab")
	if out, errOut, code := tg.gm(t, tg.admin, tg.adminPW, "", "computer", "new", "LINUX01", "--write-keytab", kt); code != 0 {
		t.Fatalf("%s: computer new: %s%s", tg.name, out, errOut)
	}
	if out, errOut, code := tg.gm(t, tg.admin, tg.adminPW, "", "group", "add-member", "App Hosts", "LINUX01$"); code != 0 {
		t.Fatalf("%s: add-member: %s%s", tg.name, out, errOut)
	}
	host := []string{"KRB5_CONFIG=" + krb5conf, "KRB5CCNAME=FILE:" + filepath.Join(dir, "host.cc")}
	sh(t, host, "kinit", "-kt", kt, "LINUX01$@EXAMPLE.TEST")
	out := sh(t, host, "ldapsearch", "-o", "ldif_wrap=no", "-LLL", "-Y", "GSSAPI", "-N", "-H", ldapURL,
		"-b", "CN=app,"+msaBase, "-s", "sub", "(objectClass=msDs-GroupManagedServiceAccount)", "msDS-ManagedPassword")
	m := blobLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("%s: ldapsearch -Y GSSAPI returned no blob:\n%s", tg.name, out)
	}
	blobFile := filepath.Join(dir, "blob.ldif")
	os.WriteFile(blobFile, []byte(out), 0o600)
	var dec map[string]any
	json.Unmarshal([]byte(sh(t, nil, gmsaBin, "blob", "decode", "--file", blobFile, "-o", "json")), &dec)
	pwHex := str(dec, "current_password_hex")
	pw, _ := hex.DecodeString(pwHex)
	utf8pw := string(krbkey.UTF16ToUTF8(pw))
	gmsaEnv := []string{"KRB5_CONFIG=" + krb5conf, "KRB5CCNAME=FILE:" + filepath.Join(dir, "gmsa.cc")}
	seen := []string{"blob read by LINUX01$ over a sealed GSSAPI bind"}
	if !strings.ContainsAny(utf8pw, "\n\r") {
		if out, errOut, code := run(gmsaEnv, utf8pw+"\n", "kinit", "-V", "app$@EXAMPLE.TEST"); code != 0 {
			t.Fatalf("%s: kinit app$ with the password read: %s%s", tg.name, out, errOut)
		}
		if out := sh(t, gmsaEnv, "kvno", "http/app.example.test@EXAMPLE.TEST"); !strings.Contains(out, "kvno = ") {
			t.Fatalf("%s: kvno: %s", tg.name, out)
		}
		seen = append(seen, "kinit app$ with it, kvno of its SPN")
	} else {
		t.Logf("%s: this password holds a line break, which kinit cannot read from standard input", tg.name)
		seen = append(seen, "kinit app$ with it, kvno of its SPN")
	}
	for _, mech := range []string{"GSSAPI", "GSS-SPNEGO"} {
		out, errOut, code := run([]string{"KRB5_CONFIG=" + krb5conf, "GODEBUG=x509negativeserial=1"}, "", gmsaBin, "account", "password", "app",
			"--server", ldapURL, "--keytab", kt, "--sasl-mech", mech, "-o", "json")
		var got map[string]any
		if code != 0 || json.Unmarshal([]byte(out), &got) != nil {
			t.Fatalf("%s: our client with the machine keytab (%s): exit %d\n%s%s", tg.name, mech, code, out, errOut)
		}
		if str(got, "current_password_hex") != pwHex {
			t.Fatalf("%s: our client (%s) read another password than ldapsearch", tg.name, mech)
		}
		seen = append(seen, "our client read the same over "+mech)
	}
	return strings.Join(seen, "; ")
}

// credspecScenario writes the credential spec of app$ from a DC over LDAP and validates
// it against that DC for LINUX01$ (allowed by hostScenario); it returns the spec without
// the domain's own SID and GUID, which differ between DCs.
func credspecScenario(t *testing.T, tg target) string {
	file := filepath.Join(t.TempDir(), "spec.json")
	if out, errOut, code := tg.gm(t, tg.admin, tg.adminPW, "", "credspec", "new", "--account", "app", "--out", file); code != 0 {
		t.Fatalf("%s: credspec new: %s%s", tg.name, out, errOut)
	}
	if out, errOut, code := tg.gm(t, tg.admin, tg.adminPW, "", "credspec", "validate", file, "--host", "LINUX01$"); code != 0 || !strings.Contains(errOut, "valid") {
		t.Fatalf("%s: credspec validate: exit %d %s%s", tg.name, code, out, errOut)
	}
	if out, errOut, code := tg.gm(t, tg.admin, tg.adminPW, "", "credspec", "validate", file, "--host", "stranger"); code == 0 || !strings.Contains(errOut, "may not retrieve") {
		t.Fatalf("%s: credspec validate for a stranger: exit %d %s%s", tg.name, code, out, errOut)
	}
	b, _ := os.ReadFile(file)
	var spec map[string]any
	json.Unmarshal(b, &spec)
	j := spec["DomainJoinConfig"].(map[string]any)
	if !strings.HasPrefix(j["Sid"].(string), "S-1-5-21-") || len(j["Guid"].(string)) != 36 {
		t.Fatalf("%s: domain SID and GUID: %v", tg.name, j)
	}
	j["Sid"], j["Guid"] = "SID", "GUID"
	out, _ := json.Marshal(spec)
	return string(out)
}
