package directory

import (
	"bytes"
	"strings"
)

// A scan tests the filter on each object's stored record before decoding it. rawTest
// is a necessary condition of the filter: when it fails, the filter cannot be TRUE for
// the object, whoever asks, and the object is skipped unread. It reads only the fields
// that hold public attributes' values verbatim (rawFields) and nothing else of the
// record, so a search's time can tell no more than those values tell any reader; the
// stored secrets beside them are never compared. Where it cannot be sure (an escaped or
// non-ASCII value, whose case folding is Unicode's) it says "may match" and the object
// is decoded and evaluated as always.
type rawTest interface {
	may(rec []byte) bool
}

// rawFields maps attributes to the record fields (Object's JSON names) holding their
// values verbatim: a string, or an array of strings.
var rawFields = map[string]string{"description": "description", "samaccountname": "sam", "userprincipalname": "upn",
	"cn": "name", "name": "name", "ou": "name", "dc": "name", "dnshostname": "dns_host_name",
	"serviceprincipalname": "spns", "msds-allowedtodelegateto": "allowed_to_delegate_to"}

type (
	rawAll []rawTest // every one may match
	rawAny []rawTest // one of them may match
	// rawValues tests the string values of one field.
	rawValues struct {
		key     []byte // `,"field":` — fields after the record's first (guid) are written so
		tag     byte   // the field's tag in a binary record
		present bool   // the field exists
		equal   []string
		initial string
		anys    []string
		final   string
	}
)

func (t rawAll) may(rec []byte) bool {
	for _, x := range t {
		if !x.may(rec) {
			return false
		}
	}
	return true
}

func (t rawAny) may(rec []byte) bool {
	for _, x := range t {
		if x.may(rec) {
			return true
		}
	}
	return false
}

// compileRaw returns the filter's necessary condition on records, nil when it has none.
func (d *Directory) compileRaw(f Filter) rawTest {
	switch x := f.(type) {
	case And:
		var all rawAll
		for _, c := range x {
			if t := d.compileRaw(c); t != nil {
				all = append(all, t)
			}
		}
		if len(all) == 0 {
			return nil
		}
		return all
	case Or:
		var any rawAny
		for _, c := range x {
			t := d.compileRaw(c)
			if t == nil {
				return nil
			}
			any = append(any, t)
		}
		return any
	case Extensible:
		if x.Rule == "" {
			return d.compileRaw(Equal{Attr: x.Attr, Value: x.Value})
		}
	case Equal:
		a := strings.ToLower(x.Attr)
		if a == "objectclass" || a == "objectcategory" {
			classes, ok := d.classesMatching(a, string(x.Value))
			if !ok {
				return nil
			}
			t := &rawValues{key: []byte(`,"class":`), tag: tagClass}
			for _, c := range classes {
				t.equal = append(t.equal, strings.ToLower(string(c)))
			}
			return t
		}
		if field, ok := rawFields[a]; ok && plainASCII(x.Value) {
			return &rawValues{key: []byte(`,"` + field + `":`), tag: recordTags[field], equal: []string{strings.ToLower(string(x.Value))}}
		}
	case Substr:
		field, ok := rawFields[strings.ToLower(x.Attr)]
		if !ok || !plainASCII(x.Initial) || !plainASCII(x.Final) {
			return nil
		}
		t := &rawValues{key: []byte(`,"` + field + `":`), tag: recordTags[field], initial: strings.ToLower(string(x.Initial)), final: strings.ToLower(string(x.Final))}
		for _, s := range x.Any {
			if !plainASCII(s) {
				return nil
			}
			t.anys = append(t.anys, strings.ToLower(string(s)))
		}
		return t
	case Present:
		if field, ok := rawFields[strings.ToLower(x.Attr)]; ok {
			return &rawValues{key: []byte(`,"` + field + `":`), tag: recordTags[field], present: true}
		}
	}
	return nil
}

// plainASCII reports whether a value is printable ASCII that JSON writes as it is.
func plainASCII(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

func (t *rawValues) may(rec []byte) bool {
	if len(rec) > 0 && rec[0] == recordBinary {
		return t.mayBinary(rec)
	}
	i := bytes.Index(rec, t.key)
	if i < 0 {
		return false // the field is absent (empty values are omitted)
	}
	if t.present {
		return true
	}
	rest := rec[i+len(t.key):]
	array := len(rest) > 0 && rest[0] == '['
	if array {
		rest = rest[1:]
	}
	for len(rest) > 0 && rest[0] == '"' {
		end := 1
		for end < len(rest) && rest[end] != '"' {
			if rest[end] == '\\' || rest[end] >= 0x80 {
				return true // escaped or non-ASCII: decode and evaluate
			}
			end++
		}
		if end == len(rest) {
			return true // damaged: let the decoder say so
		}
		if t.matches(rest[1:end]) {
			return true
		}
		if !array || end+1 >= len(rest) || rest[end+1] != ',' {
			return false
		}
		rest = rest[end+2:]
	}
	return true // not a string (a number, null): no opinion
}

// mayBinary is may for a binary record: the field's values are found by its tag.
func (t *rawValues) mayBinary(rec []byte) bool {
	for at := 1; at < len(rec); {
		tag, p, next, err := nextField(rec, at)
		if err != nil {
			return true // damaged: let the decoder say so
		}
		at = next
		if tag != t.tag {
			continue
		}
		if t.present {
			return true
		}
		if tag != tagSPNs && tag != tagAllowedToDelegateTo {
			return t.matchesRaw(rec[p.start:p.end])
		}
		for it := p.start; it < p.end; {
			v, err := lengthPrefixed(rec, it, p.end)
			if err != nil || t.matchesRaw(rec[v.start:v.end]) {
				return true
			}
			it = v.end
		}
		return false
	}
	return false // the field is absent (empty values are left out)
}

// matchesRaw is matches, or "may match" for a value that is not ASCII (its case
// folding is Unicode's: the decoded object is evaluated).
func (t *rawValues) matchesRaw(v []byte) bool {
	for _, c := range v {
		if c >= 0x80 {
			return true
		}
	}
	return t.matches(v)
}

// matches applies the test to one ASCII value, case-insensitively as the filter does.
func (t *rawValues) matches(v []byte) bool {
	if t.equal != nil {
		for _, e := range t.equal {
			if len(e) == len(v) && hasPrefixFold(v, e) {
				return true
			}
		}
		return false
	}
	if len(v) < len(t.initial)+len(t.final) || !hasPrefixFold(v, t.initial) || !hasPrefixFold(v[len(v)-len(t.final):], t.final) {
		return false
	}
	v = v[len(t.initial) : len(v)-len(t.final)]
	for _, a := range t.anys {
		i := indexFold(v, a)
		if i < 0 {
			return false
		}
		v = v[i+len(a):]
	}
	return true
}

// hasPrefixFold reports whether ASCII s starts with the lower-case lower.
func hasPrefixFold(s []byte, lower string) bool {
	if len(s) < len(lower) {
		return false
	}
	for i := 0; i < len(lower); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// indexFold finds the lower-case lower in ASCII s, ignoring case; -1 when absent.
func indexFold(s []byte, lower string) int {
	for i := 0; i+len(lower) <= len(s); i++ {
		if hasPrefixFold(s[i:], lower) {
			return i
		}
	}
	return -1
}
