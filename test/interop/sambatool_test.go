//go:build interop

package interop

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gmsa/internal/ntsec"
)

// samba-tool's general commands drive our DC over LDAPS with the administrator's
// Kerberos ticket (GSS-SPNEGO without a layer inside TLS, as samba-tool does): OUs,
// users in them, groups and members, computers, enabling and disabling, a password
// reset the KDC then accepts, listing and deleting. Deleted objects stay as tombstones
// that ldapsearch sees with the show deleted control; an OU with an OU and a user in
// it is renamed and moved, and ldapdelete's tree delete control removes it with what is
// inside.
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
	url := dcURL(ep["ldaps"])
	st := sambaTool(t, krb5, cc, ep["ca"], url)
	expect := expectIn(t)
	// The schema, as samba-tool reads it (attributeSchema and classSchema entries).
	expect(st("schema", "attribute", "show", "sAMAccountName"), "attributeID: 1.2.840.113556.1.4.221", "searchFlagsDecoded: fATTINDEX",
		"attributeSecurityGUID: 59ba2f42-79a2-11d0-9020-00c04fc2d3cf")
	expect(st("schema", "objectclass", "show", "msDS-GroupManagedServiceAccount"), "governsID: 1.2.840.113556.1.5.282", "subClassOf: computer")
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

	// The subschema subentry the RootDSE names, in AD's format.
	out, errOut, _ := run([]string{"LDAPTLS_CACERT=" + ep["ca"]}, "", "ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-x", "-H", url, "-D", "Administrator@example.test",
		"-w", strings.TrimSpace(string(adminPW)), "-b", "CN=Aggregate,CN=Schema,CN=Configuration,DC=example,DC=test", "-s", "base", "(objectClass=*)", "attributeTypes", "objectClasses")
	expect(out+errOut, "attributeTypes: ( 1.2.840.113556.1.4.221 NAME 'sAMAccountName' SYNTAX '1.3.6.1.4.1.1466.115.121.1.15' SINGLE-VALUE )",
		"objectClasses: ( 1.2.840.113556.1.5.282 NAME 'msDS-GroupManagedServiceAccount' SUP computer STRUCTURAL")

	// bob's tombstone, with the show deleted control (critical), and not without it.
	ldap := []string{"-LLL", "-o", "ldif-wrap=no", "-x", "-H", url, "-D", "Administrator@example.test", "-w", strings.TrimSpace(string(adminPW)),
		"-b", "DC=example,DC=test"}
	tls := []string{"LDAPTLS_CACERT=" + ep["ca"]}
	out, errOut, _ = run(tls, "", "ldapsearch", append(ldap, "-E", "!1.2.840.113556.1.4.417", "(sAMAccountName=bob)", "isDeleted", "lastKnownParent")...)
	expect(out+errOut, "isDeleted: TRUE", "lastKnownParent: OU=Servers,DC=example,DC=test", `\0ADEL:`, "CN=Deleted Objects,DC=example,DC=test")
	if out, _, _ := run(tls, "", "ldapsearch", append(ldap, "(sAMAccountName=bob)", "dn")...); strings.Contains(out, "dn:") {
		t.Fatalf("the tombstone shows without the control:\n%s", out)
	}

	// Tree delete: an OU with an OU and a user below it goes in one request.
	expect(st("ou", "create", "OU=Lab"), "Added ou")
	expect(st("ou", "create", "OU=Inner,OU=Lab"), "Added ou")
	expect(st("user", "create", "carol", "Carol-Pass-123!", "--userou=OU=Inner,OU=Lab"), "added successfully")
	// Renamed and moved with what is inside (samba-tool ou rename / ou move).
	expect(st("ou", "create", "OU=Sites"), "Added ou")
	expect(st("ou", "rename", "OU=Lab", "OU=Labs"), "Renamed ou")
	expect(st("ou", "move", "OU=Labs", "OU=Sites"), "Moved ou")
	expect(st("user", "show", "carol", "--attributes=distinguishedName"), "distinguishedName: CN=carol,OU=Inner,OU=Labs,OU=Sites,DC=example,DC=test")
	expect(st("ou", "move", "OU=Labs,OU=Sites", "DC=example,DC=test"), "Moved ou")
	expect(st("ou", "rename", "OU=Labs", "OU=Lab"), "Renamed ou")
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

// sambaTool runs samba-tool from the chroot against url over LDAPS, with the Kerberos
// cache cc; it fails the test when the command fails.
func sambaTool(t *testing.T, krb5, cc, ca, url string) func(args ...string) string {
	inside := chrootFiles(t, map[string]string{"krb5.conf": krb5, "cc": cc, "ca.pem": ca}, map[string]string{})
	return func(args ...string) string {
		t.Helper()
		out, errOut, code := run(nil, "", "bash", append([]string{"peers.sh", "chroot", "env", "KRB5_CONFIG=" + inside + "/krb5.conf",
			"KRB5CCNAME=FILE:" + inside + "/cc", "samba-tool"}, append(args, "-H", url, "--use-kerberos=required",
			"--option=tls cafile="+inside+"/ca.pem", "--option=tls verify peer = ca_and_name")...)...)
		if code != 0 {
			t.Fatalf("samba-tool %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
		return out
	}
}

// expectIn fails the test when out lacks one of wants.
func expectIn(t *testing.T) func(out string, wants ...string) {
	return func(out string, wants ...string) {
		t.Helper()
		for _, w := range wants {
			if !strings.Contains(out, w) {
				t.Fatalf("no %q in:\n%s", w, out)
			}
		}
	}
}

// Delegation as AD administrators do it, with their tools: samba-tool dsacl set puts
// one ACE pair on an OU (create and delete gMSAs; every right on the gMSAs below), and a
// member of the delegated group — no administrator — creates and changes a gMSA there
// with ldapadd and ldapmodify, owns it (nTSecurityDescriptor read with the SD flags
// control), while a user outside the group is refused, and the operator is refused
// anywhere else.
func TestDelegatedGMSAAdministrationWithRealTools(t *testing.T) {
	data, ep := ourServer(t)
	krb5 := filepath.Join(data, "krb5.conf")
	cc := filepath.Join(filepath.Dir(data), "admin.cc")
	adminPW, _ := os.ReadFile(filepath.Join(data, "admin-password"))
	if out, errOut, code := run([]string{"KRB5_CONFIG=" + krb5, "KRB5CCNAME=FILE:" + cc}, string(adminPW), "kinit", "Administrator"); code != 0 {
		t.Fatalf("kinit Administrator: %s%s", out, errOut)
	}
	url := dcURL(ep["ldaps"])
	st, expect := sambaTool(t, krb5, cc, ep["ca"], url), expectIn(t)
	expect(st("ou", "create", "OU=Services"), "Added ou")
	expect(st("group", "add", "gMSA Operators"), "Added group")
	expect(st("user", "create", "operator", "Op-Pass-123!"), "added successfully")
	expect(st("user", "create", "other", "Other-Pass-123!"), "added successfully")
	expect(st("group", "addmembers", "gMSA Operators", "operator"), "Added members")
	sid := objectSid(st("group", "show", "gMSA Operators", "--attributes=objectSid"))
	const gmsaClass = "7b8b558a-93a5-4af7-adca-c017e67f1057"
	expect(st("dsacl", "set", "--objectdn=OU=Services,DC=example,DC=test",
		"--sddl=(OA;CI;CCDC;"+gmsaClass+";;"+sid+")(OA;CIIO;RPWPCRLCLORCSDDT;;"+gmsaClass+";"+sid+")"), "new descriptor")
	expect(st("dsacl", "get", "--objectdn=OU=Services,DC=example,DC=test"), "(OA;CI;CCDC;"+gmsaClass+";;"+sid+")")

	tls := []string{"LDAPTLS_CACERT=" + ep["ca"]}
	as := func(user, pw string) []string {
		return []string{"-x", "-H", url, "-D", user + "@example.test", "-w", pw}
	}
	gmsaLDIF := func(dn, sam string) string {
		return "dn: " + dn + "\nobjectClass: msDS-GroupManagedServiceAccount\nsAMAccountName: " + sam + "$\ndNSHostName: " + sam + ".example.test\n"
	}
	websvc := "CN=websvc,OU=Services,DC=example,DC=test"
	if out, errOut, code := run(tls, gmsaLDIF(websvc, "websvc"), "ldapadd", as("operator", "Op-Pass-123!")...); code != 0 {
		t.Fatalf("the delegated operator adding a gMSA in the OU: %s%s", out, errOut)
	}
	if out, errOut, code := run(tls, "dn: "+websvc+"\nchangetype: modify\nreplace: description\ndescription: web front end\n", "ldapmodify", as("operator", "Op-Pass-123!")...); code != 0 {
		t.Fatalf("the operator changing its gMSA: %s%s", out, errOut)
	}
	for _, c := range []struct{ who, pw, dn string }{
		{"other", "Other-Pass-123!", "CN=otherapp,OU=Services,DC=example,DC=test"},
		{"operator", "Op-Pass-123!", "CN=elsewhere,CN=Managed Service Accounts,DC=example,DC=test"},
	} {
		out, errOut, code := run(tls, gmsaLDIF(c.dn, strings.SplitN(strings.TrimPrefix(c.dn, "CN="), ",", 2)[0]), "ldapadd", as(c.who, c.pw)...)
		if code == 0 || !strings.Contains(errOut, "Insufficient access") {
			t.Fatalf("%s adding %s: exit %d %s%s", c.who, c.dn, code, out, errOut)
		}
	}
	if _, errOut, code := run(tls, "dn: "+websvc+"\nchangetype: modify\nreplace: description\ndescription: mine\n", "ldapmodify", as("other", "Other-Pass-123!")...); code == 0 || !strings.Contains(errOut, "Insufficient access") {
		t.Fatalf("a user outside the group changed the gMSA: %s", errOut)
	}
	// The gMSA belongs to the operator: owner and group with the SD flags control
	// (SEQUENCE { INTEGER 3 }, critical).
	out, errOut, _ := run(tls, "", "ldapsearch", append(as("operator", "Op-Pass-123!"), "-LLL", "-o", "ldif-wrap=no", "-E", "!1.2.840.113556.1.4.801=::MAMCAQM=",
		"-b", websvc, "-s", "base", "(objectClass=*)", "nTSecurityDescriptor")...)
	if !strings.Contains(out, "nTSecurityDescriptor::") {
		t.Fatalf("the operator reading its gMSA's security descriptor: %s%s", out, errOut)
	}
	opSID := objectSid(st("user", "show", "operator", "--attributes=objectSid"))
	expect(st("dsacl", "get", "--objectdn="+websvc), "O:"+opSID+"G:DA")

	// The owner changes its gMSA's DACL with ldapmodify and the SD flags control
	// (SEQUENCE { INTEGER 4 }: the DACL only): it adds an ACE that lets "other" write
	// description, which "other" then can, and nothing else.
	out, errOut, _ = run(tls, "", "ldapsearch", append(as("operator", "Op-Pass-123!"), "-LLL", "-o", "ldif-wrap=no", "-E", "!1.2.840.113556.1.4.801=::MAMCAQQ=",
		"-b", websvc, "-s", "base", "(objectClass=*)", "nTSecurityDescriptor")...)
	sd := sdFromLDIF(t, out+errOut)
	if sd.Owner != nil || sd.DACL == nil {
		t.Fatalf("the SD flags control asked for the DACL only: %s", sd.SDDL())
	}
	otherSID := ntsec.MustParseSID(objectSid(st("user", "show", "other", "--attributes=objectSid")))
	description := ntsec.MustParseGUID("bf967950-0de6-11d0-a285-00aa003049e2")
	sd.DACL.ACEs = append([]ntsec.ACE{{Type: ntsec.ACETypeAccessAllowedObject, Mask: ntsec.RightDSWriteProperty, ObjectType: &description, SID: otherSID}}, sd.DACL.ACEs...)
	modify := "dn: " + websvc + "\nchangetype: modify\nreplace: nTSecurityDescriptor\nnTSecurityDescriptor:: " + base64.StdEncoding.EncodeToString(sd.Bytes()) + "\n"
	if out, errOut, code := run(tls, modify, "ldapmodify", append(as("other", "Other-Pass-123!"), "-e", "!1.2.840.113556.1.4.801=MAMCAQQ=")...); code == 0 || !strings.Contains(errOut, "Insufficient access") {
		t.Fatalf("a user without WRITE_DAC replaced the DACL: exit %d %s%s", code, out, errOut)
	}
	if out, errOut, code := run(tls, modify, "ldapmodify", append(as("operator", "Op-Pass-123!"), "-e", "!1.2.840.113556.1.4.801=MAMCAQQ=")...); code != 0 {
		t.Fatalf("the owner replacing its gMSA's DACL with ldapmodify: %s%s", out, errOut)
	}
	expect(st("dsacl", "get", "--objectdn="+websvc), "(OA;;WP;"+description.String()+";;"+otherSID.String()+")", "O:"+opSID+"G:DA")
	if out, errOut, code := run(tls, "dn: "+websvc+"\nchangetype: modify\nreplace: description\ndescription: granted\n", "ldapmodify", as("other", "Other-Pass-123!")...); code != 0 {
		t.Fatalf("the user granted description by the new DACL: %s%s", out, errOut)
	}
	if _, errOut, code := run(tls, "dn: "+websvc+"\nchangetype: modify\nreplace: dNSHostName\ndNSHostName: evil.example.test\n", "ldapmodify", as("other", "Other-Pass-123!")...); code == 0 || !strings.Contains(errOut, "Insufficient access") {
		t.Fatalf("the user granted description only changed dNSHostName: %s", errOut)
	}
}

// sdFromLDIF parses the nTSecurityDescriptor of ldapsearch's LDIF output.
func sdFromLDIF(t *testing.T, out string) *ntsec.SecurityDescriptor {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, "nTSecurityDescriptor:: "); ok {
			b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			sd, err := ntsec.ParseSecurityDescriptor(b)
			if err != nil {
				t.Fatal(err)
			}
			return sd
		}
	}
	t.Fatalf("no nTSecurityDescriptor in %s", out)
	return nil
}

// objectSid reads the objectSid line of samba-tool's show output.
func objectSid(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, "objectSid: "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
