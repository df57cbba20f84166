package pac

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"testing"

	"gmsa/internal/ntsec"
)

func hmacSigner(key string, typ int32) Signer {
	return Signer{Type: typ, Size: 12, Sum: func(d []byte) ([]byte, error) {
		m := hmac.New(sha1.New, []byte(key))
		m.Write(d)
		return m.Sum(nil)[:12], nil
	}}
}

// A signed PAC verifies with the keys that signed it, and not with others nor altered.
func TestSignVerify(t *testing.T) {
	sid := ntsec.MustParseSID("S-1-5-21-1-2-3-1105")
	li := &LogonInfo{EffectiveName: "svc$", UserID: 1105, PrimaryGroupID: 515, GroupIDs: []uint32{515}, LogonServer: "DC1",
		LogonDomainName: "EXAMPLE", LogonDomainID: ntsec.MustParseSID("S-1-5-21-1-2-3"), ExtraSIDs: []ntsec.SID{ntsec.MustParseSID("S-1-18-1")}}
	bufs := []Buffer{{TypeLogonInfo, li.Bytes()}, {TypeClientInfo, ClientInfo(1, "svc$")},
		{TypeUPNDNSInfo, UPNDNSInfo("svc$@example.test", "EXAMPLE.TEST", true, "svc$", sid)}}
	srv, kdc := hmacSigner("service", 16), hmacSigner("krbtgt", 16)
	for _, full := range []bool{false, true} {
		var ticketSig []byte
		if full {
			ticketSig = bytes.Repeat([]byte{7}, 12)
		}
		p, err := Sign(bufs, srv, kdc, ticketSig, full)
		if err != nil {
			t.Fatal(err)
		}
		if err := Verify(p, srv, kdc); err != nil {
			t.Fatalf("full %v: %v", full, err)
		}
		if Verify(p, hmacSigner("other", 16), kdc) == nil || Verify(p, srv, hmacSigner("other", 16)) == nil {
			t.Fatal("verified with the wrong key")
		}
		bad := bytes.Clone(p)
		bad[100] ^= 1
		if Verify(bad, srv, kdc) == nil {
			t.Fatal("an altered PAC verified")
		}
		got, err := Decode(p)
		if err != nil || len(got) != len(bufs)+2+map[bool]int{false: 0, true: 2}[full] || !bytes.Equal(got[0].Data, bufs[0].Data) {
			t.Fatalf("decode: %d buffers, %v", len(got), err)
		}
	}
}

// Any bytes decode to buffers inside the input, or to an error; never a panic.
func FuzzDecode(f *testing.F) {
	p, _ := Sign([]Buffer{{TypeClientInfo, ClientInfo(1, "x")}}, hmacSigner("a", 16), hmacSigner("b", 16), nil, false)
	f.Add(p)
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		bufs, err := Decode(b)
		if err != nil {
			return
		}
		for _, x := range bufs {
			if len(x.Data) > len(b) {
				t.Fatal("a buffer larger than the PAC")
			}
		}
		Verify(b, hmacSigner("a", 16), hmacSigner("b", 16))
	})
}
