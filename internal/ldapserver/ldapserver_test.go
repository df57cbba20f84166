package ldapserver_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"gmsa/internal/directory"
	"gmsa/internal/ldapserver"
	"gmsa/internal/managedpw"
	"gmsa/internal/servertest"
)

const base = "DC=example,DC=test"

var ctx = context.Background()

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// setup adds hosts, a user allowed through a group, and a gMSA.
func setup(t *testing.T, opt servertest.Options) *servertest.Stack {
	s := servertest.Start(t, opt)
	d := s.Dir
	must(d.NewGroup(ctx, directory.LocalSystem(), "Web Hosts", directory.ScopeGlobal, ""))
	must(d.NewUser(ctx, directory.LocalSystem(), directory.UserOptions{Name: "websvc", Password: "Web-Pass-123!"}))
	must(d.NewUser(ctx, directory.LocalSystem(), directory.UserOptions{Name: "outsider", Password: "Out-Pass-123!"}))
	must(d.AddMember(ctx, directory.LocalSystem(), "Web Hosts", "websvc"))
	must(d.NewGMSA(ctx, directory.LocalSystem(), directory.GMSAOptions{Name: "svc", DNSHostName: "svc.example.test", PrincipalsAllowed: []string{"Web Hosts"},
		SPNs: []string{"http/svc.example.test"}}))
	return s
}

func dialTLS(t *testing.T, s *servertest.Stack) *ldap.Conn {
	c, err := ldap.DialURL("ldaps://"+s.LDAPS, ldap.DialWithTLSConfig(&tls.Config{RootCAs: s.CAPool, ServerName: "localhost"}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func dialPlain(t *testing.T, s *servertest.Stack) *ldap.Conn {
	c, err := ldap.DialURL("ldap://" + s.LDAP)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func code(err error) uint16 {
	var le *ldap.Error
	if errors.As(err, &le) {
		return le.ResultCode
	}
	return 0xffff
}

func TestRootDSEAndAnonymous(t *testing.T) {
	s := setup(t, servertest.Options{})
	c := dialPlain(t, s)
	r := must(c.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", nil, nil)))
	e := r.Entries[0]
	for attr, want := range map[string]string{"defaultNamingContext": base, "configurationNamingContext": "CN=Configuration," + base,
		"dnsHostName": "dc1.example.test", "domainFunctionality": "7", "ldapServiceName": "example.test:dc1$@EXAMPLE.TEST"} {
		if got := e.GetAttributeValue(attr); got != want {
			t.Errorf("%s = %q, want %q", attr, got, want)
		}
	}
	if len(e.GetAttributeValues("supportedCapabilities")) != 6 || !strings.HasSuffix(e.GetAttributeValue("currentTime"), ".0Z") {
		t.Error("RootDSE capabilities/currentTime")
	}
	only := must(c.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", []string{"namingContexts"}, nil)))
	if len(only.Entries[0].Attributes) != 1 || len(only.Entries[0].GetAttributeValues("namingContexts")) != 3 {
		t.Errorf("selected RootDSE attributes: %v", only.Entries[0].Attributes)
	}
	_, err := c.Search(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, 0, 0, 0, false, "(objectClass=user)", nil, nil))
	if code(err) != ldap.LDAPResultOperationsError || !strings.Contains(err.Error(), "000004DC") {
		t.Fatalf("anonymous search: %v", err)
	}
}

func TestBinds(t *testing.T) {
	s := setup(t, servertest.Options{})
	plain := dialPlain(t, s)
	if err := plain.Bind("websvc@example.test", "Web-Pass-123!"); code(err) != ldap.LDAPResultStrongAuthRequired {
		t.Fatalf("simple bind without TLS: %v", err)
	}
	if err := plain.StartTLS(&tls.Config{RootCAs: s.CAPool, ServerName: "localhost"}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"websvc@example.test", "EXAMPLE\\websvc", "CN=websvc,CN=Users," + base, "websvc@EXAMPLE.TEST"} {
		if err := plain.Bind(name, "Web-Pass-123!"); err != nil {
			t.Errorf("bind as %s after StartTLS: %v", name, err)
		}
	}
	if res, err := plain.WhoAmI(nil); err != nil || res.AuthzID != "u:EXAMPLE\\websvc" {
		t.Errorf("whoami: %+v %v", res, err)
	}
	c := dialTLS(t, s)
	err := c.Bind("websvc@example.test", "wrong")
	if code(err) != ldap.LDAPResultInvalidCredentials || !strings.Contains(err.Error(), "data 52e") {
		t.Fatalf("wrong password: %v", err)
	}
	if err := c.Bind("nobody@example.test", "x"); !strings.Contains(fmt.Sprint(err), "data 52e") {
		t.Fatalf("unknown user: %v", err)
	}
	off := false
	must(s.Dir.SetGMSA(ctx, directory.LocalSystem(), "svc", directory.GMSAChanges{Enabled: &off})) // unrelated; users are disabled below
	must(s.Dir.NewUser(ctx, directory.LocalSystem(), directory.UserOptions{Name: "gone", Password: "Gone-123!", Disabled: true}))
	if err := c.Bind("gone", "Gone-123!"); !strings.Contains(fmt.Sprint(err), "data 533") {
		t.Fatalf("disabled user: %v", err)
	}
	if err := c.Bind("Administrator", s.AdminPassword); err != nil {
		t.Fatal(err)
	}
	// A failed bind leaves the connection anonymous.
	c.Bind("websvc", "bad")
	if _, err := c.Search(ldap.NewSearchRequest(base, ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", nil, nil)); code(err) != ldap.LDAPResultOperationsError {
		t.Fatalf("after a failed bind: %v", err)
	}
	// Plain simple binds when configured.
	s2 := setup(t, servertest.Options{Limits: ldapserver.Config{AllowPlainSimpleBind: true}})
	if err := dialPlain(t, s2).Bind("websvc", "Web-Pass-123!"); err != nil {
		t.Fatal(err)
	}
}

func passwordSearch(c *ldap.Conn) (*ldap.SearchResult, error) {
	return c.Search(ldap.NewSearchRequest("CN=Managed Service Accounts,"+base, ldap.ScopeWholeSubtree, 0, 0, 0, false,
		"(sAMAccountName=svc$)", []string{"msDS-ManagedPassword", "msDS-ManagedPasswordId", "sAMAccountName"}, nil))
}

// msDS-ManagedPassword as AD serves it: refused without encryption (before any ACL
// check), silently absent for others, the blob of the schedule for allowed principals.
func TestManagedPassword(t *testing.T) {
	s := setup(t, servertest.Options{Limits: ldapserver.Config{AllowPlainSimpleBind: true}})
	plain := dialPlain(t, s)
	must(struct{}{}, plain.Bind("outsider", "Out-Pass-123!"))
	_, err := passwordSearch(plain)
	if code(err) != ldap.LDAPResultOperationsError || !strings.Contains(err.Error(), "0000202D") {
		t.Fatalf("unencrypted: %v", err)
	}
	// Without naming the attribute the search works on the same connection.
	if r, err := plain.Search(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, 0, 0, 0, false, "(sAMAccountName=svc$)", nil, nil)); err != nil || len(r.Entries) != 1 ||
		len(r.Entries[0].GetRawAttributeValue("msDS-ManagedPassword")) != 0 {
		t.Fatalf("%v %v", r, err)
	}
	c := dialTLS(t, s)
	must(struct{}{}, c.Bind("outsider", "Out-Pass-123!"))
	r := must(passwordSearch(c))
	if len(r.Entries) != 1 || len(r.Entries[0].GetRawAttributeValue("msDS-ManagedPassword")) != 0 || len(r.Entries[0].GetRawAttributeValue("msDS-ManagedPasswordId")) == 0 {
		t.Fatalf("not allowed: %v", r.Entries[0].Attributes)
	}
	must(struct{}{}, c.Bind("websvc@example.test", "Web-Pass-123!"))
	r = must(passwordSearch(c))
	raw := r.Entries[0].GetRawAttributeValue("msDS-ManagedPassword")
	blob, err := managedpw.Decode(raw)
	if err != nil || len(blob.Current) != 256 || len(raw) != 290 {
		t.Fatalf("blob %d bytes: %v", len(raw), err)
	}
	acct := must(s.Dir.Resolve(ctx, "svc$"))
	mp, _ := s.Dir.AuthorizePassword(directory.System(), acct)
	want := must(mp.Read(ctx))
	if !bytes.Equal(blob.Current, want.Current[:]) {
		t.Fatal("served password differs from the directory's")
	}
	// Not returned for "*": it must be named.
	r = must(c.Search(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, 0, 0, 0, false, "(sAMAccountName=svc$)", []string{"*"}, nil)))
	if len(r.Entries[0].GetRawAttributeValue("msDS-ManagedPassword")) != 0 {
		t.Fatal("msDS-ManagedPassword returned for *")
	}
	audit := s.Audit.String()
	if !strings.Contains(audit, `"msg":"gMSA password read","principal":"websvc"`) || !strings.Contains(audit, `"account":"svc$"`) ||
		!strings.Contains(audit, "gMSA password read denied") {
		t.Fatalf("audit log: %s", audit)
	}
	if strings.Contains(audit, fmt.Sprintf("%x", blob.Current[:8])) {
		t.Fatal("the audit log contains password bytes")
	}
}

func TestSearchFeatures(t *testing.T) {
	s := setup(t, servertest.Options{})
	for i := range 25 {
		must(s.Dir.NewComputer(ctx, directory.LocalSystem(), directory.ComputerOptions{Name: fmt.Sprintf("H%02d", i)}))
	}
	c := dialTLS(t, s)
	must(struct{}{}, c.Bind("Administrator", s.AdminPassword))
	search := func(filter string, attrs ...string) []*ldap.Entry {
		t.Helper()
		r, err := c.Search(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, 0, 0, 0, false, filter, attrs, nil))
		if err != nil {
			t.Fatalf("%s: %v", filter, err)
		}
		return r.Entries
	}
	if n := len(search("(&(objectCategory=computer)(sAMAccountName=H*))", "1.1")); n != 25 {
		t.Errorf("substring: %d", n)
	}
	if e := search("(userAccountControl:1.2.840.113556.1.4.803:=8192)", "sAMAccountName"); len(e) != 1 || e[0].GetAttributeValue("sAMAccountName") != "DC1$" {
		t.Errorf("bit and: %v", e)
	}
	if e := search("(memberOf:1.2.840.113556.1.4.1941:=CN=Administrators,CN=Builtin,"+base+")", "cn"); len(e) != 3 { // Administrator, Domain Admins, Enterprise Admins
		t.Errorf("in chain: %d entries", len(e))
	}
	e := search("(sAMAccountName=svc$)", "objectSid", "objectGUID", "objectClass", "whenCreated", "msDS-GroupMSAMembership", "servicePrincipalName")[0]
	if len(e.GetRawAttributeValue("objectSid")) != 28 || len(e.GetRawAttributeValue("objectGUID")) != 16 ||
		len(e.GetAttributeValues("objectClass")) != 6 || !strings.HasSuffix(e.GetAttributeValue("whenCreated"), ".0Z") ||
		e.GetAttributeValue("servicePrincipalName") != "http/svc.example.test" || len(e.GetRawAttributeValue("msDS-GroupMSAMembership")) == 0 {
		t.Errorf("syntaxes: %v", e.Attributes)
	}
	sid := must(s.Dir.Resolve(ctx, "svc$")).SID
	if n := len(search("(objectSid=" + sid + ")")); n != 1 {
		t.Errorf("string SID filter: %d", n)
	}
	// typesOnly
	r := must(c.Search(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, 0, 0, 0, true, "(sAMAccountName=svc$)", []string{"cn"}, nil)))
	if a := r.Entries[0].Attributes; len(a) != 1 || len(a[0].Values) != 0 {
		t.Errorf("typesOnly: %v", a)
	}
	// Size limit, then paging through everything.
	_, err := c.Search(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, 0, 3, 0, false, "(objectCategory=computer)", []string{"cn"}, nil))
	if code(err) != ldap.LDAPResultSizeLimitExceeded {
		t.Errorf("size limit: %v", err)
	}
	paged := must(c.SearchWithPaging(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, 0, 0, 0, false, "(objectCategory=computer)", []string{"cn"}, nil), 10))
	if len(paged.Entries) != 26 { // 25 hosts + the DC
		t.Errorf("paged: %d entries", len(paged.Entries))
	}
	// Root key data only for Domain/Enterprise Admins.
	keys := search("(objectClass=msKds-ProvRootKey)", "msKds-RootKeyData", "msKds-KDFParam")
	if len(keys) != 1 || len(keys[0].GetRawAttributeValue("msKds-RootKeyData")) != 64 {
		t.Fatalf("admin root key read: %v", keys)
	}
	c2 := dialTLS(t, s)
	must(struct{}{}, c2.Bind("websvc", "Web-Pass-123!"))
	r = must(c2.Search(ldap.NewSearchRequest("CN=Configuration,"+base, ldap.ScopeWholeSubtree, 0, 0, 0, false, "(objectClass=msKds-ProvRootKey)", []string{"msKds-RootKeyData", "cn"}, nil)))
	if len(r.Entries) != 0 { // the root keys' descriptors grant them nothing, not even listing
		t.Fatalf("a user found root keys: %d", len(r.Entries))
	}
	if !strings.Contains(s.Audit.String(), "KDS root key read") {
		t.Fatal("root key read not audited")
	}
	_, err = c.Search(ldap.NewSearchRequest("CN=Nope,"+base, ldap.ScopeWholeSubtree, 0, 0, 0, false, "(objectClass=*)", nil, nil))
	if code(err) != ldap.LDAPResultNoSuchObject || !strings.Contains(err.Error(), "0000208D") {
		t.Errorf("missing base: %v", err)
	}
}

// A malformed or oversized PDU ends that connection with a notice of disconnection.
func TestMalformedInput(t *testing.T) {
	s := setup(t, servertest.Options{Limits: ldapserver.Config{MaxPDU: 4096}})
	for name, payload := range map[string][]byte{
		"not a sequence": {0x04, 0x01, 0x00},
		"indefinite":     {0x30, 0x80, 0x00, 0x00},
		"oversized":      {0x30, 0x84, 0x00, 0x10, 0x00, 0x00},
		"garbage inside": {0x30, 0x03, 0xff, 0xff, 0xff},
		"no operation":   {0x30, 0x03, 0x02, 0x01, 0x01},
	} {
		nc := must(net.Dial("tcp", s.LDAP))
		nc.SetDeadline(time.Now().Add(5 * time.Second))
		nc.Write(payload)
		resp, _ := io.ReadAll(nc)
		nc.Close()
		if !bytes.Contains(resp, []byte("1.3.6.1.4.1.1466.20036")) {
			t.Errorf("%s: no notice of disconnection in %x", name, resp)
		}
	}
}

// Connections come and go without leaving goroutines behind; the limit is enforced.
func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		s := setup(t, servertest.Options{Limits: ldapserver.Config{MaxConns: 5}})
		var conns []*ldap.Conn
		for range 5 {
			c := dialTLS(t, s)
			must(struct{}{}, c.Bind("websvc", "Web-Pass-123!"))
			conns = append(conns, c)
		}
		nc := must(net.Dial("tcp", s.LDAP))
		nc.SetDeadline(time.Now().Add(5 * time.Second))
		resp, _ := io.ReadAll(nc)
		if !bytes.Contains(resp, []byte("connection limit")) {
			t.Errorf("sixth connection: %q", resp)
		}
		for _, c := range conns {
			c.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Server.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+2 {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines before, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

// A connection that sends nothing is closed after InitRecvTimeout; one that went quiet
// after a request, after MaxConnIdleTime.
func TestInitialAndIdleTimeouts(t *testing.T) {
	s := setup(t, servertest.Options{Limits: ldapserver.Config{InitRecvTimeout: 200 * time.Millisecond, IdleTimeout: 400 * time.Millisecond}})
	nc := must(net.Dial("tcp", s.LDAP))
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	resp, _ := io.ReadAll(nc)
	if !bytes.Contains(resp, []byte("initial timeout")) || time.Since(start) > 2*time.Second {
		t.Fatalf("silent connection: %q after %v", resp, time.Since(start))
	}
	c := dialPlain(t, s)
	if _, err := c.WhoAmI(nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if _, err := c.WhoAmI(nil); err == nil {
		t.Fatal("an idle connection outlived MaxConnIdleTime")
	}
}

// Past the per-source limit, plain LDAP gets a Notice of Disconnection and LDAPS is
// closed without a byte: no clear text where TLS is expected.
func TestPerSourceLimitOnLDAPSIsSilent(t *testing.T) {
	s := setup(t, servertest.Options{Limits: ldapserver.Config{MaxConnsPerSource: 1}})
	held := must(net.Dial("tcp", s.LDAPS))
	defer held.Close()
	time.Sleep(50 * time.Millisecond) // accepted and counted
	for _, addr := range []string{s.LDAPS, s.LDAP} {
		nc := must(net.Dial("tcp", addr))
		nc.SetDeadline(time.Now().Add(5 * time.Second))
		resp, _ := io.ReadAll(nc)
		nc.Close()
		switch addr {
		case s.LDAPS:
			if len(resp) != 0 {
				t.Fatalf("LDAPS refusal sent %d clear-text bytes: %q", len(resp), resp)
			}
		case s.LDAP:
			if !bytes.Contains(resp, []byte("limit of 1 connections")) {
				t.Fatalf("LDAP refusal: %q", resp)
			}
		}
	}
}

// Paged searches held per connection are bounded: past MaxResultSetsPerConn the oldest
// cookie is forgotten; past MaxResultSetSize a paged search is refused.
func TestPagedStateIsBounded(t *testing.T) {
	s := setup(t, servertest.Options{Limits: ldapserver.Config{MaxResultSetsPerConn: 2}})
	c := dialTLS(t, s)
	must(struct{}{}, c.Bind("Administrator", s.AdminPassword))
	page := func(cookie []byte) ([]byte, error) {
		ctl := ldap.NewControlPaging(2)
		ctl.SetCookie(cookie)
		r, err := c.Search(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, 0, 0, 0, false, "(objectClass=group)", []string{"cn"}, []ldap.Control{ctl}))
		if err != nil {
			return nil, err
		}
		return ldap.FindControl(r.Controls, ldap.ControlTypePaging).(*ldap.ControlPaging).Cookie, nil
	}
	var cookies [][]byte
	for range 3 {
		cookies = append(cookies, must(page(nil)))
	}
	if _, err := page(cookies[0]); code(err) != ldap.LDAPResultUnwillingToPerform {
		t.Fatalf("the oldest of three paged searches is still held: %v", err)
	}
	if _, err := page(cookies[2]); err != nil {
		t.Fatalf("the newest paged search: %v", err)
	}
	// A paged search holds only where it stopped: it pages through more entries than
	// MaxResultSetSize, each once; a sorted one holds its order, within the bound.
	small := setup(t, servertest.Options{Limits: ldapserver.Config{MaxResultSetSize: 5}})
	c = dialTLS(t, small)
	must(struct{}{}, c.Bind("Administrator", small.AdminPassword))
	r, err := c.SearchWithPaging(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, 0, 0, 0, false, "(objectClass=*)", []string{"cn"}, nil), 2)
	if err != nil {
		t.Fatalf("a paged search of more than MaxResultSetSize entries: %v", err)
	}
	seen := map[string]bool{}
	for _, e := range r.Entries {
		if seen[e.DN] {
			t.Fatalf("%s sent twice", e.DN)
		}
		seen[e.DN] = true
	}
	all := must(c.Search(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, 0, 0, 0, false, "(objectClass=*)", []string{"cn"}, nil)))
	if len(r.Entries) != len(all.Entries) || len(all.Entries) <= 5 {
		t.Fatalf("paged: %d entries, unpaged %d", len(r.Entries), len(all.Entries))
	}
	// Sorted by an attribute with an ordered index, pages are read in its order and
	// nothing is held: every entry once, by cn, those without a cn last.
	byCN := []ldap.Control{ldap.NewControlServerSideSortingWithSortKeys([]*ldap.SortKey{{AttributeType: "cn"}})}
	r, err = c.SearchWithPaging(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, 0, 0, 0, false, "(objectClass=*)", []string{"cn"}, byCN), 2)
	if err != nil || len(r.Entries) != len(all.Entries) {
		t.Fatalf("a paged search sorted by cn over more than MaxResultSetSize entries: %v, %d of %d", err, len(r.Entries), len(all.Entries))
	}
	clear(seen)
	for i, e := range r.Entries {
		if seen[e.DN] {
			t.Fatalf("%s sent twice", e.DN)
		}
		seen[e.DN] = true
		if i == 0 {
			continue
		}
		a, b := strings.ToLower(r.Entries[i-1].GetAttributeValue("cn")), strings.ToLower(e.GetAttributeValue("cn"))
		if b != "" && (a == "" || a > b) {
			t.Fatalf("out of order at %d: %q before %q", i, a, b)
		}
	}
	// By an attribute without one, the order is held, within the bound.
	sorted := []ldap.Control{ldap.NewControlPaging(1), ldap.NewControlServerSideSortingWithSortKeys([]*ldap.SortKey{{AttributeType: "description"}})}
	_, err = c.Search(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, 0, 0, 0, false, "(objectClass=*)", []string{"cn"}, sorted))
	if code(err) != ldap.LDAPResultAdminLimitExceeded {
		t.Fatalf("a sorted search ordering more than MaxResultSetSize: %v", err)
	}
}

// Shutdown while clients keep connecting and sending: no panic, every goroutine ends.
func TestShutdownDuringConnects(t *testing.T) {
	for range 5 {
		s := setup(t, servertest.Options{})
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if nc, err := net.Dial("tcp", s.LDAP); err == nil {
					nc.Write([]byte{0x30, 0x05, 0x02, 0x01, 0x01, 0x42, 0x00}) // an unbind
					nc.Close()
				}
			}
		}()
		time.Sleep(20 * time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.Server.Shutdown(ctx); err != nil {
			t.Fatalf("shutdown: %v", err)
		}
		cancel()
		close(stop)
		<-done
	}
}

// A listener that fails outside Shutdown is an error for the caller, not a silent stop.
func TestListenerFailureIsReported(t *testing.T) {
	s := setup(t, servertest.Options{})
	l := must(net.Listen("tcp", "127.0.0.1:0"))
	errc := make(chan error, 1)
	go func() { errc <- s.Server.Serve(l, false) }()
	time.Sleep(20 * time.Millisecond)
	l.Close()
	select {
	case err := <-errc:
		if err == nil || errors.Is(err, ldapserver.ErrServerClosed) || !strings.Contains(err.Error(), "stopped accepting") {
			t.Fatalf("Serve returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve went on after its listener failed")
	}
}

// DirSync with go-ldap's client: a first read in batches (MoreResults while more wait)
// hands out every object; after a change, the next read with the cookie hands out that
// object alone.
func TestDirSyncControl(t *testing.T) {
	s := setup(t, servertest.Options{Limits: ldapserver.Config{MaxPageSize: 10}})
	c := dialTLS(t, s)
	must(struct{}{}, c.Bind("Administrator", s.AdminPassword))
	read := func(cookie []byte) ([]*ldap.Entry, []byte, bool) {
		t.Helper()
		r, err := c.DirSync(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, 0, 0, 0, false, "(objectClass=*)", []string{"sAMAccountName"}, nil), 0, 0, cookie)
		if err != nil {
			t.Fatal(err)
		}
		ctl, ok := ldap.FindControl(r.Controls, ldap.ControlTypeDirSync).(*ldap.ControlDirSync)
		if !ok || len(ctl.Cookie) == 0 {
			t.Fatalf("no DirSync response control: %v", r.Controls)
		}
		return r.Entries, ctl.Cookie, ctl.Flags != 0
	}
	var cookie []byte
	total, batches := 0, 0
	for more := true; more; batches++ {
		var es []*ldap.Entry
		es, cookie, more = read(cookie)
		if len(es) > 10 {
			t.Fatalf("a batch of %d", len(es))
		}
		total += len(es)
	}
	all := must(c.SearchWithPaging(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, 0, 0, 0, false, "(objectClass=*)", []string{"dn"}, nil), 10))
	if total != len(all.Entries) || batches < 2 {
		t.Fatalf("the first read: %d objects in %d batches, %d in the domain", total, batches, len(all.Entries))
	}
	m := ldap.NewModifyRequest("CN=Administrator,CN=Users,"+base, nil)
	m.Replace("description", []string{"synced"})
	must(struct{}{}, c.Modify(m))
	if es, _, more := read(cookie); len(es) != 1 || !strings.EqualFold(es[0].DN, "CN=Administrator,CN=Users,"+base) || more {
		t.Fatalf("after one change: %v", es)
	}
}

// Change notifications: a notification search on CN=Users sends nothing at first and
// then the entry of each object written there, as the requester reads it, and nothing
// for an object elsewhere; AD's rules on the filter, the scope and the number per
// connection hold; a bind ends a connection's notifications.
func TestNotificationControl(t *testing.T) {
	s := setup(t, servertest.Options{})
	c := dialTLS(t, s)
	must(struct{}{}, c.Bind("Administrator", s.AdminPassword))
	w := dialTLS(t, s)
	must(struct{}{}, w.Bind("Administrator", s.AdminPassword))
	notification := []ldap.Control{ldap.NewControlString("1.2.840.113556.1.4.528", true, "")}
	// watch starts a notification search: its entries, and its error once it ends.
	watch := func(ctx context.Context, base string, scope int, filter string) (<-chan *ldap.Entry, <-chan error) {
		r := c.SearchAsync(ctx, ldap.NewSearchRequest(base, scope, 0, 0, 0, false, filter, []string{"description"}, notification), 16)
		entries, ended := make(chan *ldap.Entry, 16), make(chan error, 1)
		go func() {
			defer close(entries)
			for r.Next() {
				if e := r.Entry(); e != nil {
					entries <- e
				}
			}
			ended <- r.Err()
		}()
		return entries, ended
	}
	describe := func(dn, text string) {
		m := ldap.NewModifyRequest(dn, nil)
		m.Replace("description", []string{text})
		must(struct{}{}, w.Modify(m))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	users, _ := watch(ctx, "CN=Users,"+base, ldap.ScopeSingleLevel, "(objectClass=*)")
	// The search is registered some time after it is sent: the two changes are made
	// again until one is notified, and only ever the one in scope.
	deadline := time.After(10 * time.Second)
	for notified := false; !notified; {
		describe("CN=Computers,"+base, "elsewhere")
		describe("CN=Administrator,CN=Users,"+base, "notified")
		select {
		case e := <-users:
			if !strings.EqualFold(e.DN, "CN=Administrator,CN=Users,"+base) || e.GetAttributeValue("description") != "notified" {
				t.Fatalf("the notification: %s %v", e.DN, e.Attributes)
			}
			notified = true
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			t.Fatal("no notification of the change")
		}
	}
	for drained := false; !drained; {
		select {
		case e := <-users:
			if !strings.EqualFold(e.DN, "CN=Administrator,CN=Users,"+base) {
				t.Fatalf("a notification outside the scope: %s", e.DN)
			}
		case <-time.After(300 * time.Millisecond):
			drained = true
		}
	}

	for _, bad := range []struct {
		base, filter string
		scope        int
		code         uint16
	}{
		{"CN=Users," + base, "(cn=x)", ldap.ScopeSingleLevel, ldap.LDAPResultUnwillingToPerform},
		{"CN=Users," + base, "(objectClass=*)", ldap.ScopeWholeSubtree, ldap.LDAPResultUnwillingToPerform},
	} {
		_, ended := watch(ctx, bad.base, bad.scope, bad.filter)
		if err := <-ended; code(err) != bad.code {
			t.Errorf("%s %s: %v", bad.base, bad.filter, err)
		}
	}
	// Five more beside the first: whichever arrives last is refused, the rest run on.
	ended := make(chan error, 5)
	for range 5 {
		_, one := watch(ctx, base, ldap.ScopeWholeSubtree, "(objectClass=*)")
		go func() { ended <- <-one }()
	}
	select {
	case err := <-ended:
		if code(err) != ldap.LDAPResultAdminLimitExceeded {
			t.Fatalf("a sixth notification search: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("six notification searches on one connection")
	}
	select {
	case err := <-ended:
		t.Fatalf("a notification search within the limit ended: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	// A new bind ends them: the next change is not sent.
	must(struct{}{}, c.Bind("Administrator", s.AdminPassword))
	describe("CN=Administrator,CN=Users,"+base, "after the bind")
	select {
	case e, ok := <-users:
		if ok {
			t.Fatalf("a notification after the bind: %s", e.DN)
		}
	case <-time.After(300 * time.Millisecond):
	}
}
