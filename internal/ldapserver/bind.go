package ldapserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"

	"gmsa/internal/audit"
	"gmsa/internal/directory"
)

// AD's diagnostics ([MS-ADTS] 3.1.1.3.1.9 error formats), so tools that parse them work.
const (
	diagNeedBind      = "000004DC: LdapErr: DSID-0C090A5C, comment: In order to perform this operation a successful bind must be completed on the connection., data 0, v4563"
	diagStrongAuth    = "00002028: LdapErr: DSID-0C090256, comment: The server requires binds to turn on integrity checking if SSL\\TLS are not already active on the connection, data 0, v4563"
	diagInvalidCreds  = "80090308: LdapErr: DSID-0C090569, comment: AcceptSecurityContext error, data %s, v4563"
	diagNeedEncrypted = "0000202D: LdapErr: DSID-0C090D14, comment: msDS-ManagedPassword requires an encrypted connection: use ldaps:// or StartTLS, data 0, v4563"
)

func (c *conn) bind(ctx context.Context, id int64, op *ber.Packet) {
	c.stopNotifications() // they read as the identity that is being replaced
	mech := "simple"
	reply := func(code int, diag string) {
		c.srv.cfg.Metrics.Bind(mech, code)
		c.send(message(id, result(appBindResponse, code, "", diag)))
	}
	if len(op.Children) < 3 {
		reply(resultProtocolError, "malformed BindRequest")
		return
	}
	version, _ := intValue(op.Children[0])
	name, auth := str(op.Children[1]), op.Children[2]
	c.req = directory.Anonymous(c.req.Protection, c.req.Remote) // a new bind starts anonymous ([RFC 4511] 4.2.1)
	if version != 3 && version != 2 {
		reply(resultProtocolError, fmt.Sprintf("LDAP version %d is not supported", version))
		return
	}
	if auth.ClassType != ber.ClassContext {
		reply(resultProtocolError, "malformed authentication choice")
		return
	}
	switch auth.Tag {
	case 0: // simple
		c.saslState = nil
	case 3:
		c.sasl(ctx, id, auth)
		return
	default:
		reply(resultAuthMethodNotSupported, "unknown authentication method")
		return
	}
	password := str(auth)
	switch {
	case name == "" && password == "":
		mech = "anonymous"
		reply(resultSuccess, "")
		return
	case password == "":
		reply(resultUnwillingToPerform, "00002028: unauthenticated binds (a name without a password) are refused")
		return
	case !c.req.Protection.Encrypted() && !c.srv.cfg.AllowPlainSimpleBind:
		reply(resultStrongerAuthRequired, diagStrongAuth)
		return
	}
	req, err := c.srv.cfg.Dir.Authenticate(ctx, c.req, name, password)
	if lerr := logonError(err); lerr != nil {
		reply(lerr.code, lerr.diag)
		return
	}
	c.req = req
	reply(resultSuccess, "")
}

// logonError is a failed logon's result: invalidCredentials with AD's data code for
// the directory's refusals, other for the rest; nil for no error.
func logonError(err error) *ldapError {
	var ic *directory.ErrInvalidCredentials
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ic):
		return &ldapError{code: resultInvalidCredentials, diag: fmt.Sprintf(diagInvalidCreds, ic.Data)}
	}
	return &ldapError{code: resultOther, diag: err.Error()}
}

// extended serves StartTLS and Who am I? ([RFC 4511] 4.12, [RFC 4513] 3, [RFC 4532]).
func (c *conn) extended(ctx context.Context, id int64, op *ber.Packet) bool {
	if len(op.Children) < 1 {
		c.disconnect(resultProtocolError, "malformed ExtendedRequest")
		return false
	}
	oid := str(op.Children[0])
	reply := func(code int, diag string, value *ber.Packet) error {
		p := result(appExtendedResponse, code, "", diag)
		if value != nil {
			p.AppendChild(value)
		}
		return c.send(message(id, p))
	}
	switch oid {
	case oidStartTLS:
		c.stopNotifications() // nothing may write while the connection becomes TLS
		if c.req.Protection == directory.ProtectionTLS {
			reply(resultOperationsError, "TLS is already active on this connection", nil)
			return true
		}
		if c.layer {
			reply(resultOperationsError, "a SASL security layer is installed on this connection ([RFC 4513] 3.1.1)", nil)
			return true
		}
		if c.srv.cfg.TLS == nil {
			reply(resultUnavailable, "StartTLS is not configured on this server", nil)
			return true
		}
		name := ber.NewString(ber.ClassContext, ber.TypePrimitive, 10, oidStartTLS, "responseName")
		p := result(appExtendedResponse, resultSuccess, "", "")
		p.AppendChild(name)
		if c.send(message(id, p)) != nil || c.flush() != nil { // the response goes out in the clear, then TLS starts
			return false
		}
		if c.r.Buffered() > 0 { // the client must wait for the response before the handshake
			c.disconnect(resultProtocolError, "data after StartTLS before the TLS handshake")
			return false
		}
		cfg, endpoint := c.srv.tlsFor()
		t := tls.Server(c.nc, cfg)
		if err := t.HandshakeContext(ctx); err != nil {
			c.srv.cfg.Logger.Info("StartTLS handshake failed", "remote", c.req.Remote, "err", err)
			return false
		}
		c.wmu.Lock() // the writer and its deadlines move to the TLS connection together
		c.nc = t
		c.r.Reset(t)
		c.w.Reset(audit.Gate(t, c.srv.cfg.Audit))
		c.writeBy = time.Time{}
		c.endpoint = endpoint
		c.wmu.Unlock()
		upgraded := *c.req
		upgraded.Protection = directory.ProtectionTLS
		c.req = &upgraded
		return true
	case oidWhoAmI:
		who := ""
		if c.bound() {
			who = "u:" + c.srv.cfg.Dir.Domain().NetBIOS + "\\" + c.req.Name()
		}
		reply(resultSuccess, "", ber.NewString(ber.ClassContext, ber.TypePrimitive, 11, who, "responseValue"))
		return true
	}
	reply(resultProtocolError, fmt.Sprintf("0000203A: unsupported extended operation %s", strings.TrimSpace(oid)), nil)
	return true
}
