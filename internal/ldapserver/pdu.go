package ldapserver

import (
	"fmt"

	ber "github.com/go-asn1-ber/asn1-ber"
)

// LDAP protocol operations ([RFC 4511] 4.2–4.14), as application tags.
const (
	appBindRequest      = 0
	appBindResponse     = 1
	appUnbindRequest    = 2
	appSearchRequest    = 3
	appSearchEntry      = 4
	appSearchDone       = 5
	appModifyRequest    = 6
	appModifyResponse   = 7
	appAddRequest       = 8
	appAddResponse      = 9
	appDelRequest       = 10
	appDelResponse      = 11
	appModDNRequest     = 12
	appModDNResponse    = 13
	appCompareRequest   = 14
	appCompareResponse  = 15
	appAbandonRequest   = 16
	appExtendedRequest  = 23
	appExtendedResponse = 24
)

// Result codes ([RFC 4511] 4.1.9).
const (
	resultSuccess                = 0
	resultOperationsError        = 1
	resultProtocolError          = 2
	resultTimeLimitExceeded      = 3
	resultSizeLimitExceeded      = 4
	resultAdminLimitExceeded     = 11
	resultNoSuchAttribute        = 16
	resultCompareFalse           = 5
	resultCompareTrue            = 6
	resultAuthMethodNotSupported = 7
	resultStrongerAuthRequired   = 8
	resultUnavailableCritical    = 12
	resultConstraintViolation    = 19
	resultAttributeOrValueExists = 20
	resultInvalidSyntax          = 21
	resultNoSuchObject           = 32
	resultInvalidDNSyntax        = 34
	resultInvalidCredentials     = 49
	resultInsufficientAccess     = 50
	resultBusy                   = 51
	resultUnwillingToPerform     = 53
	resultSortControlMissing     = 60
	resultOffsetRangeError       = 61
	resultNamingViolation        = 64
	resultObjectClassViolation   = 65
	resultNotAllowedOnNonLeaf    = 66
	resultEntryAlreadyExists     = 68
	resultOther                  = 80
)

// OIDs.
const (
	oidStartTLS           = "1.3.6.1.4.1.1466.20037"
	oidWhoAmI             = "1.3.6.1.4.1.4203.1.11.3"
	oidNoticeOfDisconnect = "1.3.6.1.4.1.1466.20036"
	oidPagedResults       = "1.2.840.113556.1.4.319"
)

// raw returns a packet's content octets whatever its class.
func raw(p *ber.Packet) []byte {
	if p.ByteValue != nil {
		return p.ByteValue
	}
	if p.Data != nil {
		return p.Data.Bytes()
	}
	return nil
}

func str(p *ber.Packet) string { return string(raw(p)) }

func intValue(p *ber.Packet) (int64, error) {
	if p.ClassType == ber.ClassUniversal && (p.Tag == ber.TagInteger || p.Tag == ber.TagEnumerated) {
		if v, ok := p.Value.(int64); ok {
			return v, nil
		}
	}
	return ber.ParseInt64(raw(p))
}

func boolValue(p *ber.Packet) bool {
	b := raw(p)
	return len(b) == 1 && b[0] != 0
}

// message builds an LDAPMessage with the given operation and optional controls.
func message(id int64, op *ber.Packet, controls ...*ber.Packet) *ber.Packet {
	m := ber.NewSequence("LDAPMessage")
	m.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, "messageID"))
	m.AppendChild(op)
	if len(controls) > 0 {
		c := ber.Encode(ber.ClassContext, ber.TypeConstructed, 0, nil, "controls")
		for _, x := range controls {
			c.AppendChild(x)
		}
		m.AppendChild(c)
	}
	return m
}

// result builds an LDAPResult-shaped response ([RFC 4511] 4.1.9).
func result(app ber.Tag, code int, matched, diag string) *ber.Packet {
	p := ber.Encode(ber.ClassApplication, ber.TypeConstructed, app, nil, "result")
	p.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, int64(code), "resultCode"))
	p.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, matched, "matchedDN"))
	p.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, diag, "diagnosticMessage"))
	return p
}

func octets(b []byte) *ber.Packet {
	p := ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", "value")
	p.Value = b
	p.Data.Write(b)
	return p
}

// ldapError is a failed operation's result: a code and AD's style of diagnostic.
type ldapError struct {
	code    int
	diag    string
	matched string
}

func (e *ldapError) Error() string { return fmt.Sprintf("LDAP %d: %s", e.code, e.diag) }

func lerr(code int, format string, a ...any) *ldapError {
	return &ldapError{code: code, diag: fmt.Sprintf(format, a...)}
}
