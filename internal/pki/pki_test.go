package pki

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"testing"
	"time"
)

// A client certificate carries the SID in AD's mapping extension and chains to the CA
// for client authentication only.
func TestIssueClient(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	if _, _, err := IssueClient(dir, "x", "S-1-5-21-1-2-3-1000", time.Hour, now, rand.Reader); err == nil {
		t.Fatal("issued without a CA")
	}
	if _, err := Ensure(dir, []string{"localhost"}, now, rand.Reader); err != nil {
		t.Fatal(err)
	}
	certPEM, _, err := IssueClient(dir, "WEB01$", "S-1-5-21-1-2-3-1105", 24*time.Hour, now, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if sid, ok := CertificateSID(cert); !ok || sid != "S-1-5-21-1-2-3-1105" || cert.Subject.CommonName != "WEB01$" {
		t.Fatalf("SID %q %v", sid, ok)
	}
	pool, _ := ClientPool(dir)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatal(err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Fatal("a client certificate verified for server authentication")
	}
}

func FuzzCertificateSID(f *testing.F) {
	ext, _ := sidExtension("S-1-5-21-1-2-3-1105")
	f.Add(ext.Value)
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, v []byte) {
		CertificateSID(&x509.Certificate{Extensions: []pkix.Extension{{Id: oidSecurityExt, Value: v}}})
	})
}
