// Package ldapserver is the LDAP v3 transport of the DC-lite: it looks like an Active
// Directory domain controller to real clients (ldapsearch, python ldap3, impacket,
// samba-tool). It translates requests into directory queries and calls; the directory
// decides everything else. One table maps domain errors to result codes (errors.go).
package ldapserver

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"

	"gmsa/internal/audit"
	"gmsa/internal/directory"
	"gmsa/internal/tlv"
)

// Config wires a Server.
type Config struct {
	Dir    *directory.Directory
	TLS    *tls.Config // LDAPS and StartTLS; nil turns both off
	Logger *slog.Logger
	Audit  *audit.Log // password and root-key reads, failed binds, changes; default: none
	Now    func() time.Time

	// AllowPlainSimpleBind accepts simple binds on unencrypted connections, as AD does
	// when "LDAP server signing requirements" is None. Off by default.
	AllowPlainSimpleBind bool

	MaxPDU      int           // largest request accepted, default 1 MiB
	MaxConns    int           // concurrent connections, default 1000
	IdleTimeout time.Duration // AD's MaxConnIdleTime, default 900 s
	MaxPageSize int           // AD's MaxPageSize, default 1000
	DNSHostName string        // the DC's name for the RootDSE
}

// Server serves LDAP on any number of listeners.
type Server struct {
	cfg   Config
	slots chan struct{}

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	closed    bool
	wg        sync.WaitGroup
}

// New returns a server; Serve starts it on a listener.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Audit == nil {
		cfg.Audit = audit.Discard()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxPDU == 0 {
		cfg.MaxPDU = 1 << 20
	}
	if cfg.MaxConns == 0 {
		cfg.MaxConns = 1000
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 900 * time.Second
	}
	if cfg.MaxPageSize == 0 {
		cfg.MaxPageSize = 1000
	}
	return &Server{cfg: cfg, slots: make(chan struct{}, cfg.MaxConns), listeners: map[net.Listener]struct{}{}, conns: map[*conn]struct{}{}}
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("ldapserver: server closed")

// Serve accepts connections on l until Shutdown. With ldaps, every connection starts
// with a TLS handshake.
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
	for {
		nc, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
		select {
		case s.slots <- struct{}{}:
		default: // over the connection limit: say so and hang up
			s.cfg.Logger.Warn("connection refused: limit reached", "remote", nc.RemoteAddr().String(), "limit", s.cfg.MaxConns)
			nc.SetWriteDeadline(time.Now().Add(time.Second))
			nc.Write(message(0, notice(resultBusy, "the server is at its connection limit")).Bytes())
			nc.Close()
			continue
		}
		if ldaps {
			nc = tls.Server(nc, s.cfg.TLS)
		}
		c := &conn{srv: s, nc: nc, encrypted: ldaps, remote: nc.RemoteAddr().String(), pages: map[string]*pageState{}}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			<-s.slots
			return ErrServerClosed
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go c.serve()
	}
}

// Shutdown stops accepting, disconnects every client with a notice of disconnection,
// and waits for their goroutines, or for ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	for l := range s.listeners {
		l.Close()
	}
	for c := range s.conns {
		c.disconnect(resultUnavailable, "the server is shutting down")
	}
	s.mu.Unlock()
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

// conn is one client connection. Requests are served in order; the net.Conn is
// replaced when StartTLS (and later a SASL security layer) wraps it.
type conn struct {
	srv       *Server
	nc        net.Conn
	r         *bufio.Reader
	w         *bufio.Writer // responses are buffered and flushed when no request is waiting
	scratch   []byte        // reused to encode entries
	readBy    time.Time     // the read deadline set last
	writeBy   time.Time     // the write deadline set last (under wmu)
	wmu       sync.Mutex
	encrypted bool
	remote    string
	tok       *directory.Token // nil: anonymous
	bindName  string
	pages     map[string]*pageState
	closeOnce sync.Once
}

func (c *conn) serve() {
	defer func() {
		c.close()
		c.srv.mu.Lock()
		delete(c.srv.conns, c)
		c.srv.mu.Unlock()
		<-c.srv.slots
		c.srv.wg.Done()
	}()
	c.r = bufio.NewReader(c.nc)
	c.w = bufio.NewWriterSize(c.nc, 32<<10)
	log := c.srv.cfg.Logger
	for {
		c.armRead()
		buf, err := tlv.ReadMessage(c.r, nil, c.srv.cfg.MaxPDU) // decoded packets point into buf: never reused
		if err != nil {
			var ne net.Error
			switch {
			case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
			case errors.As(err, &ne) && ne.Timeout():
				c.disconnect(resultUnavailable, "idle connection closed")
			default:
				log.Info("malformed request; disconnecting", "remote", c.remote, "err", err)
				c.disconnect(resultProtocolError, err.Error())
			}
			return
		}
		pkt, err := decodeBER(buf)
		if err != nil || len(pkt.Children) < 2 {
			log.Info("undecodable LDAPMessage; disconnecting", "remote", c.remote, "err", err)
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
		ok := c.dispatch(id, op, controls)
		if !ok {
			c.flush()
			return
		}
		// Responses to requests a client pipelined go out together: the buffer is
		// flushed when no further request is already waiting.
		if c.r.Buffered() == 0 && c.flush() != nil {
			return
		}
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
		// Requests are served in order, so there is nothing left to abandon.
	case appCompareRequest:
		c.compare(ctx, id, op)
	case appModifyRequest, appAddRequest, appDelRequest, appModDNRequest:
		c.write(ctx, id, op)
	default:
		c.disconnect(resultProtocolError, "unknown operation")
		return false
	}
	return true
}

func (c *conn) send(p *ber.Packet) error { return c.sendRaw(p.Bytes()) }

// sendRaw queues an encoded message; the buffer goes out when full and when no further
// request is waiting (see serve).
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
// it only when it has drawn that close: a request does not pay a timer update per write.
func (c *conn) armWrite() {
	now := time.Now()
	if c.writeBy.Sub(now) < writeTimeout*5/6 {
		c.writeBy = now.Add(writeTimeout)
		c.nc.SetWriteDeadline(c.writeBy)
	}
}

// armRead is armWrite for the idle timeout: an idle connection is closed after between
// 15/16 and all of IdleTimeout.
func (c *conn) armRead() {
	now, idle := time.Now(), c.srv.cfg.IdleTimeout
	if c.readBy.Sub(now) < idle-idle/16 {
		c.readBy = now.Add(idle)
		c.nc.SetReadDeadline(c.readBy)
	}
}

func (c *conn) disconnect(code int, diag string) {
	c.send(message(0, notice(code, diag)))
	c.flush()
	c.close()
}

func (c *conn) close() { c.closeOnce.Do(func() { c.nc.Close() }) }
