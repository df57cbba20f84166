package ldif

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	in := []byte("version: 1\n\n# comment\ndn: CN=a,DC=example,DC=test\ncn: a\nobjectSid:: AQUAAAAAAAUVAAAA\n vPuL9a85\nmember: x\nMember: y\n\ndn:: Q049YixEQz1leA==\nCN: b\n")
	es, err := Parse(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 || es[0].DN != "CN=a,DC=example,DC=test" || es[1].DN != "CN=b,DC=ex" {
		t.Fatalf("%+v", es)
	}
	if got := es[0].First("OBJECTSID"); !bytes.Equal(got, []byte{1, 5, 0, 0, 0, 0, 0, 5, 0x15, 0, 0, 0, 0xbc, 0xfb, 0x8b, 0xf5, 0xaf, 0x39}) {
		t.Fatalf("folded base64: %x", got)
	}
	if len(es[0].Get("member")) != 2 || string(es[1].First("cn")) != "b" {
		t.Fatal("values")
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{"cn: a\n", "dn: x\nnovalue\n", "dn: x\na:: !!!\n", "dn: x\na:< file:///etc/passwd\n"} {
		if _, err := Parse([]byte(in)); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

// Folding is linear: a value folded over 200 000 lines parses quickly.
func TestParseLongFoldedValue(t *testing.T) {
	in := "dn: CN=a\ndescription: x\n" + strings.Repeat(" y\n", 200_000)
	start := time.Now()
	es, err := Parse([]byte(in))
	if err != nil || len(es[0].First("description")) != 200_001 {
		t.Fatalf("%v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("parsing took %v", d)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("dn: CN=a\ncn: a\nx:: AAEC\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := Parse(b)
		if err != nil {
			return
		}
		for _, e := range es {
			if e.Attrs == nil {
				t.Fatal("entry without attribute map")
			}
		}
	})
}
