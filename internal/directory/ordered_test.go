package directory

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"gmsa/internal/ntsec"
)

// An ordered search hands out exactly the matches of the same unordered search, in the
// attribute's order (case-insensitive, then GUID; those without a value the requester
// may read last), whether its plan is sorted or the index walked, and resumed from any
// match's cursor it continues with the next one — for every ordered attribute, filters
// with few and with many candidates, a base below the domain, and a requester from whom
// one object's value is hidden.
func TestOrderedSearchAgreesWithSorting(t *testing.T) {
	d, _ := lab(t)
	ou := must(d.NewContainer(ctx, sys, ClassOU, "Sorted", "", ""))
	for i := range 40 {
		name := fmt.Sprintf("%c%s%02d", "bBaAcC"[i%6], []string{"ob", "lice", "arol"}[i%3], 40-i)
		opt := UserOptions{Name: name, Password: "Ordered-Pass-123!"}
		if i%2 == 0 {
			opt.Container = ou.DN
		}
		if i%5 == 0 {
			opt.UPN = name + "@example.test"
		}
		must(d.NewUser(ctx, sys, opt))
	}
	must(d.NewUser(ctx, sys, UserOptions{Name: "reader", Password: "Reader-Pass-123!"}))
	reader := &Requester{Token: must(d.TokenFor(ctx, "reader")), Auth: AuthKerberos, Protection: ProtectionTLS, Remote: "test"}
	// The reader may not read one user's sAMAccountName: for it that user has none.
	hidden := must(d.Resolve(ctx, "aarol38"))
	sd := must(ntsec.ParseSecurityDescriptor(must(d.readSD(ctx, sys, hidden, sdDACL))))
	deny := must(ntsec.ParseSDDL("D:(OD;;RP;3e0abfd0-126a-11d0-a060-00aa006c33ed;;"+must(d.Resolve(ctx, "reader")).SID+")", d.sid))
	sd.DACL.ACEs = append(deny.DACL.ACEs, sd.DACL.ACEs...)
	must(d.Modify(ctx, sys, hidden.DN, []Change{{Op: ChangeReplace, Attr: "nTSecurityDescriptor", Values: [][]byte{sd.Bytes()}, SDFlags: sdDACL}}))

	type hit struct{ cursor, guid string }
	run := func(req *Requester, q Query) ([]hit, error) {
		var out []hit
		err := d.Search(ctx, req, q, func(m *Match) error {
			out = append(out, hit{m.Cursor(), m.GUID().String()})
			return nil
		})
		return out, err
	}
	walked := false
	defer func(n, b int) { orderedSortAt, orderedBatch = n, b }(orderedSortAt, orderedBatch)
	for _, sortAt := range []int{orderedSortAt, 0} { // sorted where few, and always walked (in batches of 3)
		orderedSortAt, orderedBatch = sortAt, 3
		for _, attr := range []string{"sAMAccountName", "cn", "name", "userPrincipalName", "dNSHostName"} {
			for _, f := range []Filter{
				Equal{Attr: "objectClass", Value: []byte("user")},    // many candidates: the index is walked
				Substr{Attr: "sAMAccountName", Initial: []byte("b")}, // no index: walked, tested on each
				Or{Equal{Attr: "sAMAccountName", Value: []byte("bob40")}, Equal{Attr: "sAMAccountName", Value: []byte("aarol38")}, Equal{Attr: "sAMAccountName", Value: []byte("Blice39")}}, // few: sorted
				nil,
			} {
				for _, base := range []string{"DC=example,DC=test", ou.DN} {
					for _, req := range []*Requester{sys, reader} {
						what := fmt.Sprintf("%s by %s under %s as %s", f, attr, base, req.Name())
						plain, err := run(req, Query{Base: base, Scope: ScopeSub, Filter: f})
						if err != nil {
							t.Fatal(err)
						}
						// The reference: the plain matches sorted by their cursors.
						want := map[string]string{}
						q := Query{Base: base, Scope: ScopeSub, Filter: f, OrderBy: attr}
						got, err := run(req, q)
						if err != nil {
							t.Fatalf("%s: %v", what, err)
						}
						for _, h := range got {
							want[h.guid] = h.cursor
						}
						if len(got) != len(plain) || len(want) != len(plain) {
							t.Fatalf("%s: %d ordered, %d distinct, %d unordered", what, len(got), len(want), len(plain))
						}
						for _, h := range plain {
							if _, ok := want[h.guid]; !ok {
								t.Fatalf("%s: %s missing from the ordered search", what, h.guid)
							}
						}
						if !slices.IsSortedFunc(got, func(a, b hit) int { return strings.Compare(a.cursor, b.cursor) }) {
							t.Fatalf("%s: not in order: %v", what, got)
						}
						for i, h := range got {
							v := &View{d: d, ctx: ctx, req: req, o: must(d.byGUID(ctx, h.guid))}
							if pos := orderPosition(v, strings.ToLower(attr)); pos != h.cursor {
								t.Fatalf("%s: cursor %q, the object's position %q", what, h.cursor, pos)
							}
							if i%7 != 0 {
								continue
							}
							q.After = h.cursor
							rest, err := run(req, q)
							if err != nil || !slices.Equal(rest, got[i+1:]) {
								t.Fatalf("%s: resumed after %d: %v, %d of %d", what, i, err, len(rest), len(got)-i-1)
							}
						}
					}
				}
			}
		}
		walked = walked || sortAt == 0
	}
	if !walked {
		t.Fatal("the walk was not tried")
	}
	// The hidden value sorts last for the reader, in its place for SYSTEM.
	q := Query{Base: "DC=example,DC=test", Scope: ScopeSub, Filter: Equal{Attr: "objectClass", Value: []byte("user")}, OrderBy: "sAMAccountName"}
	mine, _ := run(reader, q)
	if last := mine[len(mine)-1]; last.guid != hidden.GUID.String() || !strings.HasPrefix(last.cursor, "2") {
		t.Fatalf("the user whose name the reader may not read is not last for it: %v", last)
	}
	if _, err := run(sys, Query{Base: "DC=example,DC=test", Scope: ScopeSub, OrderBy: "description"}); err == nil {
		t.Fatal("ordered by an attribute without an ordered index")
	}
}
