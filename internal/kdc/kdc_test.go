package kdc_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/messages"
	gopac "github.com/jcmturner/gokrb5/v8/pac"
	"github.com/jcmturner/gokrb5/v8/types"

	"gmsa/internal/audit"
	"gmsa/internal/directory"
	"gmsa/internal/kdc"
	"gmsa/internal/krbkey"
	"gmsa/internal/managedpw"
	"gmsa/internal/ntsec"
	"gmsa/internal/pac"
	"gmsa/internal/servertest"
	"gmsa/internal/store/memory"
)

var ctx = context.Background()

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

type lab struct {
	dir   *directory.Directory
	trail *servertest.SyncBuffer
	addr  string // host:port of both UDP and TCP
}

// start provisions EXAMPLE.TEST with a user, a computer and a gMSA the computer may
// read, and serves its KDC on 127.0.0.1.
func start(t testing.TB) *lab {
	t.Helper()
	back := ntsec.FileTimeFromTime(time.Now()) - 2*ntsec.TicksPerDay
	buf := &servertest.SyncBuffer{}
	trail := audit.New(buf, audit.Options{})
	p := must(directory.Provision(ctx, memory.New(), directory.ProvisionOptions{Realm: "EXAMPLE.TEST", RootKey: &back},
		directory.Options{Audit: trail}))
	d, sys := p.Directory, directory.LocalSystem()
	must(d.NewUser(ctx, sys, directory.UserOptions{Name: "alice", Password: "Alice-Pass-1!"}))
	must(d.NewComputer(ctx, sys, directory.ComputerOptions{Name: "WEB01"}))
	must(d.NewGMSA(ctx, sys, directory.GMSAOptions{Name: "svc", DNSHostName: "svc.example.test", PrincipalsAllowed: []string{"WEB01$"},
		SPNs: []string{"HTTP/svc.example.test"}, Enctypes: directory.EnctypeAES256 | directory.EnctypeAES128}))
	x := &kdc.Exchange{Dir: d, Realm: "EXAMPLE.TEST", Policy: kdc.DefaultPolicy(), Now: time.Now, Rand: rand.Reader}
	srv := kdc.New(kdc.Config{Handler: x, Audit: trail})
	l := must(net.Listen("tcp", "127.0.0.1:0"))
	pc := must(net.ListenPacket("udp", l.Addr().String()))
	go srv.ServeTCP(l)
	go srv.ServeUDP(pc)
	t.Cleanup(func() { srv.Shutdown(ctx); trail.Close() })
	return &lab{dir: d, trail: buf, addr: l.Addr().String()}
}

func (l *lab) client(t *testing.T, user, password string) *client.Client {
	cfg := must(config.NewFromString(fmt.Sprintf(`[libdefaults]
 default_realm = EXAMPLE.TEST
 dns_lookup_kdc = false
 default_tkt_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96
 default_tgs_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96
[realms]
 EXAMPLE.TEST = {
  kdc = %s
 }
`, l.addr)))
	return client.NewWithPassword(user, "EXAMPLE.TEST", password, cfg, client.DisablePAFXFAST(true))
}

// gmsaPassword reads svc's current password as WEB01$ would, as UTF-8 (what kinit takes).
func (l *lab) gmsaPassword(t *testing.T) string {
	web := &directory.Requester{Token: must(l.dir.TokenFor(ctx, "WEB01$")), Protection: directory.ProtectionTLS}
	blob, dec, err := l.dir.ReadPassword(ctx, web, "svc")
	if err != nil || !dec.Granted {
		t.Fatalf("password read: %v %v", dec, err)
	}
	b := must(managedpw.Decode(blob))
	return string(krbkey.UTF16ToUTF8(b.Current))
}

func TestASAndTGS(t *testing.T) {
	l := start(t)
	alice := l.client(t, "alice", "Alice-Pass-1!")
	if err := alice.Login(); err != nil {
		t.Fatalf("alice's AS exchange: %v", err)
	}
	tkt, key, err := alice.GetServiceTicket("HTTP/svc.example.test")
	if err != nil {
		t.Fatalf("service ticket for the gMSA's SPN: %v", err)
	}
	svc := must(l.dir.KerberosService(ctx, []string{"HTTP", "svc.example.test"}))
	if tkt.EncPart.KVNO != int(svc.Keys[0].KVNO) || key.KeyType != 18 {
		t.Fatalf("ticket kvno %d (want %d), session key type %d", tkt.EncPart.KVNO, svc.Keys[0].KVNO, key.KeyType)
	}
	// The gMSA's own derived key decrypts the ticket: the directory and the KDC agree.
	if err := tkt.Decrypt(typesKey(svc.Keys[0])); err != nil || tkt.DecryptedEncPart.CName.NameString[0] != "alice" {
		t.Fatalf("the ticket does not decrypt with svc$'s key: %v", err)
	}

	// The PAC, read by gokrb5's decoder, which checks its server signature with svc$'s key.
	checkPAC(t, tkt.DecryptedEncPart.AuthorizationData, typesKey(svc.Keys[0]), "alice", l.dir)

	// The gMSA itself logs on with the password a permitted host reads, as
	// credentials-fetcher's kinit does.
	if err := l.client(t, "svc$", l.gmsaPassword(t)).Login(); err != nil {
		t.Fatalf("gMSA AS exchange: %v", err)
	}
	if !strings.Contains(l.trail.String(), `"msg":"Kerberos TGT issued","account":"svc$"`) ||
		!strings.Contains(l.trail.String(), `"msg":"Kerberos service ticket issued","account":"alice","service":"svc$"`) {
		t.Fatalf("ticket events not audited:\n%s", l.trail.String())
	}
}

func TestASErrors(t *testing.T) {
	l := start(t)
	code := func(err error) int32 {
		var ke messages.KRBError
		if errors.As(err, &ke) {
			return ke.ErrorCode
		}
		if s := err.Error(); strings.Contains(s, "KDC_ERR_PREAUTH_FAILED") {
			return errorcode.KDC_ERR_PREAUTH_FAILED
		} else if strings.Contains(s, "KDC_ERR_C_PRINCIPAL_UNKNOWN") {
			return errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN
		} else if strings.Contains(s, "KDC_ERR_CLIENT_REVOKED") {
			return errorcode.KDC_ERR_CLIENT_REVOKED
		}
		return -1
	}
	if err := l.client(t, "alice", "wrong").Login(); err == nil || code(err) != errorcode.KDC_ERR_PREAUTH_FAILED {
		t.Fatalf("wrong password: %v", err)
	}
	if err := l.client(t, "nobody", "x").Login(); err == nil || code(err) != errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN {
		t.Fatalf("unknown client: %v", err)
	}
	// Ten failures lock alice out; then even her password gets CLIENT_REVOKED.
	for range 9 {
		l.client(t, "alice", "wrong").Login()
	}
	if err := l.client(t, "alice", "Alice-Pass-1!").Login(); err == nil || code(err) != errorcode.KDC_ERR_CLIENT_REVOKED {
		t.Fatalf("locked-out client: %v", err)
	}
	if !strings.Contains(l.trail.String(), `"msg":"account locked out","account":"alice"`) {
		t.Fatal("Kerberos failures do not count towards lockout")
	}
}

func typesKey(k directory.KerberosKey) types.EncryptionKey {
	return types.EncryptionKey{KeyType: k.Etype, KeyValue: k.Value}
}

// Any bytes get an answer (a reply or a KRB-ERROR), never a panic; seeds are real
// requests from the gokrb5 client and their truncations.
func FuzzHandle(f *testing.F) {
	back := ntsec.FileTimeFromTime(time.Now()) - 2*ntsec.TicksPerDay
	p := must(directory.Provision(ctx, memory.New(), directory.ProvisionOptions{Realm: "EXAMPLE.TEST", RootKey: &back}, directory.Options{}))
	must(p.Directory.NewUser(ctx, directory.LocalSystem(), directory.UserOptions{Name: "alice", Password: "Alice-Pass-1!"}))
	x := &kdc.Exchange{Dir: p.Directory, Realm: "EXAMPLE.TEST", Policy: kdc.DefaultPolicy(), Now: time.Now, Rand: rand.Reader}
	cfg := must(config.NewFromString("[libdefaults]\n default_realm = EXAMPLE.TEST\n"))
	req := must(messages.NewASReqForTGT("EXAMPLE.TEST", cfg, types.PrincipalName{NameType: 1, NameString: []string{"alice"}}))
	as := must(req.Marshal())
	f.Add(as)
	f.Add(as[:len(as)/2])
	f.Add([]byte{0x6c, 0x03, 0x30, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(x.Handle(ctx, b, "fuzz")) == 0 {
			t.Fatalf("no answer to %x", b)
		}
	})
}

// Over UDP a reply too large becomes KRB_ERR_RESPONSE_TOO_BIG; over TCP a request
// announcing more than MaxRequest is dropped before it is read.
func TestTransportBounds(t *testing.T) {
	back := ntsec.FileTimeFromTime(time.Now()) - 2*ntsec.TicksPerDay
	p := must(directory.Provision(ctx, memory.New(), directory.ProvisionOptions{Realm: "EXAMPLE.TEST", RootKey: &back}, directory.Options{}))
	x := &kdc.Exchange{Dir: p.Directory, Realm: "EXAMPLE.TEST", Policy: kdc.DefaultPolicy(), Now: time.Now, Rand: rand.Reader}
	srv := kdc.New(kdc.Config{Handler: x, MaxUDPReply: 100, MaxRequest: 4096})
	l := must(net.Listen("tcp", "127.0.0.1:0"))
	pc := must(net.ListenPacket("udp", l.Addr().String()))
	go srv.ServeTCP(l)
	go srv.ServeUDP(pc)
	t.Cleanup(func() { srv.Shutdown(ctx) })

	cfg := must(config.NewFromString("[libdefaults]\n default_realm = EXAMPLE.TEST\n"))
	req := must(messages.NewASReqForTGT("EXAMPLE.TEST", cfg, types.PrincipalName{NameType: 1, NameString: []string{"Administrator"}}))
	as := must(req.Marshal())
	u := must(net.Dial("udp", l.Addr().String()))
	defer u.Close()
	u.SetDeadline(time.Now().Add(5 * time.Second))
	must(u.Write(as))
	buf := make([]byte, 65536)
	n := must(u.Read(buf))
	var ke messages.KRBError
	if err := ke.Unmarshal(buf[:n]); err != nil || ke.ErrorCode != errorcode.KRB_ERR_RESPONSE_TOO_BIG {
		t.Fatalf("large UDP reply: %v %+v", err, ke)
	}
	c := must(net.Dial("tcp", l.Addr().String()))
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	must(c.Write([]byte{0x00, 0x10, 0x00, 0x00})) // 1 MiB announced
	if n, err := c.Read(buf); err == nil || n != 0 {
		t.Fatalf("an oversized TCP request got %d bytes back (%v)", n, err)
	}
}

// A TGT issued before a krbtgt reset still gets service tickets; after a second reset
// it is refused (the previous key version is gone).
func TestKrbtgtReset(t *testing.T) {
	l := start(t)
	alice := l.client(t, "alice", "Alice-Pass-1!")
	if err := alice.Login(); err != nil {
		t.Fatal(err)
	}
	must(l.dir.RotateKrbtgt(ctx, directory.LocalSystem()))
	if _, _, err := alice.GetServiceTicket("HOST/web01.example.test"); err != nil {
		t.Fatalf("a TGT from before one reset: %v", err)
	}
	must(l.dir.RotateKrbtgt(ctx, directory.LocalSystem()))
	if _, _, err := alice.GetServiceTicket("RestrictedKrbHost/web01.example.test"); err == nil || !strings.Contains(err.Error(), "KRB_AP_ERR_BADKEYVER") {
		t.Fatalf("a TGT from before two resets: %v", err)
	}
}

// After a gMSA's rollover its previous password still pre-authenticates within five
// minutes of the current key period's start, as on Samba, and not after.
func TestGMSAPreviousKeyWindow(t *testing.T) {
	created := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := created
	now := func() time.Time { return clock }
	back := ntsec.FileTimeFromTime(created) - 2*ntsec.TicksPerDay
	p := must(directory.Provision(ctx, memory.New(), directory.ProvisionOptions{Realm: "EXAMPLE.TEST", RootKey: &back}, directory.Options{Now: now}))
	d := p.Directory
	must(d.NewGMSA(ctx, directory.LocalSystem(), directory.GMSAOptions{Name: "svc", DNSHostName: "svc.example.test", IntervalDays: 1}))
	x := &kdc.Exchange{Dir: d, Realm: "EXAMPLE.TEST", Policy: kdc.DefaultPolicy(), Now: now, Rand: rand.Reader}
	old := must(d.KerberosClient(ctx, "svc$", false, false)).Keys[0]

	login := func(key directory.KerberosKey) []byte {
		cfg := must(config.NewFromString("[libdefaults]\n default_realm = EXAMPLE.TEST\n"))
		req := must(messages.NewASReqForTGT("EXAMPLE.TEST", cfg, types.PrincipalName{NameType: 1, NameString: []string{"svc$"}}))
		req.ReqBody.EType = []int32{key.Etype}
		ts := must(asn1.Marshal(types.PAEncTSEnc{PATimestamp: clock, PAUSec: 0}))
		ed := must(crypto.GetEncryptedData(ts, types.EncryptionKey{KeyType: key.Etype, KeyValue: key.Value}, keyusage.AS_REQ_PA_ENC_TIMESTAMP, int(key.KVNO)))
		req.PAData = types.PADataSequence{{PADataType: patype.PA_ENC_TIMESTAMP, PADataValue: must(ed.Marshal())}}
		return x.Handle(ctx, must(req.Marshal()), "test")
	}
	if rep := login(old); rep[0] != 0x6b {
		t.Fatalf("the current password: not an AS-REP (%x)", rep[:4])
	}
	// The blob says when the password changes next (QueryPasswordInterval): go one
	// minute past it.
	sys := &directory.Requester{Token: directory.System(), Protection: directory.ProtectionLocal}
	blob, _, err := d.ReadPassword(ctx, sys, "svc")
	if err != nil {
		t.Fatal(err)
	}
	b := must(managedpw.Decode(blob))
	clock = clock.Add(time.Duration(b.QueryInterval)*100 + time.Minute)
	rolled := must(d.KerberosClient(ctx, "svc$", false, false))
	if rolled.Keys[0].KVNO != old.KVNO+1 || len(rolled.OldKeys) == 0 {
		t.Fatalf("a minute after the rollover: kvno %d (was %d), %d previous keys", rolled.Keys[0].KVNO, old.KVNO, len(rolled.OldKeys))
	}
	if rep := login(old); rep[0] != 0x6b {
		t.Fatalf("the previous password a minute after the rollover: %x", rep[:8])
	}
	if rep := login(rolled.Keys[0]); rep[0] != 0x6b {
		t.Fatalf("the new password: %x", rep[:8])
	}
	clock = clock.Add(6 * time.Minute)
	if k := must(d.KerberosClient(ctx, "svc$", false, false)); len(k.OldKeys) != 0 {
		t.Fatalf("previous keys still offered %v after the rollover", clock)
	}
	var ke messages.KRBError
	if err := ke.Unmarshal(login(old)); err != nil || ke.ErrorCode != errorcode.KDC_ERR_PREAUTH_FAILED {
		t.Fatalf("the previous password more than five minutes after the rollover: %v %d", err, ke.ErrorCode)
	}
}

// checkPAC decodes a ticket's PAC with gokrb5 (an implementation that is not ours),
// verifying its server signature, and checks what it says of client.
func checkPAC(t *testing.T, ad types.AuthorizationData, key types.EncryptionKey, client string, d *directory.Directory) {
	t.Helper()
	var raw []byte
	for _, e := range ad {
		if e.ADType == 1 {
			var inner types.AuthorizationData
			must(asn1.Unmarshal(e.ADData, &inner))
			for _, i := range inner {
				if i.ADType == 128 {
					raw = i.ADData
				}
			}
		}
	}
	if raw == nil {
		t.Fatal("the ticket carries no PAC")
	}
	var p gopac.PACType
	if err := p.Unmarshal(raw); err != nil {
		t.Fatalf("gokrb5 cannot read the PAC: %v", err)
	}
	if err := p.ProcessPACInfoBuffers(key, log.New(io.Discard, "", 0)); err != nil {
		t.Fatalf("gokrb5 rejects the PAC: %v", err)
	}
	o := must(d.Resolve(ctx, client))
	v := p.KerbValidationInfo
	if v.EffectiveName.Value != o.SAM || v.LogonDomainName.Value != "EXAMPLE" || v.UserID != o.ObjectSID().RID() ||
		v.PrimaryGroupID != 513 || v.LogonDomainID.String() != d.Domain().SID {
		t.Fatalf("validation info: name %q domain %q rid %d primary %d domain SID %s", v.EffectiveName.Value, v.LogonDomainName.Value, v.UserID, v.PrimaryGroupID, v.LogonDomainID.String())
	}
	groups := strings.Join(v.GetGroupMembershipSIDs(), ",")
	if !strings.Contains(groups, d.Domain().SID+"-513") || !strings.Contains(groups, "S-1-18-1") {
		t.Fatalf("groups %s", groups)
	}
	if p.ClientInfo == nil || p.ClientInfo.Name != client || p.UPNDNSInfo == nil || !strings.EqualFold(p.UPNDNSInfo.UPN, client+"@example.test") {
		t.Fatalf("client info %+v, UPN/DNS info %+v", p.ClientInfo, p.UPNDNSInfo)
	}
	if p.KDCChecksum == nil || p.ServerChecksum == nil {
		t.Fatal("signatures missing")
	}
	// The oracle does check: a PAC altered by one bit is rejected.
	bad := append([]byte(nil), raw...)
	bad[len(bad)/3] ^= 1
	var q gopac.PACType
	if q.Unmarshal(bad) == nil && q.ProcessPACInfoBuffers(key, log.New(io.Discard, "", 0)) == nil {
		t.Fatal("gokrb5 accepted an altered PAC")
	}
}

// CVE-2021-42287: a TGT names its account by SID (PAC_REQUESTOR); when the name now
// belongs to another account, the TGT gets no service ticket.
func TestRequestorMustStillMatch(t *testing.T) {
	l := start(t)
	alice := l.client(t, "alice", "Alice-Pass-1!")
	if err := alice.Login(); err != nil {
		t.Fatal(err)
	}
	must(struct{}{}, l.dir.Remove(ctx, directory.LocalSystem(), "alice", directory.ClassUser))
	must(l.dir.NewUser(ctx, directory.LocalSystem(), directory.UserOptions{Name: "alice", Password: "Other-Pass-1!"}))
	if _, _, err := alice.GetServiceTicket("HTTP/svc.example.test"); err == nil || !strings.Contains(err.Error(), "KDC_ERR_TGT_REVOKED") {
		t.Fatalf("a TGT of a removed account whose name was reused: %v", err)
	}
}

// S4U_DELEGATION_INFO as gokrb5's NDR decoder reads it.
func TestDelegationInfoDecodes(t *testing.T) {
	var d gopac.S4UDelegationInfo
	if err := d.Unmarshal(pac.DelegationInfo("HOST/web01.example.test", []string{"svc$@EXAMPLE.TEST", "other$@EXAMPLE.TEST"})); err != nil {
		t.Fatal(err)
	}
	if d.S4U2proxyTarget.Value != "HOST/web01.example.test" || d.TransitedListSize != 2 || len(d.S4UTransitedServices) != 2 ||
		d.S4UTransitedServices[0].Value != "svc$@EXAMPLE.TEST" || d.S4UTransitedServices[1].Value != "other$@EXAMPLE.TEST" {
		t.Fatalf("%+v", d)
	}
}
