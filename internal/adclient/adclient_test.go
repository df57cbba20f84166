package adclient

import (
	"errors"
	"net"
	"reflect"
	"testing"

	"gmsa/internal/krbclient"
)

// DCs come from the URLs given, in order, or from the DC locator's SRV records:
// ldap:// on the record's port for Kerberos (sealed), ldaps:// otherwise.
func TestServers(t *testing.T) {
	o := Options{URL: "ldap://a.example.test, ldaps://b.example.test:636,"}
	if got, _ := o.servers(); !reflect.DeepEqual(got, []string{"ldap://a.example.test", "ldaps://b.example.test:636"}) {
		t.Fatalf("listed: %v", got)
	}
	var asked string
	lookup := func(service, proto, name string) (string, []*net.SRV, error) {
		asked = "_" + service + "._" + proto + "." + name
		return "", []*net.SRV{{Target: "dc1.example.test.", Port: 389}, {Target: "dc2.example.test.", Port: 389}}, nil
	}
	o = Options{Domain: "example.test", LookupSRV: lookup}
	if got, _ := o.servers(); asked != "_ldap._tcp.dc._msdcs.example.test" || !reflect.DeepEqual(got, []string{"ldaps://dc1.example.test:636", "ldaps://dc2.example.test:636"}) {
		t.Fatalf("simple binds: %s %v", asked, got)
	}
	o.Kerberos = &krbclient.Client{}
	if got, _ := o.servers(); !reflect.DeepEqual(got, []string{"ldap://dc1.example.test:389", "ldap://dc2.example.test:389"}) {
		t.Fatalf("Kerberos: %v", got)
	}
	o.LookupSRV = func(string, string, string) (string, []*net.SRV, error) { return "", nil, errors.New("no such host") }
	if _, err := o.servers(); err == nil {
		t.Fatal("a failed lookup gave servers")
	}
	if _, err := (&Options{}).servers(); err == nil {
		t.Fatal("neither URL nor domain was accepted")
	}
}
