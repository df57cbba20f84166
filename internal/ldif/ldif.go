// Package ldif reads the LDIF content records ldapsearch prints ([RFC 2849]): entries
// separated by blank lines, folded lines, "attr: value" and base64 "attr:: value".
// It is pure and bounded by its input.
package ldif

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
)

// Entry is one record. Attribute names keep their case in Names; Get is case-insensitive.
type Entry struct {
	DN    string
	Attrs map[string][][]byte // key: lower-case attribute name
	Names map[string]string   // lower-case → name as written
}

// Get returns the values of an attribute, case-insensitively.
func (e *Entry) Get(name string) [][]byte { return e.Attrs[strings.ToLower(name)] }

// First returns the first value of an attribute, or nil.
func (e *Entry) First(name string) []byte {
	if v := e.Get(name); len(v) > 0 {
		return v[0]
	}
	return nil
}

// Parse reads every entry of data. Errors name the line.
func Parse(data []byte) ([]*Entry, error) {
	// Unfold first (RFC 2849: a line starting with one space continues the previous
	// one), in linear time: each logical line is built once.
	var lines []string
	var lineNo []int
	var logical strings.Builder
	curNo, open := 0, false
	flush := func() {
		if open {
			lines = append(lines, logical.String())
			lineNo = append(lineNo, curNo)
			logical.Reset()
			open = false
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSuffix(sc.Text(), "\r")
		if strings.HasPrefix(l, " ") && open && logical.Len() > 0 {
			logical.WriteString(l[1:])
			continue
		}
		flush()
		logical.WriteString(l)
		curNo, open = n, true
	}
	flush()
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("ldif: %w", err)
	}
	var out []*Entry
	var cur *Entry
	for i, l := range lines {
		switch {
		case l == "":
			cur = nil
			continue
		case strings.HasPrefix(l, "#"):
			continue
		case cur == nil && strings.HasPrefix(strings.ToLower(l), "version:"):
			continue
		}
		name, value, err := attrValue(l)
		if err != nil {
			return nil, fmt.Errorf("ldif: line %d: %w", lineNo[i], err)
		}
		if cur == nil {
			if !strings.EqualFold(name, "dn") {
				return nil, fmt.Errorf("ldif: line %d: an entry must start with dn:, found %q", lineNo[i], name)
			}
			cur = &Entry{DN: string(value), Attrs: map[string][][]byte{}, Names: map[string]string{}}
			out = append(out, cur)
			continue
		}
		key := strings.ToLower(name)
		cur.Attrs[key] = append(cur.Attrs[key], value)
		cur.Names[key] = name
	}
	return out, nil
}

func attrValue(l string) (string, []byte, error) {
	i := strings.IndexByte(l, ':')
	if i <= 0 {
		return "", nil, fmt.Errorf("want \"attribute: value\", found %q", truncate(l))
	}
	name, rest := l[:i], l[i+1:]
	switch {
	case strings.HasPrefix(rest, ":"):
		v, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest[1:]))
		if err != nil {
			return "", nil, fmt.Errorf("attribute %s: bad base64 value", name)
		}
		return name, v, nil
	case strings.HasPrefix(rest, "<"):
		return "", nil, fmt.Errorf("attribute %s: URL values (:<) are not supported", name)
	}
	return name, []byte(strings.TrimPrefix(rest, " ")), nil
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
