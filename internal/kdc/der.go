package kdc

// Direct DER encoding ([X.690] 10) of the messages the KDC sends on every request —
// EncTicketPart, EncKDCRepPart, Ticket, AS-REP and TGS-REP ([RFC 4120] 5.3, 5.4.2) —
// the same bytes as gokrb5's reflective encoder (der_test.go compares them), at a
// fraction of its cost.

import (
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"gmsa/internal/tlv"
)

// der builds one element's contents.
type der []byte

func (d der) tagged(n int, content []byte) der { return tlv.Append(d, byte(0xa0+n), content) }
func (d der) integer(n int, v int64) der       { return d.tagged(n, tlv.AppendInt(nil, 0x02, v)) }
func (d der) gstring(n int, s string) der      { return d.tagged(n, tlv.Append(nil, 0x1b, []byte(s))) }
func (d der) octets(n int, b []byte) der       { return d.tagged(n, tlv.Append(nil, 0x04, b)) }
func (d der) time(n int, t time.Time) der {
	return d.tagged(n, tlv.Append(nil, 0x18, t.UTC().AppendFormat(nil, "20060102150405Z")))
}
func (d der) optTime(n int, t time.Time) der {
	if t.IsZero() {
		return d
	}
	return d.time(n, t)
}
func (d der) bits(n int, b asn1.BitString) der {
	return d.tagged(n, tlv.Append(nil, 0x03, append([]byte{byte(len(b.Bytes)*8 - b.BitLength)}, b.Bytes...)))
}

func seq(content []byte) []byte        { return tlv.Append(nil, 0x30, content) }
func app(n int, content []byte) []byte { return tlv.Append(nil, byte(0x60+n), content) }
func principal(p types.PrincipalName) []byte {
	var names []byte
	for _, s := range p.NameString {
		names = tlv.Append(names, 0x1b, []byte(s))
	}
	return seq(der(nil).integer(0, int64(p.NameType)).tagged(1, seq(names)))
}

func encryptionKey(k types.EncryptionKey) []byte {
	return seq(der(nil).integer(0, int64(k.KeyType)).octets(1, k.KeyValue))
}

func encryptedData(e types.EncryptedData) []byte {
	d := der(nil).integer(0, int64(e.EType))
	if e.KVNO != 0 {
		d = d.integer(1, int64(e.KVNO))
	}
	return seq(d.octets(2, e.Cipher))
}

func authorizationData(ad types.AuthorizationData) []byte {
	var items []byte
	for _, e := range ad {
		items = append(items, seq(der(nil).integer(0, int64(e.ADType)).octets(1, e.ADData))...)
	}
	return seq(items)
}

// encTicketPart is EncTicketPart ([APPLICATION 3]).
func encTicketPart(t *messages.EncTicketPart) []byte {
	d := der(nil).bits(0, t.Flags).tagged(1, encryptionKey(t.Key)).gstring(2, t.CRealm).tagged(3, principal(t.CName)).
		tagged(4, seq(der(nil).integer(0, int64(t.Transited.TRType)).octets(1, t.Transited.Contents))).
		time(5, t.AuthTime).optTime(6, t.StartTime).time(7, t.EndTime).optTime(8, t.RenewTill)
	if len(t.AuthorizationData) > 0 {
		d = d.tagged(10, authorizationData(t.AuthorizationData))
	}
	return app(3, seq(d))
}

// encKDCRepPart is EncASRepPart ([APPLICATION 25]) or EncTGSRepPart ([APPLICATION 26]).
func encKDCRepPart(e *messages.EncKDCRepPart, tag int) []byte {
	var lr []byte
	for _, l := range e.LastReqs {
		lr = append(lr, seq(der(nil).integer(0, int64(l.LRType)).time(1, l.LRValue))...)
	}
	d := der(nil).tagged(0, encryptionKey(e.Key)).tagged(1, seq(lr)).integer(2, int64(e.Nonce)).bits(4, e.Flags).
		time(5, e.AuthTime).optTime(6, e.StartTime).time(7, e.EndTime).optTime(8, e.RenewTill).gstring(9, e.SRealm).
		tagged(10, principal(e.SName))
	return app(tag, seq(d))
}

// ticket is Ticket ([APPLICATION 1]).
func ticket(t *messages.Ticket) []byte {
	return app(1, seq(der(nil).integer(0, int64(t.TktVNO)).gstring(1, t.Realm).tagged(2, principal(t.SName)).
		tagged(3, encryptedData(t.EncPart))))
}

// kdcRep is AS-REP ([APPLICATION 11]) or TGS-REP ([APPLICATION 13]).
func kdcRep(r *messages.KDCRepFields, tag int) []byte {
	d := der(nil).integer(0, int64(r.PVNO)).integer(1, int64(r.MsgType))
	if len(r.PAData) > 0 {
		var pas []byte
		for _, p := range r.PAData {
			pas = append(pas, seq(der(nil).integer(1, int64(p.PADataType)).octets(2, p.PADataValue))...)
		}
		d = d.tagged(2, seq(pas))
	}
	d = d.gstring(3, r.CRealm).tagged(4, principal(r.CName)).tagged(5, ticket(&r.Ticket)).tagged(6, encryptedData(r.EncPart))
	return app(tag, seq(d))
}
