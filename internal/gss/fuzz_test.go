package gss

import (
	"bytes"
	"crypto/rand"
	"encoding/asn1"
	"testing"
	"time"
)

func fuzzContext() (*Context, *Context) {
	key := bytes.Repeat([]byte{7}, 32)
	init, _ := newContext(true, false, 18, key, 0, 0, 0, rand.Reader)
	acc, _ := newContext(false, false, 18, key, 0, 0, 0, rand.Reader)
	return init, acc
}

func FuzzUnwrap(f *testing.F) {
	init, _ := fuzzContext()
	for _, seal := range []bool{true, false} {
		tok, _ := init.Wrap(nil, []byte("a message"), seal)
		f.Add(tok)
	}
	f.Add(init.MIC([]byte("m")))
	f.Fuzz(func(t *testing.T, tok []byte) {
		_, acc := fuzzContext()
		if msg, _, err := acc.Unwrap(tok); err == nil && len(msg) > len(tok) {
			t.Fatalf("message longer than its token")
		}
		acc.VerifyMIC([]byte("m"), tok)
	})
}

func FuzzAccept(f *testing.F) {
	l := newLab(f, t0)
	tok, _, _ := l.initiator(t0, FlagConf).Initiate()
	f.Add(tok)
	f.Add((&NegTokenInit{MechTypes: []asn1.ObjectIdentifier{OIDKerberos}, MechToken: tok}).Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		a := l.acceptor(t0.Add(time.Second))
		a.Replay = nil
		a.Accept(b, nil)
		ParseNegTokenInit(b)
		ParseNegTokenResp(b)
		(&Pending{session: l.session}).Complete(b)
	})
}

func FuzzSASLRead(f *testing.F) {
	init, _ := fuzzContext()
	tok, _ := init.Wrap(nil, []byte("dn: x"), true)
	f.Add(append([]byte{0, 0, 0, byte(len(tok))}, tok...))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, acc := fuzzContext()
		c := &Layer{r: bytes.NewReader(b), ctx: acc, seal: true, sendMax: 1 << 16, recvMax: 1 << 16}
		buf := make([]byte, 64)
		for i := 0; i < 100; i++ {
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	})
}
