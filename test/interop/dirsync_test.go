//go:build interop

package interop

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var dirSyncCookie = regexp.MustCompile(`(?m)^# DIRSYNC cookie returned was:\n# (\S+)$`)

// DirSync from Samba's ldbsearch (the control sync tools send), against Samba 4.22 and
// ours alike: the first read hands out the domain's users with a cookie; a read with that
// cookie hands out no new user until one changes, and then that user.
func TestDirSyncLikeSamba(t *testing.T) {
	for _, d := range sambaAndOurs(t) {
		pw := filepath.Join(t.TempDir(), "pw")
		os.WriteFile(pw, []byte("Passw0rd!syncuser\n"), 0o600)
		if out, errOut, code := d.admin.gm(t, d.admin.admin, d.admin.adminPW, "", "user", "new", "syncuser", "--new-password-file", pw); code != 0 {
			t.Fatalf("%s: user new: %s%s", d.name, out, errOut)
		}
		ldbsearch := func(cookie string) (string, string) {
			t.Helper()
			ctl := "dirsync:1:0:1000"
			if cookie != "" {
				ctl += ":" + cookie
			}
			out, errOut, code := run(nil, "", "bash", "peers.sh", "chroot", "ldbsearch", "-H", d.url, "--simple-bind-dn=Administrator@example.test",
				"--password="+d.pw, "--option=tls verify peer = no_check", "-b", baseDN, "--controls="+ctl, "(objectClass=user)", "sAMAccountName", "description")
			m := dirSyncCookie.FindStringSubmatch(out)
			if code != 0 || m == nil {
				t.Fatalf("%s: ldbsearch with %s: exit %d\n%s%s", d.name, ctl, code, out, errOut)
			}
			return out, m[1]
		}
		first, cookie := ldbsearch("")
		if !strings.Contains(first, "sAMAccountName: syncuser") || !strings.Contains(first, "sAMAccountName: Administrator") {
			t.Fatalf("%s: the first read lacks the users:\n%s", d.name, first)
		}
		again, cookie := ldbsearch(cookie)
		if strings.Contains(again, "syncuser") {
			t.Fatalf("%s: an unchanged user read again:\n%s", d.name, again)
		}
		modify := "dn: CN=syncuser,CN=Users," + baseDN + "\nchangetype: modify\nreplace: description\ndescription: synced now\n"
		if out, errOut, code := run(d.env, modify, "ldapmodify", "-x", "-H", d.url, "-D", "Administrator@example.test", "-w", d.pw); code != 0 {
			t.Fatalf("%s: ldapmodify: %s%s", d.name, out, errOut)
		}
		changed, _ := ldbsearch(cookie)
		if !strings.Contains(changed, "sAMAccountName: syncuser") && !strings.Contains(changed, "description: synced now") {
			t.Fatalf("%s: the change is not read:\n%s", d.name, changed)
		}
	}
}
