// Package ldapserver is the LDAP v3 transport of the DC-lite: it looks like an Active
// Directory domain controller to real clients (ldapsearch, python ldap3, impacket,
// samba-tool). It translates requests into directory calls with the connection's
// requester; the directory decides what it may see and do. One table maps domain
// errors to result codes (errors.go).
package ldapserver

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"

	"gmsa/internal/audit"
	"gmsa/internal/directory"
	"gmsa/internal/gss"
	"gmsa/internal/metrics"
	"gmsa/internal/tlv"
)

// Config wires a Server. The limits follow AD's LDAP policy (lDAPAdminLimits);
// docs/security.md compares each with AD's default.
type Config struct {
	Dir *directory.Directory
	// MaxClockSkew bounds the difference between a Kerberos authenticator's time and
	// ours (AD's MaxClockSkew, one domain policy with the KDC's; default 5 minutes).
	MaxClockSkew time.Duration
	TLS          *tls.Config // LDAPS and StartTLS; nil turns both off
	// Certificate, when set, gives the certificate each new TLS connection serves (one
	// that is replaced while the server runs); connections keep the one they started with.
	Certificate func() *tls.Certificate
	Logger      *slog.Logger
	Audit       *audit.Log       // the directory's audit trail: no response leaves before its records are written
	Metrics     *metrics.Metrics // nil: none
	Now         func() time.Time

	// AllowPlainSimpleBind accepts simple binds on unencrypted connections, as AD does
	// when "LDAP server signing requirements" is None. Off by default.
	AllowPlainSimpleBind bool

	MaxPDU               int           // MaxReceiveBuffer: largest request once bound, default 1 MiB
	MaxUnboundPDU        int           // largest request before a bind, default 64 KiB
	UnboundMemory        int64         // bytes all unbound connections' requests may hold at once, default 32 MiB
	MaxConns             int           // MaxConnections: concurrent connections, default 1000
	MaxConnsPerSource    int           // concurrent connections from one address, default 100
	InitRecvTimeout      time.Duration // InitRecvTimeout: TLS handshake and first request, default 120 s
	IdleTimeout          time.Duration // MaxConnIdleTime, default 900 s
	MaxQueryDuration     time.Duration // MaxQueryDuration: a search's time budget, default 120 s
	MaxPageSize          int           // MaxPageSize, default 1000
	MaxResultSetsPerConn int           // MaxResultSetsPerConn: paged searches held per connection, default 10
	MaxResultSetSize     int64         // entries all paged searches may hold between pages, default 1 000 000
	DNSHostName          string        // the DC's name for the RootDSE

	// ChannelBinding is AD's LdapEnforceChannelBinding for Kerberos binds over TLS
	// ([MS-ADTS] 5.1.2.2): never checked (the zero value), checked when sent, or required.
	ChannelBinding gss.ChannelBindingPolicy
	Rand           io.Reader // confounders and sequence numbers of SASL layers
	// ClientCAs verify client certificates for SASL EXTERNAL (the domain's CA); nil
	// refuses EXTERNAL.
	ClientCAs *x509.CertPool
}

func (c *Config) defaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Audit == nil {
		c.Audit = audit.Discard()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.MaxClockSkew <= 0 {
		c.MaxClockSkew = 5 * time.Minute
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.MaxPDU, 1<<20)
	def(&c.MaxUnboundPDU, 64<<10)
	def(&c.MaxConns, 1000)
	def(&c.MaxConnsPerSource, 100)
	def(&c.MaxPageSize, 1000)
	def(&c.MaxResultSetsPerConn, 10)
	defDur(&c.InitRecvTimeout, 120*time.Second)
	defDur(&c.IdleTimeout, 900*time.Second)
	defDur(&c.MaxQueryDuration, 120*time.Second)
	if c.UnboundMemory <= 0 {
		c.UnboundMemory = 32 << 20
	}
	if c.MaxResultSetSize <= 0 {
		c.MaxResultSetSize = 1_000_000
	}
	c.MaxUnboundPDU = min(c.MaxUnboundPDU, c.MaxPDU)
}

// Server serves LDAP on any number of listeners.
type Server struct {
	cfg   Config
	slots chan struct{}

	unbound   atomic.Int64 // bytes reserved by requests of unbound connections
	unboundHi atomic.Int64 // the peak since memory was last given back
	paged     atomic.Int64 // entries held by paged searches
	notifying atomic.Int64 // notification searches running, see notify

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	packets   []net.PacketConn // CLDAP
	conns     map[*conn]struct{}
	perSource map[string]int
	closed    bool
	wg        sync.WaitGroup

	replay   *gss.ReplayCache // Kerberos authenticators seen within the clock skew
	endpoint []byte           // tls-server-end-point channel binding data of our certificate
	served   atomic.Pointer[servedCert]
}

// New returns a server; Serve starts it on a listener.
func New(cfg Config) *Server {
	cfg.defaults()
	s := &Server{cfg: cfg, slots: make(chan struct{}, cfg.MaxConns), listeners: map[net.Listener]struct{}{},
		conns: map[*conn]struct{}{}, perSource: map[string]int{}, replay: &gss.ReplayCache{Skew: cfg.MaxClockSkew, Max: 1 << 17}}
	if cfg.TLS != nil && len(cfg.TLS.Certificates) > 0 && len(cfg.TLS.Certificates[0].Certificate) > 0 {
		s.endpoint = tlsServerEndPoint(cfg.TLS.Certificates[0].Certificate[0])
	}
	cfg.Metrics.Connections(s.connections)
	return s
}

// connections counts the open connections by listener and state, for metrics.
func (s *Server) connections() map[metrics.ConnKey]int {
	counts := map[metrics.ConnKey]int{}
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		k := metrics.ConnKey{Listener: "ldap", State: "anonymous"}
		if c.ldaps {
			k.Listener = "ldaps"
		}
		if c.isBound.Load() {
			k.State = "bound"
		}
		counts[k]++
	}
	return counts
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("ldapserver: server closed")

// Serve accepts connections on l until Shutdown, which makes it return ErrServerClosed;
// a listener that fails for good is any other error, and the caller must act on it.
// With ldaps, every connection starts with a TLS handshake.
func (s *Server) Serve(l net.Listener, ldaps bool) error {
	if ldaps && s.cfg.TLS == nil {
		return errors.New("ldapserver: LDAPS needs a TLS configuration")
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	backoff := 5 * time.Millisecond
	for {
		nc, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			if temporary(err) { // out of file descriptors, an aborted handshake: wait and go on
				s.cfg.Logger.Warn("accept failed; retrying", "listener", l.Addr().String(), "err", err, "in", backoff)
				time.Sleep(backoff)
				backoff = min(2*backoff, time.Second)
				continue
			}
			return fmt.Errorf("ldapserver: listener %s stopped accepting: %w", l.Addr(), err)
		}
		backoff = 5 * time.Millisecond
		s.admit(nc, ldaps)
	}
}

// temporary reports accept errors that pass: descriptor exhaustion, aborted connections.
func temporary(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ECONNABORTED) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
}

// admit starts serving nc, or refuses it when the server or its source is at its
// limit: on LDAP with a Notice of Disconnection, on LDAPS by closing (never clear
// text where TLS is expected, and no handshake spent on a refused peer).
func (s *Server) admit(nc net.Conn, ldaps bool) {
	remote := nc.RemoteAddr().String()
	source := remote
	if host, _, err := net.SplitHostPort(remote); err == nil {
		source = host
	}
	refuse := func(why string) {
		s.cfg.Logger.Warn("connection refused", "remote", remote, "reason", why)
		if !ldaps {
			nc.SetWriteDeadline(time.Now().Add(100 * time.Millisecond)) // a fresh socket's buffer is empty: this does not block
			nc.Write(message(0, notice(resultBusy, why)).Bytes())
		}
		nc.Close()
	}
	select {
	case s.slots <- struct{}{}:
	default:
		s.cfg.Metrics.Accepted(listenerName(ldaps), false)
		refuse(fmt.Sprintf("the server is at its connection limit (%d)", s.cfg.MaxConns))
		return
	}
	s.mu.Lock()
	if s.closed || s.perSource[source] >= s.cfg.MaxConnsPerSource {
		closed := s.closed
		s.mu.Unlock()
		<-s.slots
		if closed {
			nc.Close()
		} else {
			s.cfg.Metrics.Accepted(listenerName(ldaps), false)
			refuse(fmt.Sprintf("%s is at its limit of %d connections", source, s.cfg.MaxConnsPerSource))
		}
		return
	}
	s.perSource[source]++
	s.cfg.Metrics.Accepted(listenerName(ldaps), true)
	var endpoint []byte
	if ldaps {
		var cfg *tls.Config
		cfg, endpoint = s.tlsFor()
		nc = tls.Server(nc, cfg)
	}
	prot := directory.ProtectionNone
	if ldaps {
		prot = directory.ProtectionTLS
	}
	c := &conn{srv: s, nc: nc, source: source, req: directory.Anonymous(prot, remote), pages: map[string]*pageState{}, endpoint: endpoint, ldaps: ldaps}
	c.r = bufio.NewReaderSize(nc, 4<<10)
	c.w = bufio.NewWriterSize(audit.Gate(nc, s.cfg.Audit), 4<<10) // grows to 32 KiB after a bind
	c.readBy = time.Now().Add(s.cfg.InitRecvTimeout)
	nc.SetDeadline(c.readBy)
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go c.serve()
}

// Shutdown stops accepting, disconnects every client with a notice of disconnection,
// and waits for their goroutines, or for ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	ls := make([]net.Listener, 0, len(s.listeners))
	for l := range s.listeners {
		ls = append(ls, l)
	}
	cs := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		cs = append(cs, c)
	}
	packets := s.packets
	s.mu.Unlock()
	for _, l := range ls { // network I/O outside the lock
		l.Close()
	}
	for _, pc := range packets {
		pc.Close()
	}
	for _, c := range cs {
		go c.disconnect(resultUnavailable, "the server is shutting down")
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

const resultUnavailable = 52

// notice is the unsolicited Notice of Disconnection ([RFC 4511] 4.4.1).
func notice(code int, diag string) *ber.Packet {
	p := result(appExtendedResponse, code, "", diag)
	p.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 10, oidNoticeOfDisconnect, "responseName"))
	return p
}

// errUnboundMemory refuses a request when unbound connections hold their whole budget.
var errUnboundMemory = errors.New("the server's memory for unauthenticated requests is in use; try again")

// reserve takes n bytes of the unbound budget for a request of an unbound connection.
func (s *Server) reserve(n int64) bool {
	if v := s.unbound.Add(n); v > s.cfg.UnboundMemory {
		s.unbound.Add(-n)
		return false
	} else if v > s.unboundHi.Load() {
		s.unboundHi.Store(v)
	}
	return true
}

// release gives n bytes back; when unbound connections hold nothing any more after a
// large peak, the memory is returned to the operating system.
func (s *Server) release(n int64) {
	if s.unbound.Add(-n) == 0 && s.unboundHi.Load() > s.cfg.UnboundMemory/4 {
		s.unboundHi.Store(0)
		go debug.FreeOSMemory()
	}
}

// conn is one client connection. Requests are served in order; the net.Conn is
// replaced (under wmu) when StartTLS wraps it.
type conn struct {
	srv         *Server
	nc          net.Conn
	r           *bufio.Reader
	w           *bufio.Writer // responses are buffered and flushed when no request is waiting; through the audit gate
	scratch     []byte        // reused to encode entries
	dec         decoder       // reused to decode requests
	attrs       []directory.Attr
	entriesSent int       // search result entries sent by sendEntry (the get stats control's count)
	readBy      time.Time // the read deadline set last
	writeBy     time.Time // the write deadline set last (under wmu)
	wmu         sync.Mutex
	started     bool // a first request has arrived (the initial timeout is over)
	source      string
	ldaps       bool                 // accepted on the LDAPS listener
	isBound     atomic.Bool          // c.bound(), for the metrics' scrape
	endpoint    []byte               // tls-server-end-point data of the certificate this connection's TLS serves
	req         *directory.Requester // who is bound, and the channel's protection
	reserved    int64                // unbound bytes held by the request being served
	pages       map[string]*pageState
	pageSeq     uint64
	once        sync.Once

	saslState *saslBind // a multi-step SASL bind in progress
	layer     bool      // a SASL security layer is installed

	notes notifications // notification searches running beside the requests
}

func (c *conn) bound() bool { return c.req.Token != nil }

func (c *conn) serve() {
	defer func() {
		// A bug reached by one client's request ends that client's connection, logged
		// with its stack, and not the server with every other connection.
		if r := recover(); r != nil {
			c.srv.cfg.Logger.Error("panic serving a connection; closing it", "remote", c.req.Remote, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
		c.close()
		c.stopNotifications()
		c.dropPages()
		s := c.srv
		s.mu.Lock()
		delete(s.conns, c)
		if s.perSource[c.source]--; s.perSource[c.source] <= 0 {
			delete(s.perSource, c.source)
		}
		s.mu.Unlock()
		<-s.slots
		s.wg.Done()
	}()
	log := c.srv.cfg.Logger
	for {
		c.armRead()
		max, admit := c.srv.cfg.MaxPDU, func(int) error { return nil }
		if !c.bound() {
			max, admit = c.srv.cfg.MaxUnboundPDU, c.admitUnbound
		}
		buf, err := tlv.ReadMessage(c.r, nil, max, admit) // decoded packets point into buf: never reused
		if err != nil {
			c.releaseUnbound()
			var ne net.Error
			switch {
			case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
			case errors.As(err, &ne) && ne.Timeout():
				c.disconnect(resultUnavailable, map[bool]string{false: "no request within the initial timeout", true: "idle connection closed"}[c.started])
			case errors.Is(err, errUnboundMemory):
				log.Warn("request refused: unbound memory budget in use", "remote", c.req.Remote)
				c.disconnect(resultBusy, err.Error())
			case errors.Is(err, tlv.ErrTooLarge) && !c.bound():
				c.disconnect(resultProtocolError, fmt.Sprintf("%v: bind first; requests before a bind are limited to %d bytes", err, max))
			default:
				log.Info("malformed request; disconnecting", "remote", c.req.Remote, "err", err)
				c.disconnect(resultProtocolError, err.Error())
			}
			return
		}
		c.started = true
		pkt, err := c.dec.decodeRequest(buf)
		if err != nil || len(pkt.Children) < 2 {
			log.Info("undecodable LDAPMessage; disconnecting", "remote", c.req.Remote, "err", err)
			c.disconnect(resultProtocolError, "malformed LDAPMessage")
			return
		}
		id, err := intValue(pkt.Children[0])
		op := pkt.Children[1]
		if err != nil || id < 0 || op.ClassType != ber.ClassApplication {
			c.disconnect(resultProtocolError, "malformed LDAPMessage")
			return
		}
		var controls []*ber.Packet
		if len(pkt.Children) > 2 && pkt.Children[2].ClassType == ber.ClassContext && pkt.Children[2].Tag == 0 {
			controls = pkt.Children[2].Children
		}
		wasBound := c.bound()
		name, start := operationName(op.Tag), time.Now()
		ok := c.dispatch(id, op, controls) // op is not used after: a large request's tree is garbage while it runs
		c.srv.cfg.Metrics.Request(name, time.Since(start))
		c.releaseUnbound()
		if c.bound() != wasBound {
			c.isBound.Store(!wasBound)
		}
		if !ok {
			c.flush()
			return
		}
		if !wasBound && c.bound() { // a bound client gets the larger response buffer
			if c.flush() != nil {
				return
			}
			c.wmu.Lock()
			c.w = bufio.NewWriterSize(audit.Gate(c.nc, c.srv.cfg.Audit), 32<<10)
			c.wmu.Unlock()
		}
		// Responses to requests a client pipelined go out together: the buffer is
		// flushed when no further request is already waiting.
		if c.r.Buffered() == 0 && c.flush() != nil {
			return
		}
	}
}

// admitUnbound reserves memory for an unbound connection's request before it is read.
func (c *conn) admitUnbound(n int) error {
	if !c.srv.reserve(int64(n)) {
		return errUnboundMemory
	}
	c.reserved = int64(n)
	return nil
}

func (c *conn) releaseUnbound() {
	if c.reserved > 0 {
		c.srv.release(c.reserved)
		c.reserved = 0
	}
}

// dispatch serves one request; false ends the connection.
func (c *conn) dispatch(id int64, op *ber.Packet, controls []*ber.Packet) bool {
	ctx := context.Background()
	switch op.Tag {
	case appBindRequest:
		c.bind(ctx, id, op)
	case appUnbindRequest:
		return false
	case appSearchRequest:
		c.search(ctx, id, op, controls)
	case appExtendedRequest:
		return c.extended(ctx, id, op)
	case appAbandonRequest:
		c.abandon(op) // only notification searches outlive their request
	case appCompareRequest:
		c.compare(ctx, id, op, controls)
	case appModifyRequest, appAddRequest, appDelRequest, appModDNRequest:
		c.write(ctx, id, op, controls)
	default:
		c.disconnect(resultProtocolError, "unknown operation")
		return false
	}
	return true
}

func (c *conn) send(p *ber.Packet) error { return c.sendRaw(p.Bytes()) }

// sendRaw queues an encoded message; the buffer goes out when full and when no further
// request is waiting (see serve), always after the audit records queued before it.
func (c *conn) sendRaw(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.armWrite()
	_, err := c.w.Write(b)
	return err
}

func (c *conn) flush() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.armWrite()
	return c.w.Flush()
}

// writeTimeout bounds a blocked write to a client that stopped reading.
const writeTimeout = 30 * time.Second

// armWrite keeps the write deadline between 5/6 and all of writeTimeout ahead, setting
// it only when it has drawn that close: a request does not pay a timer update per
// write. Called with wmu held.
func (c *conn) armWrite() {
	now := time.Now()
	if c.writeBy.Sub(now) < writeTimeout*5/6 {
		c.writeBy = now.Add(writeTimeout)
		c.nc.SetWriteDeadline(c.writeBy)
	}
}

// armRead sets the read deadline: until the first request, the initial timeout set at
// accept stands; after it, an idle connection is closed after between 15/16 and all
// of IdleTimeout. A connection waiting for change notifications is not idle: it has no
// read deadline until its last notification search ends.
func (c *conn) armRead() {
	if !c.started {
		return
	}
	if c.notes.running() {
		if !c.readBy.IsZero() {
			c.readBy = time.Time{}
			c.nc.SetReadDeadline(c.readBy)
		}
		return
	}
	now, idle := time.Now(), c.srv.cfg.IdleTimeout
	if left := c.readBy.Sub(now); left < idle-idle/16 || left > idle { // the initial timeout may be the longer
		c.readBy = now.Add(idle)
		c.nc.SetReadDeadline(c.readBy)
	}
}

// disconnect sends a Notice of Disconnection, as far as the peer takes it, and closes.
func (c *conn) disconnect(code int, diag string) {
	c.wmu.Lock()
	c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	c.w.Write(message(0, notice(code, diag)).Bytes())
	c.w.Flush()
	c.wmu.Unlock()
	c.close()
}

// close closes the connection once; StartTLS and SASL layers replace c.nc under wmu.
func (c *conn) close() {
	c.once.Do(func() {
		c.wmu.Lock()
		nc := c.nc
		c.wmu.Unlock()
		nc.Close()
	})
}

// servedCert is a certificate and its channel binding data.
type servedCert struct {
	cert     *tls.Certificate
	endpoint []byte
}

// tlsFor returns the TLS configuration of a new connection and the tls-server-end-point
// data of the certificate it will serve ([RFC 5929] 4).
func (s *Server) tlsFor() (*tls.Config, []byte) {
	if s.cfg.Certificate == nil {
		return s.cfg.TLS, s.endpoint
	}
	cert := s.cfg.Certificate()
	sc := s.served.Load()
	if sc == nil || sc.cert != cert {
		sc = &servedCert{cert, tlsServerEndPoint(cert.Certificate[0])}
		s.served.Store(sc)
	}
	cfg := s.cfg.TLS.Clone()
	cfg.Certificates = []tls.Certificate{*cert}
	return cfg, sc.endpoint
}

func listenerName(ldaps bool) string {
	if ldaps {
		return "ldaps"
	}
	return "ldap"
}

// operationName is a request's operation as the metrics label it.
func operationName(tag ber.Tag) string {
	switch tag {
	case appBindRequest:
		return "bind"
	case appUnbindRequest:
		return "unbind"
	case appSearchRequest:
		return "search"
	case appModifyRequest:
		return "modify"
	case appAddRequest:
		return "add"
	case appDelRequest:
		return "delete"
	case appModDNRequest:
		return "modify_dn"
	case appCompareRequest:
		return "compare"
	case appAbandonRequest:
		return "abandon"
	case appExtendedRequest:
		return "extended"
	}
	return "unknown"
}
