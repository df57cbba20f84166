package directory

import (
	"errors"
	"strings"
	"testing"
	"time"

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
