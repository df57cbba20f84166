package directory

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The schema as AD publishes it: an attributeSchema entry for every attribute served,
// a classSchema entry for every class, and the subschema subentry the RootDSE names,
// all agreeing with the directory's own facts; a store without them gets them on open.
func TestSchemaEntries(t *testing.T) {
	d, _ := lab(t)
	get := func(base string, f Filter, names ...string) map[string][]string {
		t.Helper()
		out := map[string][]string{}
		n := 0
		err := d.Search(ctx, sys, Query{Base: base, Scope: ScopeSub, Filter: f, Select: Selection{Names: names}}, func(m *Match) error {
			n++
			for _, a := range must(m.Attributes(nil)) {
				for _, v := range a.Values {
					out[a.Name] = append(out[a.Name], string(v))
				}
			}
			return nil
		})
		if err != nil || n != 1 {
			t.Fatalf("%v under %s: %d entries, %v", f, base, n, err)
		}
		return out
	}
	schemaDN := d.Domain().SchemaDN()
	sam := get(schemaDN, Equal{Attr: "lDAPDisplayName", Value: []byte("sAMAccountName")}, "attributeID", "attributeSyntax", "isSingleValued", "searchFlags", "objectClass", "schemaIDGUID")
	if sam["attributeID"][0] != "1.2.840.113556.1.4.221" || sam["isSingleValued"][0] != "TRUE" || sam["attributeSyntax"][0] != "2.5.5.12" ||
		sam["searchFlags"][0] != "13" || sam["objectClass"][1] != "attributeSchema" || len(sam["schemaIDGUID"][0]) != 16 {
		t.Fatalf("sAMAccountName's entry: %v", sam)
	}
	// msKds-RootKeyData is confidential (searchFlags bit 0x80), as in AD.
	rk := get(schemaDN, Equal{Attr: "lDAPDisplayName", Value: []byte("msKds-RootKeyData")}, "searchFlags")
	if rk["searchFlags"][0] != "640" {
		t.Fatalf("msKds-RootKeyData searchFlags %v", rk)
	}
	gmsa := get(schemaDN, And{Equal{Attr: "objectClass", Value: []byte("classSchema")}, Equal{Attr: "lDAPDisplayName", Value: []byte("msDS-GroupManagedServiceAccount")}},
		"governsID", "subClassOf", "systemMustContain", "defaultSecurityDescriptor")
	if gmsa["governsID"][0] != "1.2.840.113556.1.5.282" || gmsa["subClassOf"][0] != "computer" ||
		!strings.Contains(strings.Join(gmsa["systemMustContain"], ","), "msDS-ManagedPasswordInterval") ||
		!strings.HasPrefix(gmsa["defaultSecurityDescriptor"][0], "D:(OD;;CR;00299570") {
		t.Fatalf("the gMSA class: %v", gmsa)
	}
	agg := get(schemaDN, Equal{Attr: "objectClass", Value: []byte("subSchema")}, "attributeTypes", "objectClasses", "dITContentRules")
	at, oc := strings.Join(agg["attributeTypes"], "\n"), strings.Join(agg["objectClasses"], "\n")
	for _, want := range []string{"( 1.2.840.113556.1.4.221 NAME 'sAMAccountName' SYNTAX '1.3.6.1.4.1.1466.115.121.1.15' SINGLE-VALUE )",
		"( 2.5.4.31 NAME 'member' SYNTAX '1.3.6.1.4.1.1466.115.121.1.12' )"} {
		if !strings.Contains(at, want) {
			t.Errorf("attributeTypes lacks %s", want)
		}
	}
	if !strings.Contains(oc, "( 1.2.840.113556.1.5.282 NAME 'msDS-GroupManagedServiceAccount' SUP computer STRUCTURAL MUST (msDS-ManagedPasswordInterval )") {
		t.Errorf("objectClasses: %s", oc)
	}
	// Every attribute the directory serves that AD's schema has, has its entry.
	for name := range schema {
		if _, ok := attributeFacts[name]; !ok {
			continue
		}
		get(schemaDN, Equal{Attr: "lDAPDisplayName", Value: []byte(attributeFacts[name].Name)}, "attributeID")
	}
}

// Constructed attributes AD offers for these objects: canonicalName, primaryGroupToken,
// allowedAttributes, and allowedAttributesEffective by the requester's write rights.
func TestConstructedAttributes(t *testing.T) {
	d, _ := lab(t)
	must(d.NewUser(ctx, sys, UserOptions{Name: "plain", Password: "Plain-Pass-1!"}))
	plain := &Requester{Token: must(d.TokenFor(ctx, "plain")), Auth: AuthSimple, Protection: ProtectionTLS}
	values := func(req *Requester, dn string, names ...string) map[string][]string {
		out := map[string][]string{}
		must(0, d.Search(ctx, req, Query{Base: dn, Scope: ScopeBase, Select: Selection{Names: names}}, func(m *Match) error {
			for _, a := range must(m.Attributes(nil)) {
				for _, v := range a.Values {
					out[a.Name] = append(out[a.Name], string(v))
				}
			}
			return nil
		}))
		return out
	}
	admins := values(sys, "CN=Domain Admins,CN=Users,DC=example,DC=test", "canonicalName", "primaryGroupToken", "allowedAttributes")
	if admins["canonicalName"][0] != "example.test/Users/Domain Admins" || admins["primaryGroupToken"][0] != "512" ||
		!strings.Contains(strings.Join(admins["allowedAttributes"], ","), "member") {
		t.Fatalf("Domain Admins: %v", admins)
	}
	dn := "CN=plain,CN=Users,DC=example,DC=test"
	all := strings.Join(values(sys, dn, "allowedAttributesEffective")["allowedAttributesEffective"], ",")
	own := values(plain, dn, "allowedAttributesEffective")["allowedAttributesEffective"]
	if !strings.Contains(all, "description") || !strings.Contains(all, "userAccountControl") {
		t.Fatalf("an administrator may write: %s", all)
	}
	if slices.Contains(own, "userAccountControl") || slices.Contains(own, "description") || len(own) >= len(strings.Split(all, ",")) {
		t.Fatalf("the user itself may write: %v", own)
	}
	// createTimeStamp, modifyTimeStamp, structuralObjectClass, subSchemaSubEntry,
	// msDS-PrincipalName, msDS-Approx-Immed-Subordinates and sDRightsEffective: an
	// administrator may write every part of the descriptor (15), the user none of its own.
	admin := &Requester{Token: must(d.TokenFor(ctx, "Administrator")), Auth: AuthSimple, Protection: ProtectionTLS}
	names := []string{"createTimeStamp", "whenCreated", "modifyTimeStamp", "whenChanged", "structuralObjectClass", "subSchemaSubEntry", "msDS-PrincipalName", "sDRightsEffective"}
	got := values(admin, dn, names...)
	if got["createTimeStamp"][0] != got["whenCreated"][0] || got["modifyTimeStamp"][0] != got["whenChanged"][0] ||
		strings.Join(got["structuralObjectClass"], ",") != "top,person,organizationalPerson,user" ||
		got["subSchemaSubEntry"][0] != "CN=Aggregate,CN=Schema,CN=Configuration,DC=example,DC=test" ||
		got["msDS-PrincipalName"][0] != `EXAMPLE\plain` || got["sDRightsEffective"][0] != "15" {
		t.Fatalf("constructed, as the administrator: %v", got)
	}
	if got := values(plain, dn, "sDRightsEffective"); got["sDRightsEffective"][0] != "0" {
		t.Fatalf("sDRightsEffective of the user on itself: %v", got)
	}
	users := values(sys, "CN=Users,DC=example,DC=test", "msDS-Approx-Immed-Subordinates")["msDS-Approx-Immed-Subordinates"]
	kids := 0
	must(0, d.Search(ctx, sys, Query{Base: "CN=Users,DC=example,DC=test", Scope: ScopeOne}, func(*Match) error { kids++; return nil }))
	if len(users) != 1 || users[0] != strconv.Itoa(kids) {
		t.Fatalf("msDS-Approx-Immed-Subordinates of CN=Users: %v, %d below", users, kids)
	}
}

// The domain's crossRef, where adcli and Windows read its NetBIOS name.
func TestCrossRef(t *testing.T) {
	d, _ := lab(t)
	n := 0
	q := Query{Base: "CN=Partitions," + d.Domain().ConfigDN, Scope: ScopeOne,
		Filter: And{Equal{Attr: "objectClass", Value: []byte("crossRef")}, Equal{Attr: "nCName", Value: []byte(d.Domain().BaseDN)}, Present{Attr: "nETBIOSName"}},
		Select: Selection{Names: []string{"nETBIOSName", "dnsRoot"}}}
	must(0, d.Search(ctx, sys, q, func(m *Match) error {
		n++
		for _, a := range must(m.Attributes(nil)) {
			if a.Name == "nETBIOSName" && string(a.Values[0]) != d.Domain().NetBIOS {
				t.Errorf("nETBIOSName %q", a.Values[0])
			}
		}
		return nil
	}))
	if n != 1 {
		t.Fatalf("%d crossRefs", n)
	}
}
