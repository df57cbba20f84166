package dnsserver

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"sort"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func start(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	go s.ServeTCP(l)
	go s.ServeUDP(pc)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return s, l.Addr().String()
}

func records() Records {
	return Records{Domain: "Example.Test", DCHost: "dc1.example.test", Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.9")}, LDAP: 389, KDC: 88}
}

func query(t *testing.T, proto, addr, name string, qtype uint16) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: proto, Timeout: 2 * time.Second}
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), qtype)
	r, _, err := c.Exchange(q, addr)
	if err != nil {
		t.Fatalf("%s %s over %s: %v", name, dns.TypeToString[qtype], proto, err)
	}
	return r
}

func TestLocatorRecords(t *testing.T) {
	_, addr := start(t, Config{Records: records()})
	for _, proto := range []string{"udp", "tcp"} {
		for _, c := range []struct {
			name string
			port uint16
		}{
			{"_ldap._tcp.dc._msdcs.example.test", 389},
			{"_LDAP._tcp.Default-First-Site-Name._sites.dc._msdcs.EXAMPLE.test", 389},
			{"_ldap._tcp.example.test", 389},
			{"_kerberos._tcp.example.test", 88},
			{"_kerberos._udp.example.test", 88},
			{"_kerberos._tcp.dc._msdcs.example.test", 88},
		} {
			r := query(t, proto, addr, c.name, dns.TypeSRV)
			if r.Rcode != dns.RcodeSuccess || !r.Authoritative || len(r.Answer) != 1 {
				t.Fatalf("%s over %s: %v", c.name, proto, r)
			}
			srv := r.Answer[0].(*dns.SRV)
			if srv.Port != c.port || srv.Target != "dc1.example.test." {
				t.Errorf("%s: %v", c.name, srv)
			}
			if len(r.Extra) != 1 || r.Extra[0].(*dns.A).A.String() != "127.0.0.9" {
				t.Errorf("%s: additional %v", c.name, r.Extra)
			}
		}
	}
	for _, name := range []string{"dc1.example.test", "example.test"} {
		r := query(t, "udp", addr, name, dns.TypeA)
		if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "127.0.0.9" {
			t.Errorf("A %s: %v", name, r)
		}
	}
	if r := query(t, "udp", addr, "example.test", dns.TypeSOA); len(r.Answer) != 1 || r.Answer[0].(*dns.SOA).Ns != "dc1.example.test." {
		t.Errorf("SOA: %v", r)
	}
}

func TestNegativeAnswers(t *testing.T) {
	_, addr := start(t, Config{Records: records()})
	cases := []struct {
		name  string
		qtype uint16
		rcode int
		soa   bool
	}{
		{"_gc._tcp.example.test", dns.TypeSRV, dns.RcodeNameError, true},      // no global catalog published
		{"nosuch.example.test", dns.TypeA, dns.RcodeNameError, true},          // not in the zone's data
		{"_tcp.example.test", dns.TypeSRV, dns.RcodeSuccess, true},            // an empty non-terminal: NODATA
		{"dc1.example.test", dns.TypeAAAA, dns.RcodeSuccess, true},            // NODATA
		{"www.example.org", dns.TypeA, dns.RcodeRefused, false},               // not ours: no recursion
		{"example.test.evil.org", dns.TypeA, dns.RcodeRefused, false},         // a suffix is not the zone
		{"_kerberos._tcp.example.test", dns.TypeA, dns.RcodeSuccess, true},    // wrong type
		{"_kpasswd._tcp.example.test", dns.TypeSRV, dns.RcodeNameError, true}, // not served here
	}
	for _, c := range cases {
		r := query(t, "udp", addr, c.name, c.qtype)
		if r.Rcode != c.rcode || len(r.Answer) != 0 || (len(r.Ns) == 1) != c.soa || r.RecursionAvailable {
			t.Errorf("%s %s: rcode %s, %d answers, ns %v", c.name, dns.TypeToString[c.qtype], dns.RcodeToString[r.Rcode], len(r.Answer), r.Ns)
		}
	}
}

func TestGlobalCatalogWhenPublished(t *testing.T) {
	rec := records()
	rec.GC = 3268
	_, addr := start(t, Config{Records: rec})
	r := query(t, "udp", addr, "_gc._tcp.example.test", dns.TypeSRV)
	if len(r.Answer) != 1 || r.Answer[0].(*dns.SRV).Port != 3268 {
		t.Fatalf("_gc: %v", r)
	}
}

// A source past its budget gets no answer; another source keeps its own.
func TestPerSourceRate(t *testing.T) {
	now := time.Unix(1e9, 0)
	s, err := New(Config{Records: records(), QueriesPerSecond: 5, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	a, b := netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3")
	allowed := 0
	for range 100 {
		if s.limit.Allow(a) {
			allowed++
		}
	}
	if allowed != 10 { // the burst: twice the rate
		t.Fatalf("%d of 100 allowed at once, want 10", allowed)
	}
	if !s.limit.Allow(b) {
		t.Fatal("another source was refused")
	}
	now = now.Add(time.Second)
	allowed = 0
	for range 100 {
		if s.limit.Allow(a) {
			allowed++
		}
	}
	if allowed != 5 {
		t.Fatalf("%d allowed a second later, want 5", allowed)
	}
}

// One address holds at most MaxPerSource TCP connections; others still get answers.
func TestTCPPerSourceCap(t *testing.T) {
	_, addr := start(t, Config{Records: records(), MaxPerSource: 2})
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	time.Sleep(50 * time.Millisecond) // let the server accept both
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("a third connection from one address was served")
	}
	// another source address
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 2 * time.Second}
	dc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	conn := &dns.Conn{Conn: dc}
	defer conn.Close()
	q := new(dns.Msg)
	q.SetQuestion("_ldap._tcp.example.test.", dns.TypeSRV)
	if err := conn.WriteMsg(q); err != nil {
		t.Fatal(err)
	}
	r, err := conn.ReadMsg()
	if err != nil || len(r.Answer) != 1 {
		t.Fatalf("another source: %v %v", r, err)
	}
}

func TestAnswerNames(t *testing.T) {
	s, _ := New(Config{Records: records()})
	var names []string
	for n := range s.zone {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) != 12 {
		t.Errorf("%d owner names: %v", len(names), names)
	}
}

// FuzzAnswer: any message that unpacks gets a reply that packs, without a panic.
func FuzzAnswer(f *testing.F) {
	s, err := New(Config{Records: records()})
	if err != nil {
		f.Fatal(err)
	}
	for _, n := range []string{"_ldap._tcp.dc._msdcs.example.test.", "x.example.test.", "example.org."} {
		q := new(dns.Msg)
		q.SetQuestion(n, dns.TypeSRV)
		b, _ := q.Pack()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// Over UDP: the reply from the cache is the reply computed afresh.
		first := append([]byte(nil), s.udpReply(b, nil)...)
		if again := s.udpReply(b, nil); !bytes.Equal(first, again) {
			t.Fatalf("query %x: the cached reply %x differs from the first %x", b, again, first)
		}
		q := new(dns.Msg)
		if q.Unpack(b) != nil {
			return
		}
		m := s.Answer(q)
		if _, err := m.Pack(); err != nil && len(q.Question) == 1 && len(q.Question[0].Name) < 250 {
			t.Fatalf("reply to %v does not pack: %v", q, err)
		}
	})
}

// A reply served from the cache carries the ID of the query it answers.
func TestCachedRepliesKeepTheQueryID(t *testing.T) {
	s, err := New(Config{Records: records()})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []uint16{1, 2, 0xbeef} {
		q := new(dns.Msg)
		q.SetQuestion("_ldap._tcp.dc._msdcs.example.test.", dns.TypeSRV)
		q.Id = id
		b, _ := q.Pack()
		r := new(dns.Msg)
		if err := r.Unpack(s.udpReply(b, nil)); err != nil || r.Id != id || len(r.Answer) != 1 {
			t.Fatalf("id %d: %v %v", id, r, err)
		}
	}
	if n := s.cached.Load(); n != 1 {
		t.Fatalf("%d replies cached for one question", n)
	}
}
