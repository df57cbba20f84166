//go:build interop

package interop

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The Debian package as dpkg sees it, its unit as systemd sees it, and its default
// configuration as the server sees it.
func TestServicePackage(t *testing.T) {
	out := t.TempDir()
	stdout, stderr, code := run([]string{"GMSA_BIN=" + gmsaBin}, "", "bash", "../../scripts/build-deb.sh", "1.0.0", out)
	if code != 0 {
		t.Fatalf("build-deb.sh (exit %d): %s", code, stderr)
	}
	deb := strings.TrimSpace(stdout)

	// dpkg's view: the fields, the conffile, the maintainer scripts and the files.
	fields := sh(t, nil, "dpkg-deb", "--field", deb, "Package", "Version", "Depends")
	for _, want := range []string{"Package: gmsa", "Version: 1.0.0", "Depends: adduser"} {
		if !strings.Contains(fields, want) {
			t.Errorf("control lacks %q:\n%s", want, fields)
		}
	}
	ctl := t.TempDir()
	sh(t, nil, "dpkg-deb", "--control", deb, ctl)
	if b, _ := os.ReadFile(filepath.Join(ctl, "conffiles")); strings.Join(strings.Fields(string(b)), " ") != "/etc/gmsa/agent.yaml /etc/gmsa/gmsa.yaml" {
		t.Errorf("conffiles: %q", b)
	}
	post, _ := os.ReadFile(filepath.Join(ctl, "postinst"))
	for _, want := range []string{"adduser --system --group", "install -d -o gmsa -g gmsa -m 0700 /var/lib/gmsa"} {
		if !strings.Contains(string(post), want) {
			t.Errorf("postinst lacks %q", want)
		}
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		sh(t, nil, "sh", "-n", filepath.Join(ctl, s))
	}
	list := sh(t, nil, "dpkg-deb", "--contents", deb)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`-rwxr-xr-x root/root .* \./usr/bin/gmsa\n`),
		regexp.MustCompile(`-rw-r--r-- root/root .* \./lib/systemd/system/gmsa-server\.service\n`),
		regexp.MustCompile(`-rw-r----- root/root .* \./etc/gmsa/gmsa\.yaml\n`),
		regexp.MustCompile(`-rw-r--r-- root/root .* \./lib/systemd/system/gmsa-agent\.service\n`),
		regexp.MustCompile(`-rw------- root/root .* \./etc/gmsa/agent\.yaml\n`),
		regexp.MustCompile(`\./usr/share/doc/gmsa/agent\.md\n`),
		regexp.MustCompile(`\./usr/share/doc/gmsa/operations\.md\n`),
		regexp.MustCompile(`\./usr/share/doc/gmsa/gmsa-dashboard\.json\n`),
	} {
		if !want.MatchString(list) {
			t.Errorf("the package lacks %s:\n%s", want, list)
		}
	}
	root := t.TempDir()
	sh(t, nil, "dpkg-deb", "--extract", deb, root)
	unit, _ := os.ReadFile(filepath.Join(root, "lib/systemd/system/gmsa-server.service"))
	if src, _ := os.ReadFile("../../deploy/systemd/gmsa-server.service"); string(src) != string(unit) {
		t.Fatal("the packaged unit is not deploy/systemd/gmsa-server.service")
	}

	// systemd's view: the unit verifies without a word (ExecStart pointed at the packaged
	// binary where this test unpacked it), and its exposure stays low.
	for _, want := range []string{"User=gmsa", "AmbientCapabilities=CAP_NET_BIND_SERVICE", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
		"NoNewPrivileges=yes", "ProtectSystem=strict", "StateDirectory=gmsa", "ExecReload=/bin/kill -HUP $MAINPID"} {
		if !strings.Contains(string(unit), want+"\n") {
			t.Errorf("the unit lacks %s", want)
		}
	}
	units := t.TempDir()
	local := filepath.Join(units, "gmsa-server.service")
	os.WriteFile(local, []byte(strings.ReplaceAll(string(unit), "/usr/bin/gmsa", filepath.Join(root, "usr/bin/gmsa"))), 0o644)
	if o, e, code := run(nil, "", "systemd-analyze", "verify", local); code != 0 || o != "" || e != "" {
		t.Fatalf("systemd-analyze verify (exit %d):\n%s%s", code, o, e)
	}
	if o, e, code := run(nil, "", "systemd-analyze", "security", "--offline=true", "--threshold=25", local); code != 0 {
		t.Fatalf("systemd-analyze security: exposure above 2.5 (exit %d):\n%s%s", code, o, e)
	} else if m := regexp.MustCompile(`Overall exposure level for gmsa-server\.service: ([0-9.]+)`).FindStringSubmatch(o); m == nil {
		t.Fatalf("systemd-analyze security printed no exposure level:\n%s", o)
	} else {
		t.Logf("systemd-analyze security: exposure %s", m[1])
	}

	// The agent's unit: Type=notify with a watchdog, verified, exposure at most 3.5 (it
	// runs as root to read the host keytab and give outputs to their users).
	agentUnit, _ := os.ReadFile(filepath.Join(root, "lib/systemd/system/gmsa-agent.service"))
	for _, want := range []string{"Type=notify", "WatchdogSec=60s", "ExecReload=/bin/kill -HUP $MAINPID", "NoNewPrivileges=yes"} {
		if !strings.Contains(string(agentUnit), want+"\n") {
			t.Errorf("the agent's unit lacks %s", want)
		}
	}
	localAgent := filepath.Join(units, "gmsa-agent.service")
	os.WriteFile(localAgent, []byte(strings.ReplaceAll(string(agentUnit), "/usr/bin/gmsa", filepath.Join(root, "usr/bin/gmsa"))), 0o644)
	if o, e, code := run(nil, "", "systemd-analyze", "verify", localAgent); code != 0 || o != "" || e != "" {
		t.Fatalf("systemd-analyze verify gmsa-agent.service (exit %d):\n%s%s", code, o, e)
	}
	if o, e, code := run(nil, "", "systemd-analyze", "security", "--offline=true", "--threshold=35", localAgent); code != 0 {
		t.Fatalf("systemd-analyze security: the agent's exposure above 3.5 (exit %d):\n%s%s", code, o, e)
	}
	// The shipped agent.yaml has no account yet, and says so (and nothing else).
	if o, e, code := run(nil, "", filepath.Join(root, "usr/bin/gmsa"), "agent", "check", "--config", filepath.Join(root, "etc/gmsa/agent.yaml")); code == 0 ||
		!strings.Contains(e, "accounts: none configured") || strings.Count(strings.TrimSpace(e), "\n") > 2 {
		t.Fatalf("gmsa agent check on the shipped agent.yaml (exit %d): %s%s", code, o, e)
	}

	// The server's view: the default configuration is valid as shipped (its data and
	// audit paths moved here by the environment, as a test must).
	data := t.TempDir()
	env := []string{"GMSA_DATA=" + data, "GMSA_AUDIT_PATH=" + filepath.Join(data, "audit.log")}
	if o, e, code := run(env, "", filepath.Join(root, "usr/bin/gmsa"), "server", "--config", filepath.Join(root, "etc/gmsa/gmsa.yaml"), "--check-config"); code != 0 ||
		!strings.Contains(o, "configuration is valid") {
		t.Fatalf("the shipped configuration (exit %d): %s%s", code, o, e)
	}

	// As the unit runs it: an unprivileged user whose only capability is
	// CAP_NET_BIND_SERVICE serves on 389, 636 and 88, and 'gmsa server status' finds it
	// ready (127.0.0.7: the Samba DC holds 127.0.0.1's ports).
	runAsService(t, filepath.Join(root, "usr/bin/gmsa"))
}

func runAsService(t *testing.T, bin string) {
	base, err := os.MkdirTemp("", "gmsa-service-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	data := filepath.Join(base, "data")
	os.Mkdir(data, 0o700)
	os.Chmod(base, 0o755)
	os.Chown(data, 65534, 65534) // nobody
	srv := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all,+net_bind_service",
		"--ambient-caps=+net_bind_service", "--bounding-set=-all,+net_bind_service", "--no-new-privs",
		bin, "server", "--dev", "--data", data, "--ldap-listen", "127.0.0.7:389", "--ldaps-listen", "127.0.0.7:636", "--kdc-listen", "127.0.0.7:88",
		"--metrics-listen", "127.0.0.7:9389", "--log-format", "json")
	var logs strings.Builder
	srv.Stdout, srv.Stderr = &logs, &logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		srv.Process.Signal(syscall.SIGTERM)
		srv.Wait()
	}()
	var ep map[string]string
	for i := 0; ; i++ {
		if b, err := os.ReadFile(filepath.Join(data, "endpoints.json")); err == nil && json.Unmarshal(b, &ep) == nil {
			break
		}
		if i == 100 {
			t.Fatalf("the server did not start as an unprivileged user:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if ep["ldap"] != "ldap://127.0.0.7:389" || ep["ldaps"] != "ldaps://127.0.0.7:636" || ep["kdc"] != "127.0.0.7:88" {
		t.Fatalf("endpoints: %v", ep)
	}
	if o, e, code := run(nil, "", bin, "server", "status", "--data", data); code != 0 || !strings.Contains(o, "ready") {
		t.Fatalf("gmsa server status (exit %d): %s%s", code, o, e)
	}
	if o, e, code := run(nil, "", "ldapsearch", "-x", "-LLL", "-H", ep["ldap"], "-b", "", "-s", "base", "dnsHostName"); code != 0 || !strings.Contains(o, "dnsHostName:") {
		t.Fatalf("ldapsearch (exit %d): %s%s", code, o, e)
	}
	// Log lines are JSON objects, one per line, as the journal stores them.
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if strings.HasPrefix(line, "{") && !json.Valid([]byte(line)) {
			t.Fatalf("a log line is not JSON: %s", line)
		}
	}
	if !strings.Contains(logs.String(), `"msg":"gmsa server running"`) {
		t.Fatalf("no JSON log line:\n%s", logs.String())
	}
}
