// Package dnsserver answers DNS for the domain's DC locator records, as AD-integrated DNS
// does for a DC ([MS-ADTS] 6.3.2.3, the records of netlogon.dns): SRV records that
// lead LDAP and Kerberos clients to the DC (_ldap._tcp.dc._msdcs, _kerberos._tcp and
// _udp, per site too), the DC's and the domain's A/AAAA records, and the zone's SOA and
// NS. It is authoritative for the domain and refuses everything else: it does not
// recurse.
package dnsserver

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/netutil"

	"gmsa/internal/ratelimit"
)

// DefaultSite is the site every DC of a new forest is in.
const DefaultSite = "Default-First-Site-Name"

// Records are what the server publishes.
type Records struct {
	Domain  string       // the domain's DNS name: example.test
	DCHost  string       // the DC's fully qualified name: dc1.example.test
	Addrs   []netip.Addr // the DC's addresses (A and AAAA)
	Site    string       // default DefaultSite
	LDAP    uint16       // the LDAP port; 0 publishes no _ldap records
	KDC     uint16       // the Kerberos port (UDP and TCP); 0 publishes no _kerberos records
	Kpasswd uint16       // the kpasswd port (UDP and TCP); 0 publishes no _kpasswd records
	GC      uint16       // a global catalog port; 0 publishes no _gc records
	TTL     uint32       // default 600 s, as netlogon registers them
}

// Config tunes the server.
type Config struct {
	Records Records
	Logger  *slog.Logger
	// MaxTCPConnections bounds open TCP connections (default 64); MaxPerSource bounds
	// one address's (default 8), and its queries per second over UDP and TCP (burst
	// twice as many; default 200).
	MaxTCPConnections, MaxPerSource, QueriesPerSecond int
	Now                                               func() time.Time
}

// Server serves the records over UDP and TCP.
type Server struct {
	cfg   Config
	zone  map[string][]dns.RR // owner name (lower case, fully qualified) → records
	apex  string
	soa   *dns.SOA
	mu    sync.Mutex
	srvs  []*dns.Server
	pcs   []net.PacketConn
	limit *ratelimit.PerSource
	// replies are packed positive answers by question (replyKey); cached counts them.
	replies sync.Map
	cached  atomic.Int64
}

// New checks the records and builds the zone.
func New(cfg Config) (*Server, error) {
	r := &cfg.Records
	if r.Domain == "" || r.DCHost == "" || len(r.Addrs) == 0 {
		return nil, errors.New("dnsserver: the domain, the DC's name and at least one address are needed")
	}
	if r.Site == "" {
		r.Site = DefaultSite
	}
	if r.TTL == 0 {
		r.TTL = 600
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	for p, d := range map[*int]int{&cfg.MaxTCPConnections: 64, &cfg.MaxPerSource: 8, &cfg.QueriesPerSecond: 200} {
		if *p <= 0 {
			*p = d
		}
	}
	s := &Server{cfg: cfg, apex: fqdn(r.Domain), zone: map[string][]dns.RR{},
		limit: ratelimit.New(cfg.QueriesPerSecond, cfg.Now)}
	s.build()
	return s, nil
}

func fqdn(name string) string { return dns.Fqdn(strings.ToLower(name)) }

// build lays out the zone: [MS-ADTS] 6.3.2.3's SRV records for the services we run,
// the DC's host records, and "same as parent folder" A records for the domain.
func (s *Server) build() {
	r := s.cfg.Records
	host, dom, site := fqdn(r.DCHost), s.apex, r.Site
	hdr := func(name string, t uint16) dns.RR_Header {
		return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: r.TTL}
	}
	add := func(rr dns.RR) {
		n := strings.ToLower(rr.Header().Name)
		s.zone[n] = append(s.zone[n], rr)
	}
	srv := func(name string, port uint16) {
		add(&dns.SRV{Hdr: hdr(fqdn(name), dns.TypeSRV), Priority: 0, Weight: 100, Port: port, Target: host})
	}
	s.soa = &dns.SOA{Hdr: hdr(dom, dns.TypeSOA), Ns: host, Mbox: "hostmaster." + dom, Serial: 1,
		Refresh: 900, Retry: 600, Expire: 86400, Minttl: 60}
	add(s.soa)
	add(&dns.NS{Hdr: hdr(dom, dns.TypeNS), Ns: host})
	for _, owner := range []string{host, dom} {
		for _, a := range r.Addrs {
			if a.Is4() {
				add(&dns.A{Hdr: hdr(owner, dns.TypeA), A: net.IP(a.AsSlice())})
			} else {
				add(&dns.AAAA{Hdr: hdr(owner, dns.TypeAAAA), AAAA: net.IP(a.AsSlice())})
			}
		}
	}
	if r.LDAP != 0 {
		for _, n := range []string{"_ldap._tcp." + dom, "_ldap._tcp.dc._msdcs." + dom, "_ldap._tcp.pdc._msdcs." + dom,
			"_ldap._tcp." + site + "._sites." + dom, "_ldap._tcp." + site + "._sites.dc._msdcs." + dom} {
			srv(n, r.LDAP)
		}
	}
	if r.KDC != 0 {
		for _, n := range []string{"_kerberos._tcp." + dom, "_kerberos._udp." + dom, "_kerberos._tcp.dc._msdcs." + dom,
			"_kerberos._tcp." + site + "._sites." + dom, "_kerberos._tcp." + site + "._sites.dc._msdcs." + dom} {
			srv(n, r.KDC)
		}
	}
	if r.Kpasswd != 0 {
		for _, n := range []string{"_kpasswd._tcp." + dom, "_kpasswd._udp." + dom} {
			srv(n, r.Kpasswd)
		}
	}
	if r.GC != 0 {
		for _, n := range []string{"_gc._tcp." + dom, "_ldap._tcp.gc._msdcs." + dom, "_gc._tcp." + site + "._sites." + dom} {
			srv(n, r.GC)
		}
	}
}

// Answer is the reply to one query: authoritative answers for the zone, NXDOMAIN for
// names it does not hold, REFUSED for other zones and for anything but one question.
func (s *Server) Answer(q *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(q)
	m.RecursionAvailable = false
	if q.Opcode != dns.OpcodeQuery || len(q.Question) != 1 {
		m.Rcode = dns.RcodeNotImplemented
		if q.Opcode == dns.OpcodeQuery {
			m.Rcode = dns.RcodeFormatError
		}
		return m
	}
	qq := q.Question[0]
	name := strings.ToLower(qq.Name)
	if qq.Qclass != dns.ClassINET && qq.Qclass != dns.ClassANY || !dns.IsSubDomain(s.apex, name) {
		m.Rcode = dns.RcodeRefused
		return m
	}
	m.Authoritative = true
	rrs, ok := s.zone[name]
	if !ok && !s.hasBelow(name) {
		m.Rcode = dns.RcodeNameError
	}
	for _, rr := range rrs {
		if qq.Qtype == dns.TypeANY || rr.Header().Rrtype == qq.Qtype {
			m.Answer = append(m.Answer, rr)
		}
	}
	if len(m.Answer) == 0 {
		m.Ns = []dns.RR{s.soa} // NODATA or NXDOMAIN: the SOA for negative caching (RFC 2308)
		return m
	}
	if qq.Qtype == dns.TypeSRV { // the targets' addresses, so one query finds the DC
		for _, rr := range s.zone[fqdn(s.cfg.Records.DCHost)] {
			if t := rr.Header().Rrtype; t == dns.TypeA || t == dns.TypeAAAA {
				m.Extra = append(m.Extra, rr)
			}
		}
	}
	return m
}

// hasBelow says whether name is an empty non-terminal: a name with records under it
// (such as _tcp.example.test) exists, with no data of its own (RFC 8020).
func (s *Server) hasBelow(name string) bool {
	for owner := range s.zone {
		if owner != name && dns.IsSubDomain(name, owner) {
			return true
		}
	}
	return false
}

// ServeDNS answers TCP queries within the source's budget; a source past it gets no
// reply.
func (s *Server) ServeDNS(w dns.ResponseWriter, q *dns.Msg) {
	if !s.limit.Allow(ratelimit.Source(w.RemoteAddr())) {
		return
	}
	if err := w.WriteMsg(s.Answer(q)); err != nil {
		s.cfg.Logger.Debug("dns: reply not sent", "remote", w.RemoteAddr().String(), "err", err)
	}
}

// udpReply is the reply to a query received over UDP, nil when there is none to send.
// Positive answers are packed once per distinct query and kept: the zone does not change
// while the server runs, so a repeated question costs a copy and its ID.
func (s *Server) udpReply(query, out []byte) []byte {
	key, cacheable := cacheKey(query)
	if cacheable {
		if b, ok := s.replies.Load(key); ok {
			out = append(out[:0], b.([]byte)...)
			copy(out, query[:2])
			return out
		}
	}
	q := new(dns.Msg)
	if err := q.Unpack(query); err != nil {
		if len(query) < 12 || query[2]&0x80 != 0 { // not even a header, or a response: drop it
			return nil
		}
		m := new(dns.Msg)
		m.Id, m.Response, m.Rcode = binary.BigEndian.Uint16(query), true, dns.RcodeFormatError
		b, _ := m.Pack()
		return b
	}
	if q.Response {
		return nil
	}
	m := s.Answer(q)
	size := dns.MinMsgSize
	if o := q.IsEdns0(); o != nil {
		size = int(max(o.UDPSize(), dns.MinMsgSize))
		m.SetEdns0(uint16(min(size, 1232)), false)
	}
	m.Truncate(min(size, 1232)) // TC set when it does not fit: the client retries over TCP
	b, err := m.PackBuffer(out)
	if err != nil {
		return nil
	}
	if cacheable && m.Rcode == dns.RcodeSuccess && len(m.Answer) > 0 && s.cached.Add(1) <= maxCachedReplies {
		s.replies.Store(key, append([]byte(nil), b...))
	}
	return b
}

// maxCachedReplies bounds the reply cache: only names of the zone with data get in,
// and only queries without EDNS options (cookies would make each one distinct).
const maxCachedReplies = 1024

// cacheKey is everything in a query but its ID, when the query is one question and at
// most an OPT record without options: what the reply depends on (the question's case is
// echoed, SetReply copies RD and CD, EDNS sets the size).
func cacheKey(query []byte) (string, bool) {
	if len(query) < 17 || len(query) > 512 || query[2]&0xf8 != 0 || // QR=0, opcode QUERY
		binary.BigEndian.Uint16(query[4:]) != 1 || binary.BigEndian.Uint16(query[6:]) != 0 || binary.BigEndian.Uint16(query[8:]) != 0 {
		return "", false
	}
	i := 12
	for i < len(query) && query[i] != 0 { // the name's labels; no compression in a question
		if query[i]&0xc0 != 0 {
			return "", false
		}
		i += int(query[i]) + 1
	}
	i += 5 // the root label, QTYPE, QCLASS
	switch arcount := binary.BigEndian.Uint16(query[10:]); {
	case arcount == 0 && i == len(query):
	case arcount == 1 && i+11 == len(query) && query[i] == 0 && binary.BigEndian.Uint16(query[i+1:]) == dns.TypeOPT &&
		binary.BigEndian.Uint16(query[i+9:]) == 0: // OPT with no options
	default:
		return "", false
	}
	return string(query[2:]), true
}

// ServeUDP answers on pc until Shutdown, with one reader per processor.
func (s *Server) ServeUDP(pc net.PacketConn) error {
	s.mu.Lock()
	s.pcs = append(s.pcs, pc)
	s.mu.Unlock()
	n := runtime.GOMAXPROCS(0)
	errs := make(chan error, n)
	for range n {
		go func() { errs <- s.readUDP(pc) }()
	}
	var first error
	for range n {
		if err := <-errs; first == nil {
			first = err
		}
	}
	return first
}

func (s *Server) readUDP(pc net.PacketConn) error {
	buf, out := make([]byte, 4096), make([]byte, 0, 1232)
	for {
		n, addr, err := pc.ReadFrom(buf)
		if errors.Is(err, net.ErrClosed) {
			return ErrServerClosed
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("dnsserver: %w", err)
		}
		if !s.limit.Allow(ratelimit.Source(addr)) {
			continue
		}
		if b := s.udpReply(buf[:n], out); b != nil {
			pc.WriteTo(b, addr)
			if cap(b) <= 4096 {
				out = b[:0]
			}
		}
	}
}

// ServeTCP answers on l until Shutdown: MaxTCPConnections at once, MaxPerSource from one
// address, each idle for at most 8 s and for at most 128 queries.
func (s *Server) ServeTCP(l net.Listener) error {
	l = &perSource{Listener: netutil.LimitListener(l, s.cfg.MaxTCPConnections), max: s.cfg.MaxPerSource, open: map[netip.Addr]int{}}
	return s.serve(&dns.Server{Listener: l, Handler: s, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
		IdleTimeout: func() time.Duration { return 8 * time.Second }, MaxTCPQueries: 128})
}

func (s *Server) serve(srv *dns.Server) error {
	s.mu.Lock()
	s.srvs = append(s.srvs, srv)
	s.mu.Unlock()
	err := srv.ActivateAndServe()
	if err != nil && strings.Contains(err.Error(), "closed") {
		return ErrServerClosed
	}
	if err == nil {
		return ErrServerClosed
	}
	return fmt.Errorf("dnsserver: %w", err)
}

// ErrServerClosed is what Serve returns after Shutdown.
var ErrServerClosed = errors.New("dnsserver: server closed")

// Shutdown stops every listener.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	srvs, pcs := s.srvs, s.pcs
	s.srvs, s.pcs = nil, nil
	s.mu.Unlock()
	var errs []error
	for _, pc := range pcs {
		pc.Close()
	}
	for _, srv := range srvs {
		if err := srv.ShutdownContext(ctx); err != nil && !strings.Contains(err.Error(), "not started") {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// perSource closes a connection from an address that already holds max.
type perSource struct {
	net.Listener
	max  int
	mu   sync.Mutex
	open map[netip.Addr]int
}

func (p *perSource) Accept() (net.Conn, error) {
	for {
		c, err := p.Listener.Accept()
		if err != nil {
			return nil, err
		}
		a := ratelimit.Source(c.RemoteAddr())
		p.mu.Lock()
		if p.open[a] >= p.max {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.open[a]++
		p.mu.Unlock()
		return &countedConn{Conn: c, release: func() {
			p.mu.Lock()
			if p.open[a]--; p.open[a] <= 0 {
				delete(p.open, a)
			}
			p.mu.Unlock()
		}}, nil
	}
}

type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *countedConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}
