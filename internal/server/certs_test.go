package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// testCA issues certificates for the tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(10 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a server certificate (with the CA after it, as a chain file carries it)
// and its key, in PEM.
func (ca *testCA) issue(t *testing.T, names []string, notBefore, notAfter time.Time) (certPEM, keyPEM []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "dc1"},
		NotBefore: notBefore, NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certPEM = append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), ca.pem...)
	return certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

func writeFiles(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	os.MkdirAll(dir, 0o700)
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

var dcNames = []string{"dc1.example.test", "127.0.0.1"}

// Every problem of an operator's certificate is named: a key that is not the
// certificate's, expired, not yet valid, not naming the DC, a chain that does not link;
// and the TLS settings' mistakes at once.
func TestOperatorCertificateProblemsNamed(t *testing.T) {
	ca, other := newTestCA(t, "Enterprise CA"), newTestCA(t, "Other CA")
	now := time.Now()
	dir := t.TempDir()
	good, goodKey := ca.issue(t, dcNames, now.Add(-time.Hour), now.Add(90*24*time.Hour))
	_, otherKey := ca.issue(t, dcNames, now.Add(-time.Hour), now.Add(90*24*time.Hour))
	expired, expiredKey := ca.issue(t, dcNames, now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	future, futureKey := ca.issue(t, dcNames, now.Add(24*time.Hour), now.Add(48*time.Hour))
	noSAN, noSANKey := ca.issue(t, []string{"web.example.test"}, now.Add(-time.Hour), now.Add(90*24*time.Hour))
	leafOnly, _, _ := strings.Cut(string(good), "-----END CERTIFICATE-----\n")
	broken := []byte(leafOnly + "-----END CERTIFICATE-----\n" + string(other.pem))
	writeFiles(t, dir, map[string][]byte{"good.crt": good, "good.key": goodKey, "other.key": otherKey, "expired.crt": expired, "expired.key": expiredKey,
		"future.crt": future, "future.key": futureKey, "nosan.crt": noSAN, "nosan.key": noSANKey, "broken.crt": broken})
	p := func(n string) string { return filepath.Join(dir, n) }
	if _, err := loadCertificate(p("good.crt"), p("good.key"), "dc1.example.test", now); err != nil {
		t.Fatalf("a good certificate: %v", err)
	}
	for _, c := range []struct{ cert, key, want string }{
		{"good.crt", "other.key", "is not the key of"},
		{"expired.crt", "expired.key", "expired on"},
		{"future.crt", "future.key", "is not valid before"},
		{"nosan.crt", "nosan.key", "does not name the DC dc1.example.test"},
		{"broken.crt", "good.key", "the chain in the file does not lead to its last certificate"},
		{"missing.crt", "good.key", "no such file"},
	} {
		_, err := loadCertificate(p(c.cert), p(c.key), "dc1.example.test", now)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s with %s: want %q, got %v", c.cert, c.key, c.want, err)
		}
	}

	cfg := DefaultConfig()
	cfg.Data = t.TempDir()
	cfg.LDAP.TLSDir, cfg.LDAP.TLSCert = dir, p("good.crt")
	cfg.LDAP.TLSMinVersion = "1.1"
	cfg.LDAP.TLSCiphers = []string{"TLS_RSA_WITH_RC4_128_SHA", "TLS_NOPE", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"}
	err := cfg.Validate()
	for _, want := range []string{"ldap.tls_dir and ldap.tls_cert/tls_key: give one or the other", `ldap.tls_min_version: "1.1"`,
		"TLS_RSA_WITH_RC4_128_SHA is insecure", `"TLS_NOPE" is not a TLS 1.2 suite name`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in:\n%v", want, err)
		}
	}
	cfg.LDAP.TLSDir, cfg.LDAP.TLSCiphers, cfg.LDAP.TLSMinVersion = "", nil, "1.3"
	cfg.LDAP.TLSCert, cfg.LDAP.TLSKey = p("expired.crt"), p("expired.key")
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "expired on") {
		t.Errorf("--check-config with an expired certificate: %v", err)
	}
}

// The expiry warning, on an injected clock: logged within tls_expiry_warning of the
// end, once a day, never before; the days-left metric follows the clock.
func TestCertificateExpiryWarning(t *testing.T) {
	ca := newTestCA(t, "Enterprise CA")
	start := time.Now()
	certPEM, keyPEM := ca.issue(t, dcNames, start.Add(-time.Hour), start.Add(40*24*time.Hour))
	dir := t.TempDir()
	writeFiles(t, dir, map[string][]byte{TLSDirCert: certPEM, TLSDirKey: keyPEM})
	clock := start
	var logBuf lockedBuffer
	src := &certSource{certFile: filepath.Join(dir, TLSDirCert), keyFile: filepath.Join(dir, TLSDirKey), dcName: "dc1.example.test",
		warnBefore: 30 * 24 * time.Hour, now: func() time.Time { return clock }, log: slog.New(slog.NewTextHandler(&logBuf, nil))}
	if err := src.reload(true); err != nil {
		t.Fatal(err)
	}
	warnings := func() int { return strings.Count(logBuf.String(), "the LDAPS certificate expires soon") }
	src.checkExpiry()
	if warnings() != 0 {
		t.Fatal("warned 40 days before the end with a 30-day warning")
	}
	if d := src.daysLeft(); d < 39.9 || d > 40 {
		t.Fatalf("days left: %v", d)
	}
	clock = start.Add(11 * 24 * time.Hour) // 29 days left
	src.checkExpiry()
	if warnings() != 1 || !strings.Contains(logBuf.String(), "days_left=28") && !strings.Contains(logBuf.String(), "days_left=29") {
		t.Fatalf("no warning 29 days before the end:\n%s", logBuf.String())
	}
	clock = clock.Add(time.Hour)
	src.checkExpiry()
	if warnings() != 1 {
		t.Fatal("warned again within the day")
	}
	clock = clock.Add(24 * time.Hour)
	src.checkExpiry()
	if warnings() != 2 {
		t.Fatal("no warning the next day")
	}
	if d := src.daysLeft(); d > 28 || d < 27 {
		t.Fatalf("days left: %v", d)
	}
}

// A certificate renewed in place (the directory's link swapped, as a Kubernetes secret
// or cert-manager does) is taken up while clients connect without pause: no request
// fails, connections opened before keep their certificate and work, new ones get the
// new one; a broken replacement is refused and the good one stays.
func TestCertificateReplacedUnderLoad(t *testing.T) {
	f := provisioned(t)
	ca1, ca2 := newTestCA(t, "Enterprise CA 2026"), newTestCA(t, "Enterprise CA 2027")
	base := t.TempDir()
	now := time.Now()
	version := func(name string, ca *testCA, keyFrom *testCA) {
		c, k := ca.issue(t, dcNames, now.Add(-time.Hour), now.Add(90*24*time.Hour))
		if keyFrom != nil { // a certificate with another certificate's key
			_, k = keyFrom.issue(t, dcNames, now.Add(-time.Hour), now.Add(90*24*time.Hour))
		}
		writeFiles(t, filepath.Join(base, name), map[string][]byte{TLSDirCert: c, TLSDirKey: k})
	}
	version("v1", ca1, nil)
	version("v2", ca2, nil)
	version("v3", ca1, ca1)
	current := filepath.Join(base, "current")
	swap := func(to string) {
		os.Remove(current + ".new")
		if err := os.Symlink(filepath.Join(base, to), current+".new"); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(current+".new", current); err != nil {
			t.Fatal(err)
		}
	}
	swap("v1")
	f.cfg.LDAP.TLSDir = current
	f.start(t)
	os.WriteFile(filepath.Join(base, "ca1.pem"), ca1.pem, 0o600)
	os.WriteFile(filepath.Join(base, "ca2.pem"), ca2.pem, 0o600)
	tc := trust(t, filepath.Join(base, "ca1.pem"), filepath.Join(base, "ca2.pem"))
	issuer := func(c *ldap.Conn) string {
		st, ok := c.TLSConnectionState()
		if !ok || len(st.PeerCertificates) == 0 {
			return ""
		}
		return st.PeerCertificates[0].Issuer.CommonName
	}

	// A connection opened before the renewal.
	before := f.dial(t, tc)
	defer before.Close()
	if err := before.Bind("alice@example.test", f.alicePW); err != nil {
		t.Fatal(err)
	}
	if got := issuer(before); got != ca1.cert.Subject.CommonName {
		t.Fatalf("served by %q at start", got)
	}

	var stop atomic.Bool
	var requests, failures atomic.Int64
	var lastErr atomic.Value
	var sawNew atomic.Bool
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				requests.Add(1)
				c, err := ldap.DialURL(f.ep.LDAPS, ldap.DialWithTLSConfig(tc))
				if err == nil {
					if issuer(c) == ca2.cert.Subject.CommonName {
						sawNew.Store(true)
					}
					err = c.Bind("bob@example.test", f.bobPW)
					if err == nil {
						_, err = c.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", []string{"dnsHostName"}, nil))
					}
					c.Close()
				}
				if err != nil {
					failures.Add(1)
					lastErr.Store(err)
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	swap("v2")
	deadline := time.Now().Add(3 * CertPollInterval)
	for !sawNew.Load() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // and under load a while longer
	stop.Store(true)
	wg.Wait()
	if !sawNew.Load() {
		t.Fatalf("new connections were not given the renewed certificate within %s\n%s", 3*CertPollInterval, f.log)
	}
	if n := failures.Load(); n != 0 {
		t.Fatalf("%d of %d connections failed during the renewal: %v", n, requests.Load(), lastErr.Load())
	}
	t.Logf("%d connections (bind and search each) across the renewal, none failed", requests.Load())
	if _, err := before.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", nil, nil)); err != nil {
		t.Fatalf("a connection opened before the renewal: %v", err)
	}
	if got := issuer(before); got != ca1.cert.Subject.CommonName {
		t.Fatalf("a live connection changed certificate: %q", got)
	}
	if v := value(f.scrape(t), "gmsa_tls_certificate_reloads_total", "result", "loaded"); v != 1 {
		t.Fatalf("reloads loaded: %v", v)
	}

	// A broken renewal (the key of another certificate) is refused; v2 stays.
	swap("v3")
	deadline = time.Now().Add(3 * CertPollInterval)
	for value(f.scrape(t), "gmsa_tls_certificate_reloads_total", "result", "refused") != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("a broken certificate was not refused\n%s", f.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	c := f.dial(t, tc)
	defer c.Close()
	if got := issuer(c); got != ca2.cert.Subject.CommonName {
		t.Fatalf("after a refused renewal new connections get %q", got)
	}
	if !strings.Contains(f.log.String(), "is not the key of") {
		t.Fatalf("the refusal is not named in the log:\n%s", f.log)
	}
	// TLS 1.1 and older are not offered.
	old := tc.Clone()
	old.MaxVersion = tls.VersionTLS11
	if c, err := ldap.DialURL(f.ep.LDAPS, ldap.DialWithTLSConfig(old)); err == nil {
		c.Close()
		t.Fatal("a TLS 1.1 client connected")
	}
}
