package ldapserver_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"

	"gmsa/internal/directory"
	"gmsa/internal/servertest"
)

// The controls AD tools send: server-side sort (ascending, descending, paged, with its
// response), domain scope, search options and lazy commit accepted, permissive modify
// turning a repeated add and a missing delete into successes; an unknown critical
// control is refused on searches, writes and compares alike, an unknown non-critical one
// ignored. The RootDSE lists what is honoured.
func TestControls(t *testing.T) {
	s := setup(t, servertest.Options{})
	for _, n := range []string{"carol", "alice", "bob", "erin", "dave"} {
		must(s.Dir.NewUser(ctx, directory.LocalSystem(), directory.UserOptions{Name: n, Password: "Passw0rd!" + n}))
	}
	c := dialTLS(t, s)
	if err := c.Bind("Administrator@example.test", s.AdminPassword); err != nil {
		t.Fatal(err)
	}
	dse := must(c.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", []string{"supportedControl"}, nil)))
	for _, oid := range []string{"1.2.840.113556.1.4.319", "1.2.840.113556.1.4.473", "1.2.840.113556.1.4.1339", "1.2.840.113556.1.4.1340",
		"1.2.840.113556.1.4.619", "1.2.840.113556.1.4.1413"} {
		if !slices.Contains(dse.Entries[0].GetAttributeValues("supportedControl"), oid) {
			t.Errorf("supportedControl lacks %s", oid)
		}
	}

	names := func(reverse bool, paging uint32) []string {
		t.Helper()
		sortCtl := ldap.NewControlServerSideSortingWithSortKeys([]*ldap.SortKey{{AttributeType: "sAMAccountName", Reverse: reverse}})
		req := ldap.NewSearchRequest("CN=Users,DC=example,DC=test", ldap.ScopeSingleLevel, 0, 0, 0, false, "(objectClass=user)",
			[]string{"sAMAccountName"}, []ldap.Control{sortCtl})
		var r *ldap.SearchResult
		var err error
		if paging > 0 {
			r, err = c.SearchWithPaging(req, paging)
		} else {
			r, err = c.Search(req)
		}
		if err != nil {
			t.Fatal(err)
		}
		if paging == 0 {
			resp, ok := ldap.FindControl(r.Controls, "1.2.840.113556.1.4.474").(*ldap.ControlServerSideSortingResult)
			if !ok || resp.Result != 0 {
				t.Fatalf("no successful sort response: %v", r.Controls)
			}
		}
		var out []string
		for _, e := range r.Entries {
			out = append(out, strings.ToLower(e.GetAttributeValue("sAMAccountName")))
		}
		return out
	}
	up := names(false, 0)
	if !slices.IsSorted(up) || len(up) < 5 || !slices.Contains(up, "alice") {
		t.Fatalf("ascending: %v", up)
	}
	down := names(true, 0)
	rev := slices.Clone(up)
	slices.Reverse(rev)
	if !slices.Equal(down, rev) {
		t.Fatalf("descending %v is not %v reversed", down, up)
	}
	if paged := names(false, 2); !slices.Equal(paged, up) {
		t.Fatalf("sorted in pages of 2: %v, want %v", paged, up)
	}
	// A size limit keeps only the first keys while matches arrive: the same first two,
	// then sizeLimitExceeded.
	for _, reverse := range []bool{false, true} {
		sortCtl := ldap.NewControlServerSideSortingWithSortKeys([]*ldap.SortKey{{AttributeType: "sAMAccountName", Reverse: reverse}})
		r, err := c.Search(ldap.NewSearchRequest("CN=Users,DC=example,DC=test", ldap.ScopeSingleLevel, 0, 2, 0, false, "(objectClass=user)",
			[]string{"sAMAccountName"}, []ldap.Control{sortCtl}))
		want := up[:2]
		if reverse {
			want = rev[:2]
		}
		if code(err) != ldap.LDAPResultSizeLimitExceeded || r == nil || len(r.Entries) != 2 ||
			strings.ToLower(r.Entries[0].GetAttributeValue("sAMAccountName")) != want[0] || strings.ToLower(r.Entries[1].GetAttributeValue("sAMAccountName")) != want[1] {
			t.Fatalf("sorted with size limit 2 (reverse %v): %v %v, want %v", reverse, r, err, want)
		}
	}

	accepted := []ldap.Control{
		&ldap.ControlString{ControlType: "1.2.840.113556.1.4.1339", Criticality: true},
		&ldap.ControlString{ControlType: "1.2.840.113556.1.4.1340", Criticality: true, ControlValue: "\x30\x03\x02\x01\x01"},
		&ldap.ControlString{ControlType: "1.2.3.4.5", Criticality: false},
	}
	if _, err := c.Search(ldap.NewSearchRequest("DC=example,DC=test", ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", []string{"1.1"}, accepted)); err != nil {
		t.Fatalf("domain scope, search options and an unknown non-critical control: %v", err)
	}
	unknown := []ldap.Control{&ldap.ControlString{ControlType: "1.2.3.4.5", Criticality: true}}
	if _, err := c.Search(ldap.NewSearchRequest("DC=example,DC=test", ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", nil, unknown)); code(err) != ldap.LDAPResultUnavailableCriticalExtension {
		t.Fatalf("search with an unknown critical control: %v", err)
	}

	group := "CN=Web Hosts,CN=Users,DC=example,DC=test"
	member := "CN=websvc,CN=Users,DC=example,DC=test"
	modify := func(op string, ctls ...ldap.Control) error {
		m := ldap.NewModifyRequest(group, ctls)
		if op == "add" {
			m.Add("member", []string{member})
		} else {
			m.Delete("member", []string{"CN=alice,CN=Users,DC=example,DC=test"})
		}
		return c.Modify(m)
	}
	if err := modify("add"); code(err) != ldap.LDAPResultEntryAlreadyExists && code(err) != ldap.LDAPResultAttributeOrValueExists {
		t.Fatalf("adding a member twice: %v", err)
	}
	permissive := &ldap.ControlString{ControlType: "1.2.840.113556.1.4.1413", Criticality: true}
	lazy := &ldap.ControlString{ControlType: "1.2.840.113556.1.4.619", Criticality: true}
	if err := modify("add", permissive, lazy); err != nil {
		t.Fatalf("a permissive add of a member already there: %v", err)
	}
	if err := modify("delete"); code(err) == 0 || code(err) == 0xffff {
		t.Fatalf("deleting a member that is not there: %v", err)
	}
	if err := modify("delete", permissive); err != nil {
		t.Fatalf("a permissive delete of a member that is not there: %v", err)
	}
	if err := modify("add", unknown...); code(err) != ldap.LDAPResultUnavailableCriticalExtension {
		t.Fatalf("modify with an unknown critical control: %v", err)
	}
	sortOnModify := &ldap.ControlString{ControlType: "1.2.840.113556.1.4.473", Criticality: true}
	if err := modify("add", sortOnModify); code(err) != ldap.LDAPResultUnavailableCriticalExtension {
		t.Fatalf("a search control on a modify: %v", err)
	}
	if ok, err := c.Compare(group, "cn", "Web Hosts"); err != nil || !ok {
		t.Fatalf("compare: %v %v", ok, err)
	}
}

// The extended DN control: the entry's DN and its member values carry <GUID=…> and
// <SID=…>, in hex by default and as strings with flag 1.
func TestExtendedDNControl(t *testing.T) {
	s := setup(t, servertest.Options{})
	c := dialTLS(t, s)
	if err := c.Bind("Administrator@example.test", s.AdminPassword); err != nil {
		t.Fatal(err)
	}
	websvc := must(s.Dir.Resolve(ctx, "websvc"))
	group := must(s.Dir.Resolve(ctx, "Web Hosts"))
	for _, tc := range []struct {
		value      string
		guid, sid  string
		memberGUID string
	}{
		{"", hexOf(group.GUID[:]), hexOf(group.ObjectSID().Bytes()), hexOf(websvc.GUID[:])},
		{"\x30\x03\x02\x01\x00", hexOf(group.GUID[:]), hexOf(group.ObjectSID().Bytes()), hexOf(websvc.GUID[:])},
		{"\x30\x03\x02\x01\x01", group.GUID.String(), group.SID, websvc.GUID.String()},
	} {
		ctl := &ldap.ControlString{ControlType: "1.2.840.113556.1.4.529", Criticality: true, ControlValue: tc.value}
		r, err := c.Search(ldap.NewSearchRequest(group.DN, ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", []string{"member"}, []ldap.Control{ctl}))
		if err != nil {
			t.Fatal(err)
		}
		want := "<GUID=" + tc.guid + ">;<SID=" + tc.sid + ">;" + group.DN
		if r.Entries[0].DN != want {
			t.Errorf("entry DN %q, want %q", r.Entries[0].DN, want)
		}
		if m := r.Entries[0].GetAttributeValue("member"); !strings.HasPrefix(m, "<GUID="+tc.memberGUID+">;<SID=") || !strings.HasSuffix(m, ";"+websvc.DN) {
			t.Errorf("member %q", m)
		}
	}
}

func hexOf(b []byte) string { return fmt.Sprintf("%x", b) }

// The attribute scoped query: a group's members that match the filter, with the
// attributes asked; a scope other than base, or an attribute without DNs, answers no
// entries and says why in the response control.
func TestAttributeScopedQuery(t *testing.T) {
	s := setup(t, servertest.Options{})
	must(s.Dir.NewUser(ctx, directory.LocalSystem(), directory.UserOptions{Name: "second", Password: "Passw0rd!second"}))
	must(s.Dir.AddMember(ctx, directory.LocalSystem(), "Web Hosts", "second"))
	c := dialTLS(t, s)
	if err := c.Bind("Administrator@example.test", s.AdminPassword); err != nil {
		t.Fatal(err)
	}
	asq := func(attr string, scope int, filter string) (*ldap.SearchResult, int64) {
		t.Helper()
		value := string([]byte{0x30, byte(len(attr) + 2), 0x04, byte(len(attr))}) + attr
		ctl := &ldap.ControlString{ControlType: "1.2.840.113556.1.4.1504", Criticality: true, ControlValue: value}
		r, err := c.Search(ldap.NewSearchRequest("CN=Web Hosts,CN=Users,DC=example,DC=test", scope, 0, 0, 0, false, filter, []string{"sAMAccountName"}, []ldap.Control{ctl}))
		if err != nil {
			t.Fatal(err)
		}
		resp := ldap.FindControl(r.Controls, "1.2.840.113556.1.4.1504")
		if resp == nil {
			t.Fatal("no ASQ response control")
		}
		p, err := ber.DecodePacketErr([]byte(resp.(*ldap.ControlString).ControlValue))
		if err != nil || len(p.Children) != 1 {
			t.Fatalf("ASQ response %q", resp.(*ldap.ControlString).ControlValue)
		}
		code, _ := p.Children[0].Value.(int64)
		return r, code
	}
	r, code := asq("member", ldap.ScopeBaseObject, "(objectClass=user)")
	var names []string
	for _, e := range r.Entries {
		names = append(names, e.GetAttributeValue("sAMAccountName"))
	}
	slices.Sort(names)
	if code != 0 || !slices.Equal(names, []string{"second", "websvc"}) {
		t.Fatalf("members: %v (code %d)", names, code)
	}
	if r, _ := asq("member", ldap.ScopeBaseObject, "(sAMAccountName=second)"); len(r.Entries) != 1 {
		t.Fatalf("the filter is not applied: %d entries", len(r.Entries))
	}
	if r, code := asq("member", ldap.ScopeWholeSubtree, "(objectClass=*)"); len(r.Entries) != 0 || code != ldap.LDAPResultUnwillingToPerform {
		t.Fatalf("subtree scope: %d entries, code %d", len(r.Entries), code)
	}
	if r, code := asq("description", ldap.ScopeBaseObject, "(objectClass=*)"); len(r.Entries) != 0 || code != ldap.LDAPResultInvalidAttributeSyntax {
		t.Fatalf("a non-DN attribute: %d entries, code %d", len(r.Entries), code)
	}
}
