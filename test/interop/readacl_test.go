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

// Reads follow the security descriptors, on Samba 4.22 and on ours alike: a user reads
// another user's description by default; after an administrator puts an ACE denying
// it that attribute on the other user (ldapmodify of nTSecurityDescriptor, SD flags:
// DACL), the attribute is gone from its results and a filter on it finds nothing, while
// the administrator still reads it; an ACE denying it LIST_CONTENTS on an OU hides the
// objects in it.
func TestReadAccessLikeSamba(t *testing.T) {
	for _, d := range sambaAndOurs(t) {
		for _, u := range []string{"aclreader", "acltarget"} {
			pw := filepath.Join(t.TempDir(), "pw")
			os.WriteFile(pw, []byte("Passw0rd!"+u+"\n"), 0o600)
			if out, errOut, code := d.admin.gm(t, d.admin.admin, d.admin.adminPW, "", "user", "new", u, "--new-password-file", pw); code != 0 {
				t.Fatalf("%s: user new %s: %s%s", d.name, u, out, errOut)
			}
		}
		admin := []string{"-x", "-H", d.url, "-D", "Administrator@example.test", "-w", d.pw}
		reader := []string{"-x", "-H", d.url, "-D", "aclreader@example.test", "-w", "Passw0rd!aclreader"}
		target := "CN=acltarget,CN=Users," + baseDN
		modify := func(ldifText string, ext ...string) {
			t.Helper()
			args := append([]string{}, admin...)
			for _, e := range ext {
				args = append(args, "-e", e)
			}
			if out, errOut, code := run(d.env, ldifText, "ldapmodify", args...); code != 0 {
				t.Fatalf("%s: ldapmodify: %s%s", d.name, out, errOut)
			}
		}
		search := func(bind []string, base, scope, filter string, attrs ...string) []*ldif.Entry {
			t.Helper()
			out, errOut, code := run(d.env, "", "ldapsearch", append(append(append([]string{"-LLL", "-o", "ldif-wrap=no"}, bind...), "-b", base, "-s", scope, filter), attrs...)...)
			if code != 0 && code != 32 {
				t.Fatalf("%s: ldapsearch %s: exit %d %s", d.name, filter, code, errOut)
			}
			es, err := ldif.Parse([]byte(out))
			if err != nil {
				t.Fatal(err)
			}
			return es
		}
		description := func(es []*ldif.Entry) string {
			if len(es) == 1 && len(es[0].Get("description")) > 0 {
				return string(es[0].Get("description")[0])
			}
			return ""
		}
		modify("dn: " + target + "\nchangetype: modify\nreplace: description\ndescription: salary band 7\n")
		if got := description(search(reader, baseDN, "sub", "(sAMAccountName=acltarget)", "description")); got != "salary band 7" {
			t.Fatalf("%s: by default a user reads another's description: %q", d.name, got)
		}
		es := search(admin, "CN=aclreader,CN=Users,"+baseDN, "base", "(objectClass=*)", "objectSid")
		sidBytes := es[0].Get("objectSid")
		if len(sidBytes) == 0 {
			t.Fatalf("%s: no objectSid for aclreader", d.name)
		}
		readerSID, err := ntsec.SIDFromBytes(sidBytes[0])
		if err != nil {
			t.Fatal(err)
		}
		denyFirst := func(dn, sddl string) {
			t.Helper()
			out, errOut, _ := run(d.env, "", "ldapsearch", append(append([]string{"-LLL", "-o", "ldif-wrap=no"}, admin...), "-E", "!1.2.840.113556.1.4.801=::MAMCAQQ=",
				"-b", dn, "-s", "base", "(objectClass=*)", "nTSecurityDescriptor")...)
			sd := sdFromLDIF(t, out+errOut)
			add, err := ntsec.ParseSDDL("D:"+sddl, ntsec.SID{})
			if err != nil {
				t.Fatal(err)
			}
			sd.DACL.ACEs = append(add.DACL.ACEs, sd.DACL.ACEs...)
			modify("dn: "+dn+"\nchangetype: modify\nreplace: nTSecurityDescriptor\nnTSecurityDescriptor:: "+base64.StdEncoding.EncodeToString(sd.Bytes())+"\n",
				"!1.2.840.113556.1.4.801=MAMCAQQ=")
		}
		denyFirst(target, "(OD;;RP;bf967950-0de6-11d0-a285-00aa003049e2;;"+readerSID.String()+")")
		es = search(reader, baseDN, "sub", "(sAMAccountName=acltarget)", "description", "sAMAccountName")
		if len(es) != 1 || description(es) != "" {
			t.Errorf("%s: the denied description still reaches the reader: %v", d.name, es)
		}
		if es := search(reader, baseDN, "sub", "(description=salary band 7)", "dn"); len(es) != 0 {
			t.Errorf("%s: a filter on the denied description matched: %v", d.name, es)
		}
		if got := description(search(admin, baseDN, "sub", "(sAMAccountName=acltarget)", "description")); got != "salary band 7" {
			t.Errorf("%s: the administrator lost the description: %q", d.name, got)
		}

		// LIST_CONTENTS denied on an OU: what is inside is not found.
		ou := "OU=Closed," + baseDN
		if out, errOut, code := run(d.env, "dn: "+ou+"\nobjectClass: organizationalUnit\n\ndn: CN=hidden,"+ou+"\nobjectClass: user\nsAMAccountName: hidden\n", "ldapadd", admin...); code != 0 {
			t.Fatalf("%s: add an OU with a user: %s%s", d.name, out, errOut)
		}
		if es := search(reader, ou, "sub", "(sAMAccountName=hidden)", "dn"); len(es) != 1 {
			t.Fatalf("%s: before the deny the reader finds the user in the OU: %v", d.name, es)
		}
		denyFirst(ou, "(D;;LC;;;"+readerSID.String()+")")
		if es := search(reader, baseDN, "sub", "(sAMAccountName=hidden)", "dn"); len(es) != 0 {
			t.Errorf("%s: the reader found a user in an OU it may not list: %v", d.name, es)
		}
		if es := search(admin, baseDN, "sub", "(sAMAccountName=hidden)", "dn"); len(es) != 1 || !strings.EqualFold(es[0].DN, "CN=hidden,"+ou) {
			t.Errorf("%s: the administrator lists the OU: %v", d.name, es)
		}
	}
}
