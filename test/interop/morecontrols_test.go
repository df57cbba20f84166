//go:build interop

package interop

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gmsa/internal/ldif"
	"gmsa/internal/ntsec"
)

// AD's controls Samba 4.22 does not serve, sent by real clients to Samba and to ours:
// the range retrieval no-error control, the search hints (Require Sort Index, Soft Size
// Limit) with a server-side sort, get stats, tree delete EX from ldapdelete, policy
// hints from ldapmodify, DirSync EX from Samba's ldbsearch, the expected entry count
// from ldapsearch and set owner from ldapmodify. Ours answers as [MS-ADTS] says; what Samba answers is logged
// (after refusing a search with an unknown critical control, Samba 4.22 leaves
// ldapsearch waiting: every command runs under timeout, exit 124).
func TestMoreControlsWithRealClients(t *testing.T) {
	b64 := func(b ...byte) string { return base64.StdEncoding.EncodeToString(b) }
	for _, d := range sambaAndOurs(t) {
		ours := d.name == "ours"
		outcome := func(what string, want int, code int, out, errOut string) {
			t.Helper()
			if !ours {
				t.Logf("Samba 4.22, %s: exit %d %s%s", what, code, out, errOut)
				return
			}
			if code != want {
				t.Errorf("ours, %s: exit %d, want %d\n%s%s", what, code, want, out, errOut)
			}
		}
		for i, desc := range []string{"a", "b", "b", "c"} {
			name := "mc" + string(rune('0'+i))
			pw := filepath.Join(t.TempDir(), "pw")
			os.WriteFile(pw, []byte("Passw0rd!"+desc+"\n"), 0o600)
			if out, errOut, code := d.admin.gm(t, d.admin.admin, d.admin.adminPW, "", "user", "new", name, "--new-password-file", pw, "--description", desc); code != 0 {
				t.Fatalf("%s: user new: %s%s", d.name, out, errOut)
			}
		}
		bind := []string{"-x", "-H", d.url, "-D", "Administrator@example.test", "-w", d.pw}
		ldapsearch := func(args ...string) ([]*ldif.Entry, string, string, int) {
			out, errOut, code := run(d.env, "", "timeout", append([]string{"5", "ldapsearch"}, append(append([]string{"-LLL", "-o", "ldif-wrap=no"}, bind...), args...)...)...)
			es, _ := ldif.Parse([]byte(out))
			return es, out, errOut, code
		}

		// Range retrieval past the last member of Domain Admins: operationsError (1)
		// without the no-error control, the entry without values with it.
		group := []string{"-b", "CN=Domain Admins,CN=Users," + baseDN, "-s", "base", "(objectClass=*)", "member;range=5-*"}
		_, out, errOut, code := ldapsearch(group...)
		outcome("member;range=5-*", 1, code, out, errOut)
		es, out, errOut, code := ldapsearch(append([]string{"-E", "!1.2.840.113556.1.4.1948"}, group...)...)
		outcome("member;range=5-* with the no-error control", 0, code, out, errOut)
		if ours && (len(es) != 1 || len(es[0].Attrs) != 0) {
			t.Errorf("ours: the no-error range read: %v", es)
		}

		// Search hints with a critical sort by description (no index): Require Sort
		// Index refuses it (12); Soft Size Limit 2 over a, b, b, c returns a, b, b and
		// sizeLimitExceeded (4).
		users := []string{"-b", "CN=Users," + baseDN, "-s", "one", "(sAMAccountName=mc*)", "description"}
		hint := func(id string, value []byte) string {
			inner := append([]byte{0x04, byte(len(id))}, id...)
			inner = append(inner, 0x04, byte(len(value)))
			inner = append(inner, value...)
			seq := append([]byte{0x30, byte(len(inner))}, inner...)
			return "!1.2.840.113556.1.4.2206=::" + base64.StdEncoding.EncodeToString(append([]byte{0x30, byte(len(seq))}, seq...))
		}
		_, out, errOut, code = ldapsearch(append([]string{"-E", "!sss=description", "-E", hint("1.2.840.113556.1.4.2207", []byte{0x30, 0x03, 0x01, 0x01, 0xff})}, users...)...)
		outcome("Require Sort Index with a critical sort by description", 12, code, out, errOut)
		es, out, errOut, code = ldapsearch(append([]string{"-E", "!sss=sAMAccountName", "-E", hint("1.2.840.113556.1.4.2207", []byte{0x30, 0x03, 0x01, 0x01, 0xff})}, users...)...)
		outcome("Require Sort Index with a critical sort by sAMAccountName", 0, code, out, errOut)
		if ours && len(es) != 4 {
			t.Errorf("ours: sorted by an index: %d entries", len(es))
		}
		es, out, errOut, code = ldapsearch(append([]string{"-E", "!sss=description", "-E", hint("1.2.840.113556.1.4.2210", []byte{0x30, 0x03, 0x02, 0x01, 0x02})}, users...)...)
		outcome("Soft Size Limit 2", 4, code, out, errOut)
		if ours {
			var got []string
			for _, e := range es {
				got = append(got, string(e.Get("description")[0]))
			}
			if strings.Join(got, "") != "abb" {
				t.Errorf("ours: soft size limit 2 over a, b, b, c: %v, want a b b", got)
			}
		}

		// Tree delete EX from ldapdelete, two objects per request: an OU with three
		// containers goes in two requests, the first adminLimitExceeded (11).
		ou := "OU=Retired," + baseDN
		add := "dn: " + ou + "\nchangetype: add\nobjectClass: organizationalUnit\n\n"
		for _, cn := range []string{"b1", "b2", "b3"} {
			add += "dn: CN=" + cn + "," + ou + "\nchangetype: add\nobjectClass: container\n\n"
		}
		if out, errOut, code := run(d.env, add, "ldapmodify", bind...); code != 0 {
			t.Fatalf("%s: ldapmodify: %s%s", d.name, out, errOut)
		}
		treeEx := "!1.2.840.113556.1.4.2204=" + b64(0x30, 0x03, 0x02, 0x01, 0x02)
		out, errOut, code = run(d.env, "", "timeout", append(append([]string{"5", "ldapdelete"}, bind...), "-e", treeEx, ou)...)
		outcome("tree delete EX of 2, first request", 11, code, out, errOut)
		out, errOut, code = run(d.env, "", "timeout", append(append([]string{"5", "ldapdelete"}, bind...), "-e", treeEx, ou)...)
		outcome("tree delete EX of 2, second request", 0, code, out, errOut)
		if _, _, _, code := ldapsearch("-b", ou, "-s", "base", "(objectClass=*)", "1.1"); ours && code != 32 {
			t.Errorf("ours: the OU after tree delete EX: exit %d, want 32 (no such object)", code)
		}
		if !ours { // clean up what Samba left
			run(d.env, "", "ldapdelete", append(append([]string{}, bind...), "-e", "!1.2.840.113556.1.4.805", ou)...)
		}

		// The get stats control: the administrator's search returns its statistics in a
		// response control ldapsearch shows.
		out, errOut, code = run(d.env, "", "timeout", append(append([]string{"5", "ldapsearch", "-o", "ldif-wrap=no"}, bind...),
			"-b", baseDN, "-E", "!1.2.840.113556.1.4.970", "(sAMAccountName=mc0)", "1.1")...)
		outcome("get stats", 0, code, out, errOut)
		if ours && !strings.Contains(out, "control: 1.2.840.113556.1.4.970 false ") {
			t.Errorf("ours: no statistics in\n%s", out)
		}

		// Policy hints from ldapmodify: an administrator's reset of mc0's password to its
		// current one is refused (constraintViolation, 19) with the control, accepted
		// without it.
		utf16 := func(s string) []byte {
			var b []byte
			for _, r := range s {
				b = append(b, byte(r), 0)
			}
			return b
		}
		resetPw := "dn: CN=mc0,CN=Users," + baseDN + "\nchangetype: modify\nreplace: unicodePwd\nunicodePwd:: " +
			base64.StdEncoding.EncodeToString(utf16(`"Passw0rd!a"`)) + "\n-\n"
		out, errOut, code = run(d.env, resetPw, "timeout", append(append([]string{"5", "ldapmodify"}, bind...), "-e", "!1.2.840.113556.1.4.2239="+b64(0x30, 0x03, 0x02, 0x01, 0x01))...)
		outcome("a reset to the current password with policy hints", 19, code, out, errOut)
		out, errOut, code = run(d.env, resetPw, "timeout", append([]string{"5", "ldapmodify"}, bind...)...)
		outcome("a reset to the current password without policy hints", 0, code, out, errOut)

		// The expected entry count: four users where one to three are expected is a
		// constraintViolation (19); four to four succeeds.
		expect := func(lo, hi byte) string {
			return "!1.2.840.113556.1.4.2211=::" + b64(0x30, 0x06, 0x02, 0x01, lo, 0x02, 0x01, hi)
		}
		_, out, errOut, code = ldapsearch(append([]string{"-E", expect(1, 3)}, users...)...)
		outcome("expected entry count 1 to 3 over four users", 19, code, out, errOut)
		es, out, errOut, code = ldapsearch(append([]string{"-E", expect(4, 4)}, users...)...)
		outcome("expected entry count 4 to 4 over four users", 0, code, out, errOut)
		if ours && len(es) != 4 {
			t.Errorf("ours: expected entry count 4 to 4: %d entries", len(es))
		}

		// Set owner: the administrator adds a user owned by mc1; its owner, read with the
		// SD flags control (owner only), is mc1.
		es, _, _, _ = ldapsearch("-b", "CN=mc1,CN=Users,"+baseDN, "-s", "base", "(objectClass=*)", "objectSid")
		if len(es) != 1 || len(es[0].Get("objectSid")) != 1 {
			t.Fatalf("%s: mc1's objectSid: %v", d.name, es)
		}
		sid, err := ntsec.SIDFromBytes(es[0].Get("objectSid")[0])
		if err != nil {
			t.Fatalf("%s: mc1's objectSid: %v", d.name, err)
		}
		mc1 := sid.String()
		owned := "CN=mcowned,CN=Users," + baseDN
		out, errOut, code = run(d.env, "dn: "+owned+"\nchangetype: add\nobjectClass: user\nsAMAccountName: mcowned\n\n", "timeout",
			append(append([]string{"5", "ldapmodify"}, bind...), "-e", "!1.2.840.113556.1.4.2255="+base64.StdEncoding.EncodeToString([]byte(mc1)))...)
		outcome("an add with the set owner control", 0, code, out, errOut)
		if ours {
			es, out, errOut, _ = ldapsearch("-E", "!1.2.840.113556.1.4.801=::"+b64(0x30, 0x03, 0x02, 0x01, 0x01), "-b", owned, "-s", "base", "(objectClass=*)", "nTSecurityDescriptor")
			var owner string
			if len(es) == 1 && len(es[0].Get("nTSecurityDescriptor")) == 1 {
				if sd, err := ntsec.ParseSecurityDescriptor(es[0].Get("nTSecurityDescriptor")[0]); err == nil && sd.Owner != nil {
					owner = sd.Owner.String()
				}
			}
			if owner != mc1 {
				t.Errorf("ours: the owner of the user added with set owner: %q, want %s\n%s%s", owner, mc1, out, errOut)
			}
		}
		run(d.env, "", "timeout", append(append([]string{"5", "ldapdelete"}, bind...), owned)...)

		// Update stats: ldapsearch and ldapmodify show the response control.
		out, errOut, code = run(d.env, "", "timeout", append(append([]string{"5", "ldapsearch", "-o", "ldif-wrap=no"}, bind...),
			"-b", baseDN, "-E", "!1.2.840.113556.1.4.2205", "(sAMAccountName=mc0)", "1.1")...)
		outcome("a search with update stats", 0, code, out, errOut)
		if ours && !strings.Contains(out, "control: 1.2.840.113556.1.4.2205 false ") {
			t.Errorf("ours: no update statistics in the search's answer\n%s", out)
		}
		out, errOut, code = run(d.env, "dn: CN=mc0,CN=Users,"+baseDN+"\nchangetype: modify\nreplace: description\ndescription: counted\n-\n", "timeout",
			append(append([]string{"5", "ldapmodify"}, bind...), "-e", "!1.2.840.113556.1.4.2205")...)
		outcome("a modify with update stats", 0, code, out, errOut)
		if ours && !strings.Contains(out+errOut, "1.2.840.113556.1.4.2205") {
			t.Errorf("ours: no update statistics in the modify's answer\n%s%s", out, errOut)
		}

		// DirSync EX from ldbsearch: the users with their descriptions (";dirSyncAlwaysReturn").
		out, errOut, code = run(nil, "", "timeout", "20", "bash", "peers.sh", "chroot", "ldbsearch", "-H", d.url, "--simple-bind-dn=Administrator@example.test",
			"--password="+d.pw, "--option=tls verify peer = no_check", "-b", baseDN, "--controls=dirsync_ex:1:0:1000", "(sAMAccountName=mc*)",
			"description;dirSyncAlwaysReturn")
		outcome("DirSync EX", 0, code, out, errOut)
		if ours && (!strings.Contains(out, "# DIRSYNC_EX cookie returned was:") || strings.Count(out, "description: ") != 4) {
			t.Errorf("ours: DirSync EX read:\n%s%s", out, errOut)
		}
	}
}
