//go:build interop

package interop

import (
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
)

// faketimeLib is libfaketime from Debian's faketime package: MIT's tools run under it
// with the server's clock offset (Go programs read the clock without libc, so the
// server takes --dev-clock-offset instead).
const faketimeLib = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"

// A gMSA's rotation as hosts meet it, MIT's clients and our KDC with the clock moved
// across the gMSA's 1-day interval: a keytab of the blob read after the rotation holds
// the new key (the new kvno), which opens new service tickets; with the previous keys
// kept beside it, those issued before open too; six minutes after the rollover the
// previous password no longer pre-authenticates, the new one does.
func TestGMSARotationWithMIT(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	srv := newClockedServer(t, data)
	start, stop := srv.start, srv.stop
	var clock time.Duration // how far ahead the server and the clients run
	env := func(cc string) []string {
		e := []string{"KRB5_CONFIG=" + filepath.Join(data, "krb5.conf"), "KRB5CCNAME=FILE:" + filepath.Join(dir, cc), "LDAPTLS_CACERT=" + srv.ep["ca"]}
		if clock != 0 {
			e = append(e, "LD_PRELOAD="+faketimeLib, fmt.Sprintf("FAKETIME=+%ds", int(clock.Seconds())), "FAKETIME_DONT_RESET=1")
		}
		return e
	}
	ok := func(cc, stdin, name string, args ...string) string {
		t.Helper()
		out, errOut, code := run(env(cc), stdin, name, args...)
		if code != 0 {
			t.Fatalf("%s %v (clock +%s): exit %d\n%s%s", name, args, clock, code, out, errOut)
		}
		return out
	}
	admin := func(args ...string) {
		t.Helper()
		ok("", "", gmsaBin, append(args, "--server", srv.ep["ldaps"], "--ca-file", srv.ep["ca"], "--user", "Administrator@example.test",
			"--password-file", filepath.Join(data, "admin-password"))...)
	}
	// readBlob reads the gMSA's password over LDAPS as the permitted user, and writes a
	// keytab of it at the directory's kvno.
	readKeytab := func(name string) (keytab, kvno string, queryIn time.Duration) {
		t.Helper()
		search := func(attr string) string {
			return ok("", "", "ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-x", "-H", srv.ep["ldaps"], "-D", "reader@example.test", "-w", "Reader-Pass-1!",
				"-b", "DC=example,DC=test", "(sAMAccountName=rot$)", attr)
		}
		out := search("msDS-ManagedPassword") // a read after the rollover rotates; the kvno is read after it
		blob := filepath.Join(dir, name+".ldif")
		os.WriteFile(blob, []byte(out), 0o600)
		for _, l := range strings.Split(search("msDS-KeyVersionNumber"), "\n") {
			if v, found := strings.CutPrefix(l, "msDS-KeyVersionNumber: "); found {
				kvno = v
			}
		}
		var dec map[string]any
		json.Unmarshal([]byte(ok("", "", gmsaBin, "blob", "decode", "--file", blob, "-o", "json")), &dec)
		keytab = filepath.Join(dir, name+".keytab")
		ok("", "", gmsaBin, "keytab", "create", "--blob-file", blob, "--account", "rot$", "--domain", "example.test", "--kvno", kvno,
			"--spn", "http/rot.example.test", "--out", keytab)
		return keytab, kvno, time.Duration(dec["query_password_interval"].(float64)) * 100
	}

	start(0)
	pw := filepath.Join(dir, "reader.pw")
	os.WriteFile(pw, []byte("Reader-Pass-1!\n"), 0o600)
	admin("user", "new", "reader", "--new-password-file", pw)
	admin("account", "new", "rot", "--dns-host-name", "rot.example.test", "--spn", "http/rot.example.test", "--principals-allowed", "reader",
		"--interval-days", "1", "--enctypes", "aes128,aes256")
	before, kvno1, queryIn := readKeytab("before")

	// Five minutes before the rollover, a service ticket under the current key, kept in
	// the cache.
	stop()
	clock = queryIn - 5*time.Minute
	start(clock)
	ok("old", "Reader-Pass-1!\n", "kinit", "reader")
	ok("old", "", "kvno", "http/rot.example.test")

	// A minute past the rollover.
	stop()
	clock = queryIn + time.Minute
	start(clock)
	after, kvno2, _ := readKeytab("after")
	if kvno2 == kvno1 {
		t.Fatalf("no rotation a minute after the rollover: kvno %s", kvno2)
	}
	ok("new", "Reader-Pass-1!\n", "kinit", "reader")
	if out := ok("new", "", "kvno", "-k", after, "http/rot.example.test"); !strings.Contains(out, "kvno = "+kvno2+", keytab entry valid") {
		t.Fatalf("a new service ticket: %s", out)
	}
	// The ticket from the five minutes before the rollover is under the password then in
	// use (as Samba's KDC does: the blob's look-ahead is for hosts, not for the KDC). The
	// account is younger than one interval, so the DC sends no previous password and the
	// new blob's keytab cannot open it; a keytab that kept the kvno-1 keys (as gmsa agent
	// keeps them) does.
	if _, _, code := run(env("old"), "", "kvno", "--cached-only", "-k", after, "http/rot.example.test"); code == 0 {
		t.Fatal("a ticket from before the rollover opened with the new password's key alone")
	}
	both := filepath.Join(dir, "both.keytab")
	mergeKeytabs(t, both, after, before)
	if out := ok("old", "", "kvno", "--cached-only", "-k", both, "http/rot.example.test"); !strings.Contains(out, "kvno = "+kvno1+", keytab entry valid") {
		t.Fatalf("a service ticket from before the rollover, with the keytab that kept kvno %s: %s", kvno1, out)
	}

	// Six minutes past the rollover the previous password is refused: like Samba, the
	// KDC accepts it only within five minutes of the start of the current password's
	// key period, which is never later than the rollover (TestGMSAPreviousKeyWindow
	// in internal/kdc covers the window itself).
	stop()
	clock = queryIn + 6*time.Minute
	start(clock)
	if _, errOut, code := run(env("gmsa-late"), "", "kinit", "-k", "-t", before, "rot$"); code == 0 {
		t.Fatalf("the previous password six minutes after the rollover was accepted: %s", errOut)
	}
	ok("gmsa-new", "", "kinit", "-k", "-t", after, "rot$")
}

// mergeKeytabs writes out with the entries of each keytab in turn.
func mergeKeytabs(t *testing.T, out string, paths ...string) {
	t.Helper()
	all := &krbkey.Keytab{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		kt, err := krbkey.ParseKeytab(b)
		if err != nil {
			t.Fatal(err)
		}
		all.Entries = append(all.Entries, kt.Entries...)
	}
	b, err := all.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(out, b, 0o600)
}

// clockedServer is 'gmsa server --dev' on one data directory, restarted with its clock
// moved by --dev-clock-offset (Go reads the clock without libc, so libfaketime cannot
// move it); the test's cleanup stops it.
type clockedServer struct {
	t    *testing.T
	data string
	cmd  *exec.Cmd
	ep   map[string]string // the endpoints of the server running now
}

func newClockedServer(t *testing.T, data string) *clockedServer {
	s := &clockedServer{t: t, data: data}
	t.Cleanup(func() {
		if s.cmd != nil && s.cmd.ProcessState == nil {
			s.stop()
		}
	})
	return s
}

// start runs the server with its clock offset ahead and waits for its endpoints.
func (s *clockedServer) start(offset time.Duration) {
	s.t.Helper()
	epFile := filepath.Join(s.data, "endpoints.json")
	os.Remove(epFile)
	s.cmd = exec.Command(gmsaBin, "server", "--dev", "--data", s.data, "--log-level", "warn", "--dev-clock-offset", offset.String())
	s.cmd.Stdout, s.cmd.Stderr = os.Stderr, os.Stderr
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	for i := 0; ; i++ {
		b, err := os.ReadFile(epFile)
		if err == nil && json.Unmarshal(b, &s.ep) == nil && s.ep["kdc"] != "" {
			return
		}
		if i == 200 {
			s.t.Fatal("gmsa server did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *clockedServer) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	s.cmd.Wait()
}
