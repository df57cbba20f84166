package kdc

import (
	"bytes"
	"testing"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// The direct encoder writes the bytes gokrb5's reflective encoder writes.
func TestDERMatchesGokrb5(t *testing.T) {
	now := time.Date(2026, 12, 3, 19, 4, 5, 0, time.UTC)
	f := types.NewKrbFlags()
	types.SetFlag(&f, flags.Forwardable)
	types.SetFlag(&f, flags.Initial)
	key := types.EncryptionKey{KeyType: 18, KeyValue: bytes.Repeat([]byte{7}, 32)}
	cname := types.PrincipalName{NameType: 1, NameString: []string{"alice"}}
	sname := types.PrincipalName{NameType: 2, NameString: []string{"krbtgt", "EXAMPLE.TEST"}}
	for _, renew := range []time.Time{{}, now.Add(7 * 24 * time.Hour)} {
		ad, _ := authData(bytes.Repeat([]byte{1, 2, 3}, 300))
		for _, a := range []types.AuthorizationData{nil, ad} {
			etp := messages.EncTicketPart{Flags: f, Key: key, CRealm: "EXAMPLE.TEST", CName: cname,
				Transited: messages.TransitedEncoding{TRType: 1, Contents: []byte{}}, AuthTime: now, StartTime: now,
				EndTime: now.Add(10 * time.Hour), RenewTill: renew, AuthorizationData: a}
			b, err := asn1.Marshal(etp)
			if err != nil {
				t.Fatal(err)
			}
			if want := asn1tools.AddASNAppTag(b, 3); !bytes.Equal(encTicketPart(&etp), want) {
				t.Fatalf("EncTicketPart (renew %v, %d ad):\n got %x\nwant %x", renew, len(a), encTicketPart(&etp), want)
			}
		}
		enc := messages.EncKDCRepPart{Key: key, LastReqs: []messages.LastReq{{LRType: 0, LRValue: now}}, Nonce: 0x7fabcdef,
			Flags: f, AuthTime: now, StartTime: now, EndTime: now.Add(time.Hour), RenewTill: renew, SRealm: "EXAMPLE.TEST", SName: sname}
		b, _ := asn1.Marshal(enc)
		for _, tag := range []int{25, 26} {
			if want := asn1tools.AddASNAppTag(b, tag); !bytes.Equal(encKDCRepPart(&enc, tag), want) {
				t.Fatalf("EncKDCRepPart %d:\n got %x\nwant %x", tag, encKDCRepPart(&enc, tag), want)
			}
		}
	}
	tkt := messages.Ticket{TktVNO: 5, Realm: "EXAMPLE.TEST", SName: sname, EncPart: types.EncryptedData{EType: 18, KVNO: 3, Cipher: bytes.Repeat([]byte{9}, 200)}}
	for _, pa := range [][]types.PAData{nil, {{PADataType: 19, PADataValue: []byte{0x30, 0}}}} {
		rep := messages.ASRep{KDCRepFields: messages.KDCRepFields{PVNO: 5, MsgType: 11, PAData: pa, CRealm: "EXAMPLE.TEST", CName: cname,
			Ticket: tkt, EncPart: types.EncryptedData{EType: 18, KVNO: 1, Cipher: []byte{1, 2, 3}}}}
		want, err := rep.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if got := kdcRep(&rep.KDCRepFields, 11); !bytes.Equal(got, want) {
			t.Fatalf("AS-REP:\n got %x\nwant %x", got, want)
		}
		tgs := messages.TGSRep(rep)
		tgs.MsgType = 13
		tgs.EncPart.KVNO = 0
		if want, _ := tgs.Marshal(); !bytes.Equal(kdcRep(&tgs.KDCRepFields, 13), want) {
			t.Fatalf("TGS-REP:\n got %x\nwant %x", kdcRep(&tgs.KDCRepFields, 13), want)
		}
	}
}
