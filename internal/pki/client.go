package pki

import (
	"crypto/ecdsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// OIDs of AD's strong certificate mapping (KB5014754): the SID extension
// szOID_NTDS_CA_SECURITY_EXT holds an otherName szOID_NTDS_OBJECTSID with the account's
// SID as text.
var (
	oidSecurityExt = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 25, 2}
	oidObjectSID   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 25, 2, 1}
)

// sidExtension is the extension's value: SEQUENCE OF GeneralName, one otherName
// ([0] IMPLICIT { type-id, [0] EXPLICIT value }) whose value is an OCTET STRING.
type otherName struct {
	TypeID asn1.ObjectIdentifier
	Value  []byte `asn1:"tag:0,explicit"`
}

func sidExtension(sid string) (pkix.Extension, error) {
	on, err := asn1.Marshal(otherName{TypeID: oidObjectSID, Value: []byte(sid)})
	if err != nil {
		return pkix.Extension{}, err
	}
	// The otherName is [0] IMPLICIT: its SEQUENCE tag becomes context 0, constructed.
	var seq asn1.RawValue
	if _, err := asn1.Unmarshal(on, &seq); err != nil {
		return pkix.Extension{}, err
	}
	gn, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: seq.Bytes})
	v, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: gn})
	return pkix.Extension{Id: oidSecurityExt, Value: v}, err
}

// CertificateSID reads the account SID of AD's strong mapping from a certificate.
func CertificateSID(cert *x509.Certificate) (string, bool) {
	for _, e := range cert.Extensions {
		if !e.Id.Equal(oidSecurityExt) {
			continue
		}
		var names []asn1.RawValue
		if rest, err := asn1.Unmarshal(e.Value, &names); err != nil || len(rest) != 0 {
			return "", false
		}
		for _, n := range names {
			if n.Class != asn1.ClassContextSpecific || n.Tag != 0 {
				continue
			}
			var on otherName
			full, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: n.Bytes})
			if _, err := asn1.Unmarshal(full, &on); err == nil && on.TypeID.Equal(oidObjectSID) {
				return string(on.Value), true
			}
		}
	}
	return "", false
}

// IssueClient signs a TLS client certificate for an account with the CA in dir (which
// must exist: the server made it): subject CN name, the account's SID in AD's
// mapping extension, client authentication only. The server maps it to the account
// for SASL EXTERNAL binds.
func IssueClient(dir, name, sid string, validity time.Duration, now time.Time, rand io.Reader) (certPEM, keyPEM []byte, err error) {
	ca, caKey, err := loadCA(dir)
	if err != nil {
		return nil, nil, err
	}
	ext, err := sidExtension(sid)
	if err != nil {
		return nil, nil, err
	}
	key, sn, err := newKey(rand)
	if err != nil {
		return nil, nil, err
	}
	notAfter := now.Add(validity)
	if notAfter.After(ca.NotAfter) {
		notAfter = ca.NotAfter
	}
	tmpl := &x509.Certificate{SerialNumber: sn, Subject: pkix.Name{CommonName: name}, NotBefore: now.Add(-time.Hour), NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, ExtraExtensions: []pkix.Extension{ext}}
	der, err := x509.CreateCertificate(rand, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: %w", err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), nil
}

// loadCA reads the CA certificate and key of dir.
func loadCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, CAFile))
	if err != nil {
		return nil, nil, fmt.Errorf("pki: the server's CA: %w (has the server run once on this data directory?)", err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, CAKey))
	if err != nil {
		return nil, nil, fmt.Errorf("pki: the server's CA key: %w", err)
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, nil, errors.New("pki: the CA files are not PEM")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: %w", err)
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: %w", err)
	}
	return cert, key, nil
}

// ClientPool is the pool EXTERNAL binds verify client certificates against: the CA of
// dir.
func ClientPool(dir string) (*x509.CertPool, error) {
	ca, _, err := loadCA(dir)
	if err != nil {
		return nil, err
	}
	p := x509.NewCertPool()
	p.AddCert(ca)
	return p, nil
}
