// Package gss is the Kerberos V5 GSS-API mechanism as LDAP peers use it: accepting and
// initiating contexts from AP-REQ/AP-REP ([RFC 4121] 4.1), per-message wrap and MIC
// tokens ([RFC 4121] 4.2), SPNEGO ([RFC 4178]) and the SASL GSSAPI security layer
// ([RFC 4752]). It takes bytes, keys, times and randomness and returns bytes; finding
// keys is the caller's.
package gss

import (
	"encoding/asn1"
	"errors"
	"fmt"

	"gmsa/internal/tlv"
)

// Mechanism OIDs.
var (
	OIDKerberos   = asn1.ObjectIdentifier{1, 2, 840, 113554, 1, 2, 2} // [RFC 1964] 1.1
	OIDMSKerberos = asn1.ObjectIdentifier{1, 2, 840, 48018, 1, 2, 2}  // Microsoft's legacy krb5 OID
	OIDSPNEGO     = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 2}        // [RFC 4178]
)

// Token identifiers of the Kerberos mechanism's context tokens ([RFC 4121] 4.1).
var (
	tokAPReq    = [2]byte{0x01, 0x00}
	tokAPRep    = [2]byte{0x02, 0x00}
	tokKRBError = [2]byte{0x03, 0x00}
)

// maxContextToken bounds a context token's size: a ticket with a large PAC fits well
// within it (AD's MaxTokenSize is 48 000 bytes).
const maxContextToken = 64 << 10

// ErrMalformed is a token that does not parse.
var ErrMalformed = errors.New("gss: malformed token")

// frame wraps an inner token in the InitialContextToken framing of [RFC 2743] 3.1:
// [APPLICATION 0] { thisMech OID, innerToken }.
func frame(oid asn1.ObjectIdentifier, inner []byte) []byte {
	o, _ := asn1.Marshal(oid)
	body := append(o, inner...)
	return tlv.Append(make([]byte, 0, tlv.Size(len(body))), 0x60, body)
}

// unframe splits an InitialContextToken into its mechanism and inner token.
func unframe(b []byte) (asn1.ObjectIdentifier, []byte, error) {
	if len(b) > maxContextToken {
		return nil, nil, fmt.Errorf("%w: %d bytes is over the %d-byte limit", ErrMalformed, len(b), maxContextToken)
	}
	tag, pos, n, err := tlv.Header(b)
	if err != nil || tag != 0x60 || pos+n != len(b) {
		return nil, nil, fmt.Errorf("%w: not an InitialContextToken", ErrMalformed)
	}
	var oid asn1.ObjectIdentifier
	rest, err := asn1.Unmarshal(b[pos:], &oid)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: mechanism OID: %v", ErrMalformed, err)
	}
	return oid, rest, nil
}

// krb5Token frames a Kerberos context token: mechanism, TOK_ID, message.
func krb5Token(oid asn1.ObjectIdentifier, id [2]byte, msg []byte) []byte {
	return frame(oid, append(id[:], msg...))
}

// parseKrb5Token splits a Kerberos context token.
func parseKrb5Token(b []byte) (asn1.ObjectIdentifier, [2]byte, []byte, error) {
	oid, inner, err := unframe(b)
	if err != nil {
		return nil, [2]byte{}, nil, err
	}
	if !oid.Equal(OIDKerberos) && !oid.Equal(OIDMSKerberos) {
		return nil, [2]byte{}, nil, fmt.Errorf("%w: mechanism %s is not Kerberos V5", ErrMalformed, oid)
	}
	if len(inner) < 2 {
		return nil, [2]byte{}, nil, fmt.Errorf("%w: no token identifier", ErrMalformed)
	}
	return oid, [2]byte{inner[0], inner[1]}, inner[2:], nil
}
