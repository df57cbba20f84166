package ldapserver_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"gmsa/internal/servertest"
)

// Organizational units as administrators make them: an OU, a nested OU, accounts in
// them; a delete of a non-empty OU is notAllowedOnNonLeaf, the tree delete control
// removes the subtree (members leave their groups), an empty OU is renamed and moved;
// the domain's own containers stay.
func TestOrganizationalUnits(t *testing.T) {
	s := setup(t, servertest.Options{})
	c := dialTLS(t, s)
	if err := c.Bind("Administrator@example.test", s.AdminPassword); err != nil {
		t.Fatal(err)
	}
	add := func(dn string, attrs map[string][]string) error {
		r := ldap.NewAddRequest(dn, nil)
		for k, v := range attrs {
			r.Attribute(k, v)
		}
		return c.Add(r)
	}
	servers := "OU=Servers," + base
	if err := add(servers, map[string][]string{"objectClass": {"top", "organizationalUnit"}, "description": {"member servers"}}); err != nil {
		t.Fatal(err)
	}
	web := "OU=Web,OU=Servers," + base
	for _, e := range []struct {
		dn    string
		attrs map[string][]string
	}{ // parents first
		{web, map[string][]string{"objectClass": {"organizationalUnit"}, "ou": {"Web"}}},
		{"CN=web07," + web, map[string][]string{"objectClass": {"computer"}, "sAMAccountName": {"WEB07$"}}},
		{"CN=ops,OU=Servers," + base, map[string][]string{"objectClass": {"user"}, "sAMAccountName": {"ops"}}},
	} {
		if err := add(e.dn, e.attrs); err != nil {
			t.Fatalf("add %s: %v", e.dn, err)
		}
	}
	if err := add("OU=Bad,CN=Users,"+base, map[string][]string{"objectClass": {"organizationalUnit"}}); code(err) != ldap.LDAPResultNamingViolation {
		t.Fatalf("an OU under CN=Users: %v", err)
	}
	if err := add("CN=NotAnOU,"+base, map[string][]string{"objectClass": {"organizationalUnit"}}); code(err) != ldap.LDAPResultNamingViolation {
		t.Fatalf("an OU named CN=: %v", err)
	}
	r := must(c.Search(ldap.NewSearchRequest(servers, ldap.ScopeWholeSubtree, 0, 0, 0, false, "(objectClass=organizationalUnit)", []string{"ou", "description", "objectCategory"}, nil)))
	if len(r.Entries) != 2 || r.Entries[0].GetAttributeValue("ou") == "" {
		t.Fatalf("OUs found: %d", len(r.Entries))
	}
	if err := c.Modify(func() *ldap.ModifyRequest {
		m := ldap.NewModifyRequest("CN=Web Hosts,CN=Users,"+base, nil)
		m.Add("member", []string{"CN=web07," + web})
		return m
	}()); err != nil {
		t.Fatal(err)
	}

	if err := c.Del(ldap.NewDelRequest(servers, nil)); code(err) != ldap.LDAPResultNotAllowedOnNonLeaf {
		t.Fatalf("deleting a non-empty OU: %v", err)
	}
	// Renaming a non-empty OU moves everything below it in one transaction: names,
	// searches and the group's member values follow.
	if err := c.ModifyDN(ldap.NewModifyDNRequest(servers, "OU=Hosts", true, "")); err != nil {
		t.Fatalf("renaming a non-empty OU: %v", err)
	}
	hosts := "OU=Hosts," + base
	r = must(c.Search(ldap.NewSearchRequest(hosts, ldap.ScopeWholeSubtree, 0, 0, 0, false, "(|(sAMAccountName=web07$)(sAMAccountName=ops))", []string{"dn"}, nil)))
	if len(r.Entries) != 2 || !slices.ContainsFunc(r.Entries, func(e *ldap.Entry) bool { return strings.EqualFold(e.DN, "CN=web07,OU=Web,"+hosts) }) {
		t.Fatalf("the objects below the renamed OU: %v", r.Entries)
	}
	if _, err := c.Search(ldap.NewSearchRequest(web, ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", nil, nil)); code(err) != ldap.LDAPResultNoSuchObject {
		t.Fatalf("the old name of the OU below still answers: %v", err)
	}
	g := must(c.Search(ldap.NewSearchRequest("CN=Web Hosts,CN=Users,"+base, ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", []string{"member"}, nil)))
	if !slices.Contains(g.Entries[0].GetAttributeValues("member"), "CN=web07,OU=Web,"+hosts) {
		t.Fatalf("the group's member value: %v", g.Entries[0].GetAttributeValues("member"))
	}
	if err := c.ModifyDN(ldap.NewModifyDNRequest(hosts, "OU=Hosts", true, "OU=Web,"+hosts)); code(err) != ldap.LDAPResultUnwillingToPerform {
		t.Fatalf("moving an OU below itself: %v", err)
	}
	if err := c.ModifyDN(ldap.NewModifyDNRequest(hosts, "OU=Servers", true, "")); err != nil {
		t.Fatalf("renaming it back: %v", err)
	}
	for _, system := range []string{"CN=Users," + base, "OU=Domain Controllers," + base} {
		del := ldap.NewDelRequest(system, []ldap.Control{ldap.NewControlString("1.2.840.113556.1.4.805", true, "")})
		if err := c.Del(del); code(err) != ldap.LDAPResultUnwillingToPerform {
			t.Fatalf("tree delete of %s: %v", system, err)
		}
	}
	if n := len(must(c.Search(ldap.NewSearchRequest("CN=Users,"+base, ldap.ScopeWholeSubtree, 0, 0, 0, false, "(objectClass=*)", []string{"dn"}, nil))).Entries); n < 5 {
		t.Fatalf("a refused tree delete removed objects: %d left under CN=Users", n)
	}
	tree := ldap.NewDelRequest(servers, []ldap.Control{ldap.NewControlString("1.2.840.113556.1.4.805", true, "")})
	if err := c.Del(tree); err != nil {
		t.Fatalf("tree delete: %v", err)
	}
	if _, err := c.Search(ldap.NewSearchRequest(servers, ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", nil, nil)); code(err) != ldap.LDAPResultNoSuchObject {
		t.Fatalf("the OU is still there: %v", err)
	}
	g = must(c.Search(ldap.NewSearchRequest("CN=Web Hosts,CN=Users,"+base, ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", []string{"member"}, nil)))
	for _, m := range g.Entries[0].GetAttributeValues("member") {
		if strings.Contains(m, "web07") {
			t.Fatal("the deleted computer is still a member")
		}
	}

	// An empty OU is renamed and moved; a container is made too.
	if err := add("OU=Empty,"+base, map[string][]string{"objectClass": {"organizationalUnit"}}); err != nil {
		t.Fatal(err)
	}
	if err := add("CN=Apps,"+base, map[string][]string{"objectClass": {"top", "container"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.ModifyDN(ldap.NewModifyDNRequest("OU=Empty,"+base, "OU=Staging", true, "")); err != nil {
		t.Fatalf("renaming an empty OU: %v", err)
	}
	if _, err := c.Search(ldap.NewSearchRequest("OU=Staging,"+base, ldap.ScopeBaseObject, 0, 0, 0, false, "(ou=Staging)", nil, nil)); err != nil {
		t.Fatalf("the renamed OU: %v", err)
	}
	if err := c.Del(ldap.NewDelRequest("OU=Staging,"+base, nil)); err != nil {
		t.Fatalf("deleting an empty OU: %v", err)
	}
	if !strings.Contains(s.Audit.String(), "tree delete (4 objects)") {
		t.Fatal("no audit record of the tree delete")
	}
}
