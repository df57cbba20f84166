package gss

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
)

// TLSServerEndPoint is the tls-server-end-point channel binding data of a server
// certificate ([RFC 5929] 4.1): its hash with the signature's hash function, SHA-256
// for MD5 and SHA-1, after the "tls-server-end-point:" prefix, as AD expects it in the
// GSS checksum over LDAPS ([MS-ADTS] 5.1.2.2).
func TLSServerEndPoint(cert *x509.Certificate) []byte {
	var sum []byte
	switch cert.SignatureAlgorithm {
	case x509.SHA384WithRSA, x509.ECDSAWithSHA384, x509.SHA384WithRSAPSS:
		s := sha512.Sum384(cert.Raw)
		sum = s[:]
	case x509.SHA512WithRSA, x509.ECDSAWithSHA512, x509.SHA512WithRSAPSS:
		s := sha512.Sum512(cert.Raw)
		sum = s[:]
	default:
		s := sha256.Sum256(cert.Raw)
		sum = s[:]
	}
	return append([]byte("tls-server-end-point:"), sum...)
}
