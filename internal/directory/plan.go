package directory

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"gmsa/internal/ntsec"
	"gmsa/internal/store"
)

// The query planner. A search's filter is turned into a candidate set from the
// indexes before any object is read: an equality on an indexed attribute is one key
// (unique names) or one key range (ix/, class/ and the link keys, whose keys end in
// the GUID); an initial substring or a presence test on an indexed attribute is a
// range of values; AND intersects, OR unites, and the scope below a container is the
// range of its tree/ keys. Every set is sorted by GUID, so a search hands out objects
// in one order and a paged search resumes after the last GUID it sent. A term whose
// set would pass Options.MaxIndexCandidates is not materialized: an exact one is then
// checked per candidate with one key lookup, others are left to the filter. With no
// set at all the search scans the objects, testing the filter on their stored form
// first (rawfilter.go) so that only objects that may match are decoded.

// candidate is an object an index names; ndn is its normalized DN when the index
// holds it (ix/ and class/ entries do), so that the scope is checked without reading it.
type candidate struct{ guid, ndn string }

// smallSet is a candidate set small enough that other terms are checked per candidate
// rather than materialized.
const smallSet = 64

// termKind orders a conjunction's terms by their expected cost.
type termKind uint8

const (
	termUnique termKind = iota // unique keys: at most one candidate each
	termExact                  // key ranges of one value: prefix+guid keys
	termRange                  // ranges of many values: initial substrings, presence
	termScope                  // the tree/ range of the search's scope
)

// term is what the indexes offer for one filter term.
type term struct {
	kind termKind
	what string // for the plan's explanation
	// unique: keys whose value is the GUID; guids: GUIDs known outright (objectGUID).
	unique []string
	guids  []string
	// exact: prefixes whose keys are prefix+GUID; class says they are class/ ranges.
	prefixes []string
	class    bool
	// range: prefixes over many keys, and how a key and value name the object.
	ranges []string
	guidOf func(key, value []byte) (guid, ndn string, ok bool)
}

// planner plans one search.
type planner struct {
	d       *Directory
	ctx     context.Context
	b       *budget
	limit   int
	explain []string
	checks  []*term // exact terms checked per candidate
}

// planResult is a search's candidates, or none (scan) when no index serves it.
type planResult struct {
	set     []candidate
	indexed bool
	checks  []*term
	explain string
}

// planSearch plans a search of filter within the scope of base (normalized).
func (d *Directory) planSearch(ctx context.Context, b *budget, f Filter, base string, scope Scope) planResult {
	p := &planner{d: d, ctx: ctx, b: b, limit: d.maxCandidates}
	conj := []Filter{f}
	if a, ok := f.(And); ok {
		conj = a
	}
	var extra []*term
	if t := d.scopeTerm(base, scope); t != nil {
		extra = append(extra, t)
	}
	set, ok := p.and(conj, extra)
	r := planResult{set: set, indexed: ok, checks: p.checks, explain: strings.Join(p.explain, "; ")}
	if !ok {
		r.explain = "scan of every object, filter tested on the stored form first"
		if len(p.explain) > 0 {
			r.explain += " (" + strings.Join(p.explain, "; ") + ")"
		}
	}
	return r
}

// scopeTerm is the tree/ range of a one-level search, or of a subtree below the
// naming context's root (the root's subtree is everything: no term).
func (d *Directory) scopeTerm(base string, scope Scope) *term {
	if scope == ScopeBase || scope == ScopeSub && strings.EqualFold(base, d.domain.BaseDN) {
		return nil
	}
	below := treeParent(base)
	t := &term{kind: termScope, what: "scope " + base, ranges: []string{below + "\x00"}, guidOf: uniqueGUID} // the children
	if scope == ScopeSub {
		t.ranges = append(t.ranges, below+",") // their descendants
		t.unique = []string{dnKey(base)}       // and the base itself
	}
	return t
}

// and intersects the sets of a conjunction's indexed terms (and extra terms), cheapest
// first; ok false when none gives a set within the limit.
func (p *planner) and(fs []Filter, extra []*term) ([]candidate, bool) {
	terms := extra
	var subsets [][]candidate
	for _, f := range fs {
		switch x := f.(type) {
		case And:
			if s, ok := p.and(x, nil); ok {
				subsets = append(subsets, s)
			}
		case Or:
			if s, ok := p.or(x); ok {
				subsets = append(subsets, s)
			}
		default:
			if t := p.d.termOf(p.ctx, f); t != nil {
				terms = append(terms, t)
			}
		}
	}
	slices.SortStableFunc(terms, func(a, b *term) int { // by kind; a class, usually broad, after other exact terms
		return cmp.Or(cmp.Compare(a.kind, b.kind), cmp.Compare(boolRank(a.class), boolRank(b.class)))
	})
	var best []candidate
	found := false
	for _, s := range subsets {
		best, found = intersect(best, s, found), true
	}
	// Exact terms with few entries are found by reading a few keys of each, so that a
	// selective term is not preceded by a large one of the same kind; once the set is
	// small, the rest are checked per candidate instead.
	used := make([]bool, len(terms))
	for i, t := range terms {
		if t.kind > termExact || found && len(best) <= smallSet {
			break
		}
		if s, ok := p.materialize(t, smallSet); ok {
			p.explain = append(p.explain, fmt.Sprintf("%s: %d", t.what, len(s)))
			best, found, used[i] = intersect(best, s, found), true, true
		}
	}
	for i, t := range terms {
		if used[i] {
			continue
		}
		if found && len(best) <= smallSet {
			if t.kind <= termExact {
				p.checks = append(p.checks, t)
			}
			continue
		}
		limit := p.limit
		if found {
			limit = len(best)
		}
		s, ok := p.materialize(t, limit)
		if !ok {
			p.explain = append(p.explain, t.what+": over "+fmt.Sprint(limit)+" entries, not used")
			if t.kind <= termExact {
				p.checks = append(p.checks, t)
			}
			continue
		}
		p.explain = append(p.explain, fmt.Sprintf("%s: %d", t.what, len(s)))
		best, found = intersect(best, s, found), true
	}
	return best, found
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// or unites the sets of a disjunction, when every branch has one within the limit.
func (p *planner) or(fs []Filter) ([]candidate, bool) {
	var out []candidate
	for _, f := range fs {
		var s []candidate
		var ok bool
		switch x := f.(type) {
		case And:
			// Terms the branch leaves to a check per candidate hold for this branch
			// only: they filter its set here, not the whole search's candidates.
			n := len(p.checks)
			s, ok = p.and(x, nil)
			if ok && len(p.checks) > n {
				s = p.keep(s, p.checks[n:])
			}
			p.checks = p.checks[:n]
		case Or:
			s, ok = p.or(x)
		default:
			if t := p.d.termOf(p.ctx, f); t != nil {
				if s, ok = p.materialize(t, p.limit); ok {
					p.explain = append(p.explain, fmt.Sprintf("%s: %d", t.what, len(s)))
				}
			}
		}
		if !ok {
			return nil, false
		}
		if out = union(out, s); len(out) > p.limit {
			return nil, false
		}
	}
	return out, true
}

// keep is the candidates of s that have every term of checks.
func (p *planner) keep(s []candidate, checks []*term) []candidate {
	r := planResult{checks: checks}
	out := s[:0:0]
	for _, c := range s {
		if p.b.spend(len(checks)*lookupUnits) && r.passes(p.ctx, p.d.st, c.guid) {
			out = append(out, c)
		}
	}
	return out
}

// materialize reads a term's candidates, sorted by GUID; ok false past limit.
func (p *planner) materialize(t *term, limit int) ([]candidate, bool) {
	var out []candidate
	for _, g := range t.guids {
		out = append(out, candidate{guid: g})
	}
	for _, k := range t.unique {
		if !p.b.spend(lookupUnits) {
			return nil, false
		}
		if kv, err := p.d.st.Get(p.ctx, k); err == nil {
			out = append(out, candidate{guid: string(kv.Value)})
		}
	}
	if t.prefixes != nil {
		n := 0 // counted first, so that a term over the limit allocates nothing
		for _, prefix := range t.prefixes {
			if err := p.d.st.Scan(p.ctx, prefix, "", func([]byte, []byte, int64) bool { n++; return n <= limit }); err != nil || n > limit {
				return nil, false
			}
		}
		out = slices.Grow(out, n)
		for _, prefix := range t.prefixes {
			over := false
			err := p.d.st.Scan(p.ctx, prefix, "", func(k, v []byte, _ int64) bool {
				if len(out) >= limit {
					over = true
					return false
				}
				out = append(out, candidate{guid: string(k[len(prefix):]), ndn: string(v)})
				return true
			})
			if err != nil || over || !p.b.spend(len(out)) {
				return nil, false
			}
		}
	}
	for _, r := range t.ranges {
		over := false
		err := p.d.st.Scan(p.ctx, r, "", func(k, v []byte, _ int64) bool {
			g, ndn, ok := t.guidOf(k, v)
			if !ok {
				return true
			}
			if len(out) >= limit {
				over = true
				return false
			}
			out = append(out, candidate{guid: g, ndn: ndn})
			return true
		})
		if err != nil || over || !p.b.spend(len(out)) {
			return nil, false
		}
	}
	slices.SortFunc(out, func(a, b candidate) int { return strings.Compare(a.guid, b.guid) })
	return slices.CompactFunc(out, func(a, b candidate) bool { return a.guid == b.guid }), true
}

// intersect is the candidates in both sorted sets (b alone when a is not yet a set).
func intersect(a, b []candidate, aSet bool) []candidate {
	if !aSet {
		return b
	}
	var out []candidate
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch c := strings.Compare(a[i].guid, b[j].guid); {
		case c < 0:
			i++
		case c > 0:
			j++
		default:
			x := a[i]
			if x.ndn == "" {
				x.ndn = b[j].ndn
			}
			out = append(out, x)
			i, j = i+1, j+1
		}
	}
	return out
}

// union is the candidates in either sorted set.
func union(a, b []candidate) []candidate {
	out := make([]candidate, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch c := strings.Compare(a[i].guid, b[j].guid); {
		case c < 0:
			out = append(out, a[i])
			i++
		case c > 0:
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i, j = i+1, j+1
		}
	}
	return append(append(out, a[i:]...), b[j:]...)
}

// passes reports whether the object with GUID g has every checked term's key.
func (p *planResult) passes(ctx context.Context, st store.Store, g string) bool {
	for _, t := range p.checks {
		ok := false
		switch {
		case t.guids != nil:
			ok = slices.Contains(t.guids, g)
		case t.unique != nil:
			for _, k := range t.unique {
				if kv, err := st.Get(ctx, k); err == nil && string(kv.Value) == g {
					ok = true
				}
			}
		default:
			for _, prefix := range t.prefixes {
				if _, err := st.Get(ctx, prefix+g); err == nil {
					ok = true
					break
				}
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// termOf is what the indexes offer for one filter term; nil when none serves it.
func (d *Directory) termOf(ctx context.Context, f Filter) *term {
	switch x := f.(type) {
	case Equal:
		return d.equalTerm(ctx, x.Attr, x.Value)
	case Extensible:
		if x.Rule == "" {
			return d.equalTerm(ctx, x.Attr, x.Value)
		}
	case Substr:
		if len(x.Initial) == 0 {
			return nil
		}
		low := strings.ToLower(string(x.Initial))
		what := x.Attr + "=" + string(x.Initial) + "*"
		switch a := strings.ToLower(x.Attr); a {
		case "samaccountname", "serviceprincipalname":
			family := map[string]string{"samaccountname": "sam/", "serviceprincipalname": "spn/"}[a]
			return &term{kind: termRange, what: what, ranges: []string{family + low}, guidOf: uniqueGUID}
		default:
			if ix, ok := indexedAttrs[a]; ok && !integerIndexes[ix] { // substrings of integers are Undefined
				return &term{kind: termRange, what: what, ranges: []string{"ix/" + ix + "/" + low}, guidOf: ixGUID}
			}
		}
	case Present:
		what := x.Attr + "=*"
		switch a := strings.ToLower(x.Attr); a {
		case "serviceprincipalname":
			return &term{kind: termRange, what: what, ranges: []string{"spn/"}, guidOf: uniqueGUID}
		case "userprincipalname", "dnshostname":
			return &term{kind: termRange, what: what, ranges: []string{"ix/" + indexedAttrs[a] + "/"}, guidOf: ixGUID}
		}
	}
	return nil
}

// uniqueGUID reads a unique key's entry: the value is the GUID.
func uniqueGUID(_, value []byte) (string, string, bool) { return string(value), "", true }

// ixGUID reads an ix/ entry: the key ends in the GUID, the value is the DN.
func ixGUID(key, value []byte) (string, string, bool) {
	i := slices.Index(key, 0)
	return string(key[i+1:]), string(value), i >= 0
}

// equalTerm is the index term of an equality.
func (d *Directory) equalTerm(ctx context.Context, attr string, value []byte) *term {
	what := attr + "=" + string(value)
	a := strings.ToLower(attr)
	switch a {
	case "samaccountname":
		return &term{kind: termUnique, what: what, unique: []string{samKey(string(value))}}
	case "serviceprincipalname":
		return &term{kind: termUnique, what: what, unique: []string{spnKey(string(value))}}
	case "distinguishedname":
		return &term{kind: termUnique, what: what, unique: []string{dnKey(normDN(string(value)))}}
	case "objectsid":
		sid, err := ntsec.ParseSID(string(value))
		if err != nil {
			if sid, err = ntsec.SIDFromBytes(value); err != nil {
				return &term{kind: termUnique, what: what, guids: []string{}} // no such SID can exist
			}
		}
		return &term{kind: termUnique, what: what, unique: []string{sidKey(sid.String())}}
	case "objectguid":
		g, err := ntsec.ParseGUID(string(value))
		if err != nil || len(value) < 36 {
			if g, err = ntsec.GUIDFromBytes(value); err != nil {
				return &term{kind: termUnique, what: what, guids: []string{}}
			}
		}
		return &term{kind: termUnique, what: what, guids: []string{g.String()}}
	case "objectclass", "objectcategory":
		classes, ok := d.classesMatching(a, string(value))
		if !ok {
			return nil
		}
		t := &term{kind: termExact, what: what, prefixes: []string{}, class: true}
		for _, c := range classes {
			t.prefixes = append(t.prefixes, "class/"+string(c)+"/")
		}
		return t
	case "member", "memberof":
		kv, err := d.st.Get(ctx, dnKey(normDN(d.resolvedDN(ctx, string(value)))))
		if err != nil {
			return &term{kind: termUnique, what: what, guids: []string{}} // names nothing here
		}
		family := map[string]string{"member": "memberof/", "memberof": "members/"}[a] // groups of a member; members of a group
		return &term{kind: termExact, what: what, prefixes: []string{family + string(kv.Value) + "/"}}
	}
	if ix, ok := indexedAttrs[a]; ok {
		v := strings.ToLower(string(value))
		if integerIndexes[ix] {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return &term{kind: termUnique, what: what, guids: []string{}} // not an integer: Undefined for every object
			}
			v = strconv.FormatInt(n, 10)
		}
		return &term{kind: termExact, what: what, prefixes: []string{ixPrefix(ix, v)}}
	}
	return nil
}

// resolvedDN turns an alternative DN form into the DN; anything else is returned as is.
func (d *Directory) resolvedDN(ctx context.Context, dn string) string {
	if r, err := d.ResolveDN(ctx, dn); err == nil {
		return r
	}
	return dn
}

// classesMatching lists the classes an objectClass or objectCategory equality selects;
// ok false for objectClass=top, which every object has.
func (d *Directory) classesMatching(attr, value string) ([]Class, bool) {
	d.classIndexOnce.Do(d.buildClassIndex)
	if attr == "objectclass" {
		if strings.EqualFold(value, "top") {
			return nil, false
		}
		return d.classesByName[strings.ToLower(value)], true
	}
	if cn, ok := categoryByClass[strings.ToLower(value)]; ok {
		value = cn
	}
	if strings.Contains(value, "=") {
		value = normDN(value)
	}
	return d.classesByCategory[strings.ToLower(value)], true
}

// buildClassIndex maps objectClass values and objectCategory values (the category's CN
// and its DN in the schema) to the classes they select, sorted.
func (d *Directory) buildClassIndex() {
	d.classesByName, d.classesByCategory = map[string][]Class{}, map[string][]Class{}
	for c, def := range classChain {
		for _, x := range def.chain {
			d.classesByName[strings.ToLower(x)] = append(d.classesByName[strings.ToLower(x)], c)
		}
		full := normDN("CN=" + def.category + ",CN=Schema," + d.domain.ConfigDN)
		for _, k := range []string{strings.ToLower(def.category), full} {
			d.classesByCategory[k] = append(d.classesByCategory[k], c)
		}
	}
	for _, m := range []map[string][]Class{d.classesByName, d.classesByCategory} {
		for _, cs := range m {
			slices.Sort(cs)
		}
	}
}
