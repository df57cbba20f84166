package ldapserver

import (
	"bytes"
	"strings"
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
)

// The direct encoder produces what the packet library produces.
func TestEncodeEntryMatchesBER(t *testing.T) {
	for _, id := range []int64{0, 1, 127, 128, 255, 256, 65535, 1 << 30} {
		attrs := []entryAttr{{"cn", [][]byte{[]byte("svc")}}, {"objectClass", [][]byte{[]byte("top"), []byte("user")}},
			{"big", [][]byte{bytes.Repeat([]byte{7}, 70000)}}, {"empty", nil}}
		got := encodeEntry(id, "CN=svc,"+strings.Repeat("OU=x,", 40)+"DC=example,DC=test", attrs, false)
		e := ber.Encode(ber.ClassApplication, ber.TypeConstructed, appSearchEntry, nil, "entry")
		e.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "CN=svc,"+strings.Repeat("OU=x,", 40)+"DC=example,DC=test", ""))
		list := ber.NewSequence("")
		for _, a := range attrs {
			at := ber.NewSequence("")
			at.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, a.name, ""))
			set := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSet, nil, "")
			for _, v := range a.vals {
				set.AppendChild(octets(v))
			}
			at.AppendChild(set)
			list.AppendChild(at)
		}
		e.AppendChild(list)
		if want := message(id, e).Bytes(); !bytes.Equal(got, want) {
			t.Fatalf("id %d: direct encoding differs from asn1-ber's", id)
		}
	}
}
