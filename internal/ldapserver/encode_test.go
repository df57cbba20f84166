package ldapserver

import (
	"bytes"
	"strings"
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"

	"gmsa/internal/directory"
	"gmsa/internal/tlv"
)

// The direct encoder produces what the packet library produces.
func TestEncodeEntryMatchesBER(t *testing.T) {
	for _, id := range []int64{0, 1, 127, 128, 255, 256, 65535, 1 << 30} {
		attrs := []directory.Attr{{Name: "cn", Values: [][]byte{[]byte("svc")}}, {Name: "objectClass", Values: [][]byte{[]byte("top"), []byte("user")}},
			{Name: "big", Values: [][]byte{bytes.Repeat([]byte{7}, 70000)}}, {Name: "empty"}}
		got := encodeEntry([]byte("prefix"), id, "CN=svc,"+strings.Repeat("OU=x,", 40)+"DC=example,DC=test", attrs, false)
		e := ber.Encode(ber.ClassApplication, ber.TypeConstructed, appSearchEntry, nil, "entry")
		e.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "CN=svc,"+strings.Repeat("OU=x,", 40)+"DC=example,DC=test", ""))
		list := ber.NewSequence("")
		for _, a := range attrs {
			at := ber.NewSequence("")
			at.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, a.Name, ""))
			set := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSet, nil, "")
			for _, v := range a.Values {
				set.AppendChild(octets(v))
			}
			at.AppendChild(set)
			list.AppendChild(at)
		}
		e.AppendChild(list)
		if want := append([]byte("prefix"), message(id, e).Bytes()...); !bytes.Equal(got, want) {
			t.Fatalf("id %d: direct encoding differs from asn1-ber's", id)
		}
	}
}

func TestEncodeResultMatchesBER(t *testing.T) {
	for _, id := range []int64{0, 1, 128, 1 << 30} {
		for _, code := range []int{resultSuccess, resultOperationsError, resultOther, 200} {
			diag := strings.Repeat("d", int(id%300))
			got := encodeResult(id, appSearchDone, code, "CN=x", diag)
			if want := message(id, result(appSearchDone, code, "CN=x", diag)).Bytes(); !bytes.Equal(got, want) {
				t.Fatalf("id %d code %d: % x, want % x", id, code, got, want)
			}
		}
	}
}

// A request of many tiny elements is refused before its decoded form outgrows the
// PDU limit many times over.
func TestDecodeBoundsElements(t *testing.T) {
	content := bytes.Repeat([]byte{0x05, 0x00}, maxBERElements) // NULLs
	pdu := tlv.Append(nil, 0x30, content)
	if _, err := decodeBER(pdu); err == nil || !strings.Contains(err.Error(), "elements") {
		t.Fatalf("%d elements: %v", maxBERElements+1, err)
	}
	small := tlv.Append(nil, 0x30, content[:2*1000])
	if p, err := decodeBER(small); err != nil || len(p.Children) != 1000 {
		t.Fatalf("1000 elements: %v", err)
	}
}
