package krbmsg

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	"github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

var (
	now   = time.Date(2026, 12, 3, 19, 4, 5, 0, time.UTC)
	key   = types.EncryptionKey{KeyType: 18, KeyValue: bytes.Repeat([]byte{7}, 32)}
	cname = types.PrincipalName{NameType: 1, NameString: []string{"alice"}}
	sname = types.PrincipalName{NameType: 2, NameString: []string{"krbtgt", "EXAMPLE.TEST"}}
	tkt   = messages.Ticket{TktVNO: 5, Realm: "EXAMPLE.TEST", SName: sname,
		EncPart: types.EncryptedData{EType: 18, KVNO: 3, Cipher: bytes.Repeat([]byte{9}, 200)}}
)

func ticketFlags() asn1.BitString {
	f := types.NewKrbFlags()
	types.SetFlag(&f, flags.Forwardable)
	types.SetFlag(&f, flags.Initial)
	return f
}

// pacAD is a PAC as a ticket carries it, large enough to need long lengths.
func pacAD(n int) types.AuthorizationData {
	inner, _ := asn1.Marshal(types.AuthorizationData{{ADType: 128, ADData: bytes.Repeat([]byte{1, 2, 3}, n)}})
	return types.AuthorizationData{{ADType: 1, ADData: inner}}
}

// The encoders write the bytes gokrb5's reflective encoder writes, and the decoders read
// them back to the values encoded.
func TestEncTicketPartBothWays(t *testing.T) {
	for _, renew := range []time.Time{{}, now.Add(7 * 24 * time.Hour)} {
		for _, ad := range []types.AuthorizationData{nil, pacAD(30), pacAD(30000)} {
			etp := messages.EncTicketPart{Flags: ticketFlags(), Key: key, CRealm: "EXAMPLE.TEST", CName: cname,
				Transited: messages.TransitedEncoding{TRType: 1, Contents: []byte{}}, AuthTime: now, StartTime: now,
				EndTime: now.Add(10 * time.Hour), RenewTill: renew, AuthorizationData: ad}
			b, err := asn1.Marshal(etp)
			if err != nil {
				t.Fatal(err)
			}
			want := asn1tools.AddASNAppTag(b, AppEncTicketPart)
			if got := EncTicketPart(&etp); !bytes.Equal(got, want) {
				t.Fatalf("EncTicketPart (renew %v, %d ad):\n got %x\nwant %x", renew, len(ad), got, want)
			}
			back, err := ParseEncTicketPart(want)
			if err != nil {
				t.Fatal(err)
			}
			var theirs messages.EncTicketPart
			if err := theirs.Unmarshal(want); err != nil {
				t.Fatal(err)
			}
			if !same(back, theirs) || !same(back, etp) {
				t.Fatalf("EncTicketPart decoded as\n%+v\nwant\n%+v", back, theirs)
			}
		}
	}
}

func TestRepliesMatchGokrb5(t *testing.T) {
	for _, renew := range []time.Time{{}, now.Add(7 * 24 * time.Hour)} {
		enc := messages.EncKDCRepPart{Key: key, LastReqs: []messages.LastReq{{LRType: 0, LRValue: now}}, Nonce: 0x7fabcdef,
			Flags: ticketFlags(), AuthTime: now, StartTime: now, EndTime: now.Add(time.Hour), RenewTill: renew, SRealm: "EXAMPLE.TEST", SName: sname}
		b, _ := asn1.Marshal(enc)
		for _, tag := range []int{AppEncASRepPart, AppEncTGSRepPart} {
			if want := asn1tools.AddASNAppTag(b, tag); !bytes.Equal(EncKDCRepPart(&enc, tag), want) {
				t.Fatalf("EncKDCRepPart %d:\n got %x\nwant %x", tag, EncKDCRepPart(&enc, tag), want)
			}
		}
	}
	for _, pa := range [][]types.PAData{nil, {{PADataType: 19, PADataValue: []byte{0x30, 0}}}} {
		rep := messages.ASRep{KDCRepFields: messages.KDCRepFields{PVNO: 5, MsgType: 11, PAData: pa, CRealm: "EXAMPLE.TEST", CName: cname,
			Ticket: tkt, EncPart: types.EncryptedData{EType: 18, KVNO: 1, Cipher: []byte{1, 2, 3}}}}
		want, err := rep.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if got := KDCRep(&rep.KDCRepFields, AppASRep); !bytes.Equal(got, want) {
			t.Fatalf("AS-REP:\n got %x\nwant %x", got, want)
		}
		tgs := messages.TGSRep(rep)
		tgs.MsgType = 13
		tgs.EncPart.KVNO = 0
		if want, _ := tgs.Marshal(); !bytes.Equal(KDCRep(&tgs.KDCRepFields, AppTGSRep), want) {
			t.Fatalf("TGS-REP:\n got %x\nwant %x", KDCRep(&tgs.KDCRepFields, AppTGSRep), want)
		}
	}
	info := types.ETypeInfo2{{EType: 18, Salt: "EXAMPLE.TESTalice"}, {EType: 23}}
	if want, _ := asn1.Marshal(info); !bytes.Equal(ETypeInfo2(info), want) {
		t.Fatalf("ETYPE-INFO2:\n got %x\nwant %x", ETypeInfo2(info), want)
	}
	pas := types.PADataSequence{{PADataType: 19, PADataValue: []byte{1}}, {PADataType: 2, PADataValue: []byte{}}}
	if want, _ := asn1.Marshal(pas); !bytes.Equal(PADataSequence(pas), want) {
		t.Fatalf("METHOD-DATA:\n got %x\nwant %x", PADataSequence(pas), want)
	}
	ad := pacAD(100)
	if want, _ := asn1.Marshal(ad); !bytes.Equal(AuthorizationData(ad), want) {
		t.Fatalf("AuthorizationData:\n got %x\nwant %x", AuthorizationData(ad), want)
	}
	if want, _ := tkt.Marshal(); !bytes.Equal(Ticket(&tkt), want) {
		t.Fatalf("Ticket:\n got %x\nwant %x", Ticket(&tkt), want)
	}
}

// Requests as a client builds them: our bytes are gokrb5's, and both decoders agree.
func TestRequestsBothWays(t *testing.T) {
	cfg, err := config.NewFromString("[libdefaults]\n default_realm = EXAMPLE.TEST\n default_tkt_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96\n default_tgs_enctypes = aes256-cts-hmac-sha1-96\n")
	if err != nil {
		t.Fatal(err)
	}
	as, err := messages.NewASReqForTGT("EXAMPLE.TEST", cfg, cname)
	if err != nil {
		t.Fatal(err)
	}
	as.ReqBody.Till = now.Add(10 * time.Hour)
	as.ReqBody.RTime = now.Add(7 * 24 * time.Hour)
	as.PAData = types.PADataSequence{{PADataType: 2, PADataValue: EncryptedData(types.EncryptedData{EType: 18, Cipher: []byte{1, 2}})},
		{PADataType: 128, PADataValue: []byte{0x30, 0x05, 0xa0, 0x03, 0x01, 0x01, 0xff}}}
	as.ReqBody.Addresses = types.HostAddresses{{AddrType: 2, Address: []byte{127, 0, 0, 1}}}
	want, err := as.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	body := KDCReqBody(&as.ReqBody)
	if got := KDCReq(AppASReq, as.PAData, body); !bytes.Equal(got, want) {
		t.Fatalf("AS-REQ:\n got %x\nwant %x", got, want)
	}
	req, raw, err := ParseKDCReq(want, AppASReq)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(raw, body) || !same(req, as.KDCReqFields) {
		t.Fatalf("AS-REQ decoded as\n%+v\nwant\n%+v", req, as.KDCReqFields)
	}
	if pac, err := ParsePACRequest(req.PAData[1].PADataValue); err != nil || !pac {
		t.Fatalf("PA-PAC-REQUEST: %v %v", pac, err)
	}
	if _, _, err := ParseKDCReq(want, AppTGSReq); err == nil {
		t.Fatal("an AS-REQ decoded as a TGS-REQ")
	}

	tgs, err := messages.NewTGSReq(cname, "EXAMPLE.TEST", cfg, tkt, key, types.PrincipalName{NameType: 2, NameString: []string{"HTTP", "web.example.test"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	tgs.ReqBody.AdditionalTickets = []messages.Ticket{tkt}
	want, err = tgs.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	req, raw, err = ParseKDCReq(want, AppTGSReq)
	if err != nil {
		t.Fatal(err)
	}
	var theirs messages.TGSReq
	if err := theirs.Unmarshal(want); err != nil {
		t.Fatal(err)
	}
	if !same(req, theirs.KDCReqFields) {
		t.Fatalf("TGS-REQ decoded as\n%+v\nwant\n%+v", req, theirs.KDCReqFields)
	}
	if got := KDCReq(AppTGSReq, req.PAData, KDCReqBody(&req.ReqBody)); !bytes.Equal(got, want) || !bytes.Equal(raw, KDCReqBody(&req.ReqBody)) {
		t.Fatalf("TGS-REQ re-encoded:\n got %x\nwant %x", got, want)
	}
	ap, err := ParseAPReq(req.PAData[0].PADataValue)
	if err != nil {
		t.Fatal(err)
	}
	var theirAP messages.APReq
	if err := theirAP.Unmarshal(req.PAData[0].PADataValue); err != nil {
		t.Fatal(err)
	}
	if !same(ap, theirAP) {
		t.Fatalf("AP-REQ decoded as\n%+v\nwant\n%+v", ap, theirAP)
	}
	if got := APReq(ap.APOptions, &ap.Ticket, ap.EncryptedAuthenticator); !bytes.Equal(got, req.PAData[0].PADataValue) {
		t.Fatalf("AP-REQ re-encoded:\n got %x\nwant %x", got, req.PAData[0].PADataValue)
	}

	auth := types.Authenticator{AVNO: 5, CRealm: "EXAMPLE.TEST", CName: cname, Cksum: types.Checksum{CksumType: 16, Checksum: []byte{1, 2, 3}},
		Cusec: 123456, CTime: now, SubKey: key, SeqNumber: 0x12345678, AuthorizationData: pacAD(2)}
	wantAuth, err := auth.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if got := Authenticator(&auth); !bytes.Equal(got, wantAuth) {
		t.Fatalf("Authenticator:\n got %x\nwant %x", got, wantAuth)
	}
	back, err := ParseAuthenticator(wantAuth)
	if err != nil || !same(back, auth) {
		t.Fatalf("Authenticator decoded as %+v, %v", back, err)
	}
	ts := PAEncTSEnc(now, 999999)
	if want, _ := asn1.Marshal(types.PAEncTSEnc{PATimestamp: now, PAUSec: 999999}); !bytes.Equal(ts, want) {
		t.Fatalf("PA-ENC-TS-ENC:\n got %x\nwant %x", ts, want)
	}
	if p, err := ParsePAEncTSEnc(ts); err != nil || !p.PATimestamp.Equal(now) || p.PAUSec != 999999 {
		t.Fatalf("PA-ENC-TS-ENC decoded as %+v, %v", p, err)
	}
}

// Short KDC options are padded at the end, where the bits they lack are ([X.680] 22.7).
func TestShortKDCOptions(t *testing.T) {
	body := messages.KDCReqBody{KDCOptions: asn1.BitString{Bytes: []byte{0x40}, BitLength: 2}, Realm: "EXAMPLE.TEST", SName: sname,
		Till: now, Nonce: 1, EType: []int32{18}}
	req, _, err := ParseKDCReq(KDCReq(AppASReq, nil, KDCReqBody(&body)), AppASReq)
	if err != nil {
		t.Fatal(err)
	}
	if o := req.ReqBody.KDCOptions; o.BitLength != 32 || !types.IsFlagSet(&o, flags.Forwardable) || types.IsFlagSet(&o, flags.Renewable) {
		t.Fatalf("options %x/%d", o.Bytes, o.BitLength)
	}
}

// Malformed input is an error, never a panic or a value.
func TestMalformed(t *testing.T) {
	good := KDCReq(AppASReq, nil, KDCReqBody(&messages.KDCReqBody{KDCOptions: types.NewKrbFlags(), Realm: "R", SName: sname, Till: now, Nonce: 1, EType: []int32{18}}))
	for name, b := range map[string][]byte{
		"empty":      nil,
		"truncated":  good[:len(good)-1],
		"trailing":   append(append([]byte{}, good...), 0),
		"wrong tag":  append([]byte{0x6b}, good[1:]...),
		"no till":    KDCReq(AppASReq, nil, []byte{0x30, 0x03, 0xa2, 0x01, 0x00}),
		"empty body": KDCReq(AppASReq, nil, KDCReqBody(&messages.KDCReqBody{KDCOptions: types.NewKrbFlags(), Realm: "R", Till: now, Nonce: 1, EType: []int32{18}})[:0:0]),
	} {
		if _, _, err := ParseKDCReq(b, AppASReq); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	bad := bytes.Replace(good, []byte("20261203"), []byte("2026120x"), 1)
	if _, _, err := ParseKDCReq(bad, AppASReq); err == nil {
		t.Error("a time with a letter was accepted")
	}
}

// same compares decoded values, taking nil and empty slices as equal and times by
// instant.
func same(a, b any) bool { return equalValue(reflect.ValueOf(a), reflect.ValueOf(b)) }

var timeType = reflect.TypeOf(time.Time{})

func equalValue(a, b reflect.Value) bool {
	if a.Type() != b.Type() {
		return false
	}
	switch {
	case a.Type() == timeType:
		return a.Interface().(time.Time).Equal(b.Interface().(time.Time))
	case a.Kind() == reflect.Slice:
		if a.Len() != b.Len() {
			return false
		}
		for i := range a.Len() {
			if !equalValue(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case a.Kind() == reflect.Struct:
		for i := range a.NumField() {
			if !equalValue(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a.Interface(), b.Interface())
}
