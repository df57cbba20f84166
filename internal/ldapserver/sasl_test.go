package ldapserver_test

import (
	"bufio"
	"crypto/rand"
	"crypto/tls"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
	krbasn1 "github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"gmsa/internal/adclient"
	"gmsa/internal/directory"
	"gmsa/internal/gss"
	"gmsa/internal/krbkey"
	"gmsa/internal/pki"
	"gmsa/internal/servertest"
	"gmsa/internal/tlv"
)

// ticketFor builds a service ticket for client to spn under the DC account's key, as
// our KDC would issue it (without a PAC: the LDAP server builds the token from the
// directory).
func ticketFor(t *testing.T, s *servertest.Stack, client, spn string) *gss.Initiator {
	t.Helper()
	comps := strings.Split(spn, "/")
	key, err := s.Dir.LDAPServiceKey(ctx, comps, krbkey.EtypeAES256CTSHMACSHA, 0)
	if err != nil {
		t.Fatal(err)
	}
	session := types.EncryptionKey{KeyType: krbkey.EtypeAES256CTSHMACSHA, KeyValue: make([]byte, 32)}
	rand.Read(session.KeyValue)
	cname := types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, client)
	now := time.Now()
	b, err := krbasn1.Marshal(messages.EncTicketPart{Flags: types.NewKrbFlags(), Key: session, CRealm: "EXAMPLE.TEST", CName: cname,
		AuthTime: now.UTC().Add(-time.Minute).Truncate(time.Second), EndTime: now.UTC().Add(time.Hour).Truncate(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	tagged, _ := krbasn1.Marshal(krbasn1.RawValue{Class: krbasn1.ClassApplication, Tag: 3, IsCompound: true, Bytes: b})
	u, _ := krbkey.NewUsageKey(key, 2)
	conf := make([]byte, 16)
	rand.Read(conf)
	tkt := messages.Ticket{TktVNO: 5, Realm: "EXAMPLE.TEST", SName: types.NewPrincipalName(nametype.KRB_NT_SRV_INST, spn),
		EncPart: types.EncryptedData{EType: krbkey.EtypeAES256CTSHMACSHA, KVNO: 1, Cipher: u.Encrypt(nil, conf, tagged)}}
	return &gss.Initiator{Ticket: tkt, SessionKey: session, Client: cname, Realm: "EXAMPLE.TEST",
		Flags: gss.FlagConf | gss.FlagInteg | gss.FlagSequence, Now: time.Now, Rand: rand.Reader}
}

func saslConn(t *testing.T, s *servertest.Stack, in *gss.Initiator, mech string) (*ldap.Conn, error) {
	nc, err := net.Dial("tcp", s.LDAP)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := adclient.SASLBind(nc, false, in, mech)
	if err != nil {
		nc.Close()
		return nil, err
	}
	l := ldap.NewConn(conn, false)
	l.Start()
	t.Cleanup(func() { l.Close() })
	return l, nil
}

// Our client's sealed binds, both mechanisms: the password of the gMSA comes back, and
// the connection's protection is the layer's.
func TestKerberosBindSealed(t *testing.T) {
	s := setup(t, servertest.Options{})
	for _, mech := range []string{adclient.MechGSSAPI, adclient.MechSPNEGO} {
		for _, spn := range []string{"ldap/dc1.example.test", "ldap/dc1.example.test/example.test", "host/dc1.example.test"} {
			c, err := saslConn(t, s, ticketFor(t, s, "websvc", spn), mech)
			if err != nil {
				t.Fatalf("%s %s: %v", mech, spn, err)
			}
			who, err := c.WhoAmI(nil)
			if err != nil || who.AuthzID != "u:EXAMPLE\\websvc" {
				t.Fatalf("%s: who am I: %+v %v", mech, who, err)
			}
			r, err := passwordSearch(c)
			if err != nil || len(r.Entries) != 1 || len(r.Entries[0].GetRawAttributeValue("msDS-ManagedPassword")) != 290 {
				t.Fatalf("%s: the password over a sealed layer: %v", mech, err)
			}
			if err := c.ExternalBind(); code(err) != ldap.LDAPResultUnwillingToPerform {
				t.Fatalf("%s: a second SASL bind over the layer: %v", mech, err)
			}
			// A failed bind leaves the connection anonymous ([RFC 4511] 4.2.1); the layer stays.
			if who, err := c.WhoAmI(nil); err != nil || who.AuthzID != "" {
				t.Fatalf("%s: after a refused bind over the layer: %+v %v", mech, who, err)
			}
			if err := c.StartTLS(nil); err == nil { // go-ldap cannot go on after a failed StartTLS: last
				t.Fatalf("%s: StartTLS over a SASL layer was accepted", mech)
			}
		}
	}
}

// rawBind sends one SASL BindRequest and returns the result code and diagnostic.
func rawBind(t *testing.T, nc net.Conn, r *bufio.Reader, id int64, mech string, creds []byte) (int64, string) {
	code, diag, _ := rawBindCreds(t, nc, r, id, mech, creds)
	return code, diag
}

// rawBindCreds is rawBind that also returns the server's SASL credentials.
func rawBindCreds(t *testing.T, nc net.Conn, r *bufio.Reader, id int64, mech string, creds []byte) (int64, string, []byte) {
	t.Helper()
	msg := ber.NewSequence("LDAPMessage")
	msg.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, "id"))
	req := ber.Encode(ber.ClassApplication, ber.TypeConstructed, 0, nil, "bind")
	req.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 3, "v"))
	req.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", "name"))
	sasl := ber.Encode(ber.ClassContext, ber.TypeConstructed, 3, nil, "sasl")
	sasl.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, mech, "mech"))
	if creds != nil {
		sasl.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, string(creds), "creds"))
	}
	req.AppendChild(sasl)
	msg.AppendChild(req)
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Write(msg.Bytes()); err != nil {
		t.Fatal(err)
	}
	raw, err := tlv.ReadMessage(r, nil, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := ber.DecodePacket(raw)
	resp := p.Children[1]
	var server []byte
	if len(resp.Children) > 3 {
		server = resp.Children[3].Data.Bytes()
	}
	return resp.Children[0].Value.(int64), resp.Children[2].Value.(string), server
}

// Cyrus's ad_compat option chooses the layers as a bit mask (0x06); AD and Samba seal
// then, and so do we. The ticket is for cifs/, which AD maps to the DC's host/ SPN.
func TestLayerChoiceAsBitMask(t *testing.T) {
	s := setup(t, servertest.Options{})
	nc, err := net.Dial("tcp", s.LDAP)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	r := bufio.NewReader(nc)
	in := ticketFor(t, s, "websvc", "cifs/dc1.example.test")
	tok, pending, _ := in.Initiate()
	code, diag, rep := rawBindCreds(t, nc, r, 1, "GSSAPI", tok)
	if code != 14 {
		t.Fatalf("AP-REQ: %d %s", code, diag)
	}
	g, err := pending.Complete(rep)
	if err != nil {
		t.Fatal(err)
	}
	_, _, wrapped := rawBindCreds(t, nc, r, 2, "GSSAPI", []byte{})
	offer, _, err := g.Unwrap(wrapped)
	if err != nil {
		t.Fatal(err)
	}
	if layers, _, _ := gss.ParseLayerOffer(offer); layers != 7 {
		t.Fatalf("offered %#x", layers)
	}
	choice, _ := g.Wrap(nil, gss.LayerChoice(gss.LayerIntegrity|gss.LayerConfidentiality, 1<<16, ""), false)
	if code, diag := rawBind(t, nc, r, 3, "GSSAPI", choice); code != 0 {
		t.Fatalf("choice 0x06: %d %s", code, diag)
	}
	layer, _ := gss.NewLayer(r, nc, g, true, 1<<16, 1<<20)
	l := ldap.NewConn(&sealed{Conn: nc, layer: layer}, false)
	l.Start()
	defer l.Close()
	if r, err := passwordSearch(l); err != nil || len(r.Entries[0].GetRawAttributeValue("msDS-ManagedPassword")) != 290 {
		t.Fatalf("sealed after 0x06: %v", err)
	}
}

type sealed struct {
	net.Conn
	layer *gss.Layer
}

func (c *sealed) Read(p []byte) (int, error)  { return c.layer.Read(p) }
func (c *sealed) Write(p []byte) (int, error) { return c.layer.Write(p) }

// Hostile and broken SASL binds get clear errors and leave no identity behind.
func TestKerberosBindRefusals(t *testing.T) {
	s := setup(t, servertest.Options{})
	must(s.Dir.NewComputer(ctx, directory.LocalSystem(), directory.ComputerOptions{Name: "WEB01"}))
	must(s.Dir.SetAccount(ctx, directory.LocalSystem(), "outsider", directory.GMSAChanges{Enabled: new(false)}))
	nc, err := net.Dial("tcp", s.LDAP)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	r := bufio.NewReader(nc)
	for i, c := range []struct {
		mech  string
		creds []byte
		code  int64
		diag  string
	}{
		{"DIGEST-MD5", nil, ldap.LDAPResultAuthMethodNotSupported, "GSSAPI, GSS-SPNEGO"},
		{"GSSAPI", []byte("garbage"), ldap.LDAPResultProtocolError, "InitialContextToken"},
		{"GSSAPI", nil, ldap.LDAPResultProtocolError, "InitialContextToken"},
		{"GSS-SPNEGO", []byte{0x60, 0x00}, ldap.LDAPResultProtocolError, "malformed"},
	} {
		if code, diag := rawBind(t, nc, r, int64(i+1), c.mech, c.creds); code != c.code || !strings.Contains(diag, c.diag) {
			t.Errorf("%s %q: %d %s", c.mech, c.creds, code, diag)
		}
	}
	// A ticket for another account's SPN, a disabled client, an AP-REQ replayed.
	ticket := func(client, spn string) []byte {
		tok, _, err := ticketFor(t, s, client, spn).Initiate()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	if _, err := s.Dir.LDAPServiceKey(ctx, []string{"HOST", "WEB01"}, krbkey.EtypeAES256CTSHMACSHA, 0); err == nil || !strings.Contains(err.Error(), "not for this domain controller") {
		t.Fatalf("another account's SPN: %v", err)
	}
	if code, diag := rawBind(t, nc, r, 10, "GSSAPI", ticket("outsider", "ldap/dc1.example.test")); code != ldap.LDAPResultInvalidCredentials || !strings.Contains(diag, "data 533") {
		t.Errorf("disabled client: %d %s", code, diag)
	}
	tok := ticket("websvc", "ldap/dc1.example.test")
	if code, _ := rawBind(t, nc, r, 11, "GSSAPI", tok); code != 14 {
		t.Fatalf("first AP-REQ: %d", code)
	}
	nc2, err := net.Dial("tcp", s.LDAP) // on this connection the same mechanism would continue the exchange
	if err != nil {
		t.Fatal(err)
	}
	defer nc2.Close()
	if code, diag := rawBind(t, nc2, bufio.NewReader(nc2), 12, "GSSAPI", tok); code != ldap.LDAPResultInvalidCredentials || !strings.Contains(diag, "seen before") {
		t.Errorf("replayed AP-REQ: %d %s", code, diag)
	}
	// Out of step: a token where the empty one is due, then a choice that is not wrapped.
	if code, diag := rawBind(t, nc, r, 14, "GSSAPI", []byte("x")); code != ldap.LDAPResultProtocolError || !strings.Contains(diag, "empty token") {
		t.Errorf("out of step: %d %s", code, diag)
	}
	if code, _ := rawBind(t, nc, r, 15, "GSSAPI", ticket("websvc", "ldap/dc1.example.test")); code != 14 {
		t.Fatal("AP-REQ")
	}
	if code, _ := rawBind(t, nc, r, 16, "GSSAPI", []byte{}); code != 14 {
		t.Fatal("offer")
	}
	if code, diag := rawBind(t, nc, r, 17, "GSSAPI", gss.LayerChoice(gss.LayerConfidentiality, 1<<16, "")); code != ldap.LDAPResultInvalidCredentials || !strings.Contains(diag, "does not verify") {
		t.Errorf("unwrapped choice: %d %s", code, diag)
	}
	// None of this bound the connection.
	l := ldap.NewConn(nc, false)
	l.Start()
	if who, err := l.WhoAmI(nil); err != nil || who.AuthzID != "" {
		t.Fatalf("after refused binds: %+v %v", who, err)
	}
}

// SASL EXTERNAL: a certificate from the domain's CA binds as the account whose SID it
// carries, over LDAPS and after StartTLS; a certificate from elsewhere, none, or a
// plain connection does not.
func TestExternalBind(t *testing.T) {
	s := setup(t, servertest.Options{})
	web := must(s.Dir.NewComputer(ctx, directory.LocalSystem(), directory.ComputerOptions{Name: "WEB01"}))
	must(s.Dir.AddMember(ctx, directory.LocalSystem(), "Web Hosts", "WEB01$"))
	certPEM, keyPEM, err := pki.IssueClient(filepath.Dir(s.CAFile), "WEB01$", web.SID, 24*time.Hour, time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cert := must(tls.X509KeyPair(certPEM, keyPEM))
	tc := &tls.Config{RootCAs: s.CAPool, ServerName: "localhost", Certificates: []tls.Certificate{cert}}
	c := must(ldap.DialURL("ldaps://"+s.LDAPS, ldap.DialWithTLSConfig(tc)))
	defer c.Close()
	if err := c.ExternalBind(); err != nil {
		t.Fatal(err)
	}
	if who, err := c.WhoAmI(nil); err != nil || who.AuthzID != "u:EXAMPLE\\WEB01$" {
		t.Fatalf("who am I: %+v %v", who, err)
	}
	if r, err := passwordSearch(c); err != nil || len(r.Entries[0].GetRawAttributeValue("msDS-ManagedPassword")) != 290 {
		t.Fatalf("password over EXTERNAL: %v", err)
	}
	st := dialPlain(t, s)
	if err := st.StartTLS(tc); err != nil {
		t.Fatal(err)
	}
	if err := st.ExternalBind(); err != nil {
		t.Fatalf("after StartTLS: %v", err)
	}
	// Refusals: no TLS; no certificate; a certificate of another CA for the same SID.
	if err := dialPlain(t, s).ExternalBind(); code(err) != ldap.LDAPResultInappropriateAuthentication {
		t.Fatalf("plain: %v", err)
	}
	if err := dialTLS(t, s).ExternalBind(); code(err) != ldap.LDAPResultInappropriateAuthentication {
		t.Fatalf("no certificate: %v", err)
	}
	other := t.TempDir()
	if _, err := pki.Ensure(other, []string{"localhost"}, time.Now(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	fcert, fkey, _ := pki.IssueClient(other, "WEB01$", web.SID, time.Hour, time.Now(), rand.Reader)
	forged := must(tls.X509KeyPair(fcert, fkey))
	fc := must(ldap.DialURL("ldaps://"+s.LDAPS, ldap.DialWithTLSConfig(&tls.Config{RootCAs: s.CAPool, ServerName: "localhost", Certificates: []tls.Certificate{forged}})))
	defer fc.Close()
	if err := fc.ExternalBind(); code(err) != ldap.LDAPResultInvalidCredentials || !strings.Contains(err.Error(), "not trusted") {
		t.Fatalf("another CA's certificate: %v", err)
	}
	// A disabled account's certificate no longer binds.
	must(s.Dir.SetAccount(ctx, directory.LocalSystem(), "WEB01$", directory.GMSAChanges{Enabled: new(false)}))
	c2 := must(ldap.DialURL("ldaps://"+s.LDAPS, ldap.DialWithTLSConfig(tc)))
	defer c2.Close()
	if err := c2.ExternalBind(); code(err) != ldap.LDAPResultInvalidCredentials || !strings.Contains(err.Error(), "data 533") {
		t.Fatalf("disabled: %v", err)
	}
}
