package ldapserver

import (
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

// filterText writes back every kind of filter as RFC 4515 does, values escaped.
func TestFilterText(t *testing.T) {
	for _, f := range []string{
		"(sAMAccountName=plain)",
		"(&(objectCategory=person)(|(cn=a*b*c)(!(description=*)))(whenChanged>=20260101000000.0Z)(uSNChanged<=5))",
		"(cn~=smith)",
		"(userAccountControl:1.2.840.113556.1.4.803:=2)",
		"(cn=*x)",
		"(cn=paren\\28s\\29 and star\\2a)",
	} {
		p := must(ldap.CompileFilter(f))
		decoded := must(ber.DecodePacketErr(p.Bytes())) // as the server decodes it
		if got := filterText(decoded, 0); got != f {
			t.Errorf("filterText(%s) = %s", f, got)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
