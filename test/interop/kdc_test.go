//go:build interop

package interop

import (
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gmsa/internal/krbkey"
)

// MIT Kerberos against our KDC: kinit with a password (a user, and a gMSA with the
// password a permitted reader gets over LDAPS, as credentials-fetcher does), kinit -k
// with the keytab of 'computer new --write-keytab' and of 'keytab create', kvno of the gMSA's
// SPN with the kvno the directory reports, renewal, canonicalization, enterprise names,
// and the refusals (wrong password, unknown principal).
func TestOurKDCWithMITAndHeimdal(t *testing.T) {
	data, ep := ourServer(t)
	dir := filepath.Dir(data)
	krb5 := filepath.Join(data, "krb5.conf")
	if ep["kdc"] == "" {
		t.Fatalf("endpoints.json lists no KDC: %v", ep)
	}
	admin := []string{"--server", ep["ldaps"], "--ca-file", ep["ca"], "--user", "Administrator@example.test",
		"--password-file", filepath.Join(data, "admin-password")}
	gm := func(args ...string) string {
		t.Helper()
		out, errOut, code := run(nil, "", gmsaBin, append(args, admin...)...)
		if code != 0 {
			t.Fatalf("gmsa %v: exit %d\n%s%s", args, code, out, errOut)
		}
		return out
	}
	krb := func(cc, stdin string, name string, args ...string) (string, string, int) {
		return run([]string{"KRB5_CONFIG=" + krb5, "KRB5CCNAME=FILE:" + filepath.Join(dir, cc)}, stdin, name, args...)
	}
	ok := func(cc, stdin string, name string, args ...string) string {
		t.Helper()
		out, errOut, code := krb(cc, stdin, name, args...)
		if code != 0 {
			t.Fatalf("%s %v: exit %d\n%s%s", name, args, code, out, errOut)
		}
		return out
	}

	// A user with a password; renewal; an enterprise name; canonicalization.
	ok("user", "Web-Pass-123!\n", "kinit", "websvc")
	if out := ok("user", "", "klist", "-e"); !strings.Contains(out, "krbtgt/EXAMPLE.TEST@EXAMPLE.TEST") || !strings.Contains(out, "aes256-cts-hmac-sha1-96, aes256-cts-hmac-sha1-96") {
		t.Fatalf("klist after kinit:\n%s", out)
	}
	ok("user", "", "kinit", "-R")
	ok("ent", "Web-Pass-123!\n", "kinit", "-E", "websvc@example.test")
	if out := ok("ent", "", "klist"); !strings.Contains(out, "Default principal: websvc@EXAMPLE.TEST") {
		t.Fatalf("enterprise kinit:\n%s", out)
	}
	ok("canon", "Web-Pass-123!\n", "kinit", "-C", "WEBSVC")
	if _, errOut, code := krb("bad", "wrong\n", "kinit", "websvc"); code == 0 || !strings.Contains(errOut, "Password incorrect") && !strings.Contains(errOut, "Preauthentication failed") {
		t.Fatalf("wrong password: exit %d %s", code, errOut)
	}
	if _, errOut, code := krb("bad", "x\n", "kinit", "nobody"); code == 0 || !strings.Contains(errOut, "not found in Kerberos database") {
		t.Fatalf("unknown principal: exit %d %s", code, errOut)
	}

	// A computer's keytab from 'computer new --write-keytab'; the gMSA's SPN from it.
	keytab := filepath.Join(dir, "web01.keytab")
	gm("computer", "new", "WEB01", "--write-keytab", keytab)
	gm("group", "add-member", "Web Hosts", "WEB01$")
	gm("account", "set", "svc", "--add-spn", "HTTP/svc.example.test", "--enctypes", "aes128,aes256")
	ok("host", "", "kinit", "-k", "-t", keytab, "WEB01$")
	// A computer with a password, as credentials-fetcher's domainless mode sends it: HOST$
	// upper-cased, the password on standard input.
	pwFile := filepath.Join(dir, "app01.pw")
	os.WriteFile(pwFile, []byte("App01-Machine-Pass-1!\n"), 0o600)
	gm("computer", "new", "APP01")
	gm("user", "set-password", "APP01$", "--new-password-file", pwFile)
	ok("app01", "App01-Machine-Pass-1!\n", "kinit", "APP01$")
	kvnoOut := ok("host", "", "kvno", "HTTP/svc.example.test")
	svc := gmsaJSON(t, append([]string{"account", "get", "svc"}, admin...)...)
	if want := fmt.Sprintf("kvno = %s", jsonNum(svc["key_version_number"])); !strings.Contains(kvnoOut, want) {
		t.Fatalf("kvno of the gMSA's SPN: %q, want %q", kvnoOut, want)
	}

	// The gMSA itself: its password read over LDAPS by a permitted reader, then kinit
	// with it on standard input (when it holds no line break, which kinit cannot take),
	// and kinit -k with the keytab 'keytab create' makes from the same blob.
	out, errOut, code := run([]string{"LDAPTLS_CACERT=" + ep["ca"]}, "", "ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-x", "-H", ep["ldaps"],
		"-D", "websvc@example.test", "-w", "Web-Pass-123!", "-b", msaBase, "(sAMAccountName=svc$)", "msDS-ManagedPassword")
	if code != 0 || !strings.Contains(out, "msDS-ManagedPassword::") {
		t.Fatalf("reading the blob: %d %s %s", code, out, errOut)
	}
	blobFile := filepath.Join(dir, "svc.ldif")
	os.WriteFile(blobFile, []byte(out), 0o600)
	dec := gmsaJSON(t, "blob", "decode", "--file", blobFile)
	pw, _ := hex.DecodeString(dec["current_password_hex"].(string))
	utf8pw := string(krbkey.UTF16ToUTF8(pw))
	if !strings.ContainsAny(utf8pw, "\n\r") {
		ok("gmsa", utf8pw+"\n", "kinit", "svc$")
		if out := ok("gmsa", "", "klist"); !strings.Contains(out, "Default principal: svc$@EXAMPLE.TEST") {
			t.Fatalf("gMSA kinit with its password:\n%s", out)
		}
	} else {
		t.Logf("this password holds a line break, which kinit cannot read from standard input: kinit -k only")
	}
	gmsaKeytab := filepath.Join(dir, "svc.keytab")
	if out, errOut, code := run(nil, "", gmsaBin, "keytab", "create", "--blob-file", blobFile, "--account", "svc$", "--domain", "example.test",
		"--kvno", jsonNum(svc["key_version_number"]), "--spn", "HTTP/svc.example.test", "--out", gmsaKeytab); code != 0 {
		t.Fatalf("keytab create: %s %s", out, errOut)
	}
	ok("gmsakt", "", "kinit", "-k", "-t", gmsaKeytab, "svc$")
	// The service ticket a host gets for HTTP/svc decrypts with the gMSA's keytab.
	ok("host", "", "kvno", "-k", gmsaKeytab, "HTTP/svc.example.test")

	// Constrained delegation, as IIS and SQL Server running as gMSAs use it: svc$ may
	// get tickets to HOST/web01 for users (S4U2Self with protocol transition, then
	// S4U2Proxy), and to nothing else.
	gm("account", "set", "svc", "--trusted-to-auth-for-delegation", "--allowed-to-delegate-to", "HOST/web01.example.test")
	ok("svc", "", "kinit", "-k", "-t", gmsaKeytab, "svc$")
	ok("svc", "", "kvno", "-U", "websvc", "svc$")
	ok("svc", "", "kvno", "-U", "websvc", "-P", "HOST/web01.example.test")
	if out := ok("svc", "", "klist", "-f"); !strings.Contains(out, "HOST/web01.example.test@EXAMPLE.TEST\n\tfor client websvc@EXAMPLE.TEST, Flags: F") {
		t.Fatalf("S4U2Proxy ticket:\n%s", out)
	}
	// MIT checks the delegated credentials with the delegating service's keytab.
	if out := ok("svc", "", "kvno", "-U", "websvc", "-P", "-k", gmsaKeytab, "HOST/web01.example.test"); !strings.Contains(out, "keytab entry valid") {
		t.Fatalf("kvno -P -k: %s", out)
	}
	if _, errOut, code := krb("svc", "", "kvno", "-U", "websvc", "-P", "HTTP/svc.example.test"); code == 0 || !strings.Contains(errOut, "constrained delegation failed") {
		t.Fatalf("delegation outside msDS-AllowedToDelegateTo: exit %d %s", code, errOut)
	}

	// An MIT GSS-API acceptor (python3-gssapi) with the gMSA's keytab accepts websvc's
	// service ticket, and reports its PAC authenticated, which MIT does only when the
	// PAC's server signature verifies with the service key.
	acceptor := filepath.Join(dir, "acceptor.py")
	os.WriteFile(acceptor, []byte(gssAcceptor), 0o644)
	accEnv := []string{"KRB5_CONFIG=" + krb5, "KRB5CCNAME=FILE:" + filepath.Join(dir, "user"), "KRB5_KTNAME=FILE:" + gmsaKeytab}
	if out, errOut, code := run(accEnv, "", "/usr/bin/python3", acceptor, "HTTP@svc.example.test"); code != 0 ||
		!strings.Contains(out, "initiator websvc@EXAMPLE.TEST") || !strings.Contains(out, "urn:mspac:logon-info authenticated=True") {
		t.Fatalf("GSS-API acceptor: exit %d\n%s%s", code, out, errOut)
	}

	// Heimdal, the second client stack (from the Samba chroot, which shares the network):
	// kinit with a password and kgetcred for the gMSA's SPN.
	inside := chrootFiles(t, map[string]string{"krb5.conf": krb5}, map[string]string{"pw": "Web-Pass-123!\n"})
	henv := []string{"KRB5_CONFIG=" + inside + "/krb5.conf", "KRB5CCNAME=FILE:" + inside + "/cc"}
	heimdal := func(args ...string) string {
		t.Helper()
		out, errOut, code := run(nil, "", "bash", append([]string{"peers.sh", "chroot", "env"}, append(henv, args...)...)...)
		if code != 0 {
			t.Fatalf("Heimdal %v: exit %d\n%s%s", args, code, out, errOut)
		}
		return out + errOut
	}
	heimdal("kinit.heimdal", "--password-file="+inside+"/pw", "websvc@EXAMPLE.TEST")
	heimdal("kgetcred", "HTTP/svc.example.test@EXAMPLE.TEST")
	if out := heimdal("heimtools", "klist"); !strings.Contains(out, "HTTP/svc.example.test@EXAMPLE.TEST") || !strings.Contains(out, "krbtgt/EXAMPLE.TEST@EXAMPLE.TEST") {
		t.Fatalf("Heimdal's cache:\n%s", out)
	}
}

// chrootFiles copies files (by name: host path) and writes texts (by name: content)
// into a fresh directory of the Samba chroot, for its programs; it returns the
// directory as they see it.
func chrootFiles(t *testing.T, files, texts map[string]string) string {
	t.Helper()
	host, err := os.MkdirTemp(filepath.Join(peerRoot(t), "tmp"), "gmsa-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(host) })
	for name, src := range files {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		texts[name] = string(b)
	}
	for name, text := range texts {
		if err := os.WriteFile(filepath.Join(host, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return "/tmp/" + filepath.Base(host)
}

// peerRoot is the Samba chroot's root, where Heimdal's clients live.
func peerRoot(t *testing.T) string {
	return filepath.Dir(filepath.Dir(dcDir)) // dcDir is ROOT/srv/dc
}

// gssAcceptor establishes a GSS-API context from the credential cache to the keytab's
// service in one process, then prints the initiator and the PAC's name attributes with
// MIT's verdict on them (RFC 6680).
const gssAcceptor = `import sys, gssapi, gssapi.raw
target = gssapi.Name(sys.argv[1], gssapi.NameType.hostbased_service)
ini = gssapi.SecurityContext(name=target, usage="initiate")
acc = gssapi.SecurityContext(creds=gssapi.Credentials(usage="accept"), usage="accept")
tok = ini.step()
while not (ini.complete and acc.complete):
    tok = acc.step(tok)
    if tok and not ini.complete:
        tok = ini.step(tok)
print("initiator", acc.initiator_name)
for attr in (b"urn:mspac:logon-info", b"urn:mspac:client-info", b"urn:mspac:upn-dns-info"):
    r = gssapi.raw.get_name_attribute(acc.initiator_name, attr)
    print(attr.decode(), "authenticated=%s" % r.authenticated, "values=%d" % len(r.values))
`
