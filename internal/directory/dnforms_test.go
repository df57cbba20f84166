package directory

import (
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"
)

// AD's alternative DN forms name the same objects as their DNs: as search bases, as
// modify targets, and wherever an object is referred to.
func TestAlternativeDNForms(t *testing.T) {
	d, _ := lab(t)
	admin := must(d.Resolve(ctx, "Administrator"))
	sid := admin.ObjectSID()
	base := func(dn string) (string, error) {
		var got string
		err := d.Search(ctx, sys, Query{Base: dn, Scope: ScopeBase}, func(m *Match) error { got = m.DN(); return nil })
		return got, err
	}
	for form, want := range map[string]string{
		"<SID=" + sid.String() + ">":                                   admin.DN,
		"<SID=" + hex.EncodeToString(sid.Bytes()) + ">":                admin.DN,
		"<GUID=" + admin.GUID.String() + ">":                           admin.DN,
		"<GUID=" + hex.EncodeToString(admin.GUID[:]) + ">":             admin.DN,
		"<WKGUID=a9d1ca15768811d1aded00c04fd8d5cd,DC=example,DC=test>": d.Domain().UsersDN(),
		"<WKGUID=AA312825768811D1ADED00C04FD8D5CD,dc=example,dc=test>": d.Domain().ComputersDN(),
		"<WKGUID=a361b2ffffd211d1aa4b00c04fd7d83a,DC=example,DC=test>": d.Domain().DCsDN(),
		"<WKGUID=1eb93889e40c45df9f0c64d23bbb6237,DC=example,DC=test>": d.Domain().MSADN(),
	} {
		got, err := base(form)
		if err != nil || got != want {
			t.Errorf("%s: %q %v, want %q", form, got, err, want)
		}
	}
	for form, want := range map[string]error{
		"<SID=S-1-5-21-1-2-3-999999>":                                  ErrNoSuchBase,
		"<GUID=00000000-0000-0000-0000-000000000000>":                  ErrNoSuchBase,
		"<WKGUID=ffffffffffffffffffffffffffffffff,DC=example,DC=test>": ErrNoSuchBase,
		"<WKGUID=a9d1ca15768811d1aded00c04fd8d5cd,DC=other,DC=test>":   ErrNoSuchBase,
		"<SID=zz>":   ErrInvalidDN,
		"<FOO=bar>":  ErrInvalidDN,
		"<GUID=abc>": ErrInvalidDN,
	} {
		if _, err := base(form); !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", form, err, want)
		}
	}
	n := must(d.Modify(ctx, sys, "<GUID="+admin.GUID.String()+">", []Change{{Op: ChangeReplace, Attr: "description", Values: [][]byte{[]byte("by GUID")}}}))
	if n.DN != admin.DN || n.Description != "by GUID" {
		t.Fatalf("modify by <GUID=…>: %s %q", n.DN, n.Description)
	}
	if o, err := d.Resolve(ctx, "<SID="+sid.String()+">"); err != nil || o.GUID != admin.GUID {
		t.Fatalf("resolve: %v", err)
	}
}

// The forms name objects in values and in modify DN too: a member by <SID=…>, an
// account moved under <WKGUID=…> of the Users container.
func TestAlternativeDNFormsInValuesAndMoves(t *testing.T) {
	d, _ := lab(t)
	u := must(d.NewUser(ctx, sys, UserOptions{Name: "moved", Password: "Passw0rd!moved"}))
	g := must(d.NewGroup(ctx, sys, "Team", ScopeGlobal, ""))
	n := must(d.Modify(ctx, sys, g.DN, []Change{{Op: ChangeAdd, Attr: "member", Values: [][]byte{[]byte("<SID=" + u.ObjectSID().String() + ">")}}}))
	if len(n.Members) != 1 {
		t.Fatalf("members %v", n.Members)
	}
	m := must(d.Rename(ctx, sys, "<GUID="+u.GUID.String()+">", "moved", "<WKGUID=aa312825768811d1aded00c04fd8d5cd,DC=example,DC=test>"))
	if m.DN != "CN=moved,"+d.Domain().ComputersDN() {
		t.Fatalf("moved to %s", m.DN)
	}
}

// FuzzResolveDN: any base a client sends is a DN, an error, or the DN of an object that
// exists; never a panic.
func FuzzResolveDN(f *testing.F) {
	f.Add("<SID=S-1-5-21-1-2-3-500>")
	f.Add("<GUID=0102030405060708090a0b0c0d0e0f10>")
	f.Add("<WKGUID=a9d1ca15768811d1aded00c04fd8d5cd,DC=example,DC=test>")
	f.Add("<SID=010500000000000515000000>")
	f.Add("CN=Users,DC=example,DC=test")
	d, _ := lab(f)
	f.Fuzz(func(t *testing.T, s string) {
		dn, err := d.ResolveDN(ctx, s)
		if err == nil && strings.HasPrefix(strings.TrimSpace(s), "<") {
			if _, err := d.byIndex(ctx, dnKey(normDN(dn))); err != nil {
				t.Fatalf("%q resolved to %q, which does not exist", s, dn)
			}
		}
	})
}

// Adding a value an attribute already holds is attributeOrValueExists, as AD answers;
// the permissive modify control makes it (and deleting a value that is not there) a
// success.
func TestRepeatedValuesAndPermissiveModify(t *testing.T) {
	d, _ := lab(t)
	u := must(d.NewUser(ctx, sys, UserOptions{Name: "spnuser", Password: "Passw0rd!spn"}))
	add := func(permissive bool) error {
		_, err := d.Modify(ctx, sys, u.DN, []Change{{Op: ChangeAdd, Attr: "servicePrincipalName", Values: [][]byte{[]byte("http/spn.example.test")}, Permissive: permissive}})
		return err
	}
	if err := add(false); err != nil {
		t.Fatal(err)
	}
	if err := add(false); !errors.Is(err, ErrValueExists) {
		t.Fatalf("a repeated SPN: %v", err)
	}
	if err := add(true); err != nil {
		t.Fatalf("a repeated SPN, permissive: %v", err)
	}
	del := func(permissive bool) error {
		_, err := d.Modify(ctx, sys, u.DN, []Change{{Op: ChangeDelete, Attr: "servicePrincipalName", Values: [][]byte{[]byte("http/none.example.test")}, Permissive: permissive}})
		return err
	}
	if err := del(false); err == nil {
		t.Fatal("deleting a missing SPN succeeded")
	}
	if err := del(true); err != nil {
		t.Fatalf("deleting a missing SPN, permissive: %v", err)
	}
	if n := must(d.Resolve(ctx, "spnuser")); len(n.SPNs) != 1 {
		t.Fatalf("SPNs %v", n.SPNs)
	}
}

// The domain object lists its well-known containers as AD does (DN-Binary values), the
// Managed Service Accounts container among the other well-known objects.
func TestWellKnownObjects(t *testing.T) {
	d, _ := lab(t)
	var wk, other []string
	err := d.Search(ctx, sys, Query{Base: d.Domain().BaseDN, Scope: ScopeBase, Select: Selection{All: true}}, func(m *Match) error {
		attrs, err := m.Attributes(nil)
		for _, a := range attrs {
			for _, v := range a.Values {
				switch a.Name {
				case "wellKnownObjects":
					wk = append(wk, string(v))
				case "otherWellKnownObjects":
					other = append(other, string(v))
				}
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	base := d.Domain().BaseDN
	for _, want := range []string{"B:32:A9D1CA15768811D1ADED00C04FD8D5CD:CN=Users," + base, "B:32:AA312825768811D1ADED00C04FD8D5CD:CN=Computers," + base,
		"B:32:A361B2FFFFD211D1AA4B00C04FD7D83A:OU=Domain Controllers," + base} {
		if !slices.Contains(wk, want) {
			t.Errorf("wellKnownObjects %v lacks %s", wk, want)
		}
	}
	if !slices.Equal(other, []string{"B:32:1EB93889E40C45DF9F0C64D23BBB6237:CN=Managed Service Accounts," + base}) {
		t.Errorf("otherWellKnownObjects %v", other)
	}
}

// A filter's DN values take the alternative forms too: samba-tool lists a group's
// members with (memberOf=<SID=…>), which the index and the per-object test both serve.
func TestAlternativeDNFormsInFilters(t *testing.T) {
	d, _ := lab(t)
	admins := must(d.Resolve(ctx, "Domain Admins"))
	count := func(f Filter) int {
		n := 0
		if err := d.Search(ctx, sys, Query{Base: d.Domain().BaseDN, Scope: ScopeSub, Filter: f}, func(*Match) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	want := count(Equal{Attr: "memberOf", Value: []byte(admins.DN)})
	if want == 0 {
		t.Fatal("Domain Admins has no members to find")
	}
	for _, form := range []string{"<SID=" + admins.SID + ">", "<GUID=" + admins.GUID.String() + ">"} {
		for _, f := range []Filter{Equal{Attr: "memberOf", Value: []byte(form)},
			Or{Equal{Attr: "primaryGroupID", Value: []byte("999")}, Equal{Attr: "memberOf", Value: []byte(form)}},    // indexed
			And{Equal{Attr: "memberOf", Value: []byte(form)}, Not{Equal{Attr: "description", Value: []byte("x")}}}} { // per object
			if got := count(f); got != want {
				t.Errorf("%v: %d matches, want %d", f, got, want)
			}
		}
	}
}
