package admin_test

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"gmsa/internal/adclient"
	"gmsa/internal/admin"
	"gmsa/internal/directory"
	"gmsa/internal/ntsec"
	"gmsa/internal/servertest"
	"gmsa/internal/store/memory"
)

var ctx = context.Background()

// must returns v, failing the test (by panic) on an error.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// The same administrator's session runs against the data directory (Local) and, over
// LDAPS, against our server (LDAP): both implementations of Admin give the same answers.
func TestAdminImplementationsAgree(t *testing.T) {
	t.Run("local", func(t *testing.T) {
		back := ntsec.FileTimeFromTime(time.Now()) - 2*ntsec.TicksPerDay
		st := memory.New()
		p := must(directory.Provision(ctx, st, directory.ProvisionOptions{Realm: "EXAMPLE.TEST", RootKey: &back}, directory.Options{}))
		a := &admin.Local{Dir: p.Directory, Store: st}
		session(t, a, func(user, password string) admin.Admin { return a })
	})
	t.Run("ldap", func(t *testing.T) {
		s := servertest.Start(t, servertest.Options{})
		dial := func(user, password string) admin.Admin {
			c := must(adclient.Dial(adclient.Options{URL: "ldaps://" + s.LDAPS, User: user, Password: password, CAFile: s.CAFile}))
			t.Cleanup(func() { c.Close() })
			return &admin.LDAP{C: c, Now: time.Now, Rand: rand.Reader, User: user}
		}
		session(t, dial("Administrator@example.test", s.AdminPassword), dial)
		if !strings.Contains(s.Audit.String(), `"msg":"gMSA password read","principal":"reader"`) {
			t.Fatal("the password read over LDAP is not in the audit trail")
		}
	})
}

// session drives every Admin operation; as returns an Admin acting as another user.
func session(t *testing.T, a admin.Admin, as func(user, password string) admin.Admin) {
	dom := must(a.Domain(ctx))
	if dom.Realm != "EXAMPLE.TEST" || dom.BaseDN != "DC=example,DC=test" {
		t.Fatalf("domain %+v", dom)
	}
	keys := must(a.KDSList(ctx))
	if len(keys) != 1 {
		t.Fatalf("%d root keys", len(keys))
	}
	if err := a.KDSTest(ctx, keys[0].GUID); err != nil {
		t.Fatal(err)
	}
	if k := must(a.KDSExport(ctx, keys[0].GUID)); len(k.Data) != 64 {
		t.Fatalf("exported key data: %d bytes", len(k.Data))
	}
	added, warnings, err := a.KDSAdd(ctx, directory.RootKeyOptions{Immediately: true})
	if err != nil || len(warnings) == 0 {
		t.Fatalf("second root key: %v %v", warnings, err)
	}
	if got := must(a.KDSGet(ctx, added.GUID)); got.GUID != added.GUID || got.KDFHash == "" {
		t.Fatalf("root key %+v", got)
	}
	must(struct{}{}, a.KDSRemove(ctx, added.GUID))

	_, keytab, err := a.ComputerNew(ctx, directory.ComputerOptions{Name: "WEB01"})
	if err != nil || len(keytab) == 0 {
		t.Fatalf("computer new: %d keys, %v", len(keytab), err)
	}
	must(a.GroupNew(ctx, "Web Hosts", directory.ScopeGlobal, "hosts of the web farm"))
	must(a.UserNew(ctx, directory.UserOptions{Name: "reader", Password: "Reader-Pass-1!"}))
	must(a.GroupAddMember(ctx, "Web Hosts", "WEB01$"))
	g := must(a.GroupAddMember(ctx, "Web Hosts", "reader"))
	members := strings.ToLower(strings.ReplaceAll(strings.Join(g.Members, ","), "$", "")) // LDAP names members by cn, Local by sAMAccountName
	if members != "web01,reader" && members != "reader,web01" {
		t.Fatalf("members %v", g.Members)
	}
	svc := must(a.AccountNew(ctx, directory.GMSAOptions{Name: "svc", DNSHostName: "svc.example.test", PrincipalsAllowed: []string{"Web Hosts"},
		SPNs: []string{"http/svc.example.test"}}))
	if svc.SAMAccountName != "svc$" || len(svc.PrincipalsAllowed) != 1 {
		t.Fatalf("gMSA %+v", svc)
	}
	if dec := must(a.AccountTest(ctx, "svc", "WEB01$")); !dec.Granted {
		t.Fatalf("WEB01$: %+v", dec)
	}
	if dec := must(a.AccountTest(ctx, "svc", "Administrator")); dec.Granted {
		t.Fatalf("Administrator: %+v", dec)
	}
	desc := "the web farm's account"
	if e := must(a.AccountSet(ctx, "svc", directory.GMSAChanges{Description: &desc, AddSPNs: []string{"http/www.example.test"}})); e.Description != desc || len(e.SPNs) != 2 {
		t.Fatalf("after set: %+v", e)
	}
	blob, dec, err := as("reader@example.test", "Reader-Pass-1!").AccountPassword(ctx, "svc", "reader")
	if err != nil || !dec.Granted || len(blob) == 0 {
		t.Fatalf("password read as reader: %v %+v %v", len(blob), dec, err)
	}
	must(a.UserSetPassword(ctx, "reader", "Reader-Pass-2!"))
	must(as("reader@example.test", "Reader-Pass-2!").Domain(ctx))
	must(a.Unlock(ctx, "reader"))
	users := must(a.List(ctx, directory.ClassUser))
	if !strings.Contains(names(users), "reader") {
		t.Fatalf("users: %s", names(users))
	}
	must(a.GroupRemoveMember(ctx, "Web Hosts", "reader"))
	must(struct{}{}, a.Remove(ctx, "reader", directory.ClassUser))
	if _, err := a.Get(ctx, "reader", directory.ClassUser); err == nil {
		t.Fatal("removed user still found")
	}
	if e := must(a.Get(ctx, "svc", directory.ClassGMSA)); e.DNSHostName != "svc.example.test" {
		t.Fatalf("%+v", e)
	}
}

func names(es []admin.Entry) string {
	var n []string
	for _, e := range es {
		n = append(n, e.SAMAccountName)
	}
	return strings.Join(n, ",")
}
