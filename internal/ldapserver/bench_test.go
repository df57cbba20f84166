package ldapserver_test

import (
	"crypto/tls"
	"fmt"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"gmsa/internal/directory"
	"gmsa/internal/ldapserver"
	"gmsa/internal/servertest"
)

// In-process search load (client and server in one process): for profiling the
// server's path; the side-by-side numbers come from scripts/bench-ldap.sh.
func BenchmarkSearchIndexed(b *testing.B) {
	s := servertest.Start(b, servertest.Options{Limits: ldapserver.Config{AllowPlainSimpleBind: true}})
	for i := range 200 {
		must(s.Dir.NewUser(ctx, directory.LocalSystem(), directory.UserOptions{Name: fmt.Sprintf("u%d", i), Password: "Pw-123456!"}))
	}
	c := must(ldap.DialURL("ldap://" + s.LDAP))
	defer c.Close()
	must(struct{}{}, c.Bind("u0", "Pw-123456!"))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r, err := c.Search(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, 0, 0, 0, false, fmt.Sprintf("(sAMAccountName=u%d)", i%200), []string{"cn", "description"}, nil))
		if err != nil || len(r.Entries) != 1 {
			b.Fatal(err)
		}
		i++
	}
}

// In-process password reads over LDAPS, for profiling the server's share.
func BenchmarkPasswordRead(b *testing.B) {
	s := servertest.Start(b, servertest.Options{})
	must(s.Dir.NewGroup(ctx, directory.LocalSystem(), "Readers", directory.ScopeGlobal, ""))
	must(s.Dir.NewUser(ctx, directory.LocalSystem(), directory.UserOptions{Name: "reader", Password: "Pw-123456!"}))
	must(s.Dir.AddMember(ctx, directory.LocalSystem(), "Readers", "reader"))
	for i := range 20 {
		must(s.Dir.NewGMSA(ctx, directory.LocalSystem(), directory.GMSAOptions{Name: fmt.Sprintf("g%d", i), DNSHostName: "g.example.test", PrincipalsAllowed: []string{"Readers"}}))
	}
	c := must(ldap.DialURL("ldaps://"+s.LDAPS, ldap.DialWithTLSConfig(&tls.Config{RootCAs: s.CAPool, ServerName: "localhost"})))
	defer c.Close()
	must(struct{}{}, c.Bind("reader", "Pw-123456!"))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r, err := c.Search(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, 0, 0, 0, false, fmt.Sprintf("(sAMAccountName=g%d$)", i%20), []string{"msDS-ManagedPassword"}, nil))
		if err != nil || len(r.Entries[0].GetRawAttributeValue("msDS-ManagedPassword")) == 0 {
			b.Fatal(err)
		}
		i++
	}
}
