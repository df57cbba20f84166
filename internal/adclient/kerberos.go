package adclient

import (
	"bufio"
	"crypto/tls"
	"encoding/asn1"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"

	"gmsa/internal/gss"
	"gmsa/internal/tlv"
)

// Mechanisms for a Kerberos bind.
const (
	MechGSSAPI = "GSSAPI"     // [RFC 4752], as ldapsearch -Y GSSAPI and credentials-fetcher bind
	MechSPNEGO = "GSS-SPNEGO" // as Windows members and Samba bind
)

// maxBindResponse bounds a bind response read before go-ldap takes the connection.
const maxBindResponse = 256 << 10

// ourMaxBuffer is the largest SASL buffer we take from the DC.
const ourMaxBuffer = 4 << 20

// kerberosBind opens a connection to u and binds with the identity's service ticket for
// ldap/HOST over SASL, installing a confidentiality layer on ldap:// (none over ldaps://,
// as AD requires), and hands the connection to go-ldap.
func kerberosBind(u *url.URL, opt Options, tc *tls.Config) (*ldap.Conn, error) {
	host := u.Hostname()
	if net.ParseIP(host) != nil {
		return nil, fmt.Errorf("adclient: a Kerberos bind needs the DC's host name in the URL (ldap://dc1.example.test), not the address %s: the ticket is for ldap/<name>", host)
	}
	port := u.Port()
	isTLS := strings.EqualFold(u.Scheme, "ldaps")
	if port == "" {
		port = map[bool]string{false: "389", true: "636"}[isTLS]
	}
	spn := "ldap/" + strings.ToLower(host)
	tkt, key, err := opt.Kerberos.ServiceTicket(spn)
	if err != nil {
		return nil, err
	}
	d := net.Dialer{Timeout: opt.dialTimeout()}
	var nc net.Conn
	var appData []byte
	if isTLS {
		c := tc.Clone()
		if c.ServerName == "" {
			c.ServerName = host
		}
		t, err := tls.DialWithDialer(&d, "tcp", opt.dialAddr(host, port), c)
		if err != nil {
			return nil, fmt.Errorf("adclient: connecting to %s: %w", u, err)
		}
		if cs := t.ConnectionState(); len(cs.PeerCertificates) > 0 {
			appData = gss.TLSServerEndPoint(cs.PeerCertificates[0])
		}
		nc = t
	} else if nc, err = d.Dial("tcp", opt.dialAddr(host, port)); err != nil {
		return nil, fmt.Errorf("adclient: connecting to %s: %w", u, err)
	}
	in := &gss.Initiator{Ticket: tkt, SessionKey: key, Client: opt.Kerberos.Principal, Realm: opt.Kerberos.Realm,
		Flags: gss.FlagInteg | gss.FlagConf | gss.FlagSequence, AppData: appData, Now: time.Now, Rand: opt.rand()}
	conn, err := SASLBind(nc, isTLS, in, opt.Mechanism)
	if err != nil {
		nc.Close()
		return nil, err
	}
	l := ldap.NewConn(conn, isTLS)
	l.Start()
	return l, nil
}

// SASLBind runs a Kerberos SASL bind (GSSAPI by default, or GSS-SPNEGO) on a fresh
// connection with the initiator's service ticket, and returns the connection with the
// security layer installed: confidentiality without TLS, none over TLS.
func SASLBind(nc net.Conn, isTLS bool, in *gss.Initiator, mech string) (net.Conn, error) {
	if mech == "" {
		mech = MechGSSAPI
	}
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	defer nc.SetDeadline(time.Time{})
	b := &binder{nc: nc, r: bufio.NewReader(nc), mech: mech}
	switch mech {
	case MechGSSAPI:
		return b.gssapi(in, isTLS)
	case MechSPNEGO:
		return b.spnego(in, isTLS)
	}
	return nil, fmt.Errorf("adclient: unknown SASL mechanism %q: want %s or %s", mech, MechGSSAPI, MechSPNEGO)
}

// binder runs the SASL bind exchange on the raw connection.
type binder struct {
	nc   net.Conn
	r    *bufio.Reader
	id   int64
	mech string
}

// round sends one SASL BindRequest and reads its response.
func (b *binder) round(creds []byte) (int, string, []byte, error) {
	b.id++
	msg := ber.NewSequence("LDAPMessage")
	msg.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, b.id, "messageID"))
	req := ber.Encode(ber.ClassApplication, ber.TypeConstructed, 0, nil, "BindRequest")
	req.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 3, "version"))
	req.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", "name"))
	sasl := ber.Encode(ber.ClassContext, ber.TypeConstructed, 3, nil, "sasl")
	sasl.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, b.mech, "mechanism"))
	if creds != nil {
		sasl.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, string(creds), "credentials"))
	}
	req.AppendChild(sasl)
	msg.AppendChild(req)
	if _, err := b.nc.Write(msg.Bytes()); err != nil {
		return 0, "", nil, fmt.Errorf("adclient: bind: %w", err)
	}
	raw, err := tlv.ReadMessage(b.r, nil, maxBindResponse, nil)
	if err != nil {
		return 0, "", nil, fmt.Errorf("adclient: reading the bind response: %w", err)
	}
	p, err := ber.DecodePacketErr(raw)
	if err != nil || len(p.Children) < 2 || p.Children[1].Tag != 1 || len(p.Children[1].Children) < 3 {
		return 0, "", nil, errors.New("adclient: the DC sent something other than a BindResponse")
	}
	resp := p.Children[1]
	code, _ := resp.Children[0].Value.(int64)
	diag, _ := resp.Children[2].Value.(string)
	var server []byte
	for _, c := range resp.Children[3:] {
		if c.ClassType == ber.ClassContext && c.Tag == 7 {
			server = c.Data.Bytes()
		}
	}
	return int(code), diag, server, nil
}

const (
	ldapSuccess        = 0
	ldapBindInProgress = 14
)

func bindError(mech string, code int, diag string) error {
	return fmt.Errorf("adclient: %s bind refused: %w", mech, ldap.NewError(uint16(code), errors.New(diag)))
}

// gssapi is [RFC 4752] 3.1 as the initiator.
func (b *binder) gssapi(in *gss.Initiator, isTLS bool) (net.Conn, error) {
	tok, pending, err := in.Initiate()
	if err != nil {
		return nil, err
	}
	code, diag, rep, err := b.round(tok)
	if err != nil {
		return nil, err
	}
	if code != ldapBindInProgress {
		return nil, bindError(b.mech, code, diag)
	}
	ctx, err := pending.Complete(rep)
	if err != nil {
		return nil, err
	}
	code, diag, wrapped, err := b.round([]byte{})
	if err != nil {
		return nil, err
	}
	if code != ldapBindInProgress {
		return nil, bindError(b.mech, code, diag)
	}
	msg, _, err := ctx.Unwrap(wrapped)
	if err != nil {
		return nil, fmt.Errorf("adclient: the DC's security layer offer: %w", err)
	}
	layers, serverMax, err := gss.ParseLayerOffer(msg)
	if err != nil {
		return nil, err
	}
	layer := byte(gss.LayerConfidentiality)
	if isTLS {
		layer = gss.LayerNone
	}
	if layers&layer == 0 {
		return nil, fmt.Errorf("adclient: the DC does not offer the %s security layer (offered %#x): msDS-ManagedPassword needs a sealed connection", map[bool]string{true: "no-layer", false: "confidentiality"}[isTLS], layers)
	}
	choice, err := ctx.Wrap(nil, gss.LayerChoice(layer, ourMaxBuffer, ""), false)
	if err != nil {
		return nil, err
	}
	if code, diag, _, err = b.round(choice); err != nil {
		return nil, err
	}
	if code != ldapSuccess {
		return nil, bindError(b.mech, code, diag)
	}
	return b.install(ctx, layer, int(serverMax))
}

// spnego is GSS-SPNEGO as Samba's and Windows' clients run it: the Kerberos token
// optimistically in the NegTokenInit; the DC's mechListMIC checked, and ours sent when
// it asks for another round.
func (b *binder) spnego(in *gss.Initiator, isTLS bool) (net.Conn, error) {
	// Windows lists Microsoft's OID first; the token inside carries the krb5 OID.
	mechs := []asn1.ObjectIdentifier{gss.OIDMSKerberos, gss.OIDKerberos}
	tok, pending, err := in.Initiate()
	if err != nil {
		return nil, err
	}
	code, diag, out, err := b.round((&gss.NegTokenInit{MechTypes: mechs, MechToken: tok}).Marshal())
	if err != nil {
		return nil, err
	}
	if code != ldapSuccess && code != ldapBindInProgress {
		return nil, bindError(b.mech, code, diag)
	}
	resp, err := gss.ParseNegTokenResp(out)
	if err != nil {
		return nil, err
	}
	if resp.HasState && resp.State == gss.Reject {
		return nil, fmt.Errorf("adclient: the DC rejected the Kerberos token: %s", diag)
	}
	ctx, err := pending.Complete(resp.ResponseToken)
	if err != nil {
		return nil, err
	}
	list := gss.MechListBytes(mechs)
	if resp.MechListMIC != nil {
		if err := ctx.VerifyMIC(list, resp.MechListMIC); err != nil {
			return nil, fmt.Errorf("adclient: the DC's SPNEGO mechListMIC: %w", err)
		}
	}
	if code == ldapBindInProgress {
		if code, diag, _, err = b.round((&gss.NegTokenResp{MechListMIC: ctx.MIC(list)}).Marshal()); err != nil {
			return nil, err
		}
		if code != ldapSuccess {
			return nil, bindError(b.mech, code, diag)
		}
	}
	if isTLS {
		return b.install(ctx, gss.LayerNone, 0)
	}
	return b.install(ctx, gss.LayerConfidentiality, 64<<10)
}

// install puts the SASL layer on the connection for everything after the bind.
func (b *binder) install(ctx *gss.Context, layer byte, serverMax int) (net.Conn, error) {
	if layer == gss.LayerNone {
		return &layeredConn{Conn: b.nc, r: b.r}, nil
	}
	l, err := gss.NewLayer(b.r, b.nc, ctx, true, serverMax, ourMaxBuffer)
	if err != nil {
		return nil, err
	}
	return &layeredConn{Conn: b.nc, r: l, w: l}, nil
}

// layeredConn reads through the bind's buffered reader (and the SASL layer, when one is
// installed) and writes through the layer.
type layeredConn struct {
	net.Conn
	r interface{ Read([]byte) (int, error) }
	w interface{ Write([]byte) (int, error) }
}

func (c *layeredConn) Read(p []byte) (int, error) { return c.r.Read(p) }
func (c *layeredConn) Write(p []byte) (int, error) {
	if c.w == nil {
		return c.Conn.Write(p)
	}
	return c.w.Write(p)
}
