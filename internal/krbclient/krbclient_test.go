package krbclient

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/credentials"
	"github.com/jcmturner/gokrb5/v8/types"

	"gmsa/internal/krbkey"
)

func entry(realm string, comps ...string) krbkey.KeytabEntry {
	return krbkey.KeytabEntry{Principal: krbkey.Principal{Realm: realm, Components: comps}}
}

// A host keytab as adcli writes it: the machine account is the default identity, and a
// name matches case-insensitively (credentials-fetcher upper-cases HOST$@REALM).
func TestPickEntry(t *testing.T) {
	kt := []krbkey.KeytabEntry{entry("EXAMPLE.TEST", "host", "web01.example.test"), entry("EXAMPLE.TEST", "WEB01$"), entry("EXAMPLE.TEST", "RestrictedKrbHost", "WEB01")}
	for _, c := range []struct{ name, realm, want string }{
		{"", "", "WEB01$"},
		{"web01$", "example.test", "WEB01$"},
		{"HOST/WEB01.EXAMPLE.TEST", "", "host/web01.example.test"},
	} {
		e, err := pickEntry(kt, c.name, c.realm)
		if got := joinComps(e); err != nil || got != c.want {
			t.Errorf("%q@%q: %q %v", c.name, c.realm, got, err)
		}
	}
	if _, err := pickEntry(kt, "web02$", ""); err == nil {
		t.Error("an absent principal was found")
	}
	if _, err := pickEntry(kt[:1], "", ""); err == nil {
		t.Error("a keytab without NAME$ gave a default")
	}
}

func joinComps(e krbkey.KeytabEntry) string {
	s := ""
	for i, c := range e.Principal.Components {
		if i > 0 {
			s += "/"
		}
		s += c
	}
	return s
}

// Without a krb5.conf the realm's KDCs are the ones given, or DNS SRV's.
func TestConfigWithoutFile(t *testing.T) {
	none := func(string) string { return "" }
	cfg, err := loadConfig(Options{Principal: "web01$@example.test", KDCs: []string{"127.0.0.1:88"}}, none, "")
	if err != nil || cfg.LibDefaults.DefaultRealm != "EXAMPLE.TEST" || cfg.LibDefaults.DNSLookupKDC || len(cfg.Realms) != 1 || cfg.Realms[0].KDC[0] != "127.0.0.1:88" {
		t.Fatalf("%+v %v", cfg.Realms, err)
	}
	cfg, _ = loadConfig(Options{Realm: "example.test"}, none, "")
	if !cfg.LibDefaults.DNSLookupKDC {
		t.Fatal("no KDCs and no DNS lookup")
	}
	if _, err := New(Options{Realm: "EXAMPLE.TEST", KDCs: []string{"127.0.0.1:1"}}, none); !errors.Is(err, ErrNoCredentials) {
		t.Fatalf("no credentials: %v", err)
	}
}

// A ticket cache we write reads back with gokrb5's FILE ccache parser: principals,
// key, times, flags and the ticket's bytes.
func TestMarshalCCacheRoundTrip(t *testing.T) {
	at := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	client := types.PrincipalName{NameType: 1, NameString: []string{"web$"}}
	tgs := types.PrincipalName{NameType: 2, NameString: []string{"krbtgt", "EXAMPLE.TEST"}}
	cred := &Credential{Client: client, ClientRealm: "EXAMPLE.TEST", Server: tgs, ServerRealm: "EXAMPLE.TEST",
		Key: types.EncryptionKey{KeyType: 18, KeyValue: bytes.Repeat([]byte{7}, 32)}, AuthTime: at, StartTime: at,
		EndTime: at.Add(10 * time.Hour), RenewTill: at.Add(7 * 24 * time.Hour), Flags: []byte{0x40, 0xe1, 0, 0}, Ticket: []byte{0x61, 3, 1, 2, 3}}
	path := filepath.Join(t.TempDir(), "cc")
	if err := os.WriteFile(path, MarshalCCache(client, "EXAMPLE.TEST", []*Credential{cred}), 0o600); err != nil {
		t.Fatal(err)
	}
	cc, err := credentials.LoadCCache(path)
	if err != nil {
		t.Fatal(err)
	}
	if cc.GetClientRealm() != "EXAMPLE.TEST" || cc.GetClientPrincipalName().PrincipalNameString() != "web$" {
		t.Fatalf("default principal %v@%s", cc.GetClientPrincipalName(), cc.GetClientRealm())
	}
	e, ok := cc.GetEntry(tgs)
	if !ok {
		t.Fatal("no krbtgt entry")
	}
	if !e.EndTime.Equal(cred.EndTime) || !e.AuthTime.Equal(at) || !e.RenewTill.Equal(cred.RenewTill) || e.Key.KeyType != 18 ||
		!bytes.Equal(e.Key.KeyValue, cred.Key.KeyValue) || !bytes.Equal(e.Ticket, cred.Ticket) || !bytes.Equal(e.TicketFlags.Bytes, cred.Flags) {
		t.Fatalf("read back %+v", e)
	}
	if strings.Contains(cred.String(), "\x07") {
		t.Fatal("the credential prints its key")
	}
}
