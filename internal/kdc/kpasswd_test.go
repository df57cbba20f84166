package kdc_test

import (
	"crypto/rand"
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/kadmin"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"gmsa/internal/directory"
	"gmsa/internal/kdc"
)

// kpasswdLab serves the lab's kpasswd service on 127.0.0.1 and returns it and its address.
func (l *lab) kpasswd(t *testing.T) (*kdc.Kpasswd, string) {
	x := &kdc.Exchange{Dir: l.dir, Realm: "EXAMPLE.TEST", Policy: kdc.DefaultPolicy(), Now: time.Now, Rand: rand.Reader}
	k := kdc.NewKpasswd(x, netip.MustParseAddr("127.0.0.1"))
	srv := kdc.New(kdc.Config{Handler: k})
	ln := must(net.Listen("tcp", "127.0.0.1:0"))
	pc := must(net.ListenPacket("udp", ln.Addr().String()))
	go srv.ServeTCP(ln)
	go srv.ServeUDP(pc)
	t.Cleanup(func() { srv.Shutdown(ctx) })
	return k, ln.Addr().String()
}

// kpasswdReply sends a request built by gokrb5's kadmin package with ticket tkt and
// decodes the result the reply carries (decrypted with the subkey when authenticated).
func kpasswdReply(t *testing.T, k *kdc.Kpasswd, cname string, tkt messages.Ticket, key types.EncryptionKey, password string, target *types.PrincipalName) (uint16, string) {
	t.Helper()
	pn := types.NewPrincipalName(1, cname)
	msg, subkey := must2(kadmin.ChangePasswdMsg(pn, "EXAMPLE.TEST", password, tkt, key))
	if target != nil { // set another account's password
		data := kadmin.ChangePasswdData{NewPasswd: []byte(password), TargName: *target, TargRealm: "EXAMPLE.TEST"}
		msg.KRBPriv.DecryptedEncPart.UserData = must(data.Marshal())
		if err := msg.KRBPriv.EncryptEncPart(subkey); err != nil {
			t.Fatal(err)
		}
	}
	b := must(msg.Marshal())
	out := k.Handle(ctx, b, "127.0.0.1:1")
	var r kadmin.Reply
	if err := r.Unmarshal(out); err != nil {
		t.Fatalf("the reply does not decode: %v (%x)", err, out)
	}
	if !r.IsKRBError {
		if err := r.Decrypt(subkey); err != nil {
			t.Fatalf("the reply does not decrypt with the subkey: %v", err)
		}
		d := r.KRBPriv.DecryptedEncPart.UserData
		return binary.BigEndian.Uint16(d), string(d[2:])
	}
	return r.ResultCode, r.Result
}

func must2[A, B any](a A, b B, err error) (A, B) {
	if err != nil {
		panic(err)
	}
	return a, b
}

// gokrb5's client changes alice's password end to end over the network; then the
// protocol's refusals: a TGT passed off as a kpasswd ticket, a change with a ticket
// from a TGS exchange (not initial), a user setting another's password, a request
// that is not one.
func TestKpasswd(t *testing.T) {
	l := start(t)
	k, addr := l.kpasswd(t)
	alice := l.client(t, "alice", "Alice-Pass-1!")
	alice.Config.Realms[0].KPasswdServer = []string{addr}
	alice.Config.LibDefaults.DNSLookupKDC = false
	if ok, err := alice.ChangePasswd("Alice-Pass-2!"); !ok || err != nil {
		t.Fatalf("gokrb5's ChangePasswd: %v %v", ok, err)
	}
	if err := l.client(t, "alice", "Alice-Pass-1!").Login(); err == nil {
		t.Fatal("the old password still logs on")
	}
	if err := l.client(t, "alice", "Alice-Pass-2!").Login(); err != nil {
		t.Fatalf("the new password: %v", err)
	}
	if !strings.Contains(l.trail.String(), `"password changed","principal":"alice"`) {
		t.Fatal("no audit record of the change")
	}

	as := func(service string) *messages.ASRep {
		c := l.client(t, "alice", "Alice-Pass-2!")
		var req messages.ASReq
		if service == "krbtgt" {
			req = must(messages.NewASReqForTGT("EXAMPLE.TEST", c.Config, types.NewPrincipalName(1, "alice")))
		} else {
			req = must(messages.NewASReqForChgPasswd("EXAMPLE.TEST", c.Config, types.NewPrincipalName(1, "alice")))
		}
		rep, err := c.ASExchange("EXAMPLE.TEST", req, 0)
		if err != nil {
			t.Fatal(err)
		}
		return &rep
	}
	// A TGT shares krbtgt's key with kadmin/changepw: renamed in the clear, it still
	// decrypts, and its PAC_REQUESTOR gives it away.
	tgt := as("krbtgt")
	tgt.Ticket.SName = types.NewPrincipalName(2, "kadmin/changepw")
	if code, text := kpasswdReply(t, k, "alice", tgt.Ticket, tgt.DecryptedEncPart.Key, "Alice-Pass-3!", nil); code != 3 || !strings.Contains(text, "TGT") {
		t.Fatalf("a TGT as a kpasswd ticket: result %d %q", code, text)
	}
	// A ticket for kadmin/changepw from the TGS is not initial: no change.
	c := l.client(t, "alice", "Alice-Pass-2!")
	tkt, key, err := c.GetServiceTicket("kadmin/changepw")
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := kpasswdReply(t, k, "alice", tkt, key, "Alice-Pass-3!", nil); code != 7 {
		t.Fatalf("a change with a TGS ticket: result %d, want 7 (initial flag needed)", code)
	}
	// alice may not set WEB01$'s password; the directory says why.
	init := as("kadmin/changepw")
	web := types.NewPrincipalName(1, "WEB01$")
	if code, text := kpasswdReply(t, k, "alice", init.Ticket, init.DecryptedEncPart.Key, "Web-Pass-9!", &web); code != 5 || !strings.Contains(text, "may not") {
		t.Fatalf("alice setting WEB01$'s password: result %d %q", code, text)
	}
	// The administrator may.
	adminPW := "Admin-Pass-1!"
	must(l.dir.SetPassword(ctx, directory.LocalSystem(), "Administrator", adminPW))
	ac := l.client(t, "Administrator", adminPW)
	atkt, akey, err := ac.GetServiceTicket("kadmin/changepw")
	if err != nil {
		t.Fatal(err)
	}
	if code, text := kpasswdReply(t, k, "Administrator", atkt, akey, "Web-Pass-9!", &web); code != 0 {
		t.Fatalf("the administrator setting WEB01$'s password: result %d %q", code, text)
	}
	if err := l.client(t, "WEB01$", "Web-Pass-9!").Login(); err != nil {
		t.Fatalf("WEB01$ with the password set: %v", err)
	}
	// Not a kpasswd request at all: a framed error, not silence.
	for _, junk := range [][]byte{{0, 3, 0}, {0, 6, 0, 1, 0, 0}, append([]byte{0, 10, 0x12, 0x34}, 0, 2, 0, 0, 0, 0)} {
		var r kadmin.Reply
		if err := r.Unmarshal(k.Handle(ctx, junk, "127.0.0.1:1")); err != nil || !r.IsKRBError || r.ResultCode == 0 {
			t.Fatalf("junk %x: %v %+v", junk, err, r)
		}
	}
}

func FuzzKpasswd(f *testing.F) {
	f.Add([]byte{0, 6, 0, 1, 0, 0})
	f.Add([]byte{0, 12, 0xff, 0x80, 0, 2, 0x6e, 0x00, 0x75, 0, 0x30, 0})
	// One service for every input, living as long as the fuzz target.
	l := start(f)
	x := &kdc.Exchange{Dir: l.dir, Realm: "EXAMPLE.TEST", Policy: kdc.DefaultPolicy(), Now: time.Now, Rand: rand.Reader}
	k := kdc.NewKpasswd(x, netip.MustParseAddr("127.0.0.1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if out := k.Handle(ctx, b, "127.0.0.1:1"); len(out) < 6 {
			t.Fatalf("no framed reply to %x", b)
		}
	})
}
