package directory

import (
	"maps"
	"slices"
	"testing"

	"gmsa/internal/ntsec"
)

// Reads follow the security descriptors: an authenticated user reads what AD's default
// descriptors grant; an ACE that denies it one attribute of an object hides that
// attribute in results, filters and compare (only that one, only to that user); an ACE
// that denies it listing an OU hides the objects in it; root keys are invisible to it;
// a changed descriptor is in force for the next search.
func TestReadsFollowSecurityDescriptors(t *testing.T) {
	d, _ := lab(t)
	ou := must(d.NewContainer(ctx, sys, ClassOU, "Staff", "", ""))
	must(d.NewUser(ctx, sys, UserOptions{Name: "reader", Password: "Reader-Pass-123!"}))
	must(d.NewUser(ctx, sys, UserOptions{Name: "carol", Password: "Carol-Pass-123!", Container: ou.DN}))
	must(d.Modify(ctx, sys, "CN=carol,"+ou.DN, []Change{{Op: ChangeReplace, Attr: "description", Values: [][]byte{[]byte("payroll")}}}))
	reader := &Requester{Token: must(d.TokenFor(ctx, "reader")), Auth: AuthKerberos, Protection: ProtectionTLS, Remote: "test"}
	admin := &Requester{Token: must(d.TokenFor(ctx, "Administrator")), Auth: AuthKerberos, Protection: ProtectionTLS, Remote: "test"}

	search := func(req *Requester, base string, f Filter, attrs ...string) map[string][]string {
		t.Helper()
		out := map[string][]string{}
		err := d.Search(ctx, req, Query{Base: base, Scope: ScopeSub, Filter: f, Select: Selection{Names: attrs}}, func(m *Match) error {
			var names []string
			for _, a := range must(m.Attributes(nil)) {
				names = append(names, a.Name+"="+string(a.Values[0]))
			}
			out[m.DN()] = names
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	carol := "CN=carol," + ou.DN
	byDescription := Equal{Attr: "description", Value: []byte("payroll")}
	if got := search(reader, ou.DN, byDescription, "description", "sAMAccountName"); !slices.Equal(got[carol], []string{"description=payroll", "sAMAccountName=carol"}) {
		t.Fatalf("by default a user reads another's description: %v", got)
	}

	readerSID := must(d.Resolve(ctx, "reader")).SID
	const description = "bf967950-0de6-11d0-a285-00aa003049e2"
	deny := func(dn, sddl string) {
		t.Helper()
		cur := must(ntsec.ParseSecurityDescriptor(must(d.readSD(ctx, sys, must(d.Resolve(ctx, dn)), sdDACL))))
		add := must(ntsec.ParseSDDL("D:"+sddl, d.sid))
		cur.DACL.ACEs = append(add.DACL.ACEs, cur.DACL.ACEs...)
		must(d.Modify(ctx, sys, dn, []Change{{Op: ChangeReplace, Attr: "nTSecurityDescriptor", Values: [][]byte{cur.Bytes()}, SDFlags: sdDACL}}))
	}
	// An explicit deny on carol (an inherited one would come after her own descriptor's
	// grant of the General Information property set to Authenticated Users, and lose).
	deny(carol, "(OD;;RP;"+description+";;"+readerSID+")")
	if got := search(reader, ou.DN, byDescription, "description"); len(got) != 0 {
		t.Fatalf("a filter on an attribute the reader may not read matched: %v", got)
	}
	if got := search(reader, ou.DN, Equal{Attr: "sAMAccountName", Value: []byte("carol")}, "description", "sAMAccountName"); !slices.Equal(got[carol], []string{"sAMAccountName=carol"}) {
		t.Fatalf("the denied attribute in a result, or the others gone: %v", got)
	}
	if got := search(reader, ou.DN, Not{F: Present{Attr: "description"}}, "sAMAccountName"); len(got[carol]) != 1 {
		t.Fatalf("(!(description=*)) must match carol for the reader, for whom she has none: %v", got)
	}
	if got := search(admin, ou.DN, byDescription, "description"); !slices.Equal(got[carol], []string{"description=payroll"}) {
		t.Fatalf("the deny for one user hid the attribute from the administrator: %v", got)
	}
	if ok, err := d.Compare(ctx, reader, carol, "description", []byte("payroll")); ok || err != nil {
		t.Fatalf("compare of a denied attribute: %v %v", ok, err)
	}

	deny(ou.DN, "(D;;LC;;;"+readerSID+")")
	if got := search(reader, ou.DN, Present{Attr: "objectClass"}, "sAMAccountName"); len(got) != 1 || !slices.Contains(slices.Collect(maps.Keys(got)), ou.DN) {
		t.Fatalf("without listing the OU the reader sees only the OU itself: %v", got)
	}
	if got := search(admin, ou.DN, Present{Attr: "objectClass"}, "sAMAccountName"); len(got) != 2 {
		t.Fatalf("the administrator lists the OU: %v", got)
	}

	// Root keys: nothing of them, not even that they exist.
	must3(d.AddRootKey(ctx, sys, RootKeyOptions{Immediately: true}))
	if got := search(reader, d.domain.ConfigDN, Equal{Attr: "objectClass", Value: []byte("msKds-ProvRootKey")}, "msKds-CreateTime"); len(got) != 0 {
		t.Fatalf("a user found root keys: %v", got)
	}
	if got := search(admin, d.domain.ConfigDN, Equal{Attr: "objectClass", Value: []byte("msKds-ProvRootKey")}, "msKds-CreateTime"); len(got) != 2 {
		t.Fatalf("the administrator finds both root keys: %v", got)
	}
	// Not even their names: the container lists them to its administrators only; nor
	// the tombstones, which CN=Deleted Objects lists to Administrators only.
	if got := search(reader, d.domain.RootKeysDN(), nil); len(got) != 1 {
		t.Fatalf("a user lists the root keys' container: %v", got)
	}
	must(0, d.Remove(ctx, sys, "CN=carol,"+ou.DN, ""))
	deleted := func(req *Requester) (n int) {
		must(0, d.Search(ctx, req, Query{Base: "CN=Deleted Objects," + d.domain.BaseDN, Scope: ScopeOne, ShowDeleted: true}, func(*Match) error { n++; return nil }))
		return n
	}
	if deleted(reader) != 0 || deleted(admin) != 1 {
		t.Fatalf("tombstones listed: %d to a user, %d to the administrator", deleted(reader), deleted(admin))
	}
}

func must3[A, B any](a A, b B, err error) A {
	if err != nil {
		panic(err)
	}
	return a
}
