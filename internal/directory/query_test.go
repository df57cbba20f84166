package directory

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
)

func names(t *testing.T, d *Directory, q Query) string {
	t.Helper()
	var out []string
	if err := d.Search(ctx, sys, q, func(m *Match) error { out = append(out, m.o.Name); return nil }); err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func TestSearch(t *testing.T) {
	d, _ := lab(t)
	must(d.NewGroup(ctx, sys, "Hosts", ScopeGlobal, ""))
	must(d.NewGroup(ctx, sys, "AllHosts", ScopeUniversal, ""))
	must(d.NewComputer(ctx, sys, ComputerOptions{Name: "WEB01"}))
	must(d.AddMember(ctx, sys, "Hosts", "WEB01$"))
	must(d.AddMember(ctx, sys, "AllHosts", "Hosts"))
	g := must(d.NewGMSA(ctx, sys, GMSAOptions{Name: "svc", DNSHostName: "svc.example.test", SPNs: []string{"http/svc.example.test"}, PrincipalsAllowed: []string{"Hosts"}}))
	base := d.Domain().BaseDN
	sub := func(f Filter) string { return names(t, d, Query{Base: base, Scope: ScopeSub, Filter: f}) }
	cases := []struct {
		f    Filter
		want string
	}{
		{Equal{"sAMAccountName", []byte("SVC$")}, "svc"},
		{Equal{"objectSid", []byte(g.SID)}, "svc"},
		{Equal{"objectSid", g.ObjectSID().Bytes()}, "svc"},
		{Equal{"servicePrincipalName", []byte("HTTP/svc.example.test")}, "svc"},
		{Equal{"objectClass", []byte("msDS-GroupManagedServiceAccount")}, "svc"},
		{Equal{"objectCategory", []byte("computer")}, "DC1,WEB01"},
		{And{Equal{"objectClass", []byte("computer")}, Not{Equal{"objectClass", []byte("msDS-GroupManagedServiceAccount")}}}, "DC1,WEB01"},
		{Extensible{RuleBitAnd, "userAccountControl", []byte("8192")}, "DC1"},
		{Extensible{RuleBitOr, "userAccountControl", []byte("8194")}, "DC1,krbtgt"},
		{Extensible{RuleInChain, "memberOf", []byte("CN=AllHosts,CN=Users," + base)}, "Hosts,WEB01"},
		{Extensible{RuleInChain, "member", []byte("CN=WEB01,CN=Computers," + base)}, "AllHosts,Hosts"},
		{Equal{"memberOf", []byte("cn=hosts,cn=users," + strings.ToLower(base))}, "WEB01"},
		{Substr{Attr: "sAMAccountName", Initial: []byte("web"), Final: []byte("$")}, "WEB01"},
		{And{Present{"msDS-ManagedPasswordId"}, Greater{"msDS-ManagedPasswordInterval", []byte("29")}, Less{"msDS-ManagedPasswordInterval", []byte("30")}}, "svc"},
		{Or{Equal{"cn", []byte("hosts")}, Equal{"name", []byte("allhosts")}}, "AllHosts,Hosts"},
		{Equal{"noSuchAttribute", []byte("x")}, ""},
		{Not{Equal{"noSuchAttribute", []byte("x")}}, ""}, // NOT undefined is undefined
		{Equal{"userAccountControl", []byte("notanumber")}, ""},
	}
	for _, c := range cases {
		if got := sub(c.f); got != c.want {
			t.Errorf("%#v: %q, want %q", c.f, got, c.want)
		}
	}
	// In-chain targets are resolved once per search and all remembered, however many
	// the filter names: the real one after 5 000 missing ones still counts, both ways.
	var ofGroups, ofMembers Or
	for i := range 5000 {
		ofGroups = append(ofGroups, Extensible{RuleInChain, "memberOf", []byte(fmt.Sprintf("CN=Missing%d,CN=Users,%s", i, base))})
		ofMembers = append(ofMembers, Extensible{RuleInChain, "member", []byte(fmt.Sprintf("CN=Nobody%d,CN=Users,%s", i, base))})
	}
	ofGroups = append(ofGroups, Extensible{RuleInChain, "memberOf", []byte("cn=allhosts,cn=users," + base)})
	ofMembers = append(ofMembers, Extensible{RuleInChain, "member", []byte("CN=WEB01,CN=Computers," + base)})
	if got := sub(ofGroups); got != "Hosts,WEB01" {
		t.Errorf("memberOf in-chain among 5 000 missing targets: %q", got)
	}
	if got := sub(ofMembers); got != "AllHosts,Hosts" {
		t.Errorf("member in-chain among 5 000 missing targets: %q", got)
	}
	if got := names(t, d, Query{Base: "CN=Users," + base, Scope: ScopeOne, Filter: Equal{"objectClass", []byte("group")}}); !strings.Contains(got, "Hosts") || strings.Contains(got, "Administrators") {
		t.Errorf("one-level: %s", got)
	}
	if got := names(t, d, Query{Base: "cn=users," + base, Scope: ScopeBase}); got != "Users" {
		t.Errorf("base: %s", got)
	}
	// Bases are matched as DNs: case and spaces around separators do not matter.
	spaced := "cn = users , " + strings.ReplaceAll(strings.ToLower(base), ",", " , ")
	if got := names(t, d, Query{Base: spaced, Scope: ScopeSub, Filter: Equal{"sAMAccountName", []byte("hosts")}}); got != "Hosts" {
		t.Errorf("sub under %q: %q", spaced, got)
	}
	if got := names(t, d, Query{Base: spaced, Scope: ScopeBase}); got != "Users" {
		t.Errorf("base %q: %q", spaced, got)
	}
	if err := d.Search(ctx, sys, Query{Base: "CN=Nope," + base, Scope: ScopeSub}, func(*Match) error { return nil }); !errors.Is(err, ErrNoSuchBase) {
		t.Errorf("missing base: %v", err)
	}
	v := &View{d: d, ctx: ctx, req: sys, o: g}
	// Without a search's budget (an entry's view), in-chain still resolves each way.
	hosts := must(d.Resolve(ctx, "Hosts"))
	if (Extensible{RuleInChain, "member", []byte("CN=WEB01,CN=Computers," + base)}).eval(&View{d: d, ctx: ctx, req: sys, o: hosts}) != fTrue ||
		(Extensible{RuleInChain, "memberOf", []byte("CN=AllHosts,CN=Users," + base)}).eval(&View{d: d, ctx: ctx, req: sys, o: hosts}) != fTrue {
		t.Error("in-chain without a budget")
	}
	if oc := v.Get("objectClass"); len(oc) != 6 || string(oc[5]) != "msDS-GroupManagedServiceAccount" {
		t.Errorf("objectClass %q", oc)
	}
	if got := string(v.Get("objectCategory")[0]); got != "CN=ms-DS-Group-Managed-Service-Account,CN=Schema,CN=Configuration,"+base {
		t.Error(got)
	}
	if got := string(v.Get("sAMAccountType")[0]); got != "805306369" {
		t.Error(got)
	}
}
