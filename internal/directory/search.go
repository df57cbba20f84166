package directory

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"gmsa/internal/audit"
	"gmsa/internal/ntsec"
	"gmsa/internal/store"
)

// Scope of a search ([RFC 4511] 4.5.1.2).
type Scope int

const (
	ScopeBase Scope = iota
	ScopeOne
	ScopeSub
)

// Selection names the attributes a search returns.
type Selection struct {
	All   bool     // "*" (or no list): every user attribute the requester may read
	Names []string // attributes named; operational and constructed ones only this way
	// ExtendedDN is the extended DN control ([MS-ADTS] 3.1.1.3.4.1.5): the entry's DN
	// and DN values of objects held here carry <GUID=…> (and <SID=…>) before the DN.
	ExtendedDN ExtendedDNForm
	// SDFlags are the SD flags control's parts of nTSecurityDescriptor ([MS-ADTS]
	// 3.1.1.3.4.1.11): owner 1, group 2, DACL 4, SACL 8; 0 is all of them.
	SDFlags uint32
	// RangeNoError is the range retrieval no-error control ([MS-ADTS] 3.1.1.3.4.1.22):
	// a range starting past a link attribute's last value returns no values instead of
	// ErrRangeBeyond.
	RangeNoError bool
}

// ExtendedDNForm is how the extended DN control writes GUIDs and SIDs.
type ExtendedDNForm uint8

const (
	ExtendedDNOff    ExtendedDNForm = iota
	ExtendedDNHex                   // the bytes in hex (the control's flag 0, or no value)
	ExtendedDNString                // xxxxxxxx-… and S-1-… (flag 1)
)

// wants reports whether the selection names attr.
func (s Selection) wants(attr string) bool {
	for _, n := range s.Names {
		n, _, _ = strings.Cut(n, ";") // with options too ("msDS-ManagedPassword;range=0-*")
		if strings.EqualFold(n, attr) {
			return true
		}
	}
	return false
}

// Query is a search: a base DN, a scope, a filter, the attributes to return, and when
// it must end (zero: when ctx ends).
type Query struct {
	Base     string
	Scope    Scope
	Filter   Filter
	Select   Selection
	Deadline time.Time
	// After resumes a search after the object with this GUID: objects are handed out in
	// GUID order, so a paged search keeps only where it stopped.
	After string
	// ShowDeleted includes tombstones (the show deleted and show recycled controls,
	// [MS-ADTS] 3.1.1.3.4.1.14 and .1.29); such a search scans.
	ShowDeleted bool
	// OrderBy hands the matches out in the order of this attribute's values instead
	// (case-insensitive, then by GUID; those without a value the requester may read
	// last), for an attribute CanOrder accepts; After is then a Match.Cursor.
	OrderBy string
	// Stats, when set, receives what the get stats control reports; only an
	// administrator may ask (MayGetStats).
	Stats *SearchStats
}

// SearchStats are what the get stats control reports of a search ([MS-ADTS]
// 3.1.1.3.4.1.6).
type SearchStats struct {
	PlanOnly bool   // SO_ONLY_OPTIMIZE: plan the search and return nothing
	Plan     string // how the candidates were found: the indexes and their counts, or a scan
	Visited  int    // objects tested against the filter, readable to the requester or not
}

// MayGetStats reports whether req may ask for a search's statistics: they count the
// objects a search visited, readable or not, so only administrators may (AD asks for
// SE_DEBUG_PRIVILEGE).
func (d *Directory) MayGetStats(req *Requester) bool { return d.isAdmin(req) }

// Search errors, mapped by transports to their result codes.
var (
	ErrNoSuchBase = errors.New("no such object")
	ErrInvalidDN  = errors.New("invalid DN syntax")
	ErrTimeLimit  = errors.New("the search ran out of its time budget")
	ErrAdminLimit = errors.New("the search exceeds an administrative limit")
	ErrNoSuchAttr = errors.New("no such attribute")
	// ErrRangeBeyond: a ranged read of a link attribute starting past its last value
	// ([MS-ADTS] 3.1.1.3.1.3.3, operationsError).
	ErrRangeBeyond = errors.New("the range starts past the attribute's last value")
)

// Attr is one attribute of an entry.
type Attr struct {
	Name   string
	Values [][]byte
}

// Match is one object a search matched, as its requester sees it.
type Match struct {
	d     *Directory
	ctx   context.Context
	req   *Requester
	o     *Object
	sel   Selection
	scope Scope
	b     *budget // the search's, for its read decisions; nil for a Lookup
	pos   string  // the match's place in an ordered search (Query.OrderBy)
}

// InScope reports whether the match is within scope of base (a DN as ResolveDN
// returns it).
func (m *Match) InScope(base string, scope Scope) bool { return inScope(m.o.DN, normDN(base), scope) }

// inScope reports whether dn is within scope of the normalized DN base.
func inScope(dn, base string, scope Scope) bool {
	switch scope {
	case ScopeBase:
		return normDN(dn) == base
	case ScopeOne:
		_, parent, ok := strings.Cut(dn, ",")
		return ok && normDN(parent) == base
	}
	return under(dn, base, true) // normalizes only a DN that needs it
}

// Cursor is where a search resumes after this match (Query.After): its GUID, or its
// place in the order of an ordered search.
func (m *Match) Cursor() string {
	if m.pos != "" {
		return m.pos
	}
	return m.o.GUID.String()
}

// DN is the matched object's distinguished name (in the extended form when selected).
func (m *Match) DN() string { return extendedDN(m.o, m.sel.ExtendedDN) }

// extendedDN writes o's DN in the extended form: <GUID=…>;<SID=…>;DN, the SID only for
// security principals.
func extendedDN(o *Object, form ExtendedDNForm) string {
	switch form {
	case ExtendedDNHex:
		out := "<GUID=" + hex.EncodeToString(o.GUID[:]) + ">;"
		if o.IsPrincipal() {
			out += "<SID=" + hex.EncodeToString(o.ObjectSID().Bytes()) + ">;"
		}
		return out + o.DN
	case ExtendedDNString:
		out := "<GUID=" + o.GUID.String() + ">;"
		if o.IsPrincipal() {
			out += "<SID=" + o.SID + ">;"
		}
		return out + o.DN
	}
	return o.DN
}

// extendValues writes the DN values of objects held here in the extended form; values
// naming nothing here stay as they are.
func (d *Directory) extendValues(ctx context.Context, vals [][]byte, form ExtendedDNForm) [][]byte {
	out := make([][]byte, len(vals))
	for i, v := range vals {
		out[i] = v
		if o, err := d.byIndex(ctx, dnKey(normDN(string(v)))); err == nil {
			out[i] = []byte(extendedDN(o, form))
		}
	}
	return out
}

// GUID identifies the matched object, to fetch it again (Lookup) for a later page.
func (m *Match) GUID() ntsec.GUID { return m.o.GUID }

// Search calls fn for every object in scope that matches the filter as the requester
// sees it, in GUID order, stopping at fn's first error; fn must not keep the Match past
// its return. The search runs within ctx's deadline and the directory's budget for
// heavy searches: over it, it ends with ErrTimeLimit (the matches already handed to fn
// stand). The planner (plan.go) finds the candidates in the indexes; without an index
// the objects are scanned, each tested on its stored form before it is decoded.
func (d *Directory) Search(ctx context.Context, req *Requester, q Query, fn func(*Match) error) error {
	if req == nil || req.Token == nil {
		return fmt.Errorf("directory: search of %q: %w", q.Base, ErrNeedBind)
	}
	if q.Select.wants("msDS-ManagedPassword") && !req.Protection.Encrypted() { // before any ACL, as Windows and Samba do
		return fmt.Errorf("directory: %w", ErrNeedEncryption)
	}
	if q.Stats != nil && !d.MayGetStats(req) {
		return fmt.Errorf("directory: a search's statistics are for administrators: %w", ErrAccessDenied)
	}
	resolved, err := d.ResolveDN(ctx, q.Base)
	if err != nil {
		return err
	}
	base := normDN(resolved)
	if bo, err := d.byIndex(ctx, dnKey(base)); err != nil || bo.Deleted && !q.ShowDeleted {
		if err == nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, ErrNotFound) {
			return fmt.Errorf("directory: search base %q: %w", q.Base, ErrNoSuchBase)
		}
		return err
	}
	b := &budget{d: d, ctx: ctx, deadline: q.Deadline}
	defer b.finish()
	inScope := func(dn string) bool { return inScope(dn, base, q.Scope) }
	m := &Match{d: d, ctx: ctx, req: req, sel: q.Select, scope: q.Scope, b: b}
	v := &View{d: d, ctx: ctx, req: req, b: b}
	// accept decides whether o is a match (and leaves v at o).
	accept := func(o *Object) (bool, error) {
		if !b.spend(1) {
			return false, b.err
		}
		if q.Stats != nil {
			q.Stats.Visited++
		}
		if !inScope(o.DN) || o.Deleted && !q.ShowDeleted {
			return false, nil
		}
		v.at(o)
		if !v.rights().listed {
			return false, nil
		}
		matched := q.Filter == nil || q.Filter.eval(v) == fTrue
		if b.err != nil {
			return false, b.err
		}
		return matched, nil
	}
	visit := func(o *Object) error {
		if ok, err := accept(o); err != nil || !ok {
			return err
		}
		m.o, m.pos = o, ""
		if q.OrderBy != "" {
			m.pos = orderPosition(v, q.OrderBy)
		}
		return fn(m)
	}
	if q.OrderBy != "" && (q.ShowDeleted || !CanOrder(q.OrderBy)) {
		return fmt.Errorf("directory: no ordered index serves %s here: %w", q.OrderBy, ErrInvalid)
	}
	if q.Scope == ScopeBase {
		if q.Stats != nil {
			q.Stats.Plan = "the base object"
			if q.Stats.PlanOnly {
				return nil
			}
		}
		o, err := d.byIndex(ctx, dnKey(base))
		if err != nil || q.After != "" && (q.OrderBy != "" || o.GUID.String() <= q.After) {
			return err
		}
		return visit(o)
	}
	var raw rawTest
	if q.Filter != nil {
		raw = d.compileRaw(q.Filter)
	}
	var plan planResult
	if q.Filter != nil {
		plan = d.planSearch(ctx, b, q.Filter, base, q.Scope)
	} else {
		plan = d.planSearch(ctx, b, And{}, base, q.Scope)
	}
	d.log.Debug("search plan", "base", base, "scope", q.Scope, "plan", plan.explain, "candidates", len(plan.set), "indexed", plan.indexed)
	if q.Stats != nil {
		q.Stats.Plan = plan.explain
		if q.ShowDeleted && plan.indexed {
			q.Stats.Plan = "scan of every object, tombstones included"
		}
		if q.Stats.PlanOnly {
			return nil
		}
	}
	if q.OrderBy != "" {
		return d.searchOrdered(ctx, req, q, plan, raw, inScope, accept, v, m, fn)
	}
	if !plan.indexed || q.ShowDeleted { // tombstones are in no class or value index
		return d.scan(ctx, b, q.After, raw, visit)
	}
	return d.eachCandidate(ctx, plan, q.After, raw, inScope, visit)
}

// eachCandidate visits the plan's candidates after the GUID `after` in GUID order: those
// in scope that pass the plan's checks and the raw test, decoded.
func (d *Directory) eachCandidate(ctx context.Context, plan planResult, after string, raw rawTest, inScope func(string) bool, visit func(*Object) error) error {
	start, _ := slices.BinarySearchFunc(plan.set, after, func(c candidate, after string) int {
		if c.guid <= after {
			return -1
		}
		return 1
	})
	for _, c := range plan.set[start:] {
		if c.ndn != "" && !inScope(c.ndn) || !plan.passes(ctx, d.st, c.guid) {
			continue
		}
		kv, err := d.st.Get(ctx, "obj/"+c.guid)
		if errors.Is(err, store.ErrNotFound) {
			continue // removed since the index was read
		}
		if err != nil {
			return err
		}
		if raw != nil && !raw.may(kv.Value) {
			continue
		}
		o, err := d.candidate(kv, false)
		if err != nil {
			return err
		}
		if err := visit(o); err != nil {
			return err
		}
	}
	return nil
}

// scanBatch is how many objects one read view of a scan covers.
const scanBatch = 1024

// scan visits the objects after the GUID `after` in GUID order, a batch per read view:
// each record is tested by raw before it is copied out of the view or decoded, and the
// objects already decoded at the same revision are taken from the cache.
func (d *Directory) scan(ctx context.Context, b *budget, after string, raw rawTest, visit func(*Object) error) error {
	type hit struct {
		kv store.KV
		o  *Object
	}
	var batch []hit
	pos := "obj/" + after
	if after == "" {
		pos = ""
	}
	var last []byte
	for {
		batch, last = batch[:0], last[:0]
		seen := 0
		err := d.st.Scan(ctx, "obj/", pos, func(k, val []byte, rev int64) bool {
			seen++
			last = append(last[:0], k...)
			if raw == nil || raw.may(val) {
				if o := d.cachedObject(k, rev); o != nil {
					batch = append(batch, hit{o: o})
				} else {
					batch = append(batch, hit{kv: store.KV{Key: string(k), Value: bytes.Clone(val), Rev: rev}})
				}
			}
			return seen < scanBatch
		})
		if err != nil {
			return err
		}
		for _, h := range batch {
			o := h.o
			if o == nil {
				if o, err = d.candidate(h.kv, true); err != nil {
					return err
				}
			}
			if err := visit(o); err != nil {
				return err
			}
		}
		if seen < scanBatch {
			return nil
		}
		if !b.spend(seen - len(batch)) { // the objects skipped unread cost a unit each too
			return b.err
		}
		pos = string(last)
	}
}

// Lookup fetches an object a search matched earlier (for a later page), as the
// requester sees it; ErrNotFound when it has been removed since.
func (d *Directory) Lookup(ctx context.Context, req *Requester, g ntsec.GUID, sel Selection) (*Match, error) {
	if req == nil || req.Token == nil {
		return nil, fmt.Errorf("directory: %w", ErrNeedBind)
	}
	if sel.wants("msDS-ManagedPassword") && !req.Protection.Encrypted() {
		return nil, fmt.Errorf("directory: %w", ErrNeedEncryption)
	}
	o, err := d.byGUID(ctx, g.String())
	if err != nil {
		return nil, err
	}
	return &Match{d: d, ctx: ctx, req: req, o: o, sel: sel, scope: ScopeSub}, nil
}

// Attributes appends to dst the selected attributes of the match that its requester may
// read. Reading msDS-ManagedPassword runs the access check and is audited, granted or
// denied (denied: the attribute is silently absent, [MS-ADTS] 3.1.1.4.4); reading
// msKds-RootKeyData is audited.
func (m *Match) Attributes(dst []Attr) ([]Attr, error) {
	d, o := m.d, m.o
	v := &View{d: d, ctx: m.ctx, req: m.req, o: o, b: m.b}
	names := m.sel.Names
	if m.sel.All {
		names = append(v.names(), names...)
	}
	start := len(dst)
	for _, n := range names {
		n, rng, ranged := parseRange(n)
		a, ok := lookupAttr(n)
		if !ok || !ranged && has(dst[start:], a.Name) {
			continue
		}
		var vals [][]byte
		switch a.lower {
		case "msds-managedpassword":
			if o.Class != ClassGMSA {
				continue
			}
			if !m.req.Protection.Encrypted() { // checked before the search too; never sent in the clear
				return dst, fmt.Errorf("directory: %w", ErrNeedEncryption)
			}
			blob, err := d.readPassword(m.ctx, m.req, o)
			if err != nil {
				return dst, err
			}
			vals = bin(blob)
		case "allowedattributeseffective": // those of allowedAttributes the requester may write
			if !v.readable(a) {
				continue
			}
			for _, name := range allowedAttributes(o.Class) {
				if checkWritable(name) == nil && d.authorizeWrite(m.ctx, m.req, o, name) == nil {
					vals = append(vals, []byte(name))
				}
			}
		case "sdrightseffective": // the parts of nTSecurityDescriptor the requester may write ([MS-ADTS] 3.1.1.4.5.4)
			if !v.readable(a) {
				continue
			}
			var parts uint32
			if d.checkAccess(m.ctx, m.req, o, ntsec.RightWriteOwner, "") == nil {
				parts |= sdOwner | sdGroup
			}
			if d.checkAccess(m.ctx, m.req, o, ntsec.RightWriteDAC, "") == nil {
				parts |= sdDACL
			}
			if d.isAdmin(m.req) {
				parts |= sdSACL
			}
			vals = num(parts, true)
		case "ntsecuritydescriptor":
			b, err := d.readSD(m.ctx, m.req, o, m.sel.SDFlags)
			if err != nil {
				return dst, err
			}
			vals = bin(b)
		case "tokengroups":
			if m.scope == ScopeBase && o.IsPrincipal() && o.Class != ClassGroup && v.readable(a) { // base searches only, as AD
				vals = d.tokenGroups(m.ctx, o)
			}
		case "mskds-rootkeydata":
			if vals = v.Get(n); len(vals) > 0 {
				d.audit.Record(d.now(), audit.Warn, "KDS root key read", "principal", m.req.Name(), "remote", m.req.Remote,
					"root_key", o.GUID.String())
			}
		default:
			vals = v.Get(n)
		}
		if len(vals) > 0 && a.Syntax == SyntaxDN && m.sel.ExtendedDN != ExtendedDNOff {
			vals = d.extendValues(m.ctx, vals, m.sel.ExtendedDN)
		}
		name := a.Name
		if ranged {
			if linked[a.lower] && len(vals) > 0 && rng.low >= len(vals) && !m.sel.RangeNoError {
				return dst, fmt.Errorf("directory: %w: %s has %d values, the range starts at %d", ErrRangeBeyond, a.Name, len(vals), rng.low)
			}
			vals, name = rng.apply(a.Name, vals)
		}
		if len(vals) > 0 {
			dst = append(dst, Attr{name, vals})
		}
	}
	return dst, nil
}

func has(attrs []Attr, name string) bool {
	for _, a := range attrs {
		if a.Name == name {
			return true
		}
	}
	return false
}

// tokenGroups lists the SIDs of o's token that AD lists: domain and BUILTIN groups.
func (d *Directory) tokenGroups(ctx context.Context, o *Object) [][]byte {
	tok, err := d.token(ctx, o)
	if err != nil {
		return nil
	}
	var sids [][]byte
	for _, g := range tok.Groups {
		if g.Authority == 5 && (len(g.Sub) > 1 || g.Sub[0] == 32) {
			sids = append(sids, g.Bytes())
		}
	}
	return sids
}

// Compare answers whether an entry holds an attribute value ([RFC 4511] 4.10), with
// a filter's matching and the requester's view. Secret and constructed attributes
// cannot be compared, whoever asks.
func (d *Directory) Compare(ctx context.Context, req *Requester, dn, attr string, value []byte) (bool, error) {
	a, ok := lookupAttr(attr)
	switch {
	case !ok:
		return false, fmt.Errorf("directory: %s: %w", attr, ErrNoSuchAttr)
	case a.Operational || a.Access != accessPublic:
		return false, fmt.Errorf("directory: %s cannot be compared: %w", a.Name, ErrInvalid)
	}
	matched := false
	err := d.Search(ctx, req, Query{Base: dn, Scope: ScopeBase, Filter: Equal{Attr: a.Name, Value: value}},
		func(*Match) error { matched = true; return nil })
	return matched, err
}

// Heavy searches. A search is charged one unit per object visited, filter term
// evaluated and group expanded, and lookupUnits per store lookup; past heavyAfter units
// it must hold one of the directory's heavy-search slots (fewer than the processors, so
// cheap requests always find one free). While light searches are being served (one
// finished within lightWindow), a heavy search rests after every yieldEvery units:
// heavyRest times as long as the chunk of work took (a quarter duty), and past
// longAfter units longRest times (a twentieth), so the longer a search has run, the
// less of a processor it takes from the requests around it. With no light search
// around, heavy searches run at full speed.
const (
	heavyAfter  = 20_000
	yieldEvery  = 2_048
	heavyRest   = 3
	longAfter   = 200_000
	longRest    = 19
	lightWindow = 10 * time.Millisecond
	lookupUnits = 16
)

// chainTarget is what an in-chain assertion's DN names.
type chainTarget struct {
	guid  ntsec.GUID
	found bool
}

// budget is one search's work account.
type budget struct {
	d        *Directory
	ctx      context.Context
	deadline time.Time // zero: none but ctx's
	chunk    time.Time // when the heavy search's current chunk of work began
	work     int
	holding  bool
	err      error

	readsKey readKey                            // the last read decisions' key, see reads
	reads    *readRights                        // and the decisions
	targets  map[string]chainTarget             // in-chain targets by DN
	closure  map[ntsec.GUID]map[ntsec.GUID]bool // transitive groups by object
}

// spend charges n units; false once the search is over its budget (b.err says why).
func (b *budget) spend(n int) bool {
	if b == nil {
		return true
	}
	if b.err != nil {
		return false
	}
	before := b.work
	b.work += n
	if before/yieldEvery == b.work/yieldEvery {
		return true
	}
	if err := b.ctx.Err(); err != nil || !b.deadline.IsZero() && time.Now().After(b.deadline) {
		b.err = fmt.Errorf("directory: %w after %d units of work", ErrTimeLimit, b.work)
		return false
	}
	if b.work < heavyAfter {
		return true
	}
	if !b.holding {
		var expire <-chan time.Time
		if !b.deadline.IsZero() {
			t := time.NewTimer(time.Until(b.deadline))
			defer t.Stop()
			expire = t.C
		}
		select {
		case b.d.heavy <- struct{}{}:
			b.holding = true
		case <-b.ctx.Done():
			b.err = fmt.Errorf("directory: %w waiting for a heavy-search slot", ErrTimeLimit)
			return false
		case <-expire:
			b.err = fmt.Errorf("directory: %w waiting for a heavy-search slot", ErrTimeLimit)
			return false
		}
	}
	now := time.Now()
	if !b.chunk.IsZero() && now.UnixNano()-b.d.lightDone.Load() < int64(lightWindow) {
		rest := time.Duration(heavyRest)
		if b.work > longAfter {
			rest = longRest
		}
		time.Sleep(rest * now.Sub(b.chunk))
	}
	b.chunk = time.Now()
	return true
}

// finish gives back the heavy slot, or notes that a light search was just served.
func (b *budget) finish() {
	if b.holding {
		<-b.d.heavy
		b.holding = false
	} else if b.work < heavyAfter {
		b.d.lightDone.Store(time.Now().UnixNano())
	}
}

// target resolves an in-chain assertion's DN once per search, charged as a lookup.
// Only the GUID is kept (found false: no such object), so the map grows with the distinct DNs
// of the filter, which the request's size bounds.
func (b *budget) target(v *View, dn []byte) (ntsec.GUID, bool) {
	if b == nil {
		o, err := v.d.Resolve(v.ctx, string(dn))
		if err != nil {
			return ntsec.GUID{}, false
		}
		return o.GUID, true
	}
	if g, ok := b.targets[string(dn)]; ok { // no copy: the compiler looks up by the bytes
		return g.guid, g.found
	}
	if !b.spend(lookupUnits) {
		return ntsec.GUID{}, false
	}
	var t chainTarget
	if o, err := v.d.Resolve(v.ctx, string(dn)); err == nil {
		t = chainTarget{guid: o.GUID, found: true}
	}
	if b.targets == nil {
		b.targets = map[string]chainTarget{}
	}
	b.targets[string(dn)] = t
	return t.guid, t.found
}

// groups returns the transitive groups of the object with GUID g (o when at hand),
// once per search.
func (b *budget) groups(v *View, g ntsec.GUID, o *Object) map[ntsec.GUID]bool {
	if b != nil {
		if c, ok := b.closure[g]; ok {
			return c
		}
	}
	if o == nil {
		var err error
		if !b.spend(lookupUnits) {
			return nil
		}
		if o, err = v.d.byGUID(v.ctx, g.String()); err != nil {
			return nil
		}
	}
	c := v.d.transitiveGroups(v.ctx, o, b)
	if b == nil {
		return c
	}
	if b.closure == nil {
		b.closure = map[ntsec.GUID]map[ntsec.GUID]bool{}
	}
	if len(b.closure) < 4096 {
		b.closure[g] = c
	}
	return c
}

// readPassword runs the access check for one gMSA's password and reads it when
// granted, recording the outcome in the audit trail either way. A denial returns nil
// (the attribute is absent); an unreadable schedule is logged and returns nil too.
func (d *Directory) readPassword(ctx context.Context, req *Requester, o *Object) ([]byte, error) {
	mp, _ := d.AuthorizePassword(req.Token, o)
	if mp == nil {
		d.audit.Record(d.now(), audit.Warn, "gMSA password read denied", "principal", req.Name(), "remote", req.Remote, "account", o.SAM,
			"reason", d.decideWhy(req.Token, o, true).Reason)
		return nil, nil
	}
	p, err := mp.Read(ctx)
	if err != nil {
		d.log.Error("gMSA password read failed", "account", o.SAM, "err", err)
		return nil, nil
	}
	d.audit.Record(d.now(), audit.Info, "gMSA password read", "principal", req.Name(), "remote", req.Remote, "account", o.SAM,
		"period", p.Plan.Current.GKID.String(), "root_key", p.Plan.Current.RootKey.ID.String())
	return p.Blob(), nil
}

// ReadPassword is a principal's read of a gMSA's msDS-ManagedPassword, as over LDAP:
// the access check, the read and its audit record. The blob is nil when denied.
func (d *Directory) ReadPassword(ctx context.Context, req *Requester, ref string) ([]byte, Decision, error) {
	if req == nil || req.Token == nil {
		return nil, Decision{}, fmt.Errorf("directory: %w", ErrNeedBind)
	}
	if !req.Protection.Encrypted() {
		return nil, Decision{}, fmt.Errorf("directory: %w", ErrNeedEncryption)
	}
	acct, err := d.gmsa(ctx, ref)
	if err != nil {
		return nil, Decision{}, err
	}
	dec := d.decide(req.Token, acct)
	blob, err := d.readPassword(ctx, req, acct)
	return blob, dec, err
}
