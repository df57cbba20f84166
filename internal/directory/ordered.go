package directory

import (
	"context"
	"errors"
	"slices"
	"strings"

	"gmsa/internal/store"
)

// Ordered searches serve the server-side sort control over large result sets without
// holding them ([RFC 2891] with [RFC 2696] paging): the matches are handed out in the
// order of an index whose keys are the attribute's values in lower case, so a page is
// read where the previous one stopped. Each match's place in that order (its cursor) is
//
//	"1" + the first value, in lower case + NUL + GUID   for a match with a value
//	"2" + GUID                                          for one without (last, [RFC 2891] 2)
//
// and a search resumes after a cursor. A value the requester may not read counts as no
// value, as everywhere.

// orderedIndex is an index whose keys give an attribute's values in order: under
// prefix, the lower-case value and, unless the index is unique (its value is then the
// GUID), NUL and the GUID.
type orderedIndex struct {
	prefix string
	unique bool
}

// orderedIndexes are the attributes an ordered search walks an index for.
var orderedIndexes = map[string]orderedIndex{
	"samaccountname":    {prefix: "sam/", unique: true},
	"name":              {prefix: "ix/name/"},
	"cn":                {prefix: "ix/name/"}, // cn is the name of every object that has a cn
	"userprincipalname": {prefix: "ix/upn/"},
	"dnshostname":       {prefix: "ix/dnshostname/"},
}

// CanOrder reports whether a search can hand its matches out ordered by attr.
func CanOrder(attr string) bool {
	_, ok := orderedIndexes[strings.ToLower(attr)]
	return ok
}

// OrderedAttributes names the attributes a search can be ordered by, sorted.
func OrderedAttributes() []string {
	var out []string
	for name := range orderedIndexes {
		if a, ok := lookupAttr(name); ok {
			out = append(out, a.Name)
		}
	}
	slices.Sort(out)
	return out
}

// orderedSortAt: a search whose plan has at most this many candidates sorts them
// instead of walking the whole index (a variable for the tests of both ways).
var orderedSortAt = 4096

// orderedBatch is how many index entries one read view of the walk covers (a variable
// for the tests).
var orderedBatch = 256

// orderPosition is the cursor of the object v is at, ordered by attr.
func orderPosition(v *View, attr string) string {
	vals := v.Get(attr)
	if len(vals) == 0 {
		return "2" + v.o.GUID.String()
	}
	return "1" + strings.ToLower(string(vals[0])) + "\x00" + v.o.GUID.String()
}

// searchOrdered is Search for q.OrderBy: a plan with few candidates is sorted; otherwise
// the attribute's index is walked from q.After, and then the matches without a value are
// searched in GUID order.
func (d *Directory) searchOrdered(ctx context.Context, req *Requester, q Query, plan planResult, raw rawTest, inScope func(string) bool,
	accept func(*Object) (bool, error), v *View, m *Match, fn func(*Match) error) error {
	attr := strings.ToLower(q.OrderBy)
	emit := func(o *Object, pos string) error {
		m.o, m.pos = o, pos
		return fn(m)
	}
	if plan.indexed && len(plan.set) <= orderedSortAt {
		type hit struct {
			pos string
			o   *Object
		}
		var hits []hit
		err := d.eachCandidate(ctx, plan, "", raw, inScope, func(o *Object) error {
			if ok, err := accept(o); err != nil || !ok {
				return err
			}
			if pos := orderPosition(v, attr); pos > q.After {
				hits = append(hits, hit{pos, o})
			}
			return nil
		})
		if err != nil {
			return err
		}
		slices.SortFunc(hits, func(a, b hit) int { return strings.Compare(a.pos, b.pos) })
		for _, h := range hits {
			if err := emit(h.o, h.pos); err != nil {
				return err
			}
		}
		return nil
	}
	if q.After == "" || q.After[0] == '1' {
		if err := d.walkOrdered(ctx, m.b, orderedIndexes[attr], q.After, raw, func(o *Object) error {
			if ok, err := accept(o); err != nil || !ok {
				return err
			}
			if pos := orderPosition(v, attr); pos[0] == '1' { // no value it may read: in the second part
				return emit(o, pos)
			}
			return nil
		}); err != nil {
			return err
		}
	}
	rest := q
	rest.OrderBy, rest.After = "", ""
	if strings.HasPrefix(q.After, "2") {
		rest.After = q.After[1:]
	}
	without := Filter(Not{F: Present{Attr: q.OrderBy}})
	if q.Filter != nil {
		without = And{q.Filter, without}
	}
	rest.Filter = without
	return d.Search(ctx, req, rest, func(m *Match) error {
		m.pos = "2" + m.o.GUID.String()
		return fn(m)
	})
}

// walkOrdered visits the objects of an ordered index after the cursor `after`, in the
// index's order, a batch of entries per read view; the entries skipped unread are
// charged to b a unit each, as a scan's are.
func (d *Directory) walkOrdered(ctx context.Context, b *budget, ix orderedIndex, after string, raw rawTest, visit func(*Object) error) error {
	from := ""
	if after != "" {
		value, guid, _ := strings.Cut(after[1:], "\x00")
		if from = ix.prefix + value; !ix.unique {
			from += "\x00" + guid
		}
	}
	type entry struct{ key, guid string }
	batch := make([]entry, 0, orderedBatch)
	for {
		batch = batch[:0]
		err := d.st.Scan(ctx, ix.prefix, from, func(k, val []byte, _ int64) bool {
			e := entry{key: string(k)}
			if ix.unique {
				e.guid = string(val)
			} else if i := strings.LastIndexByte(e.key, 0); i >= 0 {
				e.guid = e.key[i+1:]
			}
			batch = append(batch, e)
			return len(batch) < orderedBatch
		})
		if err != nil {
			return err
		}
		skipped := 0
		for _, e := range batch {
			kv, err := d.st.Get(ctx, "obj/"+e.guid)
			if errors.Is(err, store.ErrNotFound) {
				continue // removed since the index was read
			}
			if err != nil {
				return err
			}
			if raw != nil && !raw.may(kv.Value) {
				skipped++
				continue
			}
			o, err := d.candidate(kv, true)
			if err != nil {
				return err
			}
			if err := visit(o); err != nil {
				return err
			}
		}
		if len(batch) < orderedBatch {
			return nil
		}
		if !b.spend(skipped) {
			return b.err
		}
		from = batch[len(batch)-1].key
	}
}
