package directory

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"gmsa/internal/ntsec"
	"gmsa/internal/store"
)

// A deleted account becomes a tombstone: gone from searches and names, its name free
// for a new account, found under CN=Deleted Objects with show deleted (isDeleted,
// lastKnownParent, no keys), and removed for good once the tombstone lifetime ends.
func TestTombstones(t *testing.T) {
	d, c := lab(t)
	u := must(d.NewUser(ctx, sys, UserOptions{Name: "gone", Password: "Gone-Pass-1!"}))
	must(d.NewGroup(ctx, sys, "Team", ScopeGlobal, ""))
	must(d.AddMember(ctx, sys, "Team", "gone"))
	if err := d.Remove(ctx, sys, "gone", ClassUser); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Resolve(ctx, "gone"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the deleted user still resolves: %v", err)
	}
	if _, err := d.Resolve(ctx, u.SID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the deleted user's SID still resolves: %v", err)
	}
	if _, err := d.Resolve(ctx, u.GUID.String()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the deleted user's GUID still resolves: %v", err)
	}
	if g := must(d.Resolve(ctx, "Team")); len(g.Members) != 0 {
		t.Fatal("the deleted user is still a member")
	}
	find := func(show bool) []*Match {
		var out []*Match
		q := Query{Base: d.domain.BaseDN, Scope: ScopeSub, Filter: Equal{Attr: "objectGUID", Value: u.GUID[:]}, ShowDeleted: show,
			Select: Selection{All: true, Names: []string{"isDeleted", "lastKnownParent"}}}
		if err := d.Search(ctx, sys, q, func(m *Match) error { out = append(out, m); return nil }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if len(find(false)) != 0 {
		t.Fatal("a tombstone shows without the show deleted control")
	}
	ms := find(true)
	if len(ms) != 1 {
		t.Fatalf("show deleted: %d matches", len(ms))
	}
	attrs := map[string]string{}
	for _, a := range must(ms[0].Attributes(nil)) {
		attrs[a.Name] = string(a.Values[0])
	}
	if attrs["isDeleted"] != "TRUE" || attrs["lastKnownParent"] != d.domain.UsersDN() || attrs["sAMAccountName"] != "gone" ||
		!strings.HasPrefix(attrs["distinguishedName"], `CN=gone\0ADEL:`+u.GUID.String()+",CN=Deleted Objects,") || attrs["objectSid"] == "" {
		t.Fatalf("the tombstone: %v", attrs)
	}
	if _, ok := attrs["userAccountControl"]; ok {
		t.Fatal("the tombstone kept userAccountControl")
	}
	// Its names are free again; its SID is not reused (a new RID).
	again := must(d.NewUser(ctx, sys, UserOptions{Name: "gone", Password: "Gone-Pass-2!"}))
	if again.SID == u.SID {
		t.Fatal("a new account took the deleted one's SID")
	}
	// The tombstone lifetime ends: the garbage collection removes it.
	if n := must(d.CollectTombstones(ctx)); n != 0 {
		t.Fatalf("collected %d fresh tombstones", n)
	}
	c.add(DefaultTombstoneLifetime + time.Hour)
	if n := must(d.CollectTombstones(ctx)); n != 1 {
		t.Fatalf("collected %d, want 1", n)
	}
	if len(find(true)) != 0 {
		t.Fatal("the expired tombstone is still there")
	}
	if r := must(d.CheckIndexes(ctx)); !r.OK() || r.Missing+r.Stale != 0 {
		t.Fatalf("indexes after the collection: %+v", r)
	}
}

// smallBatches is a store that takes few operations per transaction, as etcd does.
type smallBatches struct {
	store.Store
	max int
}

func (s smallBatches) MaxBatch() int { return s.max }

// Moving an OU moves what is below it in one transaction: every name, index and
// membership follows; an OU never moves below itself; a store that cannot take the
// whole move in one transaction refuses it and nothing moves.
func TestMoveNonEmptyOU(t *testing.T) {
	d, _ := lab(t)
	ou := must(d.NewContainer(ctx, sys, ClassOU, "Branch", "", ""))
	inner := must(d.NewContainer(ctx, sys, ClassOU, "Desk", ou.DN, ""))
	must(d.NewUser(ctx, sys, UserOptions{Name: "ann", Password: "Ann-Pass-123!", Container: inner.DN}))
	must(d.NewGroup(ctx, sys, "Branch Staff", ScopeGlobal, ""))
	must(d.AddMember(ctx, sys, "Branch Staff", "ann"))

	if _, err := d.Rename(ctx, sys, ou.DN, "Branch", inner.DN); !errors.Is(err, ErrInvalid) {
		t.Fatalf("moving an OU below itself: %v", err)
	}
	small := must(Open(ctx, smallBatches{d.st, 8}, Options{}))
	if _, err := small.Rename(ctx, sys, ou.DN, "Office", ""); !errors.Is(err, ErrAdminLimit) {
		t.Fatalf("a move larger than the store's transactions: %v", err)
	}
	if must(d.Resolve(ctx, "ann")).DN != "CN=ann,OU=Desk,OU=Branch,DC=example,DC=test" {
		t.Fatal("a refused move moved something")
	}
	if _, err := d.Rename(ctx, sys, ou.DN, "Office", ""); err != nil {
		t.Fatal(err)
	}
	ann := must(d.Resolve(ctx, "ann"))
	if ann.DN != "CN=ann,OU=Desk,OU=Office,DC=example,DC=test" {
		t.Fatalf("ann is at %s", ann.DN)
	}
	if o, err := d.Resolve(ctx, "CN=ann,OU=Desk,OU=Office,DC=example,DC=test"); err != nil || o.GUID != ann.GUID {
		t.Fatalf("ann by her new DN: %v", err)
	}
	if _, err := d.Resolve(ctx, "OU=Desk,OU=Branch,DC=example,DC=test"); err == nil {
		t.Fatal("the old DN still resolves")
	}
	n := 0
	must(0, d.Search(ctx, sys, Query{Base: "OU=Office,DC=example,DC=test", Scope: ScopeSub, Filter: Equal{Attr: "memberOf", Value: []byte("CN=Branch Staff,CN=Users,DC=example,DC=test")}},
		func(m *Match) error { n++; return nil }))
	if n != 1 {
		t.Fatalf("ann's membership under the new name: %d", n)
	}
}

// A tombstone comes back to life (Reanimate, the LDAP modify AD's Restore-ADObject
// sends): with its GUID, SID and sAMAccountName, under its name again; a user disabled
// and without its keys; a gMSA whose password, once someone is allowed to read it, is
// the one it had before, since the root key derives it from the SID. Refused to a
// non-administrator, onto a name in use, and for an object that is not deleted.
func TestReanimate(t *testing.T) {
	d, _ := lab(t)
	admin := &Requester{Token: must(d.TokenFor(ctx, "Administrator")), Auth: AuthKerberos, Protection: ProtectionTLS, Remote: "test"}
	u := must(d.NewUser(ctx, sys, UserOptions{Name: "carol", Password: "Carol-Pass-123!"}))
	must(d.NewGroup(ctx, sys, "Readers", ScopeGlobal, ""))
	must(d.NewUser(ctx, sys, UserOptions{Name: "web", Password: "Web-Pass-123!"}))
	must(d.AddMember(ctx, sys, "Readers", "web"))
	g := must(d.NewGMSA(ctx, sys, GMSAOptions{Name: "svc", DNSHostName: "svc.example.test", PrincipalsAllowed: []string{"Readers"}}))
	web := &Requester{Token: must(d.TokenFor(ctx, "web")), Auth: AuthKerberos, Protection: ProtectionTLS, Remote: "test"}
	before, _, err := d.ReadPassword(ctx, web, "svc")
	if err != nil || before == nil {
		t.Fatalf("the password before: %v", err)
	}
	for _, o := range []*Object{u, g} {
		must(0, d.Remove(ctx, sys, o.DN, ""))
	}
	tomb := func(g ntsec.GUID) string { return must(d.byGUID(ctx, g.String())).DN }

	if _, err := d.Reanimate(ctx, web, tomb(u.GUID), u.DN); !errors.Is(err, ErrAccessDenied) {
		t.Fatalf("a user reanimating: %v", err)
	}
	if _, err := d.Reanimate(ctx, admin, tomb(u.GUID), "CN=Administrator,CN=Users,DC=example,DC=test"); err == nil {
		t.Fatal("reanimated onto a name in use")
	}
	back := must(d.Reanimate(ctx, admin, tomb(u.GUID), u.DN))
	if back.DN != u.DN || back.SID != u.SID || back.Deleted || back.UAC&UACAccountDisable == 0 || len(back.Keys) != 0 {
		t.Fatalf("carol is back as %+v", back)
	}
	if o := must(d.Resolve(ctx, "carol")); o.GUID != u.GUID {
		t.Fatal("carol's name does not find her")
	}
	if _, err := d.Reanimate(ctx, admin, u.DN, u.DN); !errors.Is(err, ErrNotFound) {
		t.Fatalf("reanimating a live object: %v", err)
	}

	svc := must(d.Reanimate(ctx, admin, tomb(g.GUID), g.DN))
	if blob, _, _ := d.ReadPassword(ctx, web, "svc"); blob != nil {
		t.Fatal("the reanimated gMSA's password is readable before anyone is allowed")
	}
	must(d.SetGMSA(ctx, sys, "svc", GMSAChanges{PrincipalsAllowed: &[]string{"Readers"}}))
	after, _, err := d.ReadPassword(ctx, web, "svc")
	if err != nil || !bytes.Equal(after, before) || svc.SID != g.SID {
		t.Fatalf("the reanimated gMSA's password differs from before: %v", err)
	}
}
