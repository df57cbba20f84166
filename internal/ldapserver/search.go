package ldapserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"

	"gmsa/internal/audit"
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

// pageState is a paged search in progress on a connection ([RFC 2696]).
type pageState struct {
	objs  []*directory.Object
	attrs attrSelection
}

const maxPagedSearches = 16

type attrSelection struct {
	all         bool // "*" or no list
	none        bool // "1.1"
	names       []string
	password    bool // msDS-ManagedPassword named
	tokenGroups bool // tokenGroups named (base searches only, as AD)
	typesOnly   bool
	rawNames    []string // as requested, for the RootDSE
}

func selectAttrs(list []*ber.Packet, typesOnly bool) attrSelection {
	s := attrSelection{typesOnly: typesOnly, all: len(list) == 0}
	for _, p := range list {
		n := str(p)
		s.rawNames = append(s.rawNames, n)
		switch {
		case n == "*":
			s.all = true
		case n == "1.1":
			s.none = len(list) == 1
		case n == "+":
		case strings.EqualFold(n, "msDS-ManagedPassword"):
			s.password = true
		case strings.EqualFold(n, "tokenGroups"):
			s.tokenGroups = true
		default:
			if name, _, _, ok := directory.Attribute(n); ok {
				s.names = append(s.names, name)
			}
		}
	}
	return s
}

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
	sel := selectAttrs(op.Children[7].Children, boolValue(op.Children[5]))

	var paged *ber.Packet
	for _, ctl := range controls {
		if len(ctl.Children) == 0 {
			continue
		}
		oid := str(ctl.Children[0])
		critical := len(ctl.Children) > 1 && ctl.Children[1].Tag == ber.TagBoolean && boolValue(ctl.Children[1])
		if oid == oidPagedResults {
			paged = ctl
		} else if critical {
			done(resultUnavailableCritical, "00002081: unsupported critical control "+oid)
			return
		}
	}
	if base == "" && scope == 0 {
		c.rootDSE(id, sel)
		done(resultSuccess, "")
		return
	}
	if c.tok == nil {
		done(resultOperationsError, diagNeedBind)
		return
	}
	if sel.password && !c.encrypted { // before any ACL check, as Windows and Samba do
		done(resultOperationsError, diagNeedEncrypted)
		return
	}
	filter, err := parseFilter(op.Children[6], 0)
	if err != nil {
		done(resultProtocolError, err.Error())
		return
	}

	var pageSize int
	var cookie string
	if paged != nil {
		var val *ber.Packet
		if len(paged.Children) > 0 {
			val = paged.Children[len(paged.Children)-1]
		}
		inner, err := ber.DecodePacketErr(raw(val))
		if err != nil || len(inner.Children) != 2 {
			done(resultProtocolError, "malformed paged results control")
			return
		}
		n, _ := intValue(inner.Children[0])
		pageSize, cookie = int(min(max(n, 1), int64(c.srv.cfg.MaxPageSize))), string(raw(inner.Children[1]))
	}

	var objs []*directory.Object
	if st, ok := c.pages[cookie]; cookie != "" && ok {
		delete(c.pages, cookie)
		objs, sel = st.objs, st.attrs
	} else if cookie != "" {
		done(resultUnwillingToPerform, "00002024: the paged search cookie is unknown or expired")
		return
	} else {
		deadline := time.Time{}
		if timeLimit > 0 {
			deadline = c.srv.cfg.Now().Add(time.Duration(timeLimit) * time.Second)
		}
		errTime := errors.New("time limit")
		err = c.srv.cfg.Dir.Search(ctx, directory.Query{Base: base, Scope: directory.Scope(scope), Filter: filter}, func(v *directory.View) error {
			if !deadline.IsZero() && c.srv.cfg.Now().After(deadline) {
				return errTime
			}
			objs = append(objs, v.O)
			return nil
		})
		if errors.Is(err, errTime) {
			c.sendEntries(ctx, id, objs, sel, scope == 0)
			done(resultTimeLimitExceeded, "")
			return
		}
		if err != nil {
			le := fromDomain(err)
			done(le.code, le.diag)
			return
		}
	}

	limit := len(objs)
	code := resultSuccess
	if paged == nil {
		if sizeLimit > 0 && int(sizeLimit) < limit {
			limit, code = int(sizeLimit), resultSizeLimitExceeded
		}
		if limit > c.srv.cfg.MaxPageSize { // AD caps unpaged searches at MaxPageSize
			limit, code = c.srv.cfg.MaxPageSize, resultSizeLimitExceeded
		}
		if err := c.sendEntries(ctx, id, objs[:limit], sel, scope == 0); err != nil {
			return
		}
		done(code, "")
		return
	}
	page := objs[:min(pageSize, len(objs))]
	if err := c.sendEntries(ctx, id, page, sel, scope == 0); err != nil {
		return
	}
	next := ""
	if rest := objs[len(page):]; len(rest) > 0 {
		if len(c.pages) >= maxPagedSearches {
			for k := range c.pages {
				delete(c.pages, k)
				break
			}
		}
		b := make([]byte, 16)
		rand.Read(b)
		next = hex.EncodeToString(b)
		c.pages[next] = &pageState{objs: rest, attrs: sel}
	}
	done(resultSuccess, "", pagedControl(len(objs), next))
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

// sendEntries writes one SearchResultEntry per object.
func (c *conn) sendEntries(ctx context.Context, id int64, objs []*directory.Object, sel attrSelection, base bool) error {
	dir := c.srv.cfg.Dir
	canReadRootKeys := func() bool {
		return dir.InGroup(c.tok, ntsec.RIDDomainAdmins) || dir.InGroup(c.tok, ntsec.RIDEnterpriseAdmins)
	}
	for _, o := range objs {
		v := dir.View(ctx, o)
		names := sel.names
		if sel.all {
			names = v.Names()
		}
		if sel.none {
			names = nil
		}
		var attrs []entryAttr
		add := func(name string, vals [][]byte) {
			if len(vals) > 0 {
				attrs = append(attrs, entryAttr{name, vals})
			}
		}
		seen := map[string]bool{}
		for _, n := range names {
			if seen[strings.ToLower(n)] {
				continue
			}
			seen[strings.ToLower(n)] = true
			if strings.EqualFold(n, "msKds-RootKeyData") {
				if !canReadRootKeys() {
					continue // AD: only Domain and Enterprise Admins may read it
				}
				c.srv.cfg.Audit.Record(c.srv.cfg.Now(), audit.Warn, "KDS root key read", "principal", c.tok.Name, "remote", c.remote,
					"root_key", o.GUID.String())
			}
			add(n, v.Get(n))
		}
		if sel.password && o.Class == directory.ClassGMSA {
			if blob := c.readPassword(ctx, o); blob != nil {
				add("msDS-ManagedPassword", [][]byte{blob})
			}
		}
		if sel.tokenGroups && base && o.IsPrincipal() && o.Class != directory.ClassGroup {
			if tok, err := dir.TokenFor(ctx, o.GUID.String()); err == nil {
				var sids [][]byte
				for _, g := range tok.Groups {
					if g.Authority == 5 && len(g.Sub) > 1 || g.Authority == 5 && g.Sub[0] == 32 { // domain and builtin groups, as AD lists them
						sids = append(sids, g.Bytes())
					}
				}
				add("tokenGroups", sids)
			}
		}
		c.scratch = encodeEntry(c.scratch[:0], id, o.DN, attrs, sel.typesOnly)
		err := c.sendRaw(c.scratch)
		if cap(c.scratch) > 1<<20 { // a huge entry's buffer is not kept
			c.scratch = nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// readPassword returns the blob when the bound principal may read it ([MS-ADTS]
// 3.1.1.4.4: otherwise the attribute is silently absent), and audits the attempt.
func (c *conn) readPassword(ctx context.Context, o *directory.Object) []byte {
	log, when := c.srv.cfg.Audit, c.srv.cfg.Now()
	mp, dec := c.srv.cfg.Dir.AuthorizePassword(c.tok, o)
	if mp == nil {
		log.Record(when, audit.Warn, "gMSA password read denied", "principal", c.tok.Name, "remote", c.remote, "account", o.SAM, "reason", dec.Reason)
		return nil
	}
	p, err := mp.Read(ctx)
	if err != nil {
		c.srv.cfg.Logger.Error("gMSA password read failed", "account", o.SAM, "err", err)
		return nil
	}
	log.Record(when, audit.Info, "gMSA password read", "principal", c.tok.Name, "remote", c.remote, "account", o.SAM,
		"period", p.Plan.Current.GKID.String(), "root_key", p.Plan.Current.RootKey.ID.String())
	return p.Blob()
}

// rootDSE answers the base search of "" ([RFC 4512] 5.1) as an AD DC does.
func (c *conn) rootDSE(id int64, sel attrSelection) {
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
		{"supportedControl", []string{oidPagedResults}},
		{"supportedExtension", []string{oidStartTLS, oidWhoAmI}},
		{"supportedLDAPVersion", []string{"3", "2"}},
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
		if !sel.all && !containsFold(sel.rawNames, a.name) {
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
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
