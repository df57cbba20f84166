//go:build interop

package interop

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gmsa/internal/ntsec"
)

// ourServer provisions a domain with the admin commands, then runs 'gmsa server' on
// free loopback ports. It returns the data directory and the endpoints.
func ourServer(t *testing.T) (data string, ep map[string]string) { return ourServerWith(t, "") }

// ourServerWith is ourServer with more settings under ldap: in its configuration.
func ourServerWith(t *testing.T, ldapSettings string) (data string, ep map[string]string) {
	dir := t.TempDir()
	data = filepath.Join(dir, "data")
	g := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command(gmsaBin, append(args, "--data", data)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("gmsa %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	g("", "domain", "provision", "--realm", "EXAMPLE.TEST", "--netbios", "EXAMPLE",
		"--root-key-effective-time", time.Now().Add(-48*time.Hour).UTC().Format(time.RFC3339))
	g("Web-Pass-123!\n", "user", "new", "websvc", "--password-stdin")
	g("Out-Pass-123!\n", "user", "new", "outsider", "--password-stdin")
	g("", "group", "new", "Web Hosts")
	g("", "group", "add-member", "Web Hosts", "websvc")
	g("", "account", "new", "svc", "--dns-host-name", "svc.example.test", "--principals-allowed", "Web Hosts", "--interval-days", "30")
	ep, _ = startServer(t, data, fmt.Sprintf("ldap:\n  listen: 127.0.0.1:0\n  ldaps_listen: 127.0.0.1:0\n  allow_plain_simple_bind: true\n%s", ldapSettings))
	return data, ep
}

// startServer runs 'gmsa server' on data with the given configuration (YAML; the KDC on
// a free port unless it says otherwise) and waits for its endpoints; the test's cleanup stops it by PID.
func startServer(t *testing.T, data, settings string) (ep map[string]string, srv *exec.Cmd) {
	cfg := filepath.Join(t.TempDir(), "gmsa.yaml")
	if !strings.Contains(settings, "kdc:") {
		settings += "kdc:\n  listen: 127.0.0.1:0\n"
	}
	os.WriteFile(cfg, []byte(fmt.Sprintf("data: %s\n%s", data, settings)), 0o600)
	epFile := filepath.Join(data, "endpoints.json")
	os.Remove(epFile) // left by a killed server
	srv = exec.Command(gmsaBin, "server", "--config", cfg)
	srv.Stdout, srv.Stderr = os.Stderr, os.Stderr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Process.Signal(syscall.SIGTERM)
		srv.Wait()
	})
	for i := 0; ; i++ {
		if b, err := os.ReadFile(epFile); err == nil && json.Unmarshal(b, &ep) == nil && ep["ldaps"] != "" {
			break
		}
		if i == 200 {
			t.Fatal("gmsa server did not write endpoints.json")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return ep, srv
}

// run runs a command and returns stdout, stderr and the exit code.
func run(env []string, stdin string, name string, args ...string) (string, string, int) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
	}
	return out.String(), errb.String(), code
}

const msaBase = "CN=Managed Service Accounts,DC=example,DC=test"

func TestOurLDAPServerWithRealClients(t *testing.T) {
	data, ep := ourServer(t)
	ldapsURL, ldapURL := ep["ldaps"], ep["ldap"]
	tlsEnv := []string{"LDAPTLS_CACERT=" + ep["ca"], "LDAPTLS_REQCERT=demand"}

	// What the password must be: the offline engine on the same inputs, with the root
	// key and the account read over LDAPS as Administrator (the server holds the data
	// directory, so the admin commands cannot).
	adminPW, _ := os.ReadFile(filepath.Join(data, "admin-password"))
	admin := []string{"-x", "-D", "Administrator@example.test", "-w", strings.TrimSpace(string(adminPW))}
	keys, stderr, code := run(tlsEnv, "", "ldapsearch", append([]string{"-LLL", "-H", ldapsURL}, append(admin, "-b",
		"CN=Master Root Keys,CN=Group Key Distribution Service,CN=Services,CN=Configuration,DC=example,DC=test", "(objectClass=msKds-ProvRootKey)")...)...)
	if code != 0 || !strings.Contains(keys, "msKds-RootKeyData::") {
		t.Fatalf("root keys over LDAPS as Administrator (exit %d): %s %s", code, keys, stderr)
	}
	keyFile := filepath.Join(t.TempDir(), "keys.ldif")
	os.WriteFile(keyFile, []byte(keys), 0o600)
	acct, _, _ := run(tlsEnv, "", "ldapsearch", append([]string{"-LLL", "-o", "ldif-wrap=no", "-H", ldapsURL}, append(admin, "-b", msaBase,
		"(sAMAccountName=svc$)", "objectSid", "msDS-ManagedPasswordId")...)...)
	var sidB64, idB64 string
	for _, l := range strings.Split(acct, "\n") {
		if v, ok := strings.CutPrefix(l, "objectSid:: "); ok {
			sidB64 = v
		}
		if v, ok := strings.CutPrefix(l, "msDS-ManagedPasswordId:: "); ok {
			idB64 = v
		}
	}
	want := gmsaJSON(t, "kds", "compute", "--root-key-file", keyFile, "--sid", sidB64, "--password-id", idB64)
	wantHex := str(want, "password_hex")

	blobOf := func(out string) string {
		for _, l := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(l, "msDS-ManagedPassword:: "); ok {
				return v
			}
		}
		return ""
	}
	user := []string{"-x", "-D", "websvc@example.test", "-w", "Web-Pass-123!"}
	query := []string{"-b", msaBase, "(sAMAccountName=svc$)", "msDS-ManagedPassword"}

	// 1. ldapsearch over LDAPS.
	out, stderr, code := run(tlsEnv, "", "ldapsearch", append(append([]string{"-LLL", "-o", "ldif-wrap=no", "-H", ldapsURL}, user...), query...)...)
	blob := blobOf(out)
	if code != 0 || blob == "" {
		t.Fatalf("ldapsearch LDAPS (exit %d): %s %s", code, out, stderr)
	}
	if got := str(gmsaJSON(t, "blob", "decode", blob), "current_password_hex"); got != wantHex {
		t.Fatal("the password served over LDAPS differs from kds compute")
	}
	// 2. StartTLS on the plain port.
	out, stderr, code = run(tlsEnv, "", "ldapsearch", append(append([]string{"-LLL", "-o", "ldif-wrap=no", "-ZZ", "-H", ldapURL}, user...), query...)...)
	if code != 0 || blobOf(out) == "" {
		t.Fatalf("ldapsearch -ZZ (exit %d): %s %s", code, out, stderr)
	}
	// 3. Plain LDAP: bound, but the password is refused with 0000202D, as AD and Samba do.
	out, stderr, code = run(nil, "", "ldapsearch", append(append([]string{"-LLL", "-H", ldapURL}, user...), query...)...)
	if code != 1 || !strings.Contains(stderr, "Operations error (1)") || !strings.Contains(stderr+out, "0000202D") {
		t.Fatalf("plain LDAP (exit %d): %s %s", code, out, stderr)
	}
	// 4. Someone not allowed: the entry without the attribute, no error.
	out, stderr, code = run(tlsEnv, "", "ldapsearch", append([]string{"-LLL", "-H", ldapsURL, "-x", "-D", "EXAMPLE\\outsider", "-w", "Out-Pass-123!"}, query...)...)
	if code != 0 || !strings.Contains(out, "dn: CN=svc,") || strings.Contains(out, "msDS-ManagedPassword") {
		t.Fatalf("outsider (exit %d): %s %s", code, out, stderr)
	}
	// The audit trail (DATA/audit.log, written before each response) names each reader: the
	// root key read as Administrator, the granted and the refused password reads.
	auditWant := []string{`"msg":"KDS root key read","principal":"Administrator"`, `"msg":"gMSA password read","principal":"websvc"`,
		`"msg":"gMSA password read denied","principal":"outsider"`}
	for i := 0; ; i++ {
		trail, _ := os.ReadFile(filepath.Join(data, "audit.log"))
		missing := ""
		for _, w := range auditWant {
			if !strings.Contains(string(trail), w) {
				missing = w
			}
		}
		if missing == "" {
			break
		}
		if i == 50 {
			t.Fatalf("audit.log lacks %s:\n%s", missing, trail)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// 5. Anonymous RootDSE.
	out, _, code = run(nil, "", "ldapsearch", "-LLL", "-x", "-H", ldapURL, "-b", "", "-s", "base", "defaultNamingContext", "domainFunctionality")
	if code != 0 || !strings.Contains(out, "defaultNamingContext: DC=example,DC=test") {
		t.Fatalf("RootDSE: %s", out)
	}

	// 6 and 7. python3-ldap3 reads the blob; impacket's parser takes it apart.
	host, port, _ := strings.Cut(strings.TrimPrefix(ldapsURL, "ldaps://"), ":")
	script := fmt.Sprintf(pyClient, host, port, tlsEnv[0][len("LDAPTLS_CACERT="):])
	out, stderr, code = run(nil, script, "/usr/bin/python3", "-")
	if code != 0 {
		t.Fatalf("python3-ldap3/impacket (exit %d): %s %s", code, out, stderr)
	}
	var py map[string]string
	if err := json.Unmarshal([]byte(out), &py); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if py["ldap3_current_hex"] != wantHex || py["impacket_current_hex"] != wantHex || py["impacket_nt_hash"] != str(want, "nt_hash") {
		t.Fatalf("python peers disagree: %v (want %s…, NT %s)", py, wantHex[:16], str(want, "nt_hash"))
	}
	t.Logf("ldapsearch (LDAPS, StartTLS, plain refused), python3-ldap3 and impacket all read the password %s… (NT hash %s)", wantHex[:16], py["impacket_nt_hash"])

	// 8. samba-tool (4.22, from the chroot) lists our users and groups over LDAP.
	bindDN, pwArg := "--simple-bind-dn=CN=Administrator,CN=Users,DC=example,DC=test", "--password="+strings.TrimSpace(string(adminPW))
	users := peers(t, "chroot", "samba-tool", "user", "list", "-H", ldapURL, bindDN, pwArg)
	groups := peers(t, "chroot", "samba-tool", "group", "list", "-H", ldapURL, bindDN, pwArg)
	for _, want := range []string{"Administrator", "websvc", "outsider", "krbtgt"} {
		if !strings.Contains(users, want) {
			t.Errorf("samba-tool user list lacks %s:\n%s", want, users)
		}
	}
	for _, want := range []string{"Domain Admins", "Web Hosts", "Enterprise Admins"} {
		if !strings.Contains(groups, want) {
			t.Errorf("samba-tool group list lacks %s:\n%s", want, groups)
		}
	}

	// 9. ldapadd creates a gMSA from LDIF (the membership SD as base64, as AD tools
	// write it), ldapmodify changes it, and the allowed user reads its password.
	hosts, _, _ := run(tlsEnv, "", "ldapsearch", append([]string{"-LLL", "-H", ldapsURL}, append(admin, "-b", "DC=example,DC=test", "(cn=Web Hosts)", "objectSid")...)...)
	sidLine := strings.TrimSpace(strings.SplitN(strings.SplitN(hosts, "objectSid:: ", 2)[1], "\n", 2)[0])
	sidRaw, _ := base64.StdEncoding.DecodeString(sidLine)
	hostSID, err := ntsec.SIDFromBytes(sidRaw)
	if err != nil {
		t.Fatal(err)
	}
	sd, _ := ntsec.ParseSDDL("O:S-1-5-32-544D:(A;;0xf01ff;;;"+hostSID.String()+")", ntsec.SID{})
	ldif := "dn: CN=app01,CN=Managed Service Accounts,DC=example,DC=test\nobjectClass: msDS-GroupManagedServiceAccount\n" +
		"sAMAccountName: app01$\ndNSHostName: app01.example.test\nmsDS-ManagedPasswordInterval: 3\n" +
		"msDS-SupportedEncryptionTypes: 24\nmsDS-GroupMSAMembership:: " + base64.StdEncoding.EncodeToString(sd.Bytes()) + "\n"
	if out, stderr, code := run(tlsEnv, ldif, "ldapadd", append([]string{"-H", ldapsURL}, admin...)...); code != 0 {
		t.Fatalf("ldapadd (exit %d): %s %s", code, out, stderr)
	}
	mod := "dn: CN=app01,CN=Managed Service Accounts,DC=example,DC=test\nchangetype: modify\nadd: servicePrincipalName\nservicePrincipalName: http/app01.example.test\n"
	if out, stderr, code := run(tlsEnv, mod, "ldapmodify", append([]string{"-H", ldapsURL}, admin...)...); code != 0 {
		t.Fatalf("ldapmodify (exit %d): %s %s", code, out, stderr)
	}
	refused := "dn: CN=app01,CN=Managed Service Accounts,DC=example,DC=test\nchangetype: modify\nreplace: msDS-ManagedPasswordInterval\nmsDS-ManagedPasswordInterval: 30\n"
	if _, stderr, code := run(tlsEnv, refused, "ldapmodify", append([]string{"-H", ldapsURL}, admin...)...); code == 0 || !strings.Contains(stderr, "Constraint violation (19)") {
		t.Fatalf("interval change accepted (exit %d): %s", code, stderr)
	}
	out, stderr, code = run(tlsEnv, "", "ldapsearch", append(append([]string{"-LLL", "-o", "ldif-wrap=no", "-H", ldapsURL}, user...),
		"-b", msaBase, "(servicePrincipalName=http/app01.example.test)", "msDS-ManagedPassword", "msDS-ManagedPasswordInterval")...)
	if code != 0 || blobOf(out) == "" || !strings.Contains(out, "msDS-ManagedPasswordInterval: 3") {
		t.Fatalf("password of the gMSA made by ldapadd (exit %d): %s %s", code, out, stderr)
	}
}

// pyClient reads msDS-ManagedPassword with ldap3 over LDAPS, parses the blob by its
// offsets, and parses it again with impacket's MSDS_MANAGEDPASSWORD_BLOB (whose module
// imports dsinternals, which Debian does not package: a stub stands in for it).
const pyClient = `
import json, ssl, struct, sys, types, importlib.abc, importlib.util
import ldap3
from Cryptodome.Hash import MD4

class Stub(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path, target=None):
        if name == 'dsinternals' or name.startswith('dsinternals.'):
            return importlib.util.spec_from_loader(name, self, is_package=True)
    def create_module(self, spec):
        m = types.ModuleType(spec.name); m.__path__ = []
        m.__getattr__ = lambda attr: type(attr, (), {})
        return m
    def exec_module(self, m): pass
sys.meta_path.insert(0, Stub())
from impacket.examples.ntlmrelayx.attacks.ldapattack import MSDS_MANAGEDPASSWORD_BLOB

tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=%[3]q)
server = ldap3.Server(%[1]q, port=int(%[2]q), use_ssl=True, tls=tls, get_info=ldap3.NONE)
conn = ldap3.Connection(server, user='websvc@example.test', password='Web-Pass-123!', auto_bind=True)
conn.search('CN=Managed Service Accounts,DC=example,DC=test', '(sAMAccountName=svc$)', attributes=['msDS-ManagedPassword'])
blob = conn.entries[0]['msDS-ManagedPassword'].raw_values[0]
version, reserved, length, cur, prev, query, unchanged = struct.unpack_from('<HHIHHHH', blob)
assert version == 1 and length == len(blob), (version, length, len(blob))
end = prev if prev else query
ldap3_current = blob[cur:end - 2]
parsed = MSDS_MANAGEDPASSWORD_BLOB()
parsed.fromString(blob)
imp_current = parsed['CurrentPassword'][:-2]
nt = MD4.new(); nt.update(imp_current)
print(json.dumps({'ldap3_current_hex': ldap3_current.hex(), 'impacket_current_hex': imp_current.hex(), 'impacket_nt_hash': nt.hexdigest()}))
`
