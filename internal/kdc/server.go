package kdc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/messages"

	"gmsa/internal/audit"
	"gmsa/internal/metrics"
)

// Handler answers the requests a Server reads: the KDC's Exchange, or Kpasswd.
type Handler interface {
	// Handle answers one request (without the TCP length prefix); nil sends nothing.
	Handle(ctx context.Context, req []byte, remote string) []byte
	// TooBig is what a UDP client gets instead of a reply over MaxUDPReply.
	TooBig() []byte
}

// Config wires a Server; zero limits take the defaults.
type Config struct {
	Handler Handler
	Audit   *audit.Log // the directory's trail: a reply leaves only after its records are written
	Logger  *slog.Logger
	Metrics *metrics.Metrics // nil: none

	MaxConns          int           // concurrent TCP connections, default 1000
	MaxConnsPerSource int           // TCP connections from one address, default 100
	MaxRequest        int           // largest request, default 128 KiB (AD's MaxTokenSize is 48 000)
	MaxUDPReply       int           // larger replies over UDP get KRB_ERR_RESPONSE_TOO_BIG, default 4096 (MIT's)
	ReadTimeout       time.Duration // a TCP request must arrive whole within this, default 10 s
}

// Server serves Kerberos on UDP and TCP ([RFC 4120] 7.2).
type Server struct {
	cfg   Config
	slots chan struct{}

	mu        sync.Mutex
	closed    bool
	perSource map[string]int
	closers   []io.Closer
	conns     map[net.Conn]struct{}
	wg        sync.WaitGroup
}

// New returns a server.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Audit == nil {
		cfg.Audit = audit.Discard()
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&cfg.MaxConns, 1000)
	def(&cfg.MaxConnsPerSource, 100)
	def(&cfg.MaxRequest, 128<<10)
	def(&cfg.MaxUDPReply, 4096)
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 10 * time.Second
	}
	return &Server{cfg: cfg, slots: make(chan struct{}, cfg.MaxConns),
		perSource: map[string]int{}, conns: map[net.Conn]struct{}{}}
}

// ErrServerClosed is returned by the Serve methods after Shutdown.
var ErrServerClosed = errors.New("kdc: server closed")

// track registers a listener for Shutdown to close; a serving loop that Shutdown must
// wait for counts itself in wg under the same lock, so no Add can follow Shutdown's Wait.
func (s *Server) track(c io.Closer, wait bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.closers = append(s.closers, c)
	if wait {
		s.wg.Add(1)
	}
	return true
}

// answer runs the exchange and waits for the audit trail before the reply may leave.
func (s *Server) answer(req []byte, remote string) []byte {
	reply := s.cfg.Handler.Handle(context.Background(), req, remote)
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.KDC(classify(req, reply))
	}
	if err := s.cfg.Audit.Barrier(); err != nil {
		s.cfg.Logger.Error("KDC reply withheld: the audit trail cannot be written", "remote", remote, "err", err)
		return nil
	}
	return reply
}

// classify names a request's type and its reply's result for the metrics: as, tgs or
// other, and ok or the KRB-ERROR's name ([RFC 4120] 5.9.1, 7.5.9).
func classify(req, reply []byte) (typ, result string) {
	typ = "other"
	if len(req) > 0 {
		switch req[0] {
		case 0x6a: // [APPLICATION 10] AS-REQ
			typ = "as"
		case 0x6c: // [APPLICATION 12] TGS-REQ
			typ = "tgs"
		}
	}
	if len(reply) == 0 {
		return typ, "no_reply"
	}
	if reply[0] != 0x7e { // [APPLICATION 30] KRB-ERROR
		return typ, "ok"
	}
	var e messages.KRBError
	if err := e.Unmarshal(reply); err != nil {
		return typ, "error"
	}
	name, _, _ := strings.Cut(strings.TrimPrefix(errorcode.Lookup(e.ErrorCode), fmt.Sprintf("(%d) ", e.ErrorCode)), " ")
	return typ, name
}

// ServeUDP answers the datagrams of pc one at a time until Shutdown; a flood queues in
// the socket's buffer and costs nothing more. To answer several at once, open several
// sockets on one address with SO_REUSEPORT and serve each: the kernel spreads the
// datagrams over them by source, and no datagram is handed between goroutines.
// Replies larger than MaxUDPReply become KRB_ERR_RESPONSE_TOO_BIG, so the client
// retries over TCP.
func (s *Server) ServeUDP(pc net.PacketConn) error {
	if !s.track(pc, true) {
		return ErrServerClosed
	}
	defer s.wg.Done()
	buf := make([]byte, min(s.cfg.MaxRequest+1, 65536)) // a datagram that fills it is too large
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("kdc: UDP listener %s failed: %w", pc.LocalAddr(), err)
		}
		if n > s.cfg.MaxRequest {
			continue
		}
		reply := s.answer(buf[:n], addr.String()) // nothing keeps the request past answer
		if len(reply) > s.cfg.MaxUDPReply {
			reply = s.cfg.Handler.TooBig()
		}
		if reply != nil {
			pc.WriteTo(reply, addr)
		}
	}
}

// ServeTCP serves length-prefixed requests on l until Shutdown; a listener that fails
// otherwise is an error the caller must act on.
func (s *Server) ServeTCP(l net.Listener) error {
	if !s.track(l, false) {
		return ErrServerClosed
	}
	for {
		c, err := l.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return fmt.Errorf("kdc: TCP listener %s stopped accepting: %w", l.Addr(), err)
		}
		source := c.RemoteAddr().String()
		if h, _, err := net.SplitHostPort(source); err == nil {
			source = h
		}
		select {
		case s.slots <- struct{}{}:
		default:
			c.Close()
			continue
		}
		s.mu.Lock()
		if s.closed || s.perSource[source] >= s.cfg.MaxConnsPerSource {
			s.mu.Unlock()
			<-s.slots
			c.Close()
			continue
		}
		s.perSource[source]++
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(c, source)
	}
}

// serveConn answers requests on one TCP connection, each within ReadTimeout.
func (s *Server) serveConn(c net.Conn, source string) {
	defer func() {
		c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		if s.perSource[source]--; s.perSource[source] <= 0 {
			delete(s.perSource, source)
		}
		s.mu.Unlock()
		<-s.slots
		s.wg.Done()
	}()
	for {
		c.SetDeadline(time.Now().Add(s.cfg.ReadTimeout))
		var hdr [4]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n&0x80000000 != 0 || int(n) > s.cfg.MaxRequest { // the reserved bit, or too long: read nothing more
			return
		}
		req := make([]byte, n)
		if _, err := io.ReadFull(c, req); err != nil {
			return
		}
		reply := s.answer(req, c.RemoteAddr().String())
		if reply == nil {
			return
		}
		out := make([]byte, 4, 4+len(reply))
		binary.BigEndian.PutUint32(out, uint32(len(reply)))
		if _, err := c.Write(append(out, reply...)); err != nil {
			return
		}
	}
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Shutdown closes the listeners and connections and waits for requests in progress.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	closers := append([]io.Closer(nil), s.closers...)
	for c := range s.conns {
		closers = append(closers, c)
	}
	s.mu.Unlock()
	for _, c := range closers {
		c.Close()
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
