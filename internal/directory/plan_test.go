package directory

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gmsa/internal/ntsec"
	"gmsa/internal/store"
	"gmsa/internal/store/bolt"
	"gmsa/internal/store/etcd"
	"gmsa/internal/store/etcd/etcdtest"
	"gmsa/internal/store/memory"
)

// backends opens an empty store of each kind: the planner and the indexes are the
// directory's, but they stand on each backend's Scan and batches.
func backends(t *testing.T) map[string]func(t *testing.T) store.Store {
	return map[string]func(t *testing.T) store.Store{
		"memory": func(*testing.T) store.Store { return memory.New() },
		"bolt": func(t *testing.T) store.Store {
			st, err := bolt.Open(filepath.Join(t.TempDir(), "gmsa.db"), bolt.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		},
		"etcd": func(t *testing.T) store.Store {
			cl := etcdtest.Start(t, 1)
			st, err := etcd.Open(ctx, etcd.Options{Endpoints: cl.Clients, Prefix: "example.test/", MaxOps: 512})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		},
	}
}

// populated provisions a domain on st with users, computers, groups with members, the
// Domain Controllers OU holding some of the users and a gMSA, with the object cache off so that every
// decode counts.
func populated(t *testing.T, st store.Store, opt Options) *Directory {
	t.Helper()
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	back := c.ft() - ntsec.TicksPerDay
	opt.Now, opt.Rand, opt.ObjectCache = c.now, seeded(7), -1
	p, err := Provision(ctx, st, ProvisionOptions{Realm: "example.test", NetBIOS: "EXAMPLE", RootKey: &back}, opt)
	if err != nil {
		t.Fatal(err)
	}
	d := p.Directory
	for i := range 60 {
		container := ""
		if i%3 == 0 {
			container = "OU=Domain Controllers,DC=example,DC=test"
		}
		desc := fmt.Sprintf("team %d", i%5)
		if i == 17 {
			desc = "Ünïcode désk"
		}
		must(d.NewUser(ctx, sys, UserOptions{Name: fmt.Sprintf("user%02d", i), Container: container, Description: desc}))
	}
	for i := range 6 {
		must(d.NewComputer(ctx, sys, ComputerOptions{Name: fmt.Sprintf("HOST%d", i)}))
	}
	must(d.NewGroup(ctx, sys, "Web Hosts", ScopeGlobal, "hosts"))
	must(d.NewGroup(ctx, sys, "Admins Two", ScopeGlobal, ""))
	for _, m := range []string{"HOST1$", "HOST2$", "user05"} {
		must(d.AddMember(ctx, sys, "Web Hosts", m))
	}
	must(d.AddMember(ctx, sys, "Admins Two", "Web Hosts"))
	must(d.NewGMSA(ctx, sys, GMSAOptions{Name: "svc", DNSHostName: "svc.example.test", PrincipalsAllowed: []string{"Web Hosts"}}))
	return d
}

// oracle answers a search by evaluating the filter on every object, as a reference.
func oracle(t *testing.T, d *Directory, q Query) []string {
	t.Helper()
	base := normDN(must(d.ResolveDN(ctx, q.Base)))
	var out []string
	for _, kv := range must(d.st.List(ctx, "obj/")) {
		o := must(decode(kv))
		ndn := normDN(o.DN)
		in := ndn == base && q.Scope != ScopeOne
		if q.Scope == ScopeOne {
			_, parent, _ := strings.Cut(ndn, ",")
			in = parent == base
		} else if q.Scope == ScopeSub {
			in = under(ndn, base, true)
		}
		v := &View{d: d, ctx: ctx, req: sys, o: o}
		if in && (!o.Deleted || q.ShowDeleted) && (q.Filter == nil || q.Filter.eval(v) == fTrue) {
			out = append(out, o.GUID.String())
		}
	}
	slices.Sort(out)
	return out
}

func run(t *testing.T, d *Directory, q Query) (guids []string, decodes uint64) {
	t.Helper()
	before := d.decodes.Load()
	if err := d.Search(ctx, sys, q, func(m *Match) error { guids = append(guids, m.GUID().String()); return nil }); err != nil {
		t.Fatalf("search %+v: %v", q, err)
	}
	return guids, d.decodes.Load() - before
}

type planCase struct {
	base    string
	scope   Scope
	filter  Filter
	indexed bool // an index can serve it: no more decodes than results
}

func planCases() []planCase {
	eq := func(a, v string) Filter { return Equal{Attr: a, Value: []byte(v)} }
	const dom, staff, users = "DC=example,DC=test", "OU=Domain Controllers,DC=example,DC=test", "CN=Users,DC=example,DC=test"
	return []planCase{
		{dom, ScopeSub, eq("sAMAccountName", "USER07"), true},
		{dom, ScopeSub, And{eq("objectClass", "user"), eq("sAMAccountName", "user07")}, true},
		{dom, ScopeSub, And{eq("objectCategory", "person"), eq("cn", "user08")}, true},
		{dom, ScopeSub, Or{eq("sAMAccountName", "user01"), eq("sAMAccountName", "user02"), eq("dNSHostName", "host3.example.test")}, true},
		{dom, ScopeSub, eq("objectClass", "computer"), true},
		{dom, ScopeSub, eq("objectCategory", "group"), true},
		{dom, ScopeSub, Substr{Attr: "sAMAccountName", Initial: []byte("user1")}, true},
		{dom, ScopeSub, Substr{Attr: "cn", Initial: []byte("HOST")}, true},
		{dom, ScopeSub, Present{Attr: "servicePrincipalName"}, true},
		{dom, ScopeSub, Present{Attr: "dNSHostName"}, true},
		{dom, ScopeSub, eq("member", "CN=HOST1,CN=Computers,DC=example,DC=test"), true},
		{dom, ScopeSub, eq("memberOf", "CN=Web Hosts,CN=Users,DC=example,DC=test"), true},
		{dom, ScopeSub, And{eq("objectClass", "user"), eq("memberOf", "CN=Web Hosts,CN=Users,DC=example,DC=test")}, true},
		{staff, ScopeOne, nil, true},
		{dom, ScopeOne, nil, true},
		{users, ScopeSub, Present{Attr: "objectClass"}, true},
		{staff, ScopeSub, eq("objectClass", "user"), true},
		{staff, ScopeSub, eq("sAMAccountName", "user03"), true},
		{dom, ScopeSub, eq("objectSid", "S-1-5-32-544"), true},
		{dom, ScopeSub, eq("userPrincipalName", "nobody@example.test"), true},
		{dom, ScopeSub, eq("sAMAccountType", "805306368"), true},
		{dom, ScopeSub, And{eq("sAMAccountType", " 805306369"), eq("primaryGroupID", "515")}, true},
		{dom, ScopeSub, eq("primaryGroupID", "x"), true},
		// samba-tool's group member lookup: each branch's own checks hold for it alone.
		{dom, ScopeSub, Or{And{eq("sAMAccountName", "user01"), eq("sAMAccountType", "805306368")},
			And{eq("sAMAccountName", "user01"), eq("objectClass", "group")},
			And{eq("sAMAccountType", "805306369"), Not{eq("objectCategory", "msDS-ManagedServiceAccount")}, eq("sAMAccountName", "user01$")}}, true},
		{dom, ScopeSub, And{eq("objectClass", "user"), Or{And{eq("sAMAccountName", "HOST1$"), eq("primaryGroupID", "515")},
			And{eq("sAMAccountName", "user02"), eq("primaryGroupID", "513")}}}, true},
		// Not served by an index: answers must still agree with the reference.
		{staff, ScopeSub, eq("sAMAccountName", "user04"), false}, // out of scope: read to find out
		{dom, ScopeSub, eq("description", "team 3"), false},
		{dom, ScopeSub, eq("description", "ünïcode DÉSK"), false},
		{dom, ScopeSub, Substr{Attr: "description", Any: [][]byte{[]byte("AM")}, Final: []byte("4")}, false},
		{dom, ScopeSub, Not{eq("description", "team 1")}, false},
		{dom, ScopeSub, Or{eq("description", "team 1"), eq("sAMAccountName", "HOST1$")}, false},
		{dom, ScopeSub, And{eq("objectClass", "user"), eq("description", "team 2")}, false},
		{dom, ScopeSub, Present{Attr: "description"}, false},
		{users, ScopeOne, eq("objectClass", "top"), false},
		{dom, ScopeSub, Greater{Attr: "uSNChanged", Value: []byte("1")}, false},
	}
}

// The planner's answers are the reference's on every backend, and a search an index
// can serve decodes no more objects than it returns.
func TestPlannerAgreesAndDecodesOnlyResults(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			if name == "etcd" && testing.Short() {
				t.Skip("etcd: not in -short")
			}
			d := populated(t, open(t), Options{})
			for _, c := range planCases() {
				q := Query{Base: c.base, Scope: c.scope, Filter: c.filter}
				got, decodes := run(t, d, q)
				want := oracle(t, d, q)
				if !slices.Equal(got, want) {
					t.Errorf("%s %v: got %d results, want %d", c.base, c.filter, len(got), len(want))
				}
				if c.indexed && decodes > uint64(len(got)) {
					t.Errorf("%s %v: %d decodes for %d results (plan: %s)", c.base, c.filter, decodes, len(got),
						d.planSearch(ctx, nil, orAll(c.filter), normDN(c.base), c.scope).explain)
				}
				// Paging: resuming after each result gives the rest.
				if len(got) > 1 {
					q.After = got[len(got)/2]
					rest, _ := run(t, d, q)
					if !slices.Equal(rest, got[len(got)/2+1:]) {
						t.Errorf("%v after %s: %d results, want %d", c.filter, q.After, len(rest), len(got)-len(got)/2-1)
					}
				}
			}
			// A small candidate limit pushes the planner to checks and scans: same answers.
			smallOpt := Options{ObjectCache: -1, MaxIndexCandidates: 2}
			smallOpt.defaults()
			small := newDirectory(d.st, smallOpt)
			small.domain, small.sid = d.domain, d.sid
			small.heavy = d.heavy
			for _, c := range planCases() {
				q := Query{Base: c.base, Scope: c.scope, Filter: c.filter}
				if got, want := must(searchGUIDs(small, q)), oracle(t, d, q); !slices.Equal(got, want) {
					t.Errorf("limit 2: %s %v: got %d results, want %d", c.base, c.filter, len(got), len(want))
				}
			}
		})
	}
}

func orAll(f Filter) Filter {
	if f == nil {
		return And{}
	}
	return f
}

func searchGUIDs(d *Directory, q Query) ([]string, error) {
	var out []string
	err := d.Search(ctx, sys, q, func(m *Match) error { out = append(out, m.GUID().String()); return nil })
	return out, err
}

// The plan says which index served a search, or that it scanned.
func TestPlanExplains(t *testing.T) {
	d := populated(t, memory.New(), Options{})
	for _, c := range []struct {
		f    Filter
		want string
	}{
		{Equal{Attr: "sAMAccountName", Value: []byte("user01")}, "sAMAccountName=user01: 1"},
		{Equal{Attr: "description", Value: []byte("x")}, "scan of every object"},
		{Substr{Attr: "cn", Initial: []byte("user1")}, "cn=user1*: 10"},
	} {
		if got := d.planSearch(ctx, nil, c.f, normDN(d.domain.BaseDN), ScopeSub).explain; !strings.Contains(got, c.want) {
			t.Errorf("plan of %v = %q, want it to say %q", c.f, got, c.want)
		}
	}
}

// The indexes are checked against the objects and rebuilt: missing, stale and
// wrong-valued entries are found and repaired, a unique name two objects claim is
// reported and left alone, and a store from an older layout is upgraded on open.
func TestIndexCheckAndRebuild(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			if name == "etcd" && testing.Short() {
				t.Skip("etcd: not in -short")
			}
			st := open(t)
			d := populated(t, st, Options{})
			if r := must(d.CheckIndexes(ctx)); !r.OK() || r.Objects < 70 || r.Entries < 5*r.Objects {
				t.Fatalf("fresh directory: %+v", r)
			}
			u := must(d.Resolve(ctx, "user07"))
			g := u.GUID.String()
			must(st.Apply(ctx, store.Delete(ixPrefix("name", "user07")+g), store.Delete(treeKey(normDN(u.DN))),
				store.Put(ixPrefix("name", "ghost")+g, []byte("cn=ghost")), store.Put("class/user/"+strings.Repeat("0", 36), nil),
				store.Put(classKey(ClassUser, g), []byte("cn=elsewhere"))))
			r := must(d.CheckIndexes(ctx))
			if r.Missing != 3 || r.Stale != 2 || r.OK() {
				t.Fatalf("after damage: %+v", r)
			}
			if got, _ := run(t, d, Query{Base: d.domain.BaseDN, Scope: ScopeSub, Filter: Equal{Attr: "cn", Value: []byte("user07")}}); len(got) != 0 {
				t.Fatal("the damaged index still finds the object: the test does not damage what it thinks")
			}
			if r := must(d.RebuildIndexes(ctx)); r.Missing != 3 || r.Stale != 2 || !r.OK() {
				t.Fatalf("rebuild: %+v", r)
			}
			if r := must(d.CheckIndexes(ctx)); !r.OK() || r.Missing+r.Stale != 0 {
				t.Fatalf("after rebuild: %+v", r)
			}
			if got, _ := run(t, d, Query{Base: d.domain.BaseDN, Scope: ScopeSub, Filter: Equal{Attr: "cn", Value: []byte("user07")}}); len(got) != 1 {
				t.Fatal("the rebuilt index does not find the object")
			}
			// A unique name held by another object is a conflict, never overwritten.
			other := must(d.Resolve(ctx, "user08")).GUID.String()
			must(st.Apply(ctx, store.Put(samKey("user07"), []byte(other))))
			if r := must(d.RebuildIndexes(ctx)); r.Conflicts != 1 || r.OK() {
				t.Fatalf("conflict: %+v", r)
			}
			must(st.Apply(ctx, store.Put(samKey("user07"), []byte(g))))
			// An older layout: no version, no ix/ or tree/ entries. Open rebuilds them.
			var ops []store.Op
			for _, p := range []string{"ix/", "tree/", "members/"} {
				for _, kv := range must(st.List(ctx, p)) {
					ops = append(ops, store.Delete(kv.Key))
				}
			}
			must(0, store.ApplyInBatches(ctx, st, append(ops, store.Delete(keyIndexVersion))))
			d2 := must(Open(ctx, st, Options{ObjectCache: -1}))
			if r := must(d2.CheckIndexes(ctx)); !r.OK() || r.Missing+r.Stale != 0 {
				t.Fatalf("after the upgrade on open: %+v", r)
			}
			if kv, err := st.Get(ctx, keyIndexVersion); err != nil || string(kv.Value) != indexVersion {
				t.Fatalf("index version after open: %q, %v", kv.Value, err)
			}
		})
	}
}

// Renaming, moving, changing and removing objects keeps every index entry in step.
func TestIndexesFollowChanges(t *testing.T) {
	d := populated(t, memory.New(), Options{})
	must(d.Rename(ctx, sys, "user09", "renamed09", "OU=Domain Controllers,DC=example,DC=test"))
	must(d.RemoveMember(ctx, sys, "Web Hosts", "HOST1$"))
	if err := d.Remove(ctx, sys, "HOST2$", ClassComputer); err != nil {
		t.Fatal(err)
	}
	must(d.Modify(ctx, sys, "CN=HOST3,CN=Computers,DC=example,DC=test", []Change{{Op: ChangeReplace, Attr: "dNSHostName", Values: [][]byte{[]byte("three.example.test")}},
		{Op: ChangeAdd, Attr: "servicePrincipalName", Values: [][]byte{[]byte("HTTP/three.example.test")}}}))
	if r := must(d.CheckIndexes(ctx)); !r.OK() || r.Missing+r.Stale != 0 {
		t.Fatalf("after changes: %+v", r)
	}
	for _, c := range planCases() {
		q := Query{Base: c.base, Scope: c.scope, Filter: c.filter}
		got, err := searchGUIDs(d, q)
		if err != nil && !errors.Is(err, ErrNoSuchBase) {
			t.Fatal(err)
		}
		if want := oracle(t, d, q); !slices.Equal(got, want) {
			t.Errorf("after changes: %s %v: got %d results, want %d", c.base, c.filter, len(got), len(want))
		}
	}
}

// The test on stored records is a necessary condition of the filter: whatever the
// values and the filter, an object it rules out is one the filter does not match; and
// no record, however damaged, makes it fail.
func FuzzRawFilter(f *testing.F) {
	f.Add("team 1", "user01", []byte("TEAM 1"), uint8(0), []byte(`{"guid":"x","description":"a\"b","spns":["a",1]}`))
	f.Add("Ünï", "HOST$", []byte("ün"), uint8(1), []byte(`,"sam":"`))
	f.Add("a,b", "x", []byte("a"), uint8(2), []byte(`,"spns":["a","b"`))
	d, _ := lab(f)
	f.Fuzz(func(t *testing.T, desc, sam string, value []byte, kind uint8, junk []byte) {
		for _, field := range []string{"description", "sam", "spns", "name", "class"} {
			(&rawValues{key: []byte(`,"` + field + `":`), equal: []string{"a"}}).may(junk)
			(&rawValues{key: []byte(`,"` + field + `":`), initial: "a", anys: []string{"b"}}).may(junk)
		}
		o := &Object{GUID: ntsec.GUID{1}, Class: ClassUser, DN: "CN=x,CN=Users,DC=example,DC=test", Name: sam, SAM: sam,
			Description: desc, SPNs: []string{desc, sam}}
		var filter Filter
		switch kind % 4 {
		case 0:
			filter = Equal{Attr: "description", Value: value}
		case 1:
			filter = Substr{Attr: "sAMAccountName", Initial: value}
		case 2:
			filter = Substr{Attr: "servicePrincipalName", Any: [][]byte{value}, Final: value[min(1, len(value)):]}
		default:
			filter = And{Equal{Attr: "cn", Value: value}, Present{Attr: "description"}}
		}
		raw := d.compileRaw(filter)
		if raw == nil || raw.may(o.encode()) {
			return
		}
		if filter.eval(&View{d: d, ctx: ctx, req: sys, o: o}) == fTrue {
			t.Fatalf("the record test ruled out an object %v matches: %s", filter, o.encode())
		}
	})
}

// An import adds users in batches with every index entry, refuses a name twice in one
// file or one already taken, and says how many it added.
func TestImportUsers(t *testing.T) {
	d, _ := lab(t)
	var users []UserOptions
	for i := range 2500 {
		users = append(users, UserOptions{Name: fmt.Sprintf("imp%d", i), Description: "imported", Container: map[bool]string{true: "OU=Domain Controllers,DC=example,DC=test"}[i%2 == 0]})
	}
	if n, err := d.ImportUsers(ctx, sys, users); n != 2500 || err != nil {
		t.Fatalf("import: %d, %v", n, err)
	}
	if r := must(d.CheckIndexes(ctx)); !r.OK() || r.Missing+r.Stale != 0 {
		t.Fatalf("indexes after the import: %+v", r)
	}
	o := must(d.Resolve(ctx, "imp2498"))
	if o.DN != "CN=imp2498,OU=Domain Controllers,DC=example,DC=test" || o.Enabled() || o.SID == "" {
		t.Fatalf("imported user: %+v", o)
	}
	if _, err := d.NewUser(ctx, sys, UserOptions{Name: "imp7"}); !errors.Is(err, ErrExists) {
		t.Fatalf("a name an import took: %v", err)
	}
	if n, err := d.ImportUsers(ctx, sys, []UserOptions{{Name: "new1"}, {Name: "new2"}, {Name: "NEW1"}}); n != 0 || !errors.Is(err, ErrExists) {
		t.Fatalf("a name twice in one import: %d, %v", n, err)
	}
	if _, err := d.Resolve(ctx, "new2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a refused batch left a user: %v", err)
	}
	if n, err := d.ImportUsers(ctx, sys, []UserOptions{{Name: "bad,name"}}); n != 0 || err == nil {
		t.Fatalf("an invalid name: %d, %v", n, err)
	}
	if _, err := d.ImportUsers(ctx, Anonymous(ProtectionNone, "127.0.0.1"), users[:1]); !errors.Is(err, ErrNeedBind) && !errors.Is(err, ErrAccessDenied) {
		t.Fatalf("an import by a requester who may not add users: %v", err)
	}
}

// A scan of the whole directory keeps objects only while the cache has room: the
// objects in use stay cached.
func TestScansDoNotFloodTheCache(t *testing.T) {
	d := populated(t, memory.New(), Options{})
	d.objCacheSize = 5
	hot := must(d.Resolve(ctx, "user01"))
	for range 3 {
		if _, err := searchGUIDs(d, Query{Base: d.domain.BaseDN, Scope: ScopeSub, Filter: Present{Attr: "description"}}); err != nil {
			t.Fatal(err)
		}
	}
	kv := must(d.st.Get(ctx, objKey(hot.GUID)))
	if d.cachedObject([]byte(kv.Key), kv.Rev) == nil || len(d.objCache) > 5 {
		t.Fatalf("after scans: the object in use was pushed out, or the cache holds %d > 5", len(d.objCache))
	}
}
