//go:build interop

package interop

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// samba-tool's general commands drive our DC over LDAPS with the administrator's
// Kerberos ticket (GSS-SPNEGO without a layer inside TLS, as samba-tool does): OUs,
// users in them, groups and members, computers, enabling and disabling, a password
// reset the KDC then accepts, listing and deleting. Deleted objects stay as tombstones
// that ldapsearch sees with the show deleted control, and ldapdelete's tree delete
// control removes an OU with what is inside.
func TestSambaToolAgainstOurs(t *testing.T) {
	data, ep := ourServer(t)
	krb5 := filepath.Join(data, "krb5.conf")
	cc := filepath.Join(filepath.Dir(data), "admin.cc")
	adminPW, err := os.ReadFile(filepath.Join(data, "admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"KRB5_CONFIG=" + krb5, "KRB5CCNAME=FILE:" + cc}
	if out, errOut, code := run(env, string(adminPW), "kinit", "Administrator"); code != 0 {
		t.Fatalf("kinit Administrator: %s%s", out, errOut)
	}
	inside := chrootFiles(t, map[string]string{"krb5.conf": krb5, "cc": cc, "ca.pem": ep["ca"]}, map[string]string{})
	url := dcURL(ep["ldaps"])
	st := func(args ...string) string {
		t.Helper()
		out, errOut, code := run(nil, "", "bash", append([]string{"peers.sh", "chroot", "env", "KRB5_CONFIG=" + inside + "/krb5.conf",
			"KRB5CCNAME=FILE:" + inside + "/cc", "samba-tool"}, append(args, "-H", url, "--use-kerberos=required",
			"--option=tls cafile="+inside+"/ca.pem", "--option=tls verify peer = ca_and_name")...)...)
		if code != 0 {
			t.Fatalf("samba-tool %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
		return out
	}
	expect := func(out string, wants ...string) {
		t.Helper()
		for _, w := range wants {
			if !strings.Contains(out, w) {
				t.Fatalf("no %q in:\n%s", w, out)
			}
		}
	}
	expect(st("ou", "create", "OU=Servers", "--description=member servers"), `Added ou "OU=Servers,DC=example,DC=test"`)
	expect(st("user", "create", "bob", "Bob-Pass-123!", "--userou=OU=Servers"), "User 'bob' added successfully")
	expect(st("group", "add", "Ops"), "Added group Ops")
	expect(st("group", "addmembers", "Ops", "bob"), "Added members to group Ops")
	expect(st("group", "listmembers", "Ops"), "bob")
	expect(st("computer", "create", "web09", "--computerou=OU=Servers"), "Computer 'web09' added successfully")
	expect(st("computer", "list"), "web09$", "DC1$")
	expect(st("ou", "listobjects", "OU=Servers"), "CN=bob,OU=Servers", "CN=web09,OU=Servers")
	st("user", "disable", "bob")
	expect(st("user", "show", "bob", "--attributes=userAccountControl"), "userAccountControl: 514")
	expect(st("user", "enable", "bob"), "Enabled user 'bob'")
	expect(st("user", "setpassword", "bob", "--newpassword=Bob-Pass-456!"), "Changed password OK")
	if out, errOut, code := run(append([]string{"KRB5CCNAME=FILE:" + filepath.Join(filepath.Dir(data), "bob.cc")}, env[0]), "Bob-Pass-456!\n", "kinit", "bob"); code != 0 {
		t.Fatalf("kinit with the password samba-tool set: %s%s", out, errOut)
	}
	expect(st("group", "delete", "Ops"), "Deleted group Ops")
	expect(st("user", "delete", "bob"), "Deleted user bob")
	expect(st("computer", "delete", "web09"), "Deleted computer web09")
	expect(st("ou", "delete", "OU=Servers"), `Deleted ou "OU=Servers,DC=example,DC=test"`)
	if out := st("user", "list"); strings.Contains(out, "bob") {
		t.Fatalf("bob is still listed:\n%s", out)
	}

	// bob's tombstone, with the show deleted control (critical), and not without it.
	ldap := []string{"-LLL", "-o", "ldif-wrap=no", "-x", "-H", url, "-D", "Administrator@example.test", "-w", strings.TrimSpace(string(adminPW)),
		"-b", "DC=example,DC=test"}
	tls := []string{"LDAPTLS_CACERT=" + ep["ca"]}
	out, errOut, _ := run(tls, "", "ldapsearch", append(ldap, "-E", "!1.2.840.113556.1.4.417", "(sAMAccountName=bob)", "isDeleted", "lastKnownParent")...)
	expect(out+errOut, "isDeleted: TRUE", "lastKnownParent: OU=Servers,DC=example,DC=test", `\0ADEL:`, "CN=Deleted Objects,DC=example,DC=test")
	if out, _, _ := run(tls, "", "ldapsearch", append(ldap, "(sAMAccountName=bob)", "dn")...); strings.Contains(out, "dn:") {
		t.Fatalf("the tombstone shows without the control:\n%s", out)
	}

	// Tree delete: an OU with an OU and a user below it goes in one request.
	expect(st("ou", "create", "OU=Lab"), "Added ou")
	expect(st("ou", "create", "OU=Inner,OU=Lab"), "Added ou")
	expect(st("user", "create", "carol", "Carol-Pass-123!", "--userou=OU=Inner,OU=Lab"), "added successfully")
	del := []string{"-x", "-H", url, "-D", "Administrator@example.test", "-w", strings.TrimSpace(string(adminPW))}
	if _, errOut, code := run(tls, "", "ldapdelete", append(del, "OU=Lab,DC=example,DC=test")...); code == 0 || !strings.Contains(errOut, "Operation not allowed on non-leaf") {
		t.Fatalf("deleting a non-empty OU without the control: exit %d %s", code, errOut)
	}
	if out, errOut, code := run(tls, "", "ldapdelete", append(del, "-e", "!1.2.840.113556.1.4.805", "OU=Lab,DC=example,DC=test")...); code != 0 {
		t.Fatalf("tree delete: %s%s", out, errOut)
	}
	if out := st("user", "list"); strings.Contains(out, "carol") {
		t.Fatalf("carol outlived the tree delete:\n%s", out)
	}
}
