package ldapserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"

	"gmsa/internal/directory"
	"gmsa/internal/ntsec"
)

const maxFilterDepth = 64

// parseFilter converts an RFC 4511 Filter into the directory's query filter.
func parseFilter(p *ber.Packet, depth int) (directory.Filter, error) {
	if depth > maxFilterDepth {
		return nil, fmt.Errorf("filter nested deeper than %d", maxFilterDepth)
	}
	if p.ClassType != ber.ClassContext {
		return nil, errors.New("filter element is not context-specific")
	}
	ava := func() (string, []byte, error) {
		if len(p.Children) != 2 {
			return "", nil, fmt.Errorf("filter item [%d] needs an attribute and a value", p.Tag)
		}
		return str(p.Children[0]), raw(p.Children[1]), nil
	}
	switch p.Tag {
	case 0, 1:
		var subs []directory.Filter
		for _, c := range p.Children {
			f, err := parseFilter(c, depth+1)
			if err != nil {
				return nil, err
			}
			subs = append(subs, f)
		}
		if p.Tag == 0 {
			return directory.And(subs), nil
		}
		return directory.Or(subs), nil
	case 2:
		if len(p.Children) != 1 {
			return nil, errors.New("not needs one filter")
		}
		f, err := parseFilter(p.Children[0], depth+1)
		return directory.Not{F: f}, err
	case 3, 8:
		a, v, err := ava()
		return directory.Equal{Attr: a, Value: v}, err
	case 5:
		a, v, err := ava()
		return directory.Greater{Attr: a, Value: v}, err
	case 6:
		a, v, err := ava()
		return directory.Less{Attr: a, Value: v}, err
	case 7:
		return directory.Present{Attr: str(p)}, nil
	case 4:
		if len(p.Children) != 2 {
			return nil, errors.New("substrings filter needs a type and substrings")
		}
		f := directory.Substr{Attr: str(p.Children[0])}
		for _, s := range p.Children[1].Children {
			switch s.Tag {
			case 0:
				f.Initial = raw(s)
			case 1:
				f.Any = append(f.Any, raw(s))
			case 2:
				f.Final = raw(s)
			}
		}
		return f, nil
	case 9:
		var f directory.Extensible
		for _, c := range p.Children {
			switch c.Tag {
			case 1:
				f.Rule = str(c)
			case 2:
				f.Attr = str(c)
			case 3:
				f.Value = raw(c)
			}
		}
		if f.Attr == "" {
			return nil, errors.New("extensible match without an attribute is not supported")
		}
		return f, nil
	}
	return nil, fmt.Errorf("unknown filter choice [%d]", p.Tag)
}

// pageState is a paged search in progress on a connection ([RFC 2696]): either the
// query itself, resumed after the last object sent (the directory hands objects out in
// GUID order, so nothing else is held), or for sorted and scoped searches the objects
// still to return, by GUID, fetched again as each page is sent.
type pageState struct {
	query     *directory.Query
	guids     []ntsec.GUID
	sel       directory.Selection
	typesOnly bool
	seq       uint64 // when it was kept: the oldest goes first
	// truncated: a soft size limit dropped entries, so the last page says
	// sizeLimitExceeded.
	truncated bool
}

// selectAttrs turns a request's attribute list into the directory's selection.
func selectAttrs(list []*ber.Packet) (sel directory.Selection, raw []string) {
	sel.All = len(list) == 0
	for _, p := range list {
		n := str(p)
		raw = append(raw, n)
		switch n {
		case "*":
			sel.All = true
		case "1.1", "+":
		default:
			sel.Names = append(sel.Names, n)
		}
	}
	return sel, raw
}

// errSizeLimit ends a search that has sent as many entries as it may.
var errSizeLimit = errors.New("size limit")

func (c *conn) search(ctx context.Context, id int64, op *ber.Packet, controls []*ber.Packet) {
	done := func(code int, diag string, ctrls ...*ber.Packet) {
		if len(ctrls) == 0 {
			c.sendRaw(encodeResult(id, appSearchDone, code, "", diag))
			return
		}
		c.send(message(id, result(appSearchDone, code, "", diag), ctrls...))
	}
	if len(op.Children) < 8 {
		done(resultProtocolError, "malformed SearchRequest")
		return
	}
	base := str(op.Children[0])
	scope, _ := intValue(op.Children[1])
	sizeLimit, _ := intValue(op.Children[3])
	timeLimit, _ := intValue(op.Children[4])
	typesOnly := boolValue(op.Children[5])
	sel, rawNames := selectAttrs(op.Children[7].Children)

	rc, le := parseControls(controls, appSearchRequest)
	if le != nil {
		done(le.code, le.diag)
		return
	}
	sel.ExtendedDN = rc.extendedDN
	sel.SDFlags = rc.sdFlags
	sel.RangeNoError = rc.rangeNoErr
	var stats *directory.SearchStats
	if st := rc.stats; st != nil && st.flags != statsNormal {
		switch {
		case st.flags&statsExtendedFmt != 0 && st.critical:
			done(resultUnavailableCritical, "00002081: the get stats control's extended format (SO_EXTENDED_FMT) is not served; ask without it")
			return
		case st.flags&statsExtendedFmt != 0:
		case !c.srv.cfg.Dir.MayGetStats(c.req) && st.critical:
			done(resultInsufficientAccess, "00000005: a search's statistics are for administrators")
			return
		case c.srv.cfg.Dir.MayGetStats(c.req):
			stats = &directory.SearchStats{PlanOnly: st.flags&statsOnlyOptimize != 0}
			filter := filterText(op.Children[6], 0)
			start, sent, inner := time.Now(), c.entriesSent, done
			done = func(code int, diag string, ctrls ...*ber.Packet) {
				inner(code, diag, append(ctrls, statsResponse(time.Since(start), c.entriesSent-sent, stats, filter))...)
			}
		}
	}
	if rc.updateStats {
		var stats func() []*ber.Packet
		ctx, stats = c.recordUSNs(ctx, rc)
		inner := done
		done = func(code int, diag string, ctrls ...*ber.Packet) { inner(code, diag, append(ctrls, stats()...)...) }
	}
	if want := rc.expected; want != nil {
		sent, inner := c.entriesSent, done
		done = func(code int, diag string, ctrls ...*ber.Packet) {
			if n := int64(c.entriesSent - sent); code == resultSuccess && !want.holds(n) {
				code, diag = resultConstraintViolation, fmt.Sprintf("the search returned %d entries; the expected entry count control asked for %d to %d", n, want.min, want.max)
			}
			inner(code, diag, ctrls...)
		}
	}
	if base == "" && scope == 0 {
		entry, isPing, err := c.srv.pingEntry(ctx, id, op.Children[6], rawNames, c.nc.LocalAddr())
		if err != nil {
			done(resultOther, "the LDAP ping could not be answered")
			return
		}
		if isPing {
			if entry != nil {
				c.sendRaw(entry)
				c.entriesSent++
			}
			done(resultSuccess, "")
			return
		}
		c.rootDSE(id, sel.All, rawNames)
		done(resultSuccess, "")
		return
	}
	filter, err := parseFilter(op.Children[6], 0)
	if err != nil {
		done(resultProtocolError, err.Error())
		return
	}
	// Nothing below refers to the request's packets, so a large request's decoded
	// form is garbage while its search runs; only the filter, which points into the
	// request's bytes, is kept.
	var pageSize int
	var cookie string
	paged := rc.paged != nil
	if paged {
		var val *ber.Packet
		if len(rc.paged.Children) > 0 {
			val = rc.paged.Children[len(rc.paged.Children)-1]
		}
		inner, err := ber.DecodePacketErr(raw(val))
		if err != nil || len(inner.Children) != 2 {
			done(resultProtocolError, "malformed paged results control")
			return
		}
		n, _ := intValue(inner.Children[0])
		pageSize, cookie = int(min(max(n, 1), int64(c.srv.cfg.MaxPageSize))), string(raw(inner.Children[1]))
		rc.paged = nil
	}
	dir := c.srv.cfg.Dir
	if cookie != "" {
		st, ok := c.pages[cookie]
		if !ok {
			done(resultUnwillingToPerform, "00002024: the paged search cookie is unknown or expired")
			return
		}
		c.takePage(cookie)
		if st.query != nil {
			c.pagedSearch(ctx, id, *st.query, pageSize, st.typesOnly, done)
			return
		}
		n := min(pageSize, len(st.guids))
		for _, g := range st.guids[:n] {
			m, err := dir.Lookup(ctx, c.req, g, st.sel)
			if errors.Is(err, directory.ErrNotFound) {
				continue // removed since the first page
			}
			if err == nil {
				err = c.sendEntry(id, m, st.typesOnly)
			}
			if err != nil {
				le := fromDomain(err)
				done(le.code, le.diag)
				return
			}
		}
		next := c.keepPage(st.guids[n:], st.sel, st.typesOnly, st.truncated)
		if st.truncated && next == "" {
			done(resultSizeLimitExceeded, "", pagedControl(len(st.guids), ""))
			return
		}
		done(resultSuccess, "", pagedControl(len(st.guids), next))
		return
	}

	limit := c.srv.cfg.MaxPageSize // AD caps unpaged searches at MaxPageSize
	if paged {
		limit = pageSize
	} else if sizeLimit > 0 && int(sizeLimit) < limit {
		limit = int(sizeLimit)
	}
	q := directory.Query{Base: base, Scope: directory.Scope(scope), Filter: filter, Select: sel, Deadline: c.deadline(timeLimit), ShowDeleted: rc.showDeleted,
		Stats: stats}
	if rc.asq != "" {
		c.scopedSearch(ctx, id, q, rc.asq, limit, typesOnly, done)
		return
	}
	if rc.dirSync != nil {
		c.dirSyncSearch(ctx, id, q, rc.dirSync, typesOnly, done)
		return
	}
	if rc.notify {
		c.notify(id, q, typesOnly, done)
		return
	}
	if rc.vlv != nil && (rc.sort == nil || paged) {
		code, why := resultSortControlMissing, "the virtual list view control needs the server-side sort control"
		if paged {
			code, why = resultUnwillingToPerform, "the virtual list view and paged results controls do not go together"
		}
		done(code, why, vlvResponse(0, 0, code))
		return
	}
	if rc.sort != nil {
		c.sortedSearch(ctx, id, q, rc.sort, rc.hints, limit, paged || rc.vlv != nil, typesOnly, rc.vlv, done)
		return
	}
	if paged {
		c.pagedSearch(ctx, id, q, pageSize, typesOnly, done)
		return
	}
	sent := 0
	err = dir.Search(ctx, c.req, q, func(m *directory.Match) error {
		if sent == limit {
			return errSizeLimit
		}
		sent++
		return c.sendEntry(id, m, typesOnly)
	})
	switch {
	case errors.Is(err, errSizeLimit):
		done(resultSizeLimitExceeded, "")
	case err != nil:
		le := fromDomain(err)
		done(le.code, le.diag)
	default:
		done(resultSuccess, "")
	}
}

// errPageFull ends a page when one more entry matches than the page holds.
var errPageFull = errors.New("page full")

// pagedSearch sends one page of q and keeps q, to resume after the page's last entry,
// under the cookie it returns while more entries match. The size it reports is 0, "not
// known" ([RFC 2696] 3): counting would mean reading every match up front.
// An ordered search (q.OrderBy, for the sort control) also answers with the sort
// response.
func (c *conn) pagedSearch(ctx context.Context, id int64, q directory.Query, pageSize int, typesOnly bool, done func(int, string, ...*ber.Packet)) {
	sent := 0
	err := c.srv.cfg.Dir.Search(ctx, c.req, q, func(m *directory.Match) error {
		if sent == pageSize {
			return errPageFull
		}
		sent++
		q.After = m.Cursor()
		return c.sendEntry(id, m, typesOnly)
	})
	var sorted []*ber.Packet
	if q.OrderBy != "" {
		sorted = append(sorted, sortResponse(resultSuccess))
	}
	switch {
	case errors.Is(err, errPageFull):
		done(resultSuccess, "", append(sorted, pagedControl(0, c.keepQuery(q, typesOnly)))...)
	case err != nil:
		le := fromDomain(err)
		done(le.code, le.diag)
	default:
		done(resultSuccess, "", append(sorted, pagedControl(0, ""))...)
	}
}

// dirSyncSearch sends one batch of the changes a DirSync cookie has not seen (at most
// MaxPageSize entries) and answers with the response control: whether more wait, and
// the cookie to read on with ([MS-ADTS] 3.1.1.3.4.1.3).
func (c *conn) dirSyncSearch(ctx context.Context, id int64, q directory.Query, ds *dirSyncRequest, typesOnly bool, done func(int, string, ...*ber.Packet)) {
	if ds.oid == oidDirSyncEx {
		// DirSync EX returns an attribute named "x;dirSyncAlwaysReturn" changed or not
		// ([MS-ADTS] 3.1.1.3.4.1.23); every attribute asked for is returned here anyway.
		names := slices.Clone(q.Select.Names)
		for i, n := range names {
			if attr, opt, ok := strings.Cut(n, ";"); ok && strings.EqualFold(opt, "dirSyncAlwaysReturn") {
				names[i] = attr
			}
		}
		q.Select.Names = names
	}
	cookie, more, err := c.srv.cfg.Dir.DirSync(ctx, c.req, q, ds.flags, ds.cookie, c.srv.cfg.MaxPageSize, func(m *directory.Match) error {
		return c.sendEntry(id, m, typesOnly)
	})
	if err != nil {
		le := fromDomain(err)
		done(le.code, le.diag)
		return
	}
	val := ber.NewSequence("DirSyncResponseValue")
	moreResults := int64(0)
	if more {
		moreResults = 1
	}
	val.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, moreResults, "MoreResults"))
	val.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 0, "unused"))
	val.AppendChild(octets(cookie))
	ctl := ber.NewSequence("Control")
	ctl.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, ds.oid, "controlType"))
	ctl.AppendChild(octets(val.Bytes()))
	done(resultSuccess, "", ctl)
}

// deadline is when a search must end: the client's time limit or MaxQueryDuration,
// whichever comes first.
func (c *conn) deadline(clientSeconds int64) time.Time {
	now := time.Now()
	t := now.Add(c.srv.cfg.MaxQueryDuration)
	if clientSeconds > 0 {
		if d := now.Add(time.Duration(clientSeconds) * time.Second); d.Before(t) {
			t = d
		}
	}
	return t
}

// keepPage holds the rest of a paged search under a new cookie ("" when nothing is
// left), within MaxResultSetsPerConn (the oldest is dropped) and MaxResultSetSize.
func (c *conn) keepPage(guids []ntsec.GUID, sel directory.Selection, typesOnly, truncated bool) string {
	if len(guids) == 0 {
		return ""
	}
	c.srv.paged.Add(int64(len(guids)))
	return c.keep(&pageState{guids: guids, sel: sel, typesOnly: typesOnly, truncated: truncated})
}

// keepQuery holds a paged search to resume under a new cookie.
func (c *conn) keepQuery(q directory.Query, typesOnly bool) string {
	return c.keep(&pageState{query: &q, typesOnly: typesOnly})
}

// keep holds a paged search under a new cookie, within MaxResultSetsPerConn (the
// oldest is dropped).
func (c *conn) keep(st *pageState) string {
	for len(c.pages) >= c.srv.cfg.MaxResultSetsPerConn {
		oldest := ""
		for k, st := range c.pages {
			if oldest == "" || st.seq < c.pages[oldest].seq {
				oldest = k
			}
		}
		c.takePage(oldest)
	}
	b := make([]byte, 16)
	rand.Read(b)
	cookie := hex.EncodeToString(b)
	c.pageSeq++
	st.seq = c.pageSeq
	c.pages[cookie] = st
	return cookie
}

// takePage forgets a paged search, giving its entries back to the server's budget.
func (c *conn) takePage(cookie string) {
	if st, ok := c.pages[cookie]; ok {
		c.srv.paged.Add(-int64(len(st.guids)))
		delete(c.pages, cookie)
	}
}

func (c *conn) dropPages() {
	for k := range c.pages {
		c.takePage(k)
	}
}

func pagedControl(size int, cookie string) *ber.Packet {
	val := ber.NewSequence("realSearchControlValue")
	val.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, int64(size), "size"))
	val.AppendChild(octets([]byte(cookie)))
	ctl := ber.NewSequence("Control")
	ctl.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, oidPagedResults, "controlType"))
	ctl.AppendChild(octets(val.Bytes()))
	return ctl
}

// sendEntry writes one SearchResultEntry with the attributes the directory hands out.
func (c *conn) sendEntry(id int64, m *directory.Match, typesOnly bool) error {
	attrs, err := m.Attributes(c.attrs[:0])
	c.attrs = attrs[:0]
	if err != nil {
		return err
	}
	c.scratch = encodeEntry(c.scratch[:0], id, m.DN(), attrs, typesOnly)
	c.entriesSent++
	err = c.sendRaw(c.scratch)
	if cap(c.scratch) > 1<<20 { // a huge entry's buffer is not kept
		c.scratch = nil
	}
	clear(attrs) // no value outlives its entry
	return err
}

// rootDSE answers the base search of "" ([RFC 4512] 5.1) as an AD DC does.
func (c *conn) rootDSE(id int64, all bool, names []string) {
	dir := c.srv.cfg.Dir
	dom := dir.Domain()
	host := c.srv.cfg.DNSHostName
	if host == "" {
		host = strings.ToLower(dom.DCName) + "." + dom.DNSName
	}
	site := "CN=" + dom.DCName + ",CN=Servers,CN=Default-First-Site-Name,CN=Sites," + dom.ConfigDN
	schemaDN := "CN=Schema," + dom.ConfigDN
	level := "7" // Windows Server 2016
	vals := []struct {
		name string
		v    []string
	}{
		{"currentTime", []string{directory.GeneralizedTime(ntsec.FileTimeFromTime(c.srv.cfg.Now()))}},
		{"subschemaSubentry", []string{"CN=Aggregate," + schemaDN}},
		{"dsServiceName", []string{"CN=NTDS Settings," + site}},
		{"namingContexts", []string{dom.BaseDN, dom.ConfigDN, schemaDN}},
		{"defaultNamingContext", []string{dom.BaseDN}},
		{"rootDomainNamingContext", []string{dom.BaseDN}},
		{"configurationNamingContext", []string{dom.ConfigDN}},
		{"schemaNamingContext", []string{schemaDN}},
		{"serverName", []string{site}},
		{"supportedControl", supportedControls},
		{"supportedExtension", []string{oidStartTLS, oidWhoAmI}},
		{"supportedLDAPVersion", []string{"3", "2"}},
		{"supportedSASLMechanisms", saslMechanisms},
		{"supportedLDAPPolicies", []string{"MaxPageSize", "MaxConnIdleTime", "MaxReceiveBuffer"}},
		{"supportedCapabilities", []string{"1.2.840.113556.1.4.800", "1.2.840.113556.1.4.1670", "1.2.840.113556.1.4.1791",
			"1.2.840.113556.1.4.1935", "1.2.840.113556.1.4.2080", "1.2.840.113556.1.4.2237"}},
		{"isSynchronized", []string{"TRUE"}},
		{"isGlobalCatalogReady", []string{"FALSE"}},
		{"dnsHostName", []string{host}},
		{"ldapServiceName", []string{dom.DNSName + ":" + strings.ToLower(dom.DCName) + "$@" + dom.Realm}},
		{"domainFunctionality", []string{level}},
		{"forestFunctionality", []string{level}},
		{"domainControllerFunctionality", []string{level}},
	}
	attrs := ber.NewSequence("attributes")
	for _, a := range vals {
		if !all && !containsFold(names, a.name) {
			continue
		}
		at := ber.NewSequence("attribute")
		at.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, a.name, "type"))
		set := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSet, nil, "vals")
		for _, x := range a.v {
			set.AppendChild(octets([]byte(x)))
		}
		at.AppendChild(set)
		attrs.AppendChild(at)
	}
	e := ber.Encode(ber.ClassApplication, ber.TypeConstructed, appSearchEntry, nil, "SearchResultEntry")
	e.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", "objectName"))
	e.AppendChild(attrs)
	c.send(message(id, e))
	c.entriesSent++
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// sortedSearch answers a search with the server-side sort control ([RFC 2891]): the
// matches ordered by the key's attribute as the requester sees it, then sent as a plain
// or paged search sends them, with the sort response. A plain search keeps only the
// first limit+1 keys in order as it goes (the rest could never be sent); a paged one
// orders every match, at most MaxResultSetSize (AD's MaxTempTableSize plays that part).
//
// The search hints ([MS-ADTS] 3.1.1.3.4.1.32): Require Sort Index fails a critical sort
// by an attribute without an ordered index (unavailableCriticalExtension, the sort
// response unwillingToPerform; a non-critical sort ignores the hint); Soft Size Limit
// keeps, past its count, only the entries that tie with the last one kept, and says
// sizeLimitExceeded when it dropped any.
func (c *conn) sortedSearch(ctx context.Context, id int64, q directory.Query, key *sortKey, hints searchHints, limit int, paged, typesOnly bool,
	vlv *vlvRequest, done func(int, string, ...*ber.Packet)) {
	indexed := !key.reverse && !q.ShowDeleted && directory.CanOrder(key.attr)
	if hints.requireSortIndex && key.critical && !indexed {
		done(resultUnavailableCritical, fmt.Sprintf("%s has no index to sort by (ordered indexes: %s)", key.attr, strings.Join(directory.OrderedAttributes(), ", ")),
			sortResponse(resultUnwillingToPerform))
		return
	}
	if paged && vlv == nil && indexed && hints.softSizeLimit == 0 {
		// Pages read in the order of the attribute's index, where the last one stopped:
		// nothing is held between them.
		q.OrderBy = key.attr
		c.pagedSearch(ctx, id, q, limit, typesOnly, done)
		return
	}
	type keyed struct {
		guid  ntsec.GUID
		value []byte
	}
	sel := q.Select
	q.Select = directory.Selection{Names: []string{key.attr}}
	var all []keyed
	dir := c.srv.cfg.Dir
	order := func(a, b keyed) int { return compareSortValues(a.value, b.value, key.reverse) }
	err := dir.Search(ctx, c.req, q, func(m *directory.Match) error {
		switch {
		case paged && int64(len(all)) >= c.srv.cfg.MaxResultSetSize:
			return directory.ErrAdminLimit
		case !paged && len(all) >= 2*(limit+1): // matches come in GUID order: a stable sort keeps ties so
			slices.SortStableFunc(all, order)
			all = all[:limit+1]
		}
		k := keyed{guid: m.GUID()}
		attrs, err := m.Attributes(nil)
		if err != nil {
			return err
		}
		for _, a := range attrs {
			if strings.EqualFold(a.Name, key.attr) && len(a.Values) > 0 {
				k.value = append([]byte(nil), a.Values[0]...)
			}
		}
		all = append(all, k)
		return nil
	})
	switch {
	case errors.Is(err, directory.ErrAdminLimit):
		done(resultAdminLimitExceeded, fmt.Sprintf("00002024: a sorted search may order at most %d entries; narrow the filter", c.srv.cfg.MaxResultSetSize))
		return
	case err != nil:
		le := fromDomain(err)
		done(le.code, le.diag)
		return
	}
	slices.SortStableFunc(all, order)
	dropped := false
	if n := hints.softSizeLimit; n > 0 && len(all) > n {
		keep := n
		for keep < len(all) && order(all[keep], all[n-1]) == 0 {
			keep++
		}
		all, dropped = all[:keep], keep < len(all)
	}
	if vlv != nil {
		// The window ([MS-ADTS] 3.1.1.3.4.1.17): the target by offset (scaled to the
		// client's idea of the count) or by the first value not below the assertion.
		var target int
		switch {
		case vlv.assertion != nil:
			target = len(all) + 1
			for i, k := range all {
				if compareSortValues(k.value, vlv.assertion, key.reverse) >= 0 {
					target = i + 1
					break
				}
			}
		case vlv.offset == 0:
			done(resultOffsetRangeError, "the virtual list view offset starts at 1", sortResponse(resultSuccess), vlvResponse(0, len(all), resultOffsetRangeError))
			return
		case vlv.contentCount == 0 || vlv.contentCount == len(all):
			target = vlv.offset
		default:
			target = int(int64(vlv.offset) * int64(len(all)) / int64(vlv.contentCount))
		}
		target = max(1, min(target, len(all)+1))
		window := all[max(0, target-1-vlv.before):min(len(all), target+vlv.after)]
		if _, ok := c.sendLookedUp(ctx, id, len(window), func(i int) ntsec.GUID { return window[i].guid }, sel, typesOnly, c.srv.cfg.MaxPageSize, done); !ok {
			return
		}
		done(resultSuccess, "", sortResponse(resultSuccess), vlvResponse(target, len(all), resultSuccess))
		return
	}
	next, ok := c.sendLookedUp(ctx, id, len(all), func(i int) ntsec.GUID { return all[i].guid }, sel, typesOnly, limit, done)
	if !ok {
		return
	}
	switch {
	case paged:
		var rest []ntsec.GUID
		for _, k := range all[next:] {
			rest = append(rest, k.guid)
		}
		cookie := c.keepPage(rest, sel, typesOnly, dropped)
		if dropped && cookie == "" {
			done(resultSizeLimitExceeded, "", sortResponse(resultSuccess), pagedControl(len(all), ""))
			return
		}
		done(resultSuccess, "", sortResponse(resultSuccess), pagedControl(len(all), cookie))
	case next < len(all) || dropped:
		done(resultSizeLimitExceeded, "", sortResponse(resultSuccess))
	default:
		done(resultSuccess, "", sortResponse(resultSuccess))
	}
}

// sendLookedUp looks up the entries of the first n GUIDs in order and sends them, at
// most limit (one removed since the search matched it is skipped). It returns how many
// GUIDs it used, or false after answering the request with the error that stopped it.
func (c *conn) sendLookedUp(ctx context.Context, id int64, n int, guid func(int) ntsec.GUID, sel directory.Selection, typesOnly bool, limit int,
	done func(int, string, ...*ber.Packet)) (int, bool) {
	used, sent := 0, 0
	for ; used < n && sent < limit; used++ {
		m, err := c.srv.cfg.Dir.Lookup(ctx, c.req, guid(used), sel)
		if errors.Is(err, directory.ErrNotFound) {
			continue
		}
		if err == nil {
			err = c.sendEntry(id, m, typesOnly)
		}
		if err != nil {
			le := fromDomain(err)
			done(le.code, le.diag)
			return used, false
		}
		sent++
	}
	return used, true
}

// scopedSearch answers an attribute scoped query ([MS-ADTS] 3.1.1.3.4.1.13): the base
// object's DN values of the source attribute (as the requester sees them) are the
// objects searched, each with the request's filter and attributes. The scope must be
// base and the attribute hold DNs.
func (c *conn) scopedSearch(ctx context.Context, id int64, q directory.Query, source string, limit int, typesOnly bool,
	done func(int, string, ...*ber.Packet)) {
	// The query's own errors travel in its response control; the search itself
	// succeeds with no entries, as Samba and AD answer.
	if q.Scope != directory.ScopeBase {
		done(resultSuccess, "", asqResponse(resultUnwillingToPerform))
		return
	}
	if _, syntax, _, ok := directory.Attribute(source); !ok || syntax != directory.SyntaxDN {
		done(resultSuccess, "", asqResponse(resultInvalidSyntax))
		return
	}
	dir := c.srv.cfg.Dir
	var targets []string
	baseQ := directory.Query{Base: q.Base, Scope: directory.ScopeBase, Select: directory.Selection{Names: []string{source}}, Deadline: q.Deadline}
	err := dir.Search(ctx, c.req, baseQ, func(m *directory.Match) error {
		attrs, err := m.Attributes(nil)
		for _, a := range attrs {
			if strings.EqualFold(a.Name, source) {
				for _, v := range a.Values {
					targets = append(targets, string(v))
				}
			}
		}
		return err
	})
	if err != nil {
		le := fromDomain(err)
		done(le.code, le.diag, asqResponse(le.code))
		return
	}
	sent := 0
	for _, dn := range targets {
		q.Base = dn
		err := dir.Search(ctx, c.req, q, func(m *directory.Match) error {
			if sent == limit {
				return errSizeLimit
			}
			sent++
			return c.sendEntry(id, m, typesOnly)
		})
		switch {
		case errors.Is(err, errSizeLimit):
			done(resultSizeLimitExceeded, "", asqResponse(resultSuccess))
			return
		case errors.Is(err, directory.ErrNoSuchBase), err == nil:
		default:
			le := fromDomain(err)
			done(le.code, le.diag, asqResponse(le.code))
			return
		}
	}
	done(resultSuccess, "", asqResponse(resultSuccess))
}
