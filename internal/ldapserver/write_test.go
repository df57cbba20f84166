package ldapserver_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"gmsa/internal/adclient"
	"gmsa/internal/kds"
	"gmsa/internal/ldapserver"
	"gmsa/internal/ntsec"
	"gmsa/internal/servertest"
)

func TestWrites(t *testing.T) {
	s := setup(t, servertest.Options{Limits: ldapserver.Config{AllowPlainSimpleBind: true}})
	user := dialTLS(t, s)
	must(struct{}{}, user.Bind("websvc", "Web-Pass-123!"))
	add := ldap.NewAddRequest("CN=app,CN=Managed Service Accounts,"+base, nil)
	add.Attribute("objectClass", []string{"msDS-GroupManagedServiceAccount"})
	add.Attribute("dNSHostName", []string{"app.example.test"})
	if err := user.Add(add); code(err) != ldap.LDAPResultInsufficientAccessRights {
		t.Fatalf("add by a user: %v", err)
	}

	c := dialTLS(t, s)
	must(struct{}{}, c.Bind("Administrator", s.AdminPassword))
	hosts := must(s.Dir.Resolve(ctx, "Web Hosts"))
	sd := must(ntsec.ParseSDDL("O:S-1-5-32-544D:(A;;0xf01ff;;;"+hosts.SID+")", ntsec.SID{}))
	add.Attribute("sAMAccountName", []string{"app$"})
	add.Attribute("msDS-ManagedPasswordInterval", []string{"7"})
	add.Attribute("servicePrincipalName", []string{"http/app.example.test"})
	add.Attribute("msDS-GroupMSAMembership", []string{string(sd.Bytes())})
	if err := c.Add(add); err != nil {
		t.Fatal(err)
	}
	app := must(s.Dir.Resolve(ctx, "app$"))
	if app.PasswordInterval != 7 || len(app.PasswordID) == 0 || app.SPNs[0] != "http/app.example.test" {
		t.Fatalf("%+v", app)
	}
	if dec := must(s.Dir.TestAccount(ctx, "app", "websvc")); !dec.Granted {
		t.Fatalf("membership from the binary SD: %+v", dec)
	}
	if err := c.Add(add); code(err) != ldap.LDAPResultEntryAlreadyExists {
		t.Fatalf("duplicate add: %v", err)
	}
	bad := ldap.NewAddRequest("CN=bad,CN=Managed Service Accounts,"+base, nil)
	bad.Attribute("objectClass", []string{"msDS-GroupManagedServiceAccount"})
	bad.Attribute("msDS-ManagedPassword", []string{"x"})
	if err := c.Add(bad); code(err) != ldap.LDAPResultConstraintViolation || !strings.Contains(err.Error(), "constructed") {
		t.Fatalf("constructed attribute: %v", err)
	}
	mod := ldap.NewModifyRequest(app.DN, nil)
	mod.Replace("msDS-ManagedPasswordInterval", []string{"30"})
	if err := c.Modify(mod); code(err) != ldap.LDAPResultConstraintViolation {
		t.Fatalf("interval change: %v", err)
	}
	mod = ldap.NewModifyRequest(app.DN, nil)
	mod.Add("servicePrincipalName", []string{"http/app2.example.test"})
	mod.Replace("userAccountControl", []string{"4098"})
	if err := c.Modify(mod); err != nil {
		t.Fatal(err)
	}
	if app = must(s.Dir.Resolve(ctx, "app$")); len(app.SPNs) != 2 || app.Enabled() {
		t.Fatalf("%+v", app)
	}
	// Group membership and a user with a password, over TLS.
	u := ldap.NewAddRequest("CN=ops,CN=Users,"+base, nil)
	u.Attribute("objectClass", []string{"user"})
	u.Attribute("sAMAccountName", []string{"ops"})
	u.Attribute("unicodePwd", []string{adclient.UnicodePwd("Ops-Pass-123!")})
	if err := c.Add(u); err != nil {
		t.Fatal(err)
	}
	mod = ldap.NewModifyRequest("CN=Web Hosts,CN=Users,"+base, nil)
	mod.Add("member", []string{"CN=ops,CN=Users," + base})
	if err := c.Modify(mod); err != nil {
		t.Fatal(err)
	}
	if err := dialTLS(t, s).Bind("ops", "Ops-Pass-123!"); err != nil {
		t.Fatalf("bind with the password set by unicodePwd: %v", err)
	}
	if dec := must(s.Dir.TestAccount(ctx, "app", "ops")); !strings.Contains(dec.Reason, "allowed by entry 0") || !strings.Contains(dec.Reason, "ops → Web Hosts") {
		t.Fatalf("member added over LDAP is not in the token: %+v", dec) // (app is disabled by now, so the answer is no)
	}
	// unicodePwd needs encryption.
	plain := dialPlain(t, s)
	must(struct{}{}, plain.Bind("Administrator", s.AdminPassword))
	mod = ldap.NewModifyRequest("CN=ops,CN=Users,"+base, nil)
	mod.Replace("unicodePwd", []string{adclient.UnicodePwd("Other-123!")})
	if err := plain.Modify(mod); code(err) != ldap.LDAPResultUnwillingToPerform || !strings.Contains(err.Error(), "encrypted") {
		t.Fatalf("unicodePwd in the clear: %v", err)
	}
	// A root key added as an msKds-ProvRootKey entry.
	id := "1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b"
	rk := ldap.NewAddRequest("CN="+id+","+s.Dir.Domain().RootKeysDN(), nil)
	rk.Attribute("objectClass", []string{"msKds-ProvRootKey"})
	rk.Attribute("msKds-RootKeyData", []string{strings.Repeat("k", 64)})
	rk.Attribute("msKds-KDFAlgorithmID", []string{"SP800_108_CTR_HMAC"})
	rk.Attribute("msKds-KDFParam", []string{string(kds.EncodeKDFParam(kds.SHA512))})
	rk.Attribute("msKds-Version", []string{"1"})
	rk.Attribute("msKds-UseStartTime", []string{"133000000000000000"})
	if err := c.Add(rk); err != nil {
		t.Fatal(err)
	}
	if err := s.Dir.TestRootKey(ctx, id); err != nil {
		t.Fatal(err)
	}
	// Compare.
	if ok, err := c.Compare(app.DN, "msDS-ManagedPasswordInterval", "7"); err != nil || !ok {
		t.Fatalf("compare true: %v %v", ok, err)
	}
	if ok, err := c.Compare(app.DN, "dNSHostName", "other.example.test"); err != nil || ok {
		t.Fatalf("compare false: %v %v", ok, err)
	}
	if _, err := c.Compare(app.DN, "msDS-ManagedPassword", "x"); code(err) != ldap.LDAPResultUnwillingToPerform {
		t.Fatalf("compare of the password: %v", err)
	}
	// Rename and move (modify DN): the cn and DN change, the account stays.
	if err := c.ModifyDN(ldap.NewModifyDNRequest(app.DN, "CN=app-renamed", true, "CN=Users,"+base)); err != nil {
		t.Fatal(err)
	}
	moved := must(s.Dir.Resolve(ctx, "app$"))
	if moved.DN != "CN=app-renamed,CN=Users,"+base || moved.SID != app.SID || moved.Name != "app-renamed" {
		t.Fatalf("after modify DN: %s %s", moved.DN, moved.Name)
	}
	if err := c.ModifyDN(ldap.NewModifyDNRequest(moved.DN, "CN=x", true, "CN=Nope,"+base)); code(err) != ldap.LDAPResultNoSuchObject {
		t.Fatalf("move under a missing parent: %v", err)
	}
	if err := c.ModifyDN(ldap.NewModifyDNRequest("CN=Users,"+base, "CN=People", true, "")); code(err) != ldap.LDAPResultUnwillingToPerform {
		t.Fatalf("rename of a container: %v", err)
	}
	app = moved
	// Delete.
	if err := c.Del(ldap.NewDelRequest(app.DN, nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Dir.Resolve(ctx, "app$"); err == nil {
		t.Fatal("deleted gMSA still there")
	}
	if err := c.Del(ldap.NewDelRequest("CN=Domain Admins,CN=Users,"+base, nil)); code(err) != ldap.LDAPResultUnwillingToPerform {
		t.Fatalf("delete of a built-in group: %v", err)
	}
	if err := c.Del(ldap.NewDelRequest("CN=nothere,"+base, nil)); code(err) != ldap.LDAPResultNoSuchObject {
		t.Fatalf("delete of nothing: %v", err)
	}
	if !strings.Contains(s.Audit.String(), `"msg":"directory changed","principal":"Administrator"`) {
		t.Fatal("writes not audited")
	}
}

// Writes as AD does them: non-admins are refused, a Modify is all or nothing, adds
// land at the requested DN or are refused, users change their own password with the
// old one, and failed binds lock an account (data 775) until it is unlocked.
func TestWriteRulesAndLockout(t *testing.T) {
	s := setup(t, servertest.Options{})
	admin := dialTLS(t, s)
	must(struct{}{}, admin.Bind("Administrator", s.AdminPassword))
	user := dialTLS(t, s)
	must(struct{}{}, user.Bind("websvc", "Web-Pass-123!"))

	// Non-admin writes of every kind are refused, and nothing changes.
	mod := ldap.NewModifyRequest("CN=Web Hosts,CN=Users,"+base, nil)
	mod.Add("member", []string{"CN=outsider,CN=Users," + base})
	if err := user.Modify(mod); code(err) != ldap.LDAPResultInsufficientAccessRights {
		t.Fatalf("member add by a user: %v", err)
	}
	if err := user.Del(ldap.NewDelRequest("CN=outsider,CN=Users,"+base, nil)); code(err) != ldap.LDAPResultInsufficientAccessRights {
		t.Fatalf("delete by a user: %v", err)
	}
	if err := user.ModifyDN(ldap.NewModifyDNRequest("CN=outsider,CN=Users,"+base, "CN=x", true, "")); code(err) != ldap.LDAPResultInsufficientAccessRights {
		t.Fatalf("rename by a user: %v", err)
	}
	reset := ldap.NewModifyRequest("CN=outsider,CN=Users,"+base, nil)
	reset.Replace("unicodePwd", []string{adclient.UnicodePwd("Taken-Over-1!")})
	if err := user.Modify(reset); code(err) != ldap.LDAPResultInsufficientAccessRights {
		t.Fatalf("password reset by a user: %v", err)
	}

	// A Modify whose second change fails leaves the first undone.
	mod = ldap.NewModifyRequest("CN=svc,CN=Managed Service Accounts,"+base, nil)
	mod.Replace("description", []string{"changed"})
	mod.Replace("msDS-SupportedEncryptionTypes", []string{"not a number"})
	if err := admin.Modify(mod); code(err) != ldap.LDAPResultInvalidAttributeSyntax {
		t.Fatalf("bad second change: %v", err)
	}
	if svc := must(s.Dir.Resolve(ctx, "svc$")); svc.Description != "" {
		t.Fatalf("the first change of a failed Modify stuck: %q", svc.Description)
	}

	// Adds honour the DN: a user with a cn other than its sAMAccountName, in another
	// container; a missing parent or a non-CN RDN is refused, never created elsewhere.
	add := ldap.NewAddRequest("CN=Bob Smith,CN=Managed Service Accounts,"+base, nil)
	add.Attribute("objectClass", []string{"user"})
	add.Attribute("sAMAccountName", []string{"bsmith"})
	add.Attribute("unicodePwd", []string{adclient.UnicodePwd("Bob-Pass-123!")})
	if err := admin.Add(add); err != nil {
		t.Fatal(err)
	}
	if bob := must(s.Dir.Resolve(ctx, "bsmith")); bob.DN != "CN=Bob Smith,CN=Managed Service Accounts,"+base || bob.SAM != "bsmith" {
		t.Fatalf("created at %s as %s", bob.DN, bob.SAM)
	}
	for dn, want := range map[string]uint16{"CN=x,CN=Nowhere," + base: ldap.LDAPResultNoSuchObject, "OU=x,CN=Users," + base: ldap.LDAPResultNamingViolation,
		"CN=y,CN=bsmith," + base: ldap.LDAPResultNoSuchObject} {
		a := ldap.NewAddRequest(dn, nil)
		a.Attribute("objectClass", []string{"group"})
		if err := admin.Add(a); code(err) != want {
			t.Errorf("add %s: %v, want %d", dn, err, want)
		}
	}

	// Bob changes his own password with the old one; a wrong old one is refused.
	bob := dialTLS(t, s)
	must(struct{}{}, bob.Bind("bsmith", "Bob-Pass-123!"))
	change := func(c *ldap.Conn, old, new string) error {
		m := ldap.NewModifyRequest("CN=Bob Smith,CN=Managed Service Accounts,"+base, nil)
		m.Delete("unicodePwd", []string{adclient.UnicodePwd(old)})
		m.Add("unicodePwd", []string{adclient.UnicodePwd(new)})
		return c.Modify(m)
	}
	if err := change(bob, "wrong", "Bob-New-123!"); code(err) != ldap.LDAPResultConstraintViolation {
		t.Fatalf("change with a wrong old password: %v", err)
	}
	if err := change(bob, "Bob-Pass-123!", "Bob-New-123!"); err != nil {
		t.Fatalf("own password change: %v", err)
	}
	if err := dialTLS(t, s).Bind("bsmith", "Bob-New-123!"); err != nil {
		t.Fatal(err)
	}

	// Ten wrong passwords lock the account: then even the right one gets data 775,
	// until an administrator writes lockoutTime 0.
	c := dialTLS(t, s)
	for i := range 10 {
		if err := c.Bind("bsmith", "wrong"); !strings.Contains(fmt.Sprint(err), "data 52e") {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	if err := c.Bind("bsmith", "Bob-New-123!"); code(err) != ldap.LDAPResultInvalidCredentials || !strings.Contains(err.Error(), "data 775") {
		t.Fatalf("locked account: %v", err)
	}
	r := must(admin.Search(ldap.NewSearchRequest("CN=Bob Smith,CN=Managed Service Accounts,"+base, ldap.ScopeBaseObject, 0, 0, 0, false,
		"(objectClass=*)", []string{"badPwdCount", "lockoutTime", "msDS-User-Account-Control-Computed"}, nil)))
	if e := r.Entries[0]; e.GetAttributeValue("badPwdCount") != "10" || e.GetAttributeValue("lockoutTime") == "0" || e.GetAttributeValue("msDS-User-Account-Control-Computed") != "16" {
		t.Fatalf("lockout attributes: %v", e.Attributes)
	}
	unlock := ldap.NewModifyRequest("CN=Bob Smith,CN=Managed Service Accounts,"+base, nil)
	unlock.Replace("lockoutTime", []string{"0"})
	if err := admin.Modify(unlock); err != nil {
		t.Fatal(err)
	}
	if err := c.Bind("bsmith", "Bob-New-123!"); err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	if !strings.Contains(s.Audit.String(), `"msg":"account locked out","account":"bsmith"`) {
		t.Fatal("lockout not audited")
	}
}
