package doctor

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/miekg/dns"
)

// resolver asks one DNS server, over UDP then TCP when the answer is truncated.
type resolver struct {
	server  string
	timeout time.Duration
}

// newResolver uses server, else the first nameserver of /etc/resolv.conf.
func newResolver(server string, timeout time.Duration) (*resolver, error) {
	if server == "" {
		cc, err := dns.ClientConfigFromFile("/etc/resolv.conf")
		if err != nil || len(cc.Servers) == 0 {
			return nil, fmt.Errorf("no DNS server: /etc/resolv.conf names none (%v)", err)
		}
		server = net.JoinHostPort(cc.Servers[0], cc.Port)
	} else if _, _, err := net.SplitHostPort(server); err != nil {
		server = net.JoinHostPort(server, "53")
	}
	return &resolver{server: server, timeout: timeout}, nil
}

func (r *resolver) query(name string, qtype uint16) ([]dns.RR, error) {
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
		return nil, fmt.Errorf("asking %s: %w", r.server, err)
	}
	switch m.Rcode {
	case dns.RcodeSuccess:
	case dns.RcodeNameError:
		return nil, errNXDomain
	default:
		return nil, fmt.Errorf("%s answered %s", r.server, dns.RcodeToString[m.Rcode])
	}
	var out []dns.RR
	for _, rr := range m.Answer {
		if rr.Header().Rrtype == qtype {
			out = append(out, rr)
		}
	}
	return out, nil
}

var errNXDomain = errors.New("no such name (NXDOMAIN)")

// srv looks up an SRV name, ordered by priority then weight ([RFC 2782]).
func (r *resolver) srv(name string) ([]*dns.SRV, error) {
	rrs, err := r.query(name, dns.TypeSRV)
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

// addrs looks up a host's A and AAAA records.
func (r *resolver) addrs(host string) ([]string, error) {
	var out []string
	var firstErr error
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		rrs, err := r.query(host, t)
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

// tcpOpen says whether a TCP connection to addr opens within timeout.
func tcpOpen(addr string, timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	return c.Close()
}

// kdcProbe is what an AS-REQ without pre-authentication tells about the DC and the
// account: the KDC's time, its answer for the account, and the account's enctypes and
// salts (ETYPE-INFO2, RFC 4120 §5.2.7.5).
type kdcProbe struct {
	Transport string // udp or tcp
	STime     time.Time
	RTT       time.Duration
	Code      int32 // the KRB-ERROR code, 0 for an AS-REP
	Text      string
	Etypes    []types.ETypeInfo2Entry
}

// probeKDC sends an AS-REQ for the account's TGT without pre-authentication over
// UDP, or TCP when asked.
func probeKDC(kdc, realm, principal string, proto string, timeout time.Duration, now func() time.Time) (*kdcProbe, error) {
	cfg := config.New()
	cfg.LibDefaults.DefaultTktEnctypeIDs = []int32{18, 17, 23}
	cfg.LibDefaults.DefaultTGSEnctypeIDs = cfg.LibDefaults.DefaultTktEnctypeIDs
	cfg.LibDefaults.PermittedEnctypeIDs = cfg.LibDefaults.DefaultTktEnctypeIDs
	req, err := messages.NewASReqForTGT(realm, cfg, types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, principal))
	if err != nil {
		return nil, err
	}
	b, err := req.Marshal()
	if err != nil {
		return nil, err
	}
	start := now()
	c, err := net.DialTimeout(proto, kdc, timeout)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	var reply []byte
	if proto == "udp" {
		if _, err := c.Write(b); err != nil {
			return nil, err
		}
		buf := make([]byte, 65535)
		n, err := c.Read(buf)
		if err != nil {
			return nil, err
		}
		reply = buf[:n]
	} else {
		if _, err := c.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)); err != nil {
			return nil, err
		}
		var hdr [4]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return nil, err
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n > 1<<20 {
			return nil, fmt.Errorf("a reply of %d bytes", n)
		}
		reply = make([]byte, n)
		if _, err := io.ReadFull(c, reply); err != nil {
			return nil, err
		}
	}
	p, err := parseKDCReply(reply, now)
	if err != nil {
		return nil, err
	}
	p.Transport, p.RTT = proto, now().Sub(start)
	return p, nil
}

// parseKDCReply reads the KDC's answer to the probe: a KRB-ERROR with its time, code
// and, for PREAUTH_REQUIRED, the account's ETYPE-INFO2; anything else is taken as an
// AS-REP (an account without pre-authentication).
func parseKDCReply(reply []byte, now func() time.Time) (p *kdcProbe, err error) {
	defer func() { // gokrb5's decoders panic on some malformed input
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("the KDC's reply broke the Kerberos decoder (%v)", r)
		}
	}()
	p = &kdcProbe{}
	if len(reply) == 0 || reply[0] != 0x7e {
		p.STime = now()
		return p, nil
	}
	var ke messages.KRBError
	if err := ke.Unmarshal(reply); err != nil {
		return nil, fmt.Errorf("the KDC's reply does not decode: %w", err)
	}
	p.Code, p.Text = ke.ErrorCode, ke.EText
	p.STime = ke.STime.Add(time.Duration(ke.Susec) * time.Microsecond)
	if ke.ErrorCode == errorcode.KDC_ERR_PREAUTH_REQUIRED && len(ke.EData) > 0 {
		var pas types.PADataSequence
		if pas.Unmarshal(ke.EData) == nil {
			for _, pa := range pas {
				if pa.PADataType == patype.PA_ETYPE_INFO2 {
					var info types.ETypeInfo2
					if info.Unmarshal(pa.PADataValue) == nil {
						p.Etypes = info
					}
				}
			}
		}
	}
	return p, nil
}

// krbErrorName is a KRB-ERROR code's name.
func krbErrorName(code int32) string {
	s := errorcode.Lookup(code)
	if i := strings.IndexByte(s, ' '); i > 0 {
		s = s[:i]
	}
	return s
}
