package ldapserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	ber "github.com/go-asn1-ber/asn1-ber"

	"gmsa/internal/directory"
	"gmsa/internal/ratelimit"
)

// maxPingDatagram bounds a CLDAP request: a ping is about 150 bytes.
const maxPingDatagram = 2048

// pingEntry answers an LDAP ping ([MS-ADTS] 6.3.3): the root DSE entry with its
// Netlogon attribute, or no entry when the ping names another domain. ok is false
// when the search is not a ping.
func (s *Server) pingEntry(ctx context.Context, id int64, filter *ber.Packet, names []string, local net.Addr) (entry []byte, ok bool, err error) {
	f, err := parseFilter(filter, 0)
	if err != nil {
		return nil, false, nil
	}
	q, isPing := directory.ParsePing(f)
	if !isPing {
		return nil, false, nil
	}
	var attr string
	for _, n := range names {
		if strings.EqualFold(n, "netlogon") {
			attr = n
		}
	}
	if attr == "" {
		return nil, true, nil
	}
	host := s.cfg.DNSHostName
	if host == "" {
		dom := s.cfg.Dir.Domain()
		host = strings.ToLower(dom.DCName) + "." + dom.DNSName
	}
	r, err := s.cfg.Dir.Ping(ctx, q, host, ratelimit.Source(local))
	if err != nil || r == nil {
		return nil, true, err
	}
	at := ber.NewSequence("attribute")
	at.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, attr, "type"))
	set := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSet, nil, "vals")
	set.AppendChild(octets(r.Marshal()))
	at.AppendChild(set)
	attrs := ber.NewSequence("attributes")
	attrs.AppendChild(at)
	e := ber.Encode(ber.ClassApplication, ber.TypeConstructed, appSearchEntry, nil, "SearchResultEntry")
	e.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", "objectName"))
	e.AppendChild(attrs)
	return message(id, e).Bytes(), true, nil
}

// ServeCLDAP answers LDAP pings over UDP ([MS-ADTS] 6.3.3, connectionless LDAP) on pc
// until Shutdown: a search of the root DSE whose filter is a ping gets its entry and
// SearchResultDone in one datagram; anything else gets unwillingToPerform, and
// sources asking more than perSecond a second get nothing.
func (s *Server) ServeCLDAP(pc net.PacketConn, perSecond int) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		pc.Close()
		return ErrServerClosed
	}
	s.packets = append(s.packets, pc)
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	limit := ratelimit.New(perSecond, s.cfg.Now)
	buf := make([]byte, maxPingDatagram+1)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("ldap: CLDAP listener %s failed: %w", pc.LocalAddr(), err)
		}
		if n > maxPingDatagram || !limit.Allow(ratelimit.Source(from)) {
			continue
		}
		if reply := s.answerPing(buf[:n], pc.LocalAddr()); reply != nil {
			pc.WriteTo(reply, from)
		}
	}
}

// answerPing decodes one CLDAP request — an LDAPMessage, with RFC 1798's user name
// before the operation accepted — and returns its reply, or nil for a datagram that
// is not an LDAP search.
func (s *Server) answerPing(b []byte, local net.Addr) []byte {
	p, err := ber.DecodePacketErr(b)
	if err != nil || len(p.Children) < 2 {
		return nil
	}
	id, err := intValue(p.Children[0])
	if err != nil {
		return nil
	}
	op := p.Children[1]
	if op.ClassType == ber.ClassUniversal && op.Tag == ber.TagOctetString && len(p.Children) > 2 {
		op = p.Children[2]
	}
	if op.ClassType != ber.ClassApplication || op.Tag != appSearchRequest || len(op.Children) < 8 {
		return nil
	}
	scope, _ := intValue(op.Children[1])
	_, names := selectAttrs(op.Children[7].Children)
	if str(op.Children[0]) != "" || scope != 0 {
		return encodeResult(id, appSearchDone, resultUnwillingToPerform, "", "connectionless LDAP answers only LDAP pings")
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.MaxQueryDuration)
	defer cancel()
	entry, isPing, err := s.pingEntry(ctx, id, op.Children[6], names, local)
	switch {
	case err != nil:
		s.cfg.Logger.Warn("LDAP ping failed", "err", err)
		return encodeResult(id, appSearchDone, resultOther, "", "the ping could not be answered")
	case !isPing:
		return encodeResult(id, appSearchDone, resultUnwillingToPerform, "", "connectionless LDAP answers only LDAP pings")
	}
	return append(entry, encodeResult(id, appSearchDone, resultSuccess, "", "")...)
}
