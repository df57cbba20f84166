package ldapserver

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/jcmturner/gokrb5/v8/types"

	"gmsa/internal/audit"
	"gmsa/internal/directory"
	"gmsa/internal/gss"
	"gmsa/internal/pki"
)

// SASL mechanisms this server offers ([MS-ADTS] 3.1.1.3.4.5.1 lists AD's).
var saslMechanisms = []string{"GSSAPI", "GSS-SPNEGO", "EXTERNAL"}

const (
	resultSaslBindInProgress = 14
	resultInappropriateAuth  = 48
)

// layerMaxBuffer is the largest SASL buffer this server receives: a request of
// MaxReceiveBuffer size with the wrap overhead, and no more.
func (c *conn) layerMaxBuffer() int { return min(c.srv.cfg.MaxPDU+1024, gss.MaxBuffer) }

// saslBind is a multi-step SASL bind in progress on a connection ([RFC 4513] 5.2.1.2).
type saslBind struct {
	mech     string
	step     int // GSSAPI: 1 after the AP-REP (an empty token comes), 2 after the layer offer
	accepted *gss.Accepted
	req      *directory.Requester // who the ticket authenticated
	offered  byte                 // the layers offered
}

// sasl serves a bind with SaslCredentials { mechanism, credentials OPTIONAL }.
func (c *conn) sasl(ctx context.Context, id int64, auth *ber.Packet) {
	label := "other"
	reply := func(code int, diag string, creds []byte) {
		c.srv.cfg.Metrics.Bind(label, code)
		p := result(appBindResponse, code, "", diag)
		if creds != nil {
			p.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 7, string(creds), "serverSaslCreds"))
		}
		c.send(message(id, p))
	}
	fail := func(code int, diag string) {
		c.saslState = nil
		reply(code, diag, nil)
	}
	if len(auth.Children) < 1 {
		fail(resultProtocolError, "malformed SaslCredentials")
		return
	}
	mech := str(auth.Children[0])
	label = saslMechanism(mech)
	var creds []byte
	if len(auth.Children) > 1 {
		creds = raw(auth.Children[1])
	}
	if c.layer {
		fail(resultUnwillingToPerform, "00002029: a SASL security layer is installed on this connection and stays until it closes ([MS-ADTS] 5.1.2.1); open a new connection to bind again")
		return
	}
	st := c.saslState
	if st != nil && st.mech != mech {
		st = nil // a bind with another mechanism abandons the one in progress
	}
	switch {
	case st == nil && mech == "GSSAPI":
		c.gssapiStart(ctx, reply, fail, creds)
	case st == nil && mech == "GSS-SPNEGO":
		c.spnego(ctx, reply, fail, creds)
	case st != nil && mech == "GSSAPI":
		c.gssapiStep(reply, fail, st, creds)
	case mech == "EXTERNAL":
		c.external(ctx, reply, fail, creds)
	default:
		fail(resultAuthMethodNotSupported, fmt.Sprintf("00002027: LdapErr: DSID-0C090A0A, comment: SASL mechanism %q is not supported; this server offers %s, data 0, v4563", mech, strings.Join(saslMechanisms, ", ")))
	}
}

// accept verifies a Kerberos context token and logs its client on.
func (c *conn) accept(ctx context.Context, token []byte) (*gss.Accepted, *directory.Requester, *ldapError) {
	dir := c.srv.cfg.Dir
	realm := dir.Domain().Realm
	a := &gss.Acceptor{Realm: realm, MaxSkew: c.srv.cfg.MaxClockSkew, Now: c.srv.cfg.Now, Rand: c.srv.cfg.Rand, Replay: c.srv.replay, Bindings: c.srv.cfg.ChannelBinding,
		Key: func(sname types.PrincipalName, _ string, etype int32, kvno int) ([]byte, error) {
			return dir.LDAPServiceKey(ctx, sname.NameString, etype, kvno)
		}}
	var appData []byte
	if c.req.Protection == directory.ProtectionTLS {
		appData = c.endpoint
	}
	acc, err := a.Accept(token, appData)
	if err != nil {
		c.srv.cfg.Logger.Info("Kerberos bind refused", "remote", c.req.Remote, "err", err)
		if errors.Is(err, gss.ErrMalformed) {
			return nil, nil, &ldapError{code: resultProtocolError, diag: err.Error()}
		}
		return nil, nil, &ldapError{code: resultInvalidCredentials, diag: fmt.Sprintf("80090322: LdapErr: DSID-0C0906B5, comment: AcceptSecurityContext error, data 0, v4563 (%v)", err)}
	}
	if len(acc.Client.NameString) != 1 || !strings.EqualFold(acc.Realm, realm) {
		return nil, nil, &ldapError{code: resultInvalidCredentials, diag: fmt.Sprintf(diagInvalidCreds, "52e")}
	}
	req, err := dir.KerberosLogon(ctx, c.req, acc.Client.NameString[0])
	if lerr := logonError(err); lerr != nil {
		return nil, nil, lerr
	}
	return acc, req, nil
}

// gssapiStart is the first step of [RFC 4752] 3.1: the AP-REQ; the AP-REP goes back,
// or the layer offer at once when the client asked for no mutual authentication.
func (c *conn) gssapiStart(ctx context.Context, reply func(int, string, []byte), fail func(int, string), token []byte) {
	acc, req, lerr := c.accept(ctx, token)
	if lerr != nil {
		fail(lerr.code, lerr.diag)
		return
	}
	st := &saslBind{mech: "GSSAPI", accepted: acc, req: req, step: 1}
	c.saslState = st
	if acc.Reply != nil {
		reply(resultSaslBindInProgress, "", acc.Reply)
		return
	}
	c.gssapiStep(reply, fail, st, nil)
}

// gssapiStep continues [RFC 4752] 3.1: after the AP-REP the client sends an empty
// token and gets the wrapped layer offer; then it sends its wrapped choice, and the
// bind completes with the chosen layer installed. No layer is offered over TLS
// ([MS-ADTS] 5.1.2.1).
func (c *conn) gssapiStep(reply func(int, string, []byte), fail func(int, string), st *saslBind, token []byte) {
	g := st.accepted.Context
	switch st.step {
	case 1:
		if len(token) != 0 {
			fail(resultProtocolError, "the GSSAPI exchange expects an empty token after the AP-REP ([RFC 4752] 3.1)")
			return
		}
		st.offered = gss.LayerNone | gss.LayerIntegrity | gss.LayerConfidentiality
		if c.req.Protection == directory.ProtectionTLS {
			st.offered = gss.LayerNone
		}
		offer, err := g.Wrap(nil, gss.LayerOffer(st.offered, uint32(c.layerMaxBuffer())), false)
		if err != nil {
			fail(resultOther, err.Error())
			return
		}
		st.step = 2
		reply(resultSaslBindInProgress, "", offer)
	case 2:
		msg, _, err := g.Unwrap(token)
		if err != nil {
			fail(resultInvalidCredentials, fmt.Sprintf("the security layer choice does not verify: %v", err))
			return
		}
		layer, maxBuf, authzid, err := gss.ParseLayerChoice(msg)
		if err != nil {
			fail(resultProtocolError, err.Error())
			return
		}
		if layer == 0 || layer&^st.offered != 0 {
			fail(resultProtocolError, fmt.Sprintf("security layer %#x was not offered (offered %#x)", layer, st.offered))
			return
		}
		// AD and Samba read the choice as a bit mask (Cyrus's ad_compat sends 0x06):
		// the strongest bit chosen wins.
		switch {
		case layer&gss.LayerConfidentiality != 0:
			layer = gss.LayerConfidentiality
		case layer&gss.LayerIntegrity != 0:
			layer = gss.LayerIntegrity
		}
		if authzid != "" && !c.authzidIsSelf(authzid, st.req) {
			fail(resultInappropriateAuth, "00002F8F: an authorization identity other than the authenticated one is not supported")
			return
		}
		c.complete(reply, st.req, g, layer, int(maxBuf), nil)
	default:
		fail(resultProtocolError, "unexpected SASL step")
	}
}

// authzidIsSelf accepts an authorization identity that names the bound account itself.
func (c *conn) authzidIsSelf(authzid string, req *directory.Requester) bool {
	who := strings.TrimPrefix(authzid, "u:")
	if _, name, ok := strings.Cut(who, "\\"); ok {
		who = name
	}
	return strings.EqualFold(who, req.Name())
}

// spnego serves GSS-SPNEGO ([RFC 4178], as Windows and Samba clients send it): the
// NegTokenInit's optimistic Kerberos token is accepted in one round; the answer carries
// the AP-REP and our mechListMIC. The layer follows the GSS flags: sealed with
// confidentiality, signed with integrity only ([MS-ADTS] 5.1.2.1).
func (c *conn) spnego(ctx context.Context, reply func(int, string, []byte), fail func(int, string), token []byte) {
	init, err := gss.ParseNegTokenInit(token)
	if err != nil {
		fail(resultProtocolError, err.Error())
		return
	}
	first := init.MechTypes[0]
	if !first.Equal(gss.OIDKerberos) && !first.Equal(gss.OIDMSKerberos) || len(init.MechToken) == 0 {
		c.saslState = nil
		reply(resultInvalidCredentials, fmt.Sprintf("80090308: LdapErr: DSID-0C090569, comment: AcceptSecurityContext error, data 0, v4563 (this server accepts Kerberos only; the client offered %s first)", first),
			(&gss.NegTokenResp{State: gss.Reject, HasState: true}).Marshal())
		return
	}
	acc, req, lerr := c.accept(ctx, init.MechToken)
	if lerr != nil {
		fail(lerr.code, lerr.diag)
		return
	}
	g := acc.Context
	mechList := gss.MechListBytes(init.MechTypes)
	if init.MechListMIC != nil {
		if err := g.VerifyMIC(mechList, init.MechListMIC); err != nil {
			fail(resultInvalidCredentials, fmt.Sprintf("the SPNEGO mechListMIC does not verify: %v", err))
			return
		}
	}
	resp := &gss.NegTokenResp{State: gss.AcceptCompleted, HasState: true, SupportedMech: first, ResponseToken: acc.Reply}
	if init.MechListMIC != nil {
		// The client's preferred mechanism was taken, so the MIC exchange is optional
		// ([RFC 4178] 5): ours answers the client's. A client that wants no integrity
		// (over TLS) sends none and could not check ours (Samba fails the bind).
		resp.MechListMIC = g.MIC(mechList)
	}
	layer := byte(gss.LayerNone)
	switch f := g.Flags(); {
	case c.req.Protection == directory.ProtectionTLS:
	case f&gss.FlagConf != 0:
		layer = gss.LayerConfidentiality
	case f&gss.FlagInteg != 0:
		layer = gss.LayerIntegrity
	}
	c.complete(reply, req, g, layer, gss.MaxBuffer, resp.Marshal())
}

// complete ends a SASL bind: the success response goes out unprotected, then the layer
// is installed for everything after it ([RFC 4752] 3.1, [RFC 4422] 3.7).
func (c *conn) complete(reply func(int, string, []byte), req *directory.Requester, g *gss.Context, layer byte, peerMax int, creds []byte) {
	c.saslState = nil
	if layer == gss.LayerNone {
		c.req = req
		reply(resultSuccess, "", creds)
		return
	}
	seal := layer == gss.LayerConfidentiality
	sl, err := gss.NewLayer(c.r, c.nc, g, seal, peerMax, c.layerMaxBuffer())
	if err != nil {
		reply(resultProtocolError, err.Error(), nil)
		return
	}
	bound := *req
	bound.Protection = map[bool]directory.Protection{true: directory.ProtectionConfidentiality, false: directory.ProtectionIntegrity}[seal]
	c.req = &bound
	reply(resultSuccess, "", creds)
	if c.flush() != nil {
		return
	}
	lc := &layeredConn{Conn: c.nc, layer: sl}
	c.wmu.Lock()
	c.nc = lc
	c.r = bufio.NewReaderSize(lc, 4<<10)
	c.w.Reset(audit.Gate(lc, c.srv.cfg.Audit))
	c.wmu.Unlock()
	c.layer = true
}

// external serves SASL EXTERNAL ([RFC 4422] appendix A) over TLS: the client
// certificate must chain to the domain's CA for client authentication, and names its
// account by the SID of AD's strong mapping (KB5014754); an authorization identity, if
// any, must be that account.
func (c *conn) external(ctx context.Context, reply func(int, string, []byte), fail func(int, string), authzid []byte) {
	c.saslState = nil
	tc, ok := c.nc.(*tls.Conn)
	if !ok || c.req.Protection != directory.ProtectionTLS {
		fail(resultInappropriateAuth, "00002F8F: SASL EXTERNAL needs a TLS connection (ldaps:// or StartTLS) with a client certificate")
		return
	}
	certs := tc.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		fail(resultInappropriateAuth, "00002F8F: SASL EXTERNAL: the client presented no certificate")
		return
	}
	if c.srv.cfg.ClientCAs == nil {
		fail(resultAuthMethodNotSupported, "SASL EXTERNAL: no client certificate authority is configured on this server")
		return
	}
	inter := x509.NewCertPool()
	for _, ic := range certs[1:] {
		inter.AddCert(ic)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: c.srv.cfg.ClientCAs, Intermediates: inter, CurrentTime: c.srv.cfg.Now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		fail(resultInvalidCredentials, fmt.Sprintf("80090308: LdapErr: DSID-0C090569, comment: the client certificate is not trusted for this domain (%v), data 0, v4563", err))
		return
	}
	sid, ok := pki.CertificateSID(certs[0])
	if !ok {
		fail(resultInvalidCredentials, fmt.Sprintf(diagInvalidCreds, "525")+" (the certificate carries no account SID)")
		return
	}
	req, err := c.srv.cfg.Dir.CertificateLogon(ctx, c.req, sid)
	if lerr := logonError(err); lerr != nil {
		fail(lerr.code, lerr.diag)
		return
	}
	if len(authzid) > 0 && !c.authzidIsSelf(string(authzid), req) {
		fail(resultInappropriateAuth, "00002F8F: an authorization identity other than the certificate's account is not supported")
		return
	}
	c.req = req
	reply(resultSuccess, "", nil)
}

// layeredConn is a connection whose reads and writes go through a SASL layer.
type layeredConn struct {
	net.Conn
	layer *gss.Layer
}

func (c *layeredConn) Read(p []byte) (int, error)  { return c.layer.Read(p) }
func (c *layeredConn) Write(p []byte) (int, error) { return c.layer.Write(p) }

// tlsServerEndPoint is the channel binding data of our certificate.
func tlsServerEndPoint(der []byte) []byte {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil
	}
	return gss.TLSServerEndPoint(cert)
}

// saslMechanism names a requested mechanism for the metrics: one this server offers, or
// "other" (a client's string never becomes a label of its own).
func saslMechanism(name string) string {
	switch name {
	case "GSSAPI", "GSS-SPNEGO", "EXTERNAL":
		return name
	}
	return "other"
}
