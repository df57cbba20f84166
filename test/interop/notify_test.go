//go:build interop

package interop

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Change notifications as ldapsearch asks for them (the control critical), from Samba
// 4.22 and from ours: nothing at first, then the entry of the user changed meanwhile.
func TestNotificationLikeSamba(t *testing.T) {
	for _, d := range sambaAndOurs(t) {
		ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
		// stdbuf: ldapsearch's output reaches the pipe line by line, before it is killed.
		cmd := exec.CommandContext(ctx, "stdbuf", "-oL", "ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-x", "-H", d.url, "-D", "Administrator@example.test", "-w", d.pw,
			"-b", "CN=Users,"+baseDN, "-s", "one", "-E", "!1.2.840.113556.1.4.528", "(objectClass=*)", "description")
		cmd.Env = append(os.Environ(), d.env...)
		var out, errOut strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second) // the search is registered
		modify := "dn: CN=Administrator,CN=Users," + baseDN + "\nchangetype: modify\nreplace: description\ndescription: notified by " + d.name + "\n"
		if o, e, code := run(d.env, modify, "ldapmodify", "-x", "-H", d.url, "-D", "Administrator@example.test", "-w", d.pw); code != 0 {
			t.Fatalf("%s: ldapmodify: %s%s", d.name, o, e)
		}
		cmd.Wait() // ended by the timeout: a notification search never finishes by itself
		cancel()
		if !strings.Contains(out.String(), "description: notified by "+d.name) || strings.Count(out.String(), "dn: ") != 1 {
			t.Errorf("%s: the notification search's output:\n%s%s", d.name, out.String(), errOut.String())
		}
	}
}
