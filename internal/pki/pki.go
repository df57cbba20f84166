// Package pki makes the server's own TLS material: a CA and a server certificate
// signed by it (ECDSA P-256, positive serial numbers, SANs for the configured names),
// kept in a directory and reused while valid. Clients trust ca.pem.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"gmsa/internal/atomicfile"
)

// Files in the TLS directory.
const (
	CAFile   = "ca.pem"
	CAKey    = "ca.key"
	CertFile = "server.pem"
	KeyFile  = "server.key"
)

// Ensure returns a TLS configuration for names (DNS names or IP addresses), creating or
// renewing the CA and server certificate in dir as needed.
func Ensure(dir string, names []string, now time.Time, rand io.Reader) (*tls.Config, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ca, caKey, err := loadOrCreateCA(dir, now, rand)
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile))
	if err != nil || !covers(cert, names, now) {
		if cert, err = issue(dir, ca, caKey, names, now, rand); err != nil {
			return nil, err
		}
	}
	// Client certificates are asked for, not required: the LDAP server checks one
	// against the CA for a SASL EXTERNAL bind, and ignores it otherwise.
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, ClientAuth: tls.RequestClientCert}, nil
}

// newKey makes a certificate's P-256 key and serial number.
func newKey(rand io.Reader) (*ecdsa.PrivateKey, *big.Int, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand)
	if err != nil {
		return nil, nil, err
	}
	sn, err := serial(rand)
	return key, sn, err
}

// serial is 1 + 127 random bits: always positive, as Go's x509 and RFC 5280 require
// (Samba's negative serials are refused by Go clients).
func serial(random io.Reader) (*big.Int, error) {
	n, err := crand.Int(random, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	return n.Add(n, big.NewInt(1)), nil
}

func loadOrCreateCA(dir string, now time.Time, rand io.Reader) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certPEM, err1 := os.ReadFile(filepath.Join(dir, CAFile))
	keyPEM, err2 := os.ReadFile(filepath.Join(dir, CAKey))
	if err1 == nil && err2 == nil {
		cb, _ := pem.Decode(certPEM)
		kb, _ := pem.Decode(keyPEM)
		if cb != nil && kb != nil {
			cert, err := x509.ParseCertificate(cb.Bytes)
			key, kerr := x509.ParseECPrivateKey(kb.Bytes)
			if err == nil && kerr == nil && now.Before(cert.NotAfter.Add(-30*24*time.Hour)) {
				return cert, key, nil
			}
		}
	}
	key, sn, err := newKey(rand)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: sn, Subject: pkix.Name{CommonName: "gmsa DC-lite CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(10 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	if err := atomicfile.Write(filepath.Join(dir, CAKey), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return nil, nil, err
	}
	if err := atomicfile.Write(filepath.Join(dir, CAFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

// covers reports whether cert names every name and stays valid for a week.
func covers(cert tls.Certificate, names []string, now time.Time) bool {
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil || now.Add(7*24*time.Hour).After(leaf.NotAfter) {
		return false
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			if !slices.ContainsFunc(leaf.IPAddresses, ip.Equal) {
				return false
			}
		} else if !slices.Contains(leaf.DNSNames, n) {
			return false
		}
	}
	return true
}

func issue(dir string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, names []string, now time.Time, rand io.Reader) (tls.Certificate, error) {
	if len(names) == 0 {
		return tls.Certificate{}, errors.New("pki: a server certificate needs at least one name")
	}
	key, sn, err := newKey(rand)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{SerialNumber: sn, Subject: pkix.Name{CommonName: names[0]},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(397 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: %w", err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := atomicfile.Write(filepath.Join(dir, KeyFile), keyPEM, 0o600); err != nil {
		return tls.Certificate{}, err
	}
	if err := atomicfile.Write(filepath.Join(dir, CertFile), certPEM, 0o644); err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}
