package ldapserver

import (
	"bufio"
	"bytes"
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"

	"gmsa/internal/tlv"
)

// FuzzRequest feeds bytes through everything a request passes before the directory:
// framing with a size limit, BER decoding, and filter conversion.
func FuzzRequest(f *testing.F) {
	for _, filter := range []string{"(&(objectClass=user)(|(cn=a*b*c)(!(uSNChanged>=5))))",
		"(userAccountControl:1.2.840.113556.1.4.803:=2)", "(memberOf:1.2.840.113556.1.4.1941:=CN=x)"} {
		fp, err := ldap.CompileFilter(filter)
		if err != nil {
			f.Fatal(err)
		}
		req := ber.Encode(ber.ClassApplication, ber.TypeConstructed, appSearchRequest, nil, "search")
		req.AppendChild(octets([]byte("DC=example,DC=test")))
		for range 4 {
			req.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 0, ""))
		}
		req.AppendChild(ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, false, ""))
		req.AppendChild(fp)
		req.AppendChild(ber.NewSequence("attrs"))
		f.Add(message(1, req).Bytes())
	}
	f.Add([]byte{0x30, 0x84, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		buf, err := tlv.ReadMessage(bufio.NewReader(bytes.NewReader(data)), nil, 1<<16, nil)
		if err != nil {
			return
		}
		pkt, err := decodeBER(buf)
		// A connection's decoder, reused after another request, decodes the same.
		var d decoder
		d.decodeRequest(fuzzPrevious)
		again, againErr := d.decodeRequest(buf)
		if (err == nil) != (againErr == nil) || err == nil && !sameShape(pkt, again) {
			t.Fatalf("a reused decoder disagrees on %x: %v / %v", buf, err, againErr)
		}
		if err != nil || len(pkt.Children) < 2 {
			return
		}
		// Where the reference library also decodes it (it additionally checks the
		// character sets of string types LDAP does not use), the structure is the same.
		if ref, err := ber.DecodePacketErr(buf); err == nil && !sameShape(pkt, ref) {
			t.Fatalf("decodeBER and asn1-ber disagree on %x", buf)
		}
		op := pkt.Children[1]
		if op.Tag == appSearchRequest && len(op.Children) >= 8 {
			parseFilter(op.Children[6], 0)
			selectAttrs(op.Children[7].Children)
		}
	})
}

// fuzzPrevious is a search request with many elements, decoded before each input.
var fuzzPrevious = func() []byte {
	req := ber.Encode(ber.ClassApplication, ber.TypeConstructed, appSearchRequest, nil, "search")
	req.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "DC=example,DC=test", ""))
	for range 5 {
		req.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 7, ""))
	}
	or := ber.Encode(ber.ClassContext, ber.TypeConstructed, 1, nil, "or")
	for range 40 {
		or.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 7, "cn", ""))
	}
	req.AppendChild(or)
	req.AppendChild(ber.NewSequence("attrs"))
	return message(1, req).Bytes()
}()

func sameShape(a, b *ber.Packet) bool {
	if a.Identifier != b.Identifier || len(a.Children) != len(b.Children) {
		return false
	}
	if len(a.Children) == 0 && !bytes.Equal(raw(a), raw(b)) {
		return false
	}
	for i := range a.Children {
		if !sameShape(a.Children[i], b.Children[i]) {
			return false
		}
	}
	return true
}
