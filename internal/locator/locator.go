// Package locator finds a domain's DCs and KDCs as the DC locator does: SRV records
// (_ldap._tcp.dc._msdcs, _kerberos._tcp …) and host addresses, asked of one DNS server
// (a given one, or the host's from resolv.conf) rather than the system resolver, so that
// a host can be pointed at its domain's DNS without changing the machine.
package locator

import (
	"errors"
	"fmt"
	"net"
	"sort"
	"time"

	"github.com/miekg/dns"
)

// Resolver asks one DNS server, over UDP then TCP when the answer is truncated.
type Resolver struct {
	server  string
	timeout time.Duration
}

// New uses server, else the first nameserver of /etc/resolv.conf.
func New(server string, timeout time.Duration) (*Resolver, error) {
	if server == "" {
		cc, err := dns.ClientConfigFromFile("/etc/resolv.conf")
		if err != nil || len(cc.Servers) == 0 {
			return nil, fmt.Errorf("locator: no DNS server: /etc/resolv.conf names none (%v)", err)
		}
		server = net.JoinHostPort(cc.Servers[0], cc.Port)
	} else if _, _, err := net.SplitHostPort(server); err != nil {
		server = net.JoinHostPort(server, "53")
	}
	return &Resolver{server: server, timeout: timeout}, nil
}

// Query asks for name's records of qtype.
func (r *Resolver) Query(name string, qtype uint16) ([]dns.RR, error) {
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), qtype)
	q.RecursionDesired = true
	c := &dns.Client{Net: "udp", Timeout: r.timeout}
	m, _, err := c.Exchange(q, r.server)
	if err == nil && m.Truncated {
		c.Net = "tcp"
		m, _, err = c.Exchange(q, r.server)
	}
	if err != nil {
		return nil, fmt.Errorf("locator: asking %s: %w", r.server, err)
	}
	switch m.Rcode {
	case dns.RcodeSuccess:
	case dns.RcodeNameError:
		return nil, ErrNXDomain
	default:
		return nil, fmt.Errorf("locator: %s answered %s", r.server, dns.RcodeToString[m.Rcode])
	}
	var out []dns.RR
	for _, rr := range m.Answer {
		if rr.Header().Rrtype == qtype {
			out = append(out, rr)
		}
	}
	return out, nil
}

// ErrNXDomain is a name the DNS server says does not exist.
var ErrNXDomain = errors.New("no such name (NXDOMAIN)")

// SRV looks up an SRV name, ordered by priority then weight ([RFC 2782]).
func (r *Resolver) SRV(name string) ([]*dns.SRV, error) {
	rrs, err := r.Query(name, dns.TypeSRV)
	if err != nil {
		return nil, err
	}
	var out []*dns.SRV
	for _, rr := range rrs {
		out = append(out, rr.(*dns.SRV))
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Priority != out[j].Priority {
			return out[i].Priority < out[j].Priority
		}
		return out[i].Weight > out[j].Weight
	})
	return out, nil
}

// Addrs looks up a host's A and AAAA records.
func (r *Resolver) Addrs(host string) ([]string, error) {
	var out []string
	var firstErr error
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		rrs, err := r.Query(host, t)
		if err != nil && firstErr == nil {
			firstErr = err
		}
		for _, rr := range rrs {
			switch a := rr.(type) {
			case *dns.A:
				out = append(out, a.A.String())
			case *dns.AAAA:
				out = append(out, a.AAAA.String())
			}
		}
	}
	if len(out) == 0 {
		if firstErr == nil {
			firstErr = errors.New("no A or AAAA record")
		}
		return nil, firstErr
	}
	return out, nil
}

// LookupSRV has net.LookupSRV's shape, for clients that take one
// (_service._proto.name; priority then weight order).
func (r *Resolver) LookupSRV(service, proto, name string) (string, []*net.SRV, error) {
	target := "_" + service + "._" + proto + "." + name
	srvs, err := r.SRV(target)
	if err != nil {
		return "", nil, err
	}
	out := make([]*net.SRV, 0, len(srvs))
	for _, s := range srvs {
		out = append(out, &net.SRV{Target: s.Target, Port: s.Port, Priority: s.Priority, Weight: s.Weight})
	}
	return target, out, nil
}

// Server is the DNS server asked (host:port).
func (r *Resolver) Server() string { return r.server }
