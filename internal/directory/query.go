package directory

import (
	"bytes"
	"context"
	"strconv"
	"strings"

	"gmsa/internal/ntsec"
)

// Filter is a search filter over objects' attribute views ([RFC 4511] 4.5.1.7 with
// AD's matching). Transports build it from their own wire form.
type Filter interface {
	eval(v *View) tri
}

// tri is the three-valued result of a filter: TRUE, FALSE or Undefined ([RFC 4511]
// 4.5.1.7): an unknown attribute or an unparsable value is Undefined, and NOT keeps it.
type tri int8

const (
	fFalse tri = iota
	fTrue
	fUndefined
)

// Filter forms.
type (
	And   []Filter
	Or    []Filter
	Not   struct{ F Filter }
	Equal struct {
		Attr  string
		Value []byte
	} // also approxMatch
	Present struct{ Attr string }
	Greater struct {
		Attr  string
		Value []byte
	} // greaterOrEqual
	Less struct {
		Attr  string
		Value []byte
	} // lessOrEqual
	Substr struct {
		Attr           string
		Initial, Final []byte
		Any            [][]byte
	}
	Extensible struct {
		Rule, Attr string
		Value      []byte
	}
)

// Matching rules AD implements ([MS-ADTS] 3.1.1.3.4.4).
const (
	RuleBitAnd  = "1.2.840.113556.1.4.803"
	RuleBitOr   = "1.2.840.113556.1.4.804"
	RuleInChain = "1.2.840.113556.1.4.1941"
)

func (f And) eval(v *View) tri { return combine(f, v, fFalse, fTrue) }
func (f Or) eval(v *View) tri  { return combine(f, v, fTrue, fFalse) }

// combine is the three-valued AND or OR of [RFC 4511] 4.5.1.7: one decisive result
// decides, else any Undefined makes the result Undefined, else it is the neutral one
// (also for an empty set: (&) is True, (|) is False).
func combine(fs []Filter, v *View, decisive, neutral tri) tri {
	r := neutral
	for _, x := range fs {
		if !v.b.spend(1) {
			return fUndefined // the search is over its budget: it ends with that error
		}
		switch x.eval(v) {
		case decisive:
			return decisive
		case fUndefined:
			r = fUndefined
		}
	}
	return r
}

func (f Not) eval(v *View) tri {
	switch f.F.eval(v) {
	case fTrue:
		return fFalse
	case fFalse:
		return fTrue
	}
	return fUndefined
}

func (f Present) eval(v *View) tri {
	if strings.EqualFold(f.Attr, "objectClass") {
		return fTrue
	}
	if _, _, _, ok := Attribute(f.Attr); !ok {
		return fUndefined
	}
	return boolTri(len(v.Get(f.Attr)) > 0)
}

func boolTri(b bool) tri {
	if b {
		return fTrue
	}
	return fFalse
}

// categoryByClass maps an objectCategory given as a class name to its category CN, as
// AD resolves "objectCategory=computer".
var categoryByClass = map[string]string{"person": "Person", "user": "Person", "computer": "Computer", "group": "Group",
	"msds-groupmanagedserviceaccount": "ms-DS-Group-Managed-Service-Account", "mskds-provrootkey": "ms-Kds-Prov-RootKey",
	"container": "Container", "organizationalunit": "Organizational-Unit", "domaindns": "Domain-DNS", "domain": "Domain-DNS"}

// assertion turns a filter value into the form stored values take: SIDs and GUIDs may be
// written as strings, objectCategory as a class name, a DN in an alternative form.
func assertion(attr string, syntax Syntax, val []byte, v *View) []byte {
	if syntax == SyntaxDN && len(val) > 0 && val[0] == '<' { // <SID=…>, <GUID=…>, <WKGUID=…>: the DN they name
		return []byte(v.d.resolvedDN(v.ctx, string(val)))
	}
	switch strings.ToLower(attr) {
	case "objectsid":
		if bytes.HasPrefix(bytes.ToUpper(val), []byte("S-1-")) {
			if s, err := ntsec.ParseSID(string(val)); err == nil {
				return s.Bytes()
			}
		}
	case "objectguid":
		if g, err := ntsec.ParseGUID(string(val)); err == nil && len(val) >= 36 {
			return g[:]
		}
	case "objectcategory":
		if !bytes.Contains(val, []byte("=")) {
			if cn, ok := categoryByClass[strings.ToLower(string(val))]; ok {
				return []byte("CN=" + cn + ",CN=Schema," + v.d.domain.ConfigDN)
			}
		}
	}
	return val
}

// compare orders a stored value and an assertion by syntax: −1, 0, +1, or ok false.
func compare(syntax Syntax, stored, asserted []byte) (int, bool) {
	switch syntax {
	case SyntaxInteger:
		a, err1 := strconv.ParseInt(string(stored), 10, 64)
		b, err2 := strconv.ParseInt(strings.TrimSpace(string(asserted)), 10, 64)
		if err1 != nil || err2 != nil {
			return 0, false
		}
		return cmpInt(a, b), true
	case SyntaxBinary:
		return bytes.Compare(stored, asserted), true
	case SyntaxDN:
		return strings.Compare(normDN(string(stored)), normDN(string(asserted))), true
	}
	return strings.Compare(strings.ToLower(string(stored)), strings.ToLower(string(asserted))), true
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// normDN lower-cases a DN and drops spaces around separators.
func normDN(dn string) string {
	if !spacedDN(dn) {
		return strings.ToLower(dn)
	}
	parts := strings.Split(dn, ",")
	for i, p := range parts {
		k, val, _ := strings.Cut(p, "=")
		parts[i] = strings.ToLower(strings.TrimSpace(k)) + "=" + strings.ToLower(strings.TrimSpace(val))
	}
	return strings.Join(parts, ",")
}

// spacedDN reports whether dn has spaces around its separators (or at either end),
// which normDN removes.
func spacedDN(dn string) bool {
	for i := 0; i < len(dn); i++ {
		if dn[i] != ' ' {
			continue
		}
		if i == 0 || i == len(dn)-1 || dn[i-1] == ',' || dn[i-1] == '=' || dn[i+1] == ',' || dn[i+1] == '=' {
			return true
		}
	}
	return false
}

// under reports whether dn lies below base (or is base, when self). base is
// normalized; dn is compared case-insensitively and normalized only when it needs it.
func under(dn, base string, self bool) bool {
	if spacedDN(dn) || !ascii(dn) {
		dn = normDN(dn)
	}
	switch {
	case len(dn) == len(base):
		return self && strings.EqualFold(dn, base)
	case len(dn) > len(base):
		cut := len(dn) - len(base)
		return dn[cut-1] == ',' && strings.EqualFold(dn[cut:], base)
	}
	return false
}

func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func (f Equal) eval(v *View) tri {
	name, syntax, _, ok := Attribute(f.Attr)
	if !ok {
		return fUndefined
	}
	want := assertion(name, syntax, f.Value, v)
	if strings.EqualFold(name, "objectClass") {
		syntax = SyntaxString
	}
	undefined := false
	for _, val := range v.Get(name) {
		c, ok := compare(syntax, val, want)
		if !ok {
			undefined = true
			continue
		}
		if c == 0 {
			return fTrue
		}
	}
	if undefined {
		return fUndefined
	}
	return fFalse
}

func ordering(attr string, value []byte, v *View, want func(int) bool) tri {
	name, syntax, _, ok := Attribute(attr)
	if !ok {
		return fUndefined
	}
	for _, val := range v.Get(name) {
		if c, ok := compare(syntax, val, value); ok && want(c) {
			return fTrue
		} else if !ok {
			return fUndefined
		}
	}
	return fFalse
}

func (f Greater) eval(v *View) tri {
	return ordering(f.Attr, f.Value, v, func(c int) bool { return c >= 0 })
}
func (f Less) eval(v *View) tri {
	return ordering(f.Attr, f.Value, v, func(c int) bool { return c <= 0 })
}

func (f Substr) eval(v *View) tri {
	name, syntax, _, ok := Attribute(f.Attr)
	if !ok || syntax == SyntaxInteger || syntax == SyntaxBinary {
		return fUndefined
	}
	low := func(b []byte) string { return strings.ToLower(string(b)) }
	for _, val := range v.Get(name) {
		s := low(val)
		if !strings.HasPrefix(s, low(f.Initial)) {
			continue
		}
		s = s[len(f.Initial):]
		matched := true
		for _, a := range f.Any {
			i := strings.Index(s, low(a))
			if i < 0 {
				matched = false
				break
			}
			s = s[i+len(a):]
		}
		if matched && strings.HasSuffix(s, low(f.Final)) {
			return fTrue
		}
	}
	return fFalse
}

func (f Extensible) eval(v *View) tri {
	name, syntax, _, ok := Attribute(f.Attr)
	if !ok {
		return fUndefined
	}
	switch f.Rule {
	case RuleBitAnd, RuleBitOr:
		if syntax != SyntaxInteger {
			return fUndefined
		}
		mask, err := strconv.ParseInt(strings.TrimSpace(string(f.Value)), 10, 64)
		if err != nil {
			return fUndefined
		}
		for _, val := range v.Get(name) {
			n, err := strconv.ParseInt(string(val), 10, 64)
			if err != nil {
				continue
			}
			if (f.Rule == RuleBitAnd && uint64(n)&uint64(mask) == uint64(mask)) || (f.Rule == RuleBitOr && uint64(n)&uint64(mask) != 0) {
				return fTrue
			}
		}
		return fFalse
	case RuleInChain:
		return boolTri(v.inChain(name, f.Value))
	case "":
		return Equal{f.Attr, f.Value}.eval(v)
	}
	return fUndefined
}

// inChain implements LDAP_MATCHING_RULE_IN_CHAIN for memberOf (o is transitively in the
// group named by dn) and member (the group o transitively contains dn). Within a
// search, the target's resolution and each object's transitive groups are computed
// once, and every step is charged to the search's budget.
func (v *View) inChain(attr string, dn []byte) bool {
	target, ok := v.b.target(v, dn)
	if !ok {
		return false
	}
	switch {
	case strings.EqualFold(attr, "memberOf"):
		return v.b.groups(v, v.o.GUID, v.o)[target]
	case strings.EqualFold(attr, "member"):
		return v.b.groups(v, target, nil)[v.o.GUID]
	}
	return false
}

// transitiveGroups returns every group o is in, directly or through nesting.
func (d *Directory) transitiveGroups(ctx context.Context, o *Object, b *budget) map[ntsec.GUID]bool {
	seen := map[ntsec.GUID]bool{}
	queue := []*Object{o}
	for len(queue) > 0 && b.spend(1) {
		cur := queue[0]
		queue = queue[1:]
		for _, g := range d.memberOf(ctx, cur) {
			if !seen[g.GUID] {
				seen[g.GUID] = true
				queue = append(queue, g)
			}
		}
	}
	return seen
}
