package ldapserver_test

import (
	"fmt"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"gmsa/internal/directory"
	"gmsa/internal/servertest"
)

// In-process search load (client and server in one process): for profiling the
// server's path; the side-by-side numbers come from scripts/bench-ldap.sh.
func BenchmarkSearchIndexed(b *testing.B) {
	s := servertest.Start(b, servertest.Options{AllowPlainSimpleBind: true})
	for i := range 200 {
		must(s.Dir.NewUser(ctx, directory.UserOptions{Name: fmt.Sprintf("u%d", i), Password: "Pw-123456!"}))
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
