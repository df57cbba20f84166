//go:build interop

package interop

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// The DC locator records of our server, asked with BIND's dig over UDP and TCP, as a
// resolver would: SRV records with the listeners' ports, the DC's A record, refusal of
// other zones.
func TestLocatorRecordsWithDig(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	sh(t, nil, gmsaBin, "domain", "provision", "--realm", "EXAMPLE.TEST", "--netbios", "EXAMPLE", "--data", data)
	ep, _ := startServer(t, data, "ldap:\n  listen: 127.0.0.1:0\n  ldaps_listen: 127.0.0.1:0\ndns:\n  listen: 127.0.0.1:0\n")
	host, port, _ := strings.Cut(ep["dns"], ":")
	portOf := func(u string) string { return u[strings.LastIndexByte(u, ':')+1:] }
	dig := func(args ...string) string {
		return strings.TrimSpace(sh(t, nil, "dig", append([]string{"@" + host, "-p", port, "+time=2", "+tries=1"}, args...)...))
	}
	for _, proto := range []string{"+notcp", "+tcp"} {
		for name, p := range map[string]string{
			"_ldap._tcp.dc._msdcs.example.test":                                portOf(ep["ldap"]),
			"_ldap._tcp.Default-First-Site-Name._sites.dc._msdcs.example.test": portOf(ep["ldap"]),
			"_kerberos._tcp.example.test":                                      portOf(ep["kdc"]),
			"_kerberos._udp.example.test":                                      portOf(ep["kdc"]),
			"_kpasswd._tcp.example.test":                                       portOf(ep["kpasswd"]),
			"_kpasswd._udp.example.test":                                       portOf(ep["kpasswd"]),
		} {
			if got, want := dig(proto, "+short", "SRV", name), fmt.Sprintf("0 100 %s dc1.example.test.", p); got != want {
				t.Errorf("dig %s SRV %s: %q, want %q", proto, name, got, want)
			}
		}
	}
	if got := dig("+short", "A", "dc1.example.test"); got != "127.0.0.1" {
		t.Errorf("A dc1.example.test: %q", got)
	}
	if out := dig("A", "www.example.org"); !strings.Contains(out, "status: REFUSED") {
		t.Errorf("another zone:\n%s", out)
	}
	if out := dig("SRV", "_gc._tcp.example.test"); !strings.Contains(out, "status: NXDOMAIN") || !strings.Contains(out, "flags: qr aa") { // no global catalog
		t.Errorf("a record not served:\n%s", out)
	}
}
