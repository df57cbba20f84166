package ldapserver

import (
	"bufio"
	"bytes"
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
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
		buf, err := readPDU(bufio.NewReader(bytes.NewReader(data)), 1<<16)
		if err != nil {
			return
		}
		pkt, err := ber.DecodePacketErr(buf)
		if err != nil || len(pkt.Children) < 2 {
			return
		}
		op := pkt.Children[1]
		if op.Tag == appSearchRequest && len(op.Children) >= 8 {
			parseFilter(op.Children[6], 0)
			selectAttrs(op.Children[7].Children, false)
		}
	})
}
