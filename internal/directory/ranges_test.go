package directory

import (
	"errors"
	"fmt"
	"testing"
)

// Range retrieval: a group's members a range at a time, as AD clients read large groups
// (at most MaxValRange per read, the last range named "-*"); without the option the
// attribute comes whole.
func TestRangeRetrieval(t *testing.T) {
	d, _ := lab(t)
	must(d.NewGroup(ctx, sys, "Big", ScopeGlobal, ""))
	const n = MaxValRange + 100
	for i := range n {
		must(d.NewGroup(ctx, sys, fmt.Sprintf("g%04d", i), ScopeGlobal, ""))
		must(d.AddMember(ctx, sys, "Big", fmt.Sprintf("g%04d", i)))
	}
	read := func(name string, noErr bool) (string, int, error) {
		t.Helper()
		var got Attr
		err := d.Search(ctx, sys, Query{Base: "CN=Big,CN=Users,DC=example,DC=test", Scope: ScopeBase, Select: Selection{Names: []string{name}, RangeNoError: noErr}},
			func(m *Match) error {
				attrs, err := m.Attributes(nil)
				if len(attrs) > 0 {
					got = attrs[0]
				}
				return err
			})
		return got.Name, len(got.Values), err
	}
	for _, c := range []struct {
		ask, name string
		values    int
	}{
		{"member", "member", n},
		{"member;range=0-*", "member;range=0-1499", MaxValRange},
		{"member;range=1500-*", "member;range=1500-*", 100},
		{"Member;Range=10-19", "member;range=10-19", 10},
		{"member;range=1590-1700", "member;range=1590-*", 10},
		{"member;range=5-1", "", 0},
		{"member;range=x-*", "", 0},
		{"description;range=3-*", "", 0}, // not a link attribute: past the end is no values
	} {
		if name, values, err := read(c.ask, false); err != nil || name != c.name || values != c.values {
			t.Errorf("%s: %s with %d values (%v), want %s with %d", c.ask, name, values, err, c.name, c.values)
		}
	}
	// Past a link attribute's last value: operationsError, unless the no-error control
	// asks for no values ([MS-ADTS] 3.1.1.3.4.1.22).
	if _, _, err := read("member;range=1600-*", false); !errors.Is(err, ErrRangeBeyond) {
		t.Errorf("member;range=1600-*: %v, want %v", err, ErrRangeBeyond)
	}
	if name, values, err := read("member;range=1600-*", true); err != nil || name != "" || values != 0 {
		t.Errorf("member;range=1600-* with the no-error control: %s with %d values (%v), want nothing", name, values, err)
	}
}

// Any requested name: parseRange and apply never panic, and a range returns a run of
// the values from its low end on, at most MaxValRange of them.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"member;range=0-*", "member;range=10-19", "member;Range=5-", "member;range=-1-3", "member;range=9999999999999999999-*", "cn"} {
		f.Add(s, 20)
	}
	f.Fuzz(func(t *testing.T, name string, n int) {
		n = min(max(n, 0), 5000)
		vals := make([][]byte, n)
		for i := range vals {
			vals[i] = []byte{byte(i)}
		}
		attr, r, ok := parseRange(name)
		if !ok {
			if attr != name {
				t.Fatalf("%q changed to %q without a range", name, attr)
			}
			return
		}
		got, _ := r.apply(attr, vals)
		if len(got) > MaxValRange || len(got) > 0 && got[0][0] != byte(r.low) {
			t.Fatalf("%q over %d values: %d from %v", name, n, len(got), got[0])
		}
	})
}
