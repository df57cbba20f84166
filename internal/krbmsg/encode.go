// Package krbmsg encodes and decodes, directly in DER ([X.690] 10), the Kerberos
// messages a KDC and its clients exchange on every request ([RFC 4120] 5): KDC-REQ and
// its body, PA-DATA, AP-REQ, Ticket, EncTicketPart, Authenticator, PA-ENC-TS-ENC,
// AuthorizationData, and the replies. Values are gokrb5's types, so the rest of the
// code keeps one vocabulary; the bytes are the ones gokrb5's reflective encoder writes
// (the tests compare both ways), at a small part of its cost in time and garbage.
package krbmsg

import (
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// Universal and application tags used here.
const (
	tagBoolean     = 0x01
	tagInteger     = 0x02
	tagBitString   = 0x03
	tagOctetString = 0x04
	tagGeneralStr  = 0x1b
	tagGeneralTime = 0x18
	tagSequence    = 0x30
)

// Application tags of the messages ([RFC 4120] 5.10).
const (
	AppTicket        = 1
	AppAuthenticator = 2
	AppEncTicketPart = 3
	AppASReq         = 10
	AppASRep         = 11
	AppTGSReq        = 12
	AppTGSRep        = 13
	AppAPReq         = 14
	AppEncASRepPart  = 25
	AppEncTGSRepPart = 26
)

// writer builds DER backwards: every element is written after its contents, in front
// of them, so nested elements are never copied and each message is one allocation
// (two when the first guess of its size was short).
type writer struct {
	buf []byte
	off int // the encoding is buf[off:]
}

func newWriter(size int) *writer {
	b := make([]byte, size)
	return &writer{buf: b, off: size}
}

// mark is the size written so far; a wrap given it encloses what was written since.
func (w *writer) mark() int { return len(w.buf) - w.off }

func (w *writer) reserve(n int) {
	if n <= w.off {
		return
	}
	size := 2*len(w.buf) + n
	b := make([]byte, size)
	copy(b[size-w.mark():], w.buf[w.off:])
	w.off, w.buf = size-w.mark(), b
}

func (w *writer) raw(p []byte) {
	w.reserve(len(p))
	w.off -= len(p)
	copy(w.buf[w.off:], p)
}

// wrap writes the identifier and length of an element whose contents are everything
// written since m.
func (w *writer) wrap(tag byte, m int) {
	n := w.mark() - m
	var hdr [6]byte
	i := len(hdr)
	switch {
	case n < 0x80:
		i--
		hdr[i] = byte(n)
	default:
		for v := n; v > 0; v >>= 8 {
			i--
			hdr[i] = byte(v)
		}
		i--
		hdr[i] = 0x80 | byte(len(hdr)-1-i)
	}
	i--
	hdr[i] = tag
	w.raw(hdr[i:])
}

// explicit closes a context tag [n] around what was written since m.
func (w *writer) explicit(n int, m int) { w.wrap(byte(0xa0+n), m) }

func (w *writer) bytes() []byte { return w.buf[w.off:] }

// Primitive fields, each under its context tag [n].

func (w *writer) integer(n int, v int64) {
	m := w.mark()
	w.bareInt(v)
	w.explicit(n, m)
}

// bareInt writes an INTEGER without a context tag ([X.690] 8.3: minimal two's complement).
func (w *writer) bareInt(v int64) {
	m := w.mark()
	var tmp [9]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = byte(v)
		v >>= 8
		if (v == 0 && tmp[i]&0x80 == 0) || (v == -1 && tmp[i]&0x80 != 0) {
			break
		}
	}
	w.raw(tmp[i:])
	w.wrap(tagInteger, m)
}

func (w *writer) str(n int, s string) {
	m := w.mark()
	w.reserve(len(s))
	w.off -= len(s)
	copy(w.buf[w.off:], s)
	w.wrap(tagGeneralStr, m)
	w.explicit(n, m)
}

func (w *writer) octets(n int, b []byte) {
	m := w.mark()
	w.raw(b)
	w.wrap(tagOctetString, m)
	w.explicit(n, m)
}

func (w *writer) time(n int, t time.Time) {
	m := w.mark()
	var tmp [15]byte
	w.raw(t.UTC().AppendFormat(tmp[:0], "20060102150405Z"))
	w.wrap(tagGeneralTime, m)
	w.explicit(n, m)
}

func (w *writer) optTime(n int, t time.Time) {
	if !t.IsZero() {
		w.time(n, t)
	}
}

func (w *writer) bits(n int, b asn1.BitString) {
	m := w.mark()
	w.raw(b.Bytes)
	w.raw([]byte{byte(len(b.Bytes)*8 - b.BitLength)})
	w.wrap(tagBitString, m)
	w.explicit(n, m)
}

// Structures, written whole (each as one element).

func (w *writer) principal(p types.PrincipalName) {
	m := w.mark()
	for i := len(p.NameString) - 1; i >= 0; i-- {
		s := w.mark()
		w.raw([]byte(p.NameString[i]))
		w.wrap(tagGeneralStr, s)
	}
	w.wrap(tagSequence, m)
	w.explicit(1, m)
	w.integer(0, int64(p.NameType))
	w.wrap(tagSequence, m)
}

func (w *writer) encryptionKey(k types.EncryptionKey) {
	m := w.mark()
	w.octets(1, k.KeyValue)
	w.integer(0, int64(k.KeyType))
	w.wrap(tagSequence, m)
}

func (w *writer) encryptedData(e types.EncryptedData) {
	m := w.mark()
	w.octets(2, e.Cipher)
	if e.KVNO != 0 {
		w.integer(1, int64(e.KVNO))
	}
	w.integer(0, int64(e.EType))
	w.wrap(tagSequence, m)
}

func (w *writer) checksum(c types.Checksum) {
	m := w.mark()
	w.octets(1, c.Checksum)
	w.integer(0, int64(c.CksumType))
	w.wrap(tagSequence, m)
}

func (w *writer) authorizationData(ad types.AuthorizationData) {
	m := w.mark()
	for i := len(ad) - 1; i >= 0; i-- {
		e := w.mark()
		w.octets(1, ad[i].ADData)
		w.integer(0, int64(ad[i].ADType))
		w.wrap(tagSequence, e)
	}
	w.wrap(tagSequence, m)
}

func (w *writer) paData(pas []types.PAData) {
	m := w.mark()
	for i := len(pas) - 1; i >= 0; i-- {
		e := w.mark()
		w.octets(2, pas[i].PADataValue)
		w.integer(1, int64(pas[i].PADataType))
		w.wrap(tagSequence, e)
	}
	w.wrap(tagSequence, m)
}

func (w *writer) hostAddresses(as []types.HostAddress) {
	m := w.mark()
	for i := len(as) - 1; i >= 0; i-- {
		e := w.mark()
		w.octets(1, as[i].Address)
		w.integer(0, int64(as[i].AddrType))
		w.wrap(tagSequence, e)
	}
	w.wrap(tagSequence, m)
}

func (w *writer) ticket(t *messages.Ticket) {
	m := w.mark()
	e := w.mark()
	w.encryptedData(t.EncPart)
	w.explicit(3, e)
	e = w.mark()
	w.principal(t.SName)
	w.explicit(2, e)
	w.str(1, t.Realm)
	w.integer(0, int64(t.TktVNO))
	w.wrap(tagSequence, m)
	w.wrap(0x60|AppTicket, m)
}

// EncTicketPart is the DER of EncTicketPart ([APPLICATION 3], [RFC 4120] 5.3).
func EncTicketPart(t *messages.EncTicketPart) []byte {
	n := 320
	for _, e := range t.AuthorizationData {
		n += len(e.ADData) + 16
	}
	w := newWriter(n)
	m := w.mark()
	if len(t.AuthorizationData) > 0 {
		e := w.mark()
		w.authorizationData(t.AuthorizationData)
		w.explicit(10, e)
	}
	if len(t.CAddr) > 0 {
		e := w.mark()
		w.hostAddresses(t.CAddr)
		w.explicit(9, e)
	}
	w.optTime(8, t.RenewTill)
	w.time(7, t.EndTime)
	w.optTime(6, t.StartTime)
	w.time(5, t.AuthTime)
	e := w.mark()
	tr := w.mark()
	w.octets(1, t.Transited.Contents)
	w.integer(0, int64(t.Transited.TRType))
	w.wrap(tagSequence, tr)
	w.explicit(4, e)
	e = w.mark()
	w.principal(t.CName)
	w.explicit(3, e)
	w.str(2, t.CRealm)
	e = w.mark()
	w.encryptionKey(t.Key)
	w.explicit(1, e)
	w.bits(0, t.Flags)
	w.wrap(tagSequence, m)
	w.wrap(0x60|AppEncTicketPart, m)
	return w.bytes()
}

// EncKDCRepPart is the DER of EncASRepPart or EncTGSRepPart (tag AppEncASRepPart or
// AppEncTGSRepPart, [RFC 4120] 5.4.2).
func EncKDCRepPart(e *messages.EncKDCRepPart, tag int) []byte {
	w := newWriter(320)
	m := w.mark()
	if len(e.CAddr) > 0 {
		f := w.mark()
		w.hostAddresses(e.CAddr)
		w.explicit(11, f)
	}
	f := w.mark()
	w.principal(e.SName)
	w.explicit(10, f)
	w.str(9, e.SRealm)
	w.optTime(8, e.RenewTill)
	w.time(7, e.EndTime)
	w.optTime(6, e.StartTime)
	w.time(5, e.AuthTime)
	w.bits(4, e.Flags)
	if !e.KeyExpiration.IsZero() {
		w.time(3, e.KeyExpiration)
	}
	w.integer(2, int64(e.Nonce))
	f = w.mark()
	lr := w.mark()
	for i := len(e.LastReqs) - 1; i >= 0; i-- {
		l := w.mark()
		w.time(1, e.LastReqs[i].LRValue)
		w.integer(0, int64(e.LastReqs[i].LRType))
		w.wrap(tagSequence, l)
	}
	w.wrap(tagSequence, lr)
	w.explicit(1, f)
	f = w.mark()
	w.encryptionKey(e.Key)
	w.explicit(0, f)
	w.wrap(tagSequence, m)
	w.wrap(byte(0x60|tag), m)
	return w.bytes()
}

// KDCRep is the DER of an AS-REP or TGS-REP (tag AppASRep or AppTGSRep, [RFC 4120] 5.4.2).
func KDCRep(r *messages.KDCRepFields, tag int) []byte {
	n := 512 + len(r.Ticket.EncPart.Cipher) + len(r.EncPart.Cipher)
	for _, p := range r.PAData {
		n += len(p.PADataValue) + 16
	}
	w := newWriter(n)
	m := w.mark()
	f := w.mark()
	w.encryptedData(r.EncPart)
	w.explicit(6, f)
	f = w.mark()
	w.ticket(&r.Ticket)
	w.explicit(5, f)
	f = w.mark()
	w.principal(r.CName)
	w.explicit(4, f)
	w.str(3, r.CRealm)
	if len(r.PAData) > 0 {
		f = w.mark()
		w.paData(r.PAData)
		w.explicit(2, f)
	}
	w.integer(1, int64(r.MsgType))
	w.integer(0, int64(r.PVNO))
	w.wrap(tagSequence, m)
	w.wrap(byte(0x60|tag), m)
	return w.bytes()
}

// Ticket is the DER of a Ticket ([APPLICATION 1]).
func Ticket(t *messages.Ticket) []byte {
	w := newWriter(256 + len(t.EncPart.Cipher))
	w.ticket(t)
	return w.bytes()
}

// AuthorizationData is the DER of AuthorizationData ([RFC 4120] 5.2.6).
func AuthorizationData(ad types.AuthorizationData) []byte {
	n := 16
	for _, e := range ad {
		n += len(e.ADData) + 16
	}
	w := newWriter(n)
	w.authorizationData(ad)
	return w.bytes()
}

// PADataSequence is the DER of a SEQUENCE OF PA-DATA ([RFC 4120] 5.2.7), as METHOD-DATA
// in a KRB-ERROR's e-data.
func PADataSequence(pas []types.PAData) []byte {
	n := 16
	for _, p := range pas {
		n += len(p.PADataValue) + 16
	}
	w := newWriter(n)
	w.paData(pas)
	return w.bytes()
}

// ETypeInfo2 is the DER of ETYPE-INFO2 ([RFC 4120] 5.2.7.5); an empty salt is left out.
func ETypeInfo2(entries []types.ETypeInfo2Entry) []byte {
	w := newWriter(64 * (len(entries) + 1))
	m := w.mark()
	for i := len(entries) - 1; i >= 0; i-- {
		e := w.mark()
		if len(entries[i].S2KParams) > 0 {
			w.octets(2, entries[i].S2KParams)
		}
		if entries[i].Salt != "" {
			w.str(1, entries[i].Salt)
		}
		w.integer(0, int64(entries[i].EType))
		w.wrap(tagSequence, e)
	}
	w.wrap(tagSequence, m)
	return w.bytes()
}

// EncryptedData is the DER of EncryptedData ([RFC 4120] 5.2.9).
func EncryptedData(e types.EncryptedData) []byte {
	w := newWriter(32 + len(e.Cipher))
	w.encryptedData(e)
	return w.bytes()
}

// PAEncTSEnc is the DER of PA-ENC-TS-ENC ([RFC 4120] 5.2.7.2).
func PAEncTSEnc(ts time.Time, usec int) []byte {
	w := newWriter(32)
	m := w.mark()
	w.integer(1, int64(usec))
	w.time(0, ts)
	w.wrap(tagSequence, m)
	return w.bytes()
}

// KDCReqBody is the DER of a KDC-REQ-BODY ([RFC 4120] 5.4.1), the bytes a TGS-REQ's
// authenticator checksum covers.
func KDCReqBody(b *messages.KDCReqBody) []byte {
	n := 256
	for _, t := range b.AdditionalTickets {
		n += len(t.EncPart.Cipher) + 256
	}
	w := newWriter(n + len(b.EncAuthData.Cipher))
	m := w.mark()
	if len(b.AdditionalTickets) > 0 {
		f := w.mark()
		s := w.mark()
		for i := len(b.AdditionalTickets) - 1; i >= 0; i-- {
			w.ticket(&b.AdditionalTickets[i])
		}
		w.wrap(tagSequence, s)
		w.explicit(11, f)
	}
	if b.EncAuthData.EType != 0 {
		f := w.mark()
		w.encryptedData(b.EncAuthData)
		w.explicit(10, f)
	}
	if len(b.Addresses) > 0 {
		f := w.mark()
		w.hostAddresses(b.Addresses)
		w.explicit(9, f)
	}
	f := w.mark()
	s := w.mark()
	for i := len(b.EType) - 1; i >= 0; i-- {
		w.bareInt(int64(b.EType[i]))
	}
	w.wrap(tagSequence, s)
	w.explicit(8, f)
	w.integer(7, int64(b.Nonce))
	w.optTime(6, b.RTime)
	w.time(5, b.Till)
	w.optTime(4, b.From)
	if len(b.SName.NameString) > 0 {
		f = w.mark()
		w.principal(b.SName)
		w.explicit(3, f)
	}
	w.str(2, b.Realm)
	if len(b.CName.NameString) > 0 {
		f = w.mark()
		w.principal(b.CName)
		w.explicit(1, f)
	}
	w.bits(0, b.KDCOptions)
	w.wrap(tagSequence, m)
	return w.bytes()
}

// KDCReq is the DER of an AS-REQ or TGS-REQ (tag AppASReq or AppTGSReq) with the
// encoded body given (from KDCReqBody).
func KDCReq(tag int, padata []types.PAData, body []byte) []byte {
	n := 64 + len(body)
	for _, p := range padata {
		n += len(p.PADataValue) + 16
	}
	w := newWriter(n)
	m := w.mark()
	f := w.mark()
	w.raw(body)
	w.explicit(4, f)
	if len(padata) > 0 {
		f = w.mark()
		w.paData(padata)
		w.explicit(3, f)
	}
	msgType := 10
	if tag == AppTGSReq {
		msgType = 12
	}
	w.integer(2, int64(msgType))
	w.integer(1, 5)
	w.wrap(tagSequence, m)
	w.wrap(byte(0x60|tag), m)
	return w.bytes()
}

// Authenticator is the DER of an Authenticator ([APPLICATION 2], [RFC 4120] 5.5.1).
func Authenticator(a *types.Authenticator) []byte {
	n := 256 + len(a.Cksum.Checksum)
	for _, e := range a.AuthorizationData {
		n += len(e.ADData) + 16
	}
	w := newWriter(n)
	m := w.mark()
	if len(a.AuthorizationData) > 0 {
		f := w.mark()
		w.authorizationData(a.AuthorizationData)
		w.explicit(8, f)
	}
	if a.SeqNumber != 0 {
		w.integer(7, a.SeqNumber)
	}
	if a.SubKey.KeyType != 0 {
		f := w.mark()
		w.encryptionKey(a.SubKey)
		w.explicit(6, f)
	}
	w.time(5, a.CTime)
	w.integer(4, int64(a.Cusec))
	if a.Cksum.CksumType != 0 {
		f := w.mark()
		w.checksum(a.Cksum)
		w.explicit(3, f)
	}
	f := w.mark()
	w.principal(a.CName)
	w.explicit(2, f)
	w.str(1, a.CRealm)
	w.integer(0, int64(a.AVNO))
	w.wrap(tagSequence, m)
	w.wrap(0x60|AppAuthenticator, m)
	return w.bytes()
}

// APReq is the DER of an AP-REQ ([APPLICATION 14], [RFC 4120] 5.5.1).
func APReq(options asn1.BitString, t *messages.Ticket, authenticator types.EncryptedData) []byte {
	w := newWriter(320 + len(t.EncPart.Cipher) + len(authenticator.Cipher))
	m := w.mark()
	f := w.mark()
	w.encryptedData(authenticator)
	w.explicit(4, f)
	f = w.mark()
	w.ticket(t)
	w.explicit(3, f)
	w.bits(2, options)
	w.integer(1, AppAPReq)
	w.integer(0, 5)
	w.wrap(tagSequence, m)
	w.wrap(0x60|AppAPReq, m)
	return w.bytes()
}
