package gss

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	krbasn1 "github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/jcmturner/gokrb5/v8/types"

	"gmsa/internal/krbkey"
)

var t0 = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// lab is a service key and a ticket for websvc to ldap/dc1.example.test under it.
type lab struct {
	serviceKey []byte
	ticket     messages.Ticket
	session    types.EncryptionKey
	client     types.PrincipalName
}

func newLab(t testing.TB, now time.Time) *lab {
	l := &lab{serviceKey: randBytes(32), session: types.EncryptionKey{KeyType: krbkey.EtypeAES256CTSHMACSHA, KeyValue: randBytes(32)},
		client: types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, "websvc")}
	etp := messages.EncTicketPart{Flags: types.NewKrbFlags(), Key: l.session, CRealm: "EXAMPLE.TEST", CName: l.client,
		AuthTime: now.Add(-time.Minute), EndTime: now.Add(10 * time.Hour)}
	b, err := krbasn1.Marshal(etp)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := krbkey.NewUsageKey(l.serviceKey, usageTicket)
	l.ticket = messages.Ticket{TktVNO: 5, Realm: "EXAMPLE.TEST", SName: types.NewPrincipalName(nametype.KRB_NT_SRV_INST, "ldap/dc1.example.test"),
		EncPart: types.EncryptedData{EType: krbkey.EtypeAES256CTSHMACSHA, KVNO: 2, Cipher: u.Encrypt(nil, randBytes(16), appTag(b, 3))}}
	return l
}

func (l *lab) acceptor(now time.Time) *Acceptor {
	return &Acceptor{Realm: "EXAMPLE.TEST", MaxSkew: 5 * time.Minute, Now: func() time.Time { return now }, Rand: rand.Reader,
		Replay: &ReplayCache{Skew: 5 * time.Minute, Max: 100},
		Key: func(sname types.PrincipalName, realm string, etype int32, kvno int) ([]byte, error) {
			if sname.PrincipalNameString() != "ldap/dc1.example.test" || kvno != 2 {
				return nil, errors.New("no such key")
			}
			return l.serviceKey, nil
		}}
}

func (l *lab) initiator(now time.Time, flags uint32) *Initiator {
	return &Initiator{Ticket: l.ticket, SessionKey: l.session, Client: l.client, Realm: "EXAMPLE.TEST", Flags: flags,
		Now: func() time.Time { return now }, Rand: rand.Reader}
}

// establish runs the AP exchange both ways and returns the two contexts.
func establish(t *testing.T, l *lab) (client, server *Context, acc *Accepted) {
	t.Helper()
	tok, pending, err := l.initiator(t0, FlagConf|FlagInteg|FlagSequence).Initiate()
	if err != nil {
		t.Fatal(err)
	}
	acc, err = l.acceptor(t0).Accept(tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	if acc.Client.PrincipalNameString() != "websvc" || acc.Realm != "EXAMPLE.TEST" || acc.Reply == nil {
		t.Fatalf("accepted %+v", acc)
	}
	if acc.Context.Flags()&(FlagConf|FlagInteg|FlagMutual) != FlagConf|FlagInteg|FlagMutual {
		t.Fatalf("flags %#x", acc.Context.Flags())
	}
	client, err = pending.Complete(acc.Reply)
	if err != nil {
		t.Fatal(err)
	}
	return client, acc.Context, acc
}

func TestContextEstablishmentAndMessages(t *testing.T) {
	l := newLab(t, t0)
	client, server, _ := establish(t, l)
	for _, seal := range []bool{true, false} {
		for _, msg := range [][]byte{{}, []byte("x"), randBytes(100), randBytes(5000)} {
			tok, err := client.Wrap(nil, msg, seal)
			if err != nil {
				t.Fatal(err)
			}
			if len(tok) != len(msg)+WrapOverhead(seal) {
				t.Fatalf("token of %d bytes for %d, overhead %d", len(tok), len(msg), WrapOverhead(seal))
			}
			got, sealed, err := server.Unwrap(tok)
			if err != nil || sealed != seal || !bytes.Equal(got, msg) {
				t.Fatalf("seal %v: %v %v", seal, sealed, err)
			}
			back, err := server.Wrap(nil, msg, seal)
			if err != nil {
				t.Fatal(err)
			}
			if got, _, err := client.Unwrap(back); err != nil || !bytes.Equal(got, msg) {
				t.Fatalf("acceptor to initiator: %v", err)
			}
			// A token replayed, one sent back to its sender, one altered: all refused.
			if _, _, err := server.Unwrap(tok); !errors.Is(err, ErrOutOfOrder) {
				t.Fatalf("replay: %v", err)
			}
			if _, _, err := server.Unwrap(back); !errors.Is(err, ErrBadToken) {
				t.Fatalf("reflected token: %v", err)
			}
			bad, _ := client.Wrap(nil, append(msg, 'y'), seal)
			bad[len(bad)-1] ^= 0x40
			if _, _, err := server.Unwrap(bad); !errors.Is(err, ErrBadMIC) {
				t.Fatalf("altered token: %v", err)
			}
		}
	}
	mic := client.MIC([]byte("mech list"))
	if err := server.VerifyMIC([]byte("mech list"), mic); err != nil {
		t.Fatal(err)
	}
	if err := server.VerifyMIC([]byte("mech lisT"), client.MIC([]byte("mech list"))); !errors.Is(err, ErrBadMIC) {
		t.Fatalf("MIC over other bytes: %v", err)
	}
}

// Heimdal and Windows rotate the token body right by RRC (12 signed, 28 sealed);
// Unwrap rotates it back.
func TestUnwrapRotated(t *testing.T) {
	l := newLab(t, t0)
	client, server, _ := establish(t, l)
	for _, c := range []struct {
		seal bool
		rrc  int
	}{{false, 12}, {true, 28}, {true, 1000}} {
		msg := randBytes(300)
		tok, _ := client.Wrap(nil, msg, c.seal)
		body := tok[headerSize:]
		r := c.rrc % len(body)
		rotated := append(append(append([]byte(nil), tok[:headerSize]...), body[len(body)-r:]...), body[:len(body)-r]...)
		binary.BigEndian.PutUint16(rotated[6:], uint16(c.rrc))
		got, _, err := server.Unwrap(rotated)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("RRC %d: %v", c.rrc, err)
		}
	}
}

// gokrb5's initiator integrity token (RRC 0, sequence 0) verifies in our acceptor
// context, and its checksum code accepts ours.
func TestIntegrityTokenAgainstGokrb5(t *testing.T) {
	key := types.EncryptionKey{KeyType: krbkey.EtypeAES256CTSHMACSHA, KeyValue: randBytes(32)}
	acceptor, err := newContext(false, false, key.KeyType, key.KeyValue, 0, 0, 0, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	wt, err := gssapi.NewInitiatorWrapToken([]byte("hello"), key)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := wt.Marshal()
	if got, sealed, err := acceptor.Unwrap(b); err != nil || sealed || string(got) != "hello" {
		t.Fatalf("gokrb5's token: %q %v", got, err)
	}
	initiator, _ := newContext(true, false, key.KeyType, key.KeyValue, 0, 0, 0, rand.Reader)
	ours, _ := initiator.Wrap(nil, []byte("hello"), false)
	var theirs gssapi.WrapToken
	if err := theirs.Unmarshal(ours, false); err != nil {
		t.Fatal(err)
	}
	if ok, err := theirs.Verify(key, 24); !ok || err != nil {
		t.Fatalf("gokrb5 does not verify ours: %v", err)
	}
}

func TestAcceptRefusals(t *testing.T) {
	l := newLab(t, t0)
	tok, _, _ := l.initiator(t0, FlagConf).Initiate()
	a := l.acceptor(t0)
	if _, err := a.Accept(tok, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Accept(tok, nil); !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "seen before") {
		t.Fatalf("replayed AP-REQ: %v", err)
	}
	late, _, _ := l.initiator(t0.Add(-6*time.Minute), FlagConf).Initiate()
	if _, err := l.acceptor(t0).Accept(late, nil); err == nil || !strings.Contains(err.Error(), "clock skew") {
		t.Fatalf("skewed authenticator: %v", err)
	}
	expired, _, _ := l.initiator(t0.Add(11*time.Hour), FlagConf).Initiate()
	if _, err := l.acceptor(t0.Add(11*time.Hour)).Accept(expired, nil); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired ticket: %v", err)
	}
	other := newLab(t, t0)
	other.ticket.EncPart.Cipher = l.ticket.EncPart.Cipher[:len(l.ticket.EncPart.Cipher)-1]
	bad, _, _ := other.initiator(t0, 0).Initiate()
	if _, err := other.acceptor(t0).Accept(bad, nil); !errors.Is(err, ErrRejected) {
		t.Fatalf("a ticket under another key: %v", err)
	}
	for _, junk := range [][]byte{nil, {0x60}, {0x60, 0x03, 0x06, 0x01, 0x00}, frame(OIDSPNEGO, []byte{1, 0})} {
		if _, err := a.Accept(junk, nil); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%x: %v", junk, err)
		}
	}
}

// Channel bindings over TLS ([MS-ADTS] 5.1.2.2) under each policy.
func TestChannelBindings(t *testing.T) {
	l := newLab(t, t0)
	tlsData, otherTLS := []byte("tls-server-end-point:abc"), []byte("tls-server-end-point:xyz")
	for _, c := range []struct {
		policy  ChannelBindingPolicy
		sent    []byte
		channel []byte
		ok      bool
	}{
		{BindingsNever, otherTLS, tlsData, true},
		{BindingsWhenSupported, nil, tlsData, true},
		{BindingsWhenSupported, tlsData, tlsData, true},
		{BindingsWhenSupported, otherTLS, tlsData, false},
		{BindingsAlways, nil, tlsData, false},
		{BindingsAlways, tlsData, tlsData, true},
		{BindingsAlways, nil, nil, true}, // no TLS: nothing to bind to
	} {
		in := l.initiator(t0, 0)
		in.AppData = c.sent
		tok, _, _ := in.Initiate()
		a := l.acceptor(t0)
		a.Bindings = c.policy
		if _, err := a.Accept(tok, c.channel); (err == nil) != c.ok {
			t.Errorf("policy %d, sent %q, channel %q: %v", c.policy, c.sent, c.channel, err)
		}
	}
}

func TestSPNEGOAgainstGokrb5(t *testing.T) {
	inner := []byte{1, 2, 3}
	theirs := spnego.SPNEGOToken{Init: true, NegTokenInit: spnego.NegTokenInit{MechTypes: []krbasn1.ObjectIdentifier{gssapi.OIDMSLegacyKRB5.OID(), gssapi.OIDKRB5.OID()}, MechTokenBytes: inner}}
	b, err := theirs.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	init, err := ParseNegTokenInit(b)
	if err != nil || !init.MechTypes[0].Equal(OIDMSKerberos) || !bytes.Equal(init.MechToken, inner) {
		t.Fatalf("%+v %v", init, err)
	}
	if back, err := ParseNegTokenInit(init.Marshal()); err != nil || len(back.MechTypes) != 2 {
		t.Fatalf("round trip: %v", err)
	}
	resp := (&NegTokenResp{State: AcceptCompleted, HasState: true, SupportedMech: OIDKerberos, ResponseToken: inner, MechListMIC: []byte{9}}).Marshal()
	var r spnego.NegTokenResp
	if err := r.Unmarshal(resp); err != nil || r.State() != spnego.NegStateAcceptCompleted || !bytes.Equal(r.ResponseToken, inner) || !bytes.Equal(r.MechListMIC, []byte{9}) {
		t.Fatalf("gokrb5 reads our NegTokenResp as %+v: %v", r, err)
	}
	ours, err := ParseNegTokenResp(resp)
	if err != nil || !ours.HasState || ours.State != AcceptCompleted {
		t.Fatalf("%+v %v", ours, err)
	}
}

// A SASL layer over a pipe: writes split to the peer's maximum, reads reassemble, a
// buffer over our maximum is refused.
func TestSASLConn(t *testing.T) {
	l := newLab(t, t0)
	client, server, _ := establish(t, l)
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	ca, err := NewLayer(a, a, client, true, 200, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	cb, _ := NewLayer(b, b, server, true, 1<<20, 1<<20)
	msg := randBytes(5000)
	wrote := make(chan struct{})
	go func() { ca.Write(msg); close(wrote) }()
	got := make([]byte, len(msg))
	if _, err := ioReadFull(cb, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("read %v", err)
	}
	<-wrote
	small, _ := NewLayer(b, b, server, true, 1<<20, 100)
	go ca.Write([]byte(strings.Repeat("z", 100)))
	if _, err := small.Read(make([]byte, 10)); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("oversized buffer: %v", err)
	}
	if _, err := NewLayer(a, a, client, true, 40, 100); err == nil {
		t.Fatal("a maximum below the wrap overhead was taken")
	}
}

func ioReadFull(c io.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func TestReplayCacheBounded(t *testing.T) {
	r := &ReplayCache{Skew: time.Minute, Max: 3}
	for i := range 10 {
		if !r.Fresh([]byte{byte(i)}, t0, t0.Add(time.Duration(i)*time.Hour)) {
			t.Fatalf("%d seen", i)
		}
		if len(r.seen) > 3 {
			t.Fatalf("%d entries", len(r.seen))
		}
	}
	if r.Fresh([]byte{9}, t0, t0) {
		t.Fatal("the last authenticator was not remembered")
	}
}

func TestLayerMessages(t *testing.T) {
	layers, max, err := ParseLayerOffer(LayerOffer(7, 65536))
	if err != nil || layers != 7 || max != 65536 {
		t.Fatal(layers, max, err)
	}
	if _, _, err := ParseLayerOffer([]byte{1, 2, 3}); err == nil {
		t.Fatal("3-byte offer taken")
	}
	l, m, z, err := ParseLayerChoice(LayerChoice(4, MaxBuffer, "u:EXAMPLE\\websvc"))
	if err != nil || l != 4 || m != MaxBuffer || z != "u:EXAMPLE\\websvc" {
		t.Fatal(l, m, z, err)
	}
}

// The per-message cost of a sealed SASL layer: wrap on one side, unwrap on the other,
// for an LDAP response of 1 KiB.
func BenchmarkWrapUnwrapSealed(b *testing.B) {
	l := newLab(b, t0)
	tok, pending, _ := l.initiator(t0, FlagConf).Initiate()
	acc, err := l.acceptor(t0).Accept(tok, nil)
	if err != nil {
		b.Fatal(err)
	}
	client, _ := pending.Complete(acc.Reply)
	msg := randBytes(1024)
	var buf []byte
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		buf, _ = acc.Context.Wrap(buf[:0], msg, true)
		if _, _, err := client.Unwrap(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// A decoder's panic becomes ErrMalformed for the token.
func TestDecoderPanicIsAnError(t *testing.T) {
	f := func() (err error) {
		defer decoderPanic(&err)
		var b []byte
		_ = b[1]
		return nil
	}
	if err := f(); !errors.Is(err, ErrMalformed) {
		t.Fatalf("%v", err)
	}
}
