package server

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// The locator records carry the ports the listeners actually got.
func TestDNSPublishesTheListeners(t *testing.T) {
	f := provisioned(t)
	f.cfg.DNS.Listen = "127.0.0.1:0"
	f.start(t)
	if f.ep.DNS == "" {
		t.Fatal("no DNS endpoint in endpoints.json")
	}
	port := func(hostport string) uint16 {
		hostport = hostport[strings.Index(hostport, "://")+1:]
		hostport = strings.TrimPrefix(hostport, "//")
		_, p, _ := net.SplitHostPort(hostport)
		n, _ := strconv.Atoi(p)
		return uint16(n)
	}
	for _, proto := range []string{"udp", "tcp"} {
		c := &dns.Client{Net: proto, Timeout: 2 * time.Second}
		for name, want := range map[string]uint16{
			"_ldap._tcp.dc._msdcs.example.test.": port(f.ep.LDAP),
			"_kerberos._udp.example.test.":       port(f.ep.KDC),
			"_kerberos._tcp.example.test.":       port(f.ep.KDC),
		} {
			q := new(dns.Msg)
			q.SetQuestion(name, dns.TypeSRV)
			r, _, err := c.Exchange(q, f.ep.DNS)
			if err != nil {
				t.Fatalf("%s over %s: %v", name, proto, err)
			}
			if len(r.Answer) != 1 || r.Answer[0].(*dns.SRV).Port != want || r.Answer[0].(*dns.SRV).Target != "dc1.example.test." {
				t.Errorf("%s over %s: %v, want port %d", name, proto, r.Answer, want)
			}
		}
	}
	q := new(dns.Msg)
	q.SetQuestion("dc1.example.test.", dns.TypeA)
	r, err := dns.Exchange(q, f.ep.DNS)
	if err != nil || len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "127.0.0.1" {
		t.Fatalf("A dc1: %v %v", r, err)
	}
}

func TestDNSAddressesNeededOnEveryInterface(t *testing.T) {
	c := DefaultConfig()
	c.Data = t.TempDir()
	c.DNS.Listen = "127.0.0.1:5353"
	c.LDAP.Listen, c.LDAP.LDAPSListen, c.KDC.Listen = "0.0.0.0:389", ":636", "off"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "dns.addresses") {
		t.Fatalf("Validate: %v", err)
	}
	c.DNS.Addresses = []string{"192.0.2.10", "nonsense"}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), `"nonsense" is not an IP address`) {
		t.Fatalf("Validate: %v", err)
	}
	c.DNS.Addresses = []string{"192.0.2.10"}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}
