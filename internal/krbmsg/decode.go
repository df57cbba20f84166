package krbmsg

import (
	"errors"
	"fmt"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"gmsa/internal/tlv"
)

// Decoding limits: a request is bounded by the transport's size limit; these bound the
// work one request can ask of the decoder beyond its size.
const (
	maxNameParts = 16  // components of a PrincipalName
	maxItems     = 256 // PA-DATA, etypes, addresses, tickets, authorization elements
)

// ErrMalformed is any input that is not the DER of the message asked for.
var ErrMalformed = errors.New("krbmsg: malformed message")

func malformed(what string) error { return fmt.Errorf("%w: %s", ErrMalformed, what) }

// seq walks the fields of a SEQUENCE in order: each field is under its context tag
// [n] and optional fields may be absent; fields after the last one read (a later
// version's) are left unread.
type seq struct {
	rest []byte
	err  error
	what string
}

// open returns a walker over the contents of the element at the start of b, which must
// carry tag and fill b.
func open(b []byte, tag byte, what string) *seq {
	t, content, rest, err := tlv.Split(b)
	if err != nil || t != tag || len(rest) != 0 {
		return &seq{err: malformed(what)}
	}
	if tag&0x20 != 0 && tag&0xc0 == 0x40 { // an application tag: a SEQUENCE inside
		t, content, rest, err = tlv.Split(content)
		if err != nil || t != tagSequence || len(rest) != 0 {
			return &seq{err: malformed(what)}
		}
	}
	return &seq{rest: content, what: what}
}

// field returns the element inside [n], or nil when the next field has a higher tag
// (an absent optional field); a required field sets the error when absent.
func (s *seq) field(n int, required bool) []byte {
	if s.err != nil {
		return nil
	}
	if len(s.rest) > 0 {
		t, content, rest, err := tlv.Split(s.rest)
		if err != nil || t&0xe0 != 0xa0 || int(t&0x1f) < n {
			s.err = malformed(s.what + ": fields out of order")
			return nil
		}
		if int(t&0x1f) == n {
			s.rest = rest
			return content
		}
	}
	if required {
		s.err = malformed(fmt.Sprintf("%s without field %d", s.what, n))
	}
	return nil
}

func (s *seq) fail(what string) {
	if s.err == nil {
		s.err = malformed(s.what + ": " + what)
	}
}

// prim returns the contents of a primitive element of the given tag that fills b.
func (s *seq) prim(b []byte, tag byte) []byte {
	if s.err != nil || b == nil {
		return nil
	}
	t, content, rest, err := tlv.Split(b)
	if err != nil || t != tag || len(rest) != 0 {
		s.fail(fmt.Sprintf("element with tag 0x%02x expected", tag))
		return nil
	}
	return content
}

// integer reads an INTEGER of at most 64 bits.
func (s *seq) integer(b []byte) int64 {
	c := s.prim(b, tagInteger)
	if s.err != nil {
		return 0
	}
	if len(c) == 0 || len(c) > 9 || len(c) == 9 && c[0] != 0 {
		s.fail("integer out of range")
		return 0
	}
	var v int64
	if c[0]&0x80 != 0 {
		v = -1
	}
	for _, x := range c {
		v = v<<8 | int64(x)
	}
	return v
}

// int32Field reads [n] Int32 ([RFC 4120] 5.2.4).
func (s *seq) int32Field(n int, required bool) int32 {
	b := s.field(n, required)
	if b == nil {
		return 0
	}
	v := s.integer(b)
	if v < -1<<31 || v > 1<<31-1 {
		s.fail("Int32 out of range")
	}
	return int32(v)
}

// uintField reads [n] UInt32 or Microseconds into an int.
func (s *seq) uintField(n int, required bool) int {
	b := s.field(n, required)
	if b == nil {
		return 0
	}
	v := s.integer(b)
	if v < -1<<31 || v > 1<<32-1 {
		s.fail("UInt32 out of range")
	}
	return int(v)
}

func (s *seq) str(n int, required bool) string {
	return string(s.prim(s.field(n, required), tagGeneralStr))
}

func (s *seq) octets(n int, required bool) []byte {
	b := s.field(n, required)
	if b == nil {
		return nil
	}
	c := s.prim(b, tagOctetString)
	if c == nil && s.err == nil {
		c = []byte{}
	}
	return c
}

// kerberosTime reads [n] KerberosTime: GeneralizedTime "YYYYMMDDHHMMSSZ" ([RFC 4120]
// 5.2.3), in UTC; fractions of seconds, which the RFC forbids, are accepted.
func (s *seq) kerberosTime(n int, required bool) time.Time {
	c := s.prim(s.field(n, required), tagGeneralTime)
	if len(c) == 0 {
		if s.err == nil && c != nil {
			s.fail("empty time")
		}
		return time.Time{}
	}
	if len(c) == 15 && c[14] == 'Z' {
		var d [14]int
		for i := range 14 {
			if c[i] < '0' || c[i] > '9' {
				s.fail("time with a non-digit")
				return time.Time{}
			}
			d[i] = int(c[i] - '0')
		}
		num := func(i, k int) int {
			v := 0
			for _, x := range d[i : i+k] {
				v = v*10 + x
			}
			return v
		}
		mo, dd, hh, mi, ss := num(4, 2), num(6, 2), num(8, 2), num(10, 2), num(12, 2)
		if mo < 1 || mo > 12 || dd < 1 || dd > 31 || hh > 23 || mi > 59 || ss > 60 {
			s.fail("time out of range")
			return time.Time{}
		}
		return time.Date(num(0, 4), time.Month(mo), dd, hh, mi, ss, 0, time.UTC)
	}
	t, err := time.Parse("20060102150405.999999999Z", string(c))
	if err != nil {
		s.fail("time not in GeneralizedTime form")
	}
	return t.UTC()
}

func (s *seq) bits(n int, required bool) asn1.BitString {
	c := s.prim(s.field(n, required), tagBitString)
	if len(c) == 0 {
		if s.err == nil && c != nil {
			s.fail("empty bit string")
		}
		return asn1.BitString{}
	}
	unused := int(c[0])
	if unused > 7 || len(c) == 1 && unused != 0 {
		s.fail("bad bit string")
		return asn1.BitString{}
	}
	return asn1.BitString{Bytes: c[1:], BitLength: (len(c)-1)*8 - unused}
}

// items splits a SEQUENCE OF into its elements.
func (s *seq) items(b []byte) [][]byte {
	c := s.prim(b, tagSequence)
	if s.err != nil || c == nil {
		return nil
	}
	var out [][]byte
	for len(c) > 0 {
		_, pos, n, err := tlv.Header(c)
		if err != nil || len(out) == maxItems {
			s.fail("bad or too many items")
			return nil
		}
		out = append(out, c[:pos+n])
		c = c[pos+n:]
	}
	return out
}

// sub decodes the structure in field [n] with fn, carrying errors both ways.
func (s *seq) sub(n int, required bool, tag byte, what string, fn func(*seq)) bool {
	b := s.field(n, required)
	if b == nil {
		return false
	}
	in := open(b, tag, what)
	if in.err == nil {
		fn(in)
	}
	if in.err != nil && s.err == nil {
		s.err = in.err
	}
	return s.err == nil
}

func decodePrincipal(s *seq) types.PrincipalName {
	p := types.PrincipalName{NameType: s.int32Field(0, true)}
	for _, it := range s.items(s.field(1, true)) {
		if len(p.NameString) == maxNameParts {
			s.fail("too many name components")
			break
		}
		p.NameString = append(p.NameString, string(s.prim(it, tagGeneralStr)))
	}
	if p.NameString == nil && s.err == nil {
		p.NameString = []string{}
	}
	return p
}

func (s *seq) principal(n int, required bool) (p types.PrincipalName) {
	s.sub(n, required, tagSequence, "PrincipalName", func(in *seq) { p = decodePrincipal(in) })
	return p
}

func decodeEncryptedData(s *seq) types.EncryptedData {
	return types.EncryptedData{EType: s.int32Field(0, true), KVNO: s.uintField(1, false), Cipher: s.octets(2, true)}
}

func (s *seq) encryptedData(n int, required bool) (e types.EncryptedData) {
	s.sub(n, required, tagSequence, "EncryptedData", func(in *seq) { e = decodeEncryptedData(in) })
	return e
}

func (s *seq) encryptionKey(n int, required bool) (k types.EncryptionKey) {
	s.sub(n, required, tagSequence, "EncryptionKey", func(in *seq) {
		k = types.EncryptionKey{KeyType: in.int32Field(0, true), KeyValue: in.octets(1, true)}
	})
	return k
}

// pairs decodes a SEQUENCE OF SEQUENCE { [a] Int32, [a+1] OCTET STRING } (PA-DATA,
// HostAddress, AuthorizationData).
func (s *seq) pairs(b []byte, a int, what string, fn func(typ int32, value []byte)) {
	for _, it := range s.items(b) {
		in := open(it, tagSequence, what)
		typ, value := in.int32Field(a, true), in.octets(a+1, true)
		if in.err != nil {
			s.err = in.err
			return
		}
		fn(typ, value)
	}
}

func (s *seq) paData(b []byte) types.PADataSequence {
	var out types.PADataSequence
	s.pairs(b, 1, "PA-DATA", func(t int32, v []byte) { out = append(out, types.PAData{PADataType: t, PADataValue: v}) })
	return out
}

func (s *seq) hostAddresses(b []byte) types.HostAddresses {
	var out types.HostAddresses
	s.pairs(b, 0, "HostAddress", func(t int32, v []byte) { out = append(out, types.HostAddress{AddrType: t, Address: v}) })
	return out
}

func (s *seq) authorizationData(b []byte) types.AuthorizationData {
	var out types.AuthorizationData
	s.pairs(b, 0, "AuthorizationData", func(t int32, v []byte) {
		out = append(out, types.AuthorizationDataEntry{ADType: t, ADData: v})
	})
	return out
}

func (s *seq) checksum(n int) (c types.Checksum) {
	s.sub(n, false, tagSequence, "Checksum", func(in *seq) {
		c = types.Checksum{CksumType: in.int32Field(0, true), Checksum: in.octets(1, true)}
	})
	return c
}

// ParseKDCReq decodes an AS-REQ or TGS-REQ (tag AppASReq or AppTGSReq, [RFC 4120] 5.4.1);
// body is the KDC-REQ-BODY as sent, which a TGS-REQ's authenticator checksum covers.
// KDC options shorter than 32 bits are padded with zero bits.
func ParseKDCReq(b []byte, tag int) (req messages.KDCReqFields, body []byte, err error) {
	s := open(b, byte(0x60|tag), "KDC-REQ")
	req.PVNO = s.uintField(1, true)
	req.MsgType = s.uintField(2, true)
	req.PAData = s.paData(s.field(3, false))
	body = s.field(4, true)
	if s.err != nil {
		return req, nil, s.err
	}
	if req.PVNO != 5 || req.MsgType != tag { // msg-type 10 and 12 are the application tags
		return req, nil, malformed(fmt.Sprintf("KDC-REQ with pvno %d and msg-type %d", req.PVNO, req.MsgType))
	}
	req.ReqBody, err = decodeKDCReqBody(body)
	return req, body, err
}

func decodeKDCReqBody(b []byte) (messages.KDCReqBody, error) {
	var k messages.KDCReqBody
	s := open(b, tagSequence, "KDC-REQ-BODY")
	k.KDCOptions = s.bits(0, true)
	if len(k.KDCOptions.Bytes) < 4 && s.err == nil {
		k.KDCOptions.Bytes = append(append([]byte{}, k.KDCOptions.Bytes...), make([]byte, 4-len(k.KDCOptions.Bytes))...)
		k.KDCOptions.BitLength = 32
	}
	k.CName = s.principal(1, false)
	k.Realm = s.str(2, true)
	k.SName = s.principal(3, false)
	k.From = s.kerberosTime(4, false)
	k.Till = s.kerberosTime(5, true)
	k.RTime = s.kerberosTime(6, false)
	k.Nonce = s.uintField(7, true)
	for _, it := range s.items(s.field(8, true)) {
		v := s.integer(it)
		if v < -1<<31 || v > 1<<31-1 {
			s.fail("etype out of range")
		}
		k.EType = append(k.EType, int32(v))
	}
	k.Addresses = s.hostAddresses(s.field(9, false))
	k.EncAuthData = s.encryptedData(10, false)
	for _, it := range s.items(s.field(11, false)) {
		t, err := ParseTicket(it)
		if err != nil {
			return k, err
		}
		k.AdditionalTickets = append(k.AdditionalTickets, t)
	}
	if len(s.rest) > 0 { // RFC 4120 5.4.1: KDC-REQ-BODY has no extension marker
		s.fail("a field after additional-tickets")
	}
	return k, s.err
}

// ParseTicket decodes a Ticket ([APPLICATION 1], [RFC 4120] 5.3).
func ParseTicket(b []byte) (messages.Ticket, error) {
	s := open(b, 0x60|AppTicket, "Ticket")
	t := messages.Ticket{TktVNO: s.uintField(0, true), Realm: s.str(1, true), SName: s.principal(2, true), EncPart: s.encryptedData(3, true)}
	return t, s.err
}

// ParseAPReq decodes an AP-REQ ([APPLICATION 14], [RFC 4120] 5.5.1); the authenticator stays
// encrypted.
func ParseAPReq(b []byte) (messages.APReq, error) {
	s := open(b, 0x60|AppAPReq, "AP-REQ")
	a := messages.APReq{PVNO: s.uintField(0, true), MsgType: s.uintField(1, true), APOptions: s.bits(2, true)}
	if tb := s.field(3, true); tb != nil && s.err == nil {
		t, err := ParseTicket(tb)
		if err != nil {
			return a, err
		}
		a.Ticket = t
	}
	a.EncryptedAuthenticator = s.encryptedData(4, true)
	if s.err == nil && (a.PVNO != 5 || a.MsgType != 14) {
		return a, malformed(fmt.Sprintf("AP-REQ with pvno %d and msg-type %d", a.PVNO, a.MsgType))
	}
	return a, s.err
}

// ParseEncTicketPart decodes EncTicketPart ([APPLICATION 3], [RFC 4120] 5.3).
func ParseEncTicketPart(b []byte) (messages.EncTicketPart, error) {
	s := open(b, 0x60|AppEncTicketPart, "EncTicketPart")
	var e messages.EncTicketPart
	e.Flags = s.bits(0, true)
	e.Key = s.encryptionKey(1, true)
	e.CRealm = s.str(2, true)
	e.CName = s.principal(3, true)
	s.sub(4, true, tagSequence, "TransitedEncoding", func(in *seq) {
		e.Transited = messages.TransitedEncoding{TRType: in.int32Field(0, true), Contents: in.octets(1, true)}
	})
	e.AuthTime = s.kerberosTime(5, true)
	e.StartTime = s.kerberosTime(6, false)
	e.EndTime = s.kerberosTime(7, true)
	e.RenewTill = s.kerberosTime(8, false)
	e.CAddr = s.hostAddresses(s.field(9, false))
	e.AuthorizationData = s.authorizationData(s.field(10, false))
	return e, s.err
}

// ParseAuthenticator decodes an Authenticator ([APPLICATION 2], [RFC 4120] 5.5.1).
func ParseAuthenticator(b []byte) (types.Authenticator, error) {
	s := open(b, 0x60|AppAuthenticator, "Authenticator")
	var a types.Authenticator
	a.AVNO = s.uintField(0, true)
	a.CRealm = s.str(1, true)
	a.CName = s.principal(2, true)
	a.Cksum = s.checksum(3)
	a.Cusec = s.uintField(4, true)
	a.CTime = s.kerberosTime(5, true)
	a.SubKey = s.encryptionKey(6, false)
	if b := s.field(7, false); b != nil {
		a.SeqNumber = s.integer(b)
	}
	a.AuthorizationData = s.authorizationData(s.field(8, false))
	return a, s.err
}

// ParseEncryptedData decodes EncryptedData ([RFC 4120] 5.2.9), as PA-ENC-TIMESTAMP carries it.
func ParseEncryptedData(b []byte) (types.EncryptedData, error) {
	s := open(b, tagSequence, "EncryptedData")
	e := decodeEncryptedData(s)
	return e, s.err
}

// ParsePAEncTSEnc decodes PA-ENC-TS-ENC ([RFC 4120] 5.2.7.2).
func ParsePAEncTSEnc(b []byte) (types.PAEncTSEnc, error) {
	s := open(b, tagSequence, "PA-ENC-TS-ENC")
	p := types.PAEncTSEnc{PATimestamp: s.kerberosTime(0, true), PAUSec: s.uintField(1, false)}
	return p, s.err
}

// ParsePACRequest decodes KERB-PA-PAC-REQUEST ([MS-KILE] 2.2.3): whether a PAC is wanted.
func ParsePACRequest(b []byte) (bool, error) {
	s := open(b, tagSequence, "PA-PAC-REQUEST")
	c := s.prim(s.field(0, true), tagBoolean)
	if s.err == nil && len(c) != 1 {
		s.fail("BOOLEAN of one octet expected")
	}
	return s.err == nil && c[0] != 0, s.err
}

// ParseAuthorizationData decodes AuthorizationData ([RFC 4120] 5.2.6), as AD-IF-RELEVANT
// carries it.
func ParseAuthorizationData(b []byte) (types.AuthorizationData, error) {
	s := &seq{what: "AuthorizationData"}
	ad := s.authorizationData(b)
	return ad, s.err
}
