//go:build interop

package interop

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"gmsa/internal/ldif"
	"gmsa/internal/managedpw"
	"gmsa/internal/store/etcd/etcdtest"
)

var usnLine = regexp.MustCompile(`(?m)^\s*"usn_(created|changed)": \d+,\n`)

// Two 'gmsa server' processes on one three-member etcd cluster, driven by real clients:
// a gMSA made through one is served by the other (ldapsearch reads the same blob from
// both; MIT's kinit and kvno use a keytab from it against either KDC); an etcd member
// killed and restarted, then one server killed, and the survivor keeps answering with
// the same results. Backups move the directory from etcd to bolt and back.
func TestTwoServersOnEtcd(t *testing.T) {
	cl := etcdtest.Start(t, 3)
	base := t.TempDir()
	dataA, dataB := filepath.Join(base, "a"), filepath.Join(base, "b")
	storeArgs := []string{"--store", "etcd", "--etcd-endpoints", strings.Join(cl.URLs(), ","), "--etcd-prefix", "example.test/"}
	g := func(data, stdin string, args ...string) string {
		t.Helper()
		out, errOut, code := run(nil, stdin, gmsaBin, append(append(args, "--data", data), storeArgs...)...)
		if code != 0 {
			t.Fatalf("gmsa %v: exit %d\n%s%s", args, code, out, errOut)
		}
		return out
	}
	// Local admin commands reach the cluster directly, with no server running.
	g(dataA, "", "domain", "provision", "--realm", "EXAMPLE.TEST", "--netbios", "EXAMPLE",
		"--root-key-effective-time", time.Now().Add(-48*time.Hour).UTC().Format(time.RFC3339))
	g(dataA, "Web-Pass-123!\n", "user", "new", "websvc", "--password-stdin")
	g(dataA, "", "group", "new", "Web Hosts")
	g(dataA, "", "group", "add-member", "Web Hosts", "websvc")

	settings := fmt.Sprintf("store:\n  backend: etcd\n  etcd:\n    endpoints: [%s]\n    prefix: example.test/\n"+
		"ldap:\n  listen: 127.0.0.1:0\n  ldaps_listen: 127.0.0.1:0\n", strings.Join(cl.URLs(), ", "))
	epA, srvA := startServer(t, dataA, settings)
	epB, _ := startServer(t, dataB, settings)
	if _, errOut, code := run(nil, "", gmsaBin, "server", "--data", dataA, "--store", "etcd", "--etcd-endpoints", cl.URLs()[0]); code == 0 ||
		!strings.Contains(errOut, "held by gmsa server pid") {
		t.Fatalf("a second server on a data directory in use: exit %d %s", code, errOut)
	}

	// The gMSA is made through server A over LDAP.
	adminPW, _ := os.ReadFile(filepath.Join(dataA, "admin-password"))
	onA := target{"A", epA["ldaps"], "Administrator@example.test", strings.TrimSpace(string(adminPW)), []string{"--ca-file", epA["ca"]}}
	if out, errOut, code := onA.gm(t, onA.admin, onA.adminPW, "", "account", "new", "multi", "--dns-host-name", "multi.example.test",
		"--principals-allowed", "Web Hosts", "--enctypes", "aes128,aes256", "--spn", "http/multi.example.test"); code != 0 {
		t.Fatalf("account new on A: %s%s", out, errOut)
	}
	created := time.Now()
	var lastBlob []byte // the last blob read, raw
	read := func(ep map[string]string) (string, error) {
		out, errOut, code := run([]string{"LDAPTLS_CACERT=" + ep["ca"]}, "", "ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-x", "-H", ep["ldaps"],
			"-D", "websvc@example.test", "-w", "Web-Pass-123!", "-b", msaBase, "(sAMAccountName=multi$)", "msDS-ManagedPassword", "msDS-KeyVersionNumber")
		if code != 0 {
			return "", fmt.Errorf("ldapsearch %s: exit %d %s", ep["ldaps"], code, errOut)
		}
		es, err := ldif.Parse([]byte(out))
		if err != nil || len(es) != 1 || len(es[0].Get("msDS-ManagedPassword")) != 1 {
			return "", fmt.Errorf("ldapsearch %s: %d entries, %v\n%s", ep["ldaps"], len(es), err, out)
		}
		// The passwords and the key version, not the intervals (they count down).
		raw := es[0].Get("msDS-ManagedPassword")[0]
		b, err := managedpw.Decode(raw)
		if err != nil {
			return "", err
		}
		lastBlob = raw
		return fmt.Sprintf("%x/%x/%s", b.Current, b.Previous, es[0].Get("msDS-KeyVersionNumber")[0]), nil
	}
	var fromB string
	for {
		var err error
		if fromB, err = read(epB); err == nil {
			break
		}
		if time.Since(created) > 5*time.Second {
			t.Fatalf("server B does not serve what A created: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("a gMSA created through server A was served by server B %s later (ldapsearch round trips included)", time.Since(created).Round(time.Millisecond))
	fromA, err := read(epA)
	if err != nil || fromA != fromB {
		t.Fatalf("the servers disagree: A %q (%v), B %q", fromA, err, fromB)
	}
	blob, kvno := fmt.Sprintf("%x", lastBlob), fromA[strings.LastIndexByte(fromA, '/')+1:]

	// Kerberos against each KDC, then against both in one krb5.conf.
	kerberos := func(kdcs ...string) string {
		t.Helper()
		dir := t.TempDir()
		conf := filepath.Join(dir, "krb5.conf")
		var lines []string
		for _, k := range kdcs {
			lines = append(lines, "\t\tkdc = "+k)
		}
		os.WriteFile(conf, []byte(fmt.Sprintf("[libdefaults]\n\tdefault_realm = EXAMPLE.TEST\n\tdns_lookup_kdc = false\n\trdns = false\n"+
			"[realms]\n\tEXAMPLE.TEST = {\n%s\n\t}\n", strings.Join(lines, "\n"))), 0o600)
		kt := filepath.Join(dir, "multi.keytab")
		sh(t, nil, gmsaBin, "keytab", "create", "--blob", blob, "--account", "multi$", "--domain", "example.test", "--kvno", kvno,
			"--spn", "http/multi.example.test", "--out", kt)
		env := []string{"KRB5_CONFIG=" + conf, "KRB5CCNAME=FILE:" + filepath.Join(dir, "cc")}
		sh(t, env, "kinit", "-k", "-t", kt, "multi$@EXAMPLE.TEST")
		return sh(t, env, "kvno", "-k", kt, "http/multi.example.test@EXAMPLE.TEST")
	}
	for _, k := range []string{epA["kdc"], epB["kdc"]} {
		if out := kerberos(k); !strings.Contains(out, "keytab entry valid") {
			t.Fatalf("kvno against %s: %s", k, out)
		}
	}

	// One etcd member down (the leader), then back: both servers keep serving.
	leader := cl.Leader(t)
	cl.StopMember(leader)
	for _, ep := range []map[string]string{epA, epB} {
		deadline := time.Now().Add(15 * time.Second)
		for {
			got, err := read(ep)
			if err == nil && got == fromA {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("with one etcd member down, %s: %q %v", ep["ldaps"], got, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	cl.StartMember(t, leader)

	// Server A killed: B answers alone, reads and writes, and MIT fails over to its KDC.
	srvA.Process.Signal(syscall.SIGKILL)
	srvA.Wait()
	if got, err := read(epB); err != nil || got != fromA {
		t.Fatalf("after server A was killed, B: %q %v", got, err)
	}
	onB := target{"B", epB["ldaps"], onA.admin, onA.adminPW, []string{"--ca-file", epB["ca"]}}
	if out, errOut, code := onB.gm(t, onB.admin, onB.adminPW, "Other-Pass-123!\n", "user", "new", "later", "--password-stdin"); code != 0 {
		t.Fatalf("a write on B after A died: %s%s", out, errOut)
	}
	if out := kerberos(epA["kdc"], epB["kdc"]); !strings.Contains(out, "keytab entry valid") {
		t.Fatalf("kvno with A dead and B second in krb5.conf: %s", out)
	}

	// etcd → bolt → etcd under another prefix: the same directory each way.
	bak := filepath.Join(base, "etcd.bak")
	g(dataB, "", "backup", "--out", bak)
	boltData := filepath.Join(base, "bolt")
	sh(t, nil, gmsaBin, "restore", "--data", boltData, "--in", bak)
	// USNs are the store's revisions, as they are each DC's own counters in AD: the rest
	// must be equal.
	noUSN := func(s string) string { return usnLine.ReplaceAllString(s, "") }
	want := noUSN(g(dataB, "", "account", "get", "multi", "-o", "json"))
	if got := noUSN(sh(t, nil, gmsaBin, "account", "get", "multi", "-o", "json", "--data", boltData)); got != want {
		t.Fatalf("the account in bolt after a restore from etcd:\n%s\nwant\n%s", got, want)
	}
	bak2 := filepath.Join(base, "bolt.bak")
	sh(t, nil, gmsaBin, "backup", "--data", boltData, "--out", bak2)
	sh(t, nil, gmsaBin, "restore", "--in", bak2, "--data", filepath.Join(base, "c"), "--store", "etcd",
		"--etcd-endpoints", strings.Join(cl.URLs(), ","), "--etcd-prefix", "copy.example.test/")
	if got := noUSN(sh(t, nil, gmsaBin, "account", "get", "multi", "-o", "json", "--data", filepath.Join(base, "c"), "--store", "etcd",
		"--etcd-endpoints", strings.Join(cl.URLs(), ","), "--etcd-prefix", "copy.example.test/")); got != want {
		t.Fatalf("the account back in etcd after bolt:\n%s\nwant\n%s", got, want)
	}
	if _, errOut, code := run(nil, "", gmsaBin, "restore", "--in", bak2, "--data", filepath.Join(base, "d"), "--store", "etcd",
		"--etcd-endpoints", strings.Join(cl.URLs(), ","), "--etcd-prefix", "example.test/"); code == 0 || !strings.Contains(errOut, "empty") {
		t.Fatalf("a restore over a live domain: exit %d %s", code, errOut)
	}
}
