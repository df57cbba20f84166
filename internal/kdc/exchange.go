// Package kdc is the Kerberos transport of the DC-lite ([RFC 4120]): AS and TGS
// exchanges over UDP and TCP, with gokrb5's message types read and written by krbmsg. Accounts and keys come
// from the directory, which derives gMSA keys from the password schedule at lookup;
// the KDC translates requests and never decides who an account is.
package kdc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"gmsa/internal/directory"
	"gmsa/internal/krbkey"
	"gmsa/internal/krbmsg"
	"gmsa/internal/pac"
)

// Policy is the domain's Kerberos policy (AD's Default Domain Policy defaults).
type Policy struct {
	MaxTicketAge   time.Duration // 10 h
	MaxRenewAge    time.Duration // 7 days
	MaxServiceAge  time.Duration // 600 min
	MaxClockSkew   time.Duration // 5 min
	ImplicitDollar bool          // "web01" also finds "web01$" without canonicalization, as AD and Samba do
}

// DefaultPolicy is AD's.
func DefaultPolicy() Policy {
	return Policy{MaxTicketAge: 10 * time.Hour, MaxRenewAge: 7 * 24 * time.Hour, MaxServiceAge: 600 * time.Minute,
		MaxClockSkew: 5 * time.Minute, ImplicitDollar: true}
}

// KDC-REQ options (RFC 4120 5.4.1) not named in gokrb5's flags.
const (
	optCanonicalize = 15
	optRenewableOK  = 27
	optRenew        = 30
)

// Exchange answers Kerberos requests; the transport (server.go) feeds it.
type Exchange struct {
	Dir    *directory.Directory
	Realm  string
	Policy Policy
	Now    func() time.Time
	Rand   io.Reader
	Log    *slog.Logger // refusals at debug level; nil: none

	keys keyCache // usage keys of long-term keys
}

// krbError is an error a client is told: a KRB-ERROR code, text, and optional e-data.
type krbError struct {
	code  int32
	text  string
	edata []byte
}

func (e *krbError) Error() string { return fmt.Sprintf("%s: %s", errorcode.Lookup(e.code), e.text) }

func kerr(code int32, format string, a ...any) *krbError {
	return &krbError{code: code, text: fmt.Sprintf(format, a...)}
}

// Handle answers one request (an AS-REQ or a TGS-REQ, without the TCP length prefix)
// with the reply's bytes; remote is the peer's address for the audit trail.
func (x *Exchange) Handle(ctx context.Context, req []byte, remote string) []byte {
	now := x.Now().UTC()
	reply, err := x.handle(ctx, req, remote, now)
	if err == nil {
		return reply
	}
	var ke *krbError
	switch {
	case errors.As(err, &ke):
	case errors.Is(err, directory.ErrUnavailable): // RFC 4120 §7.5.9: clients try another KDC
		ke = kerr(errorcode.KDC_ERR_SVC_UNAVAILABLE, "%v", err)
	default:
		ke = kerr(errorcode.KRB_ERR_GENERIC, "%v", err)
	}
	if x.Log != nil {
		x.Log.Debug("Kerberos request refused", "remote", remote, "code", errorcode.Lookup(ke.code), "reason", ke.text)
	}
	return x.krbError(now, ke)
}

// krbError encodes a KRB-ERROR from the TGS.
func (x *Exchange) krbError(now time.Time, ke *krbError) []byte {
	sname := types.PrincipalName{NameType: nametype.KRB_NT_SRV_INST, NameString: []string{"krbtgt", x.Realm}}
	m := messages.KRBError{PVNO: iana.PVNO, MsgType: msgtype.KRB_ERROR, STime: now.Truncate(time.Second), Susec: now.Nanosecond() / 1000,
		ErrorCode: ke.code, Realm: x.Realm, SName: sname, EText: ke.text, EData: ke.edata}
	b, err := m.Marshal()
	if err != nil {
		return nil
	}
	return b
}

// TooBig is KRB_ERR_RESPONSE_TOO_BIG ([RFC 4120] 7.2.1): the client retries over TCP.
func (x *Exchange) TooBig() []byte {
	return x.krbError(x.Now().UTC(), kerr(errorcode.KRB_ERR_RESPONSE_TOO_BIG, "the reply is too large for UDP: use TCP"))
}

// handle dispatches a request. The S4U padata still go through gokrb5's decoders, which
// panic on some malformed input (an index out of range, found by FuzzHandle): a panic
// while serving one request becomes that request's error, never the server's end.
func (x *Exchange) handle(ctx context.Context, req []byte, remote string, now time.Time) (reply []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			if x.Log != nil {
				x.Log.Warn("Kerberos request made the decoder fail", "remote", remote, "panic", fmt.Sprint(r))
			}
			reply, err = nil, kerr(errorcode.KRB_ERR_GENERIC, "malformed request")
		}
	}()
	switch {
	case len(req) > 0 && req[0] == 0x6a: // [APPLICATION 10] AS-REQ
		return x.as(ctx, req, remote, now)
	case len(req) > 0 && req[0] == 0x6c: // [APPLICATION 12] TGS-REQ
		return x.tgs(ctx, req, remote, now)
	}
	return nil, kerr(errorcode.KRB_AP_ERR_MSG_TYPE, "not an AS-REQ or a TGS-REQ")
}

// unknown is the lookup error for a name: the store's own failure (no quorum) as it is,
// so that the client hears KDC_ERR_SVC_UNAVAILABLE and tries another KDC; anything else
// as the PRINCIPAL_UNKNOWN error code and text given.
func unknown(err error, code int32, format string, args ...any) error {
	if errors.Is(err, directory.ErrUnavailable) {
		return err
	}
	return kerr(code, format, args...)
}

// principalName joins a client principal's components; NT-ENTERPRISE names are one
// component, user@domain.
func principalName(p types.PrincipalName) (string, bool, error) {
	if len(p.NameString) == 0 {
		return "", false, kerr(errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN, "no client name")
	}
	if p.NameType == nametype.KRB_NT_ENTERPRISE {
		return p.NameString[0], true, nil
	}
	if len(p.NameString) != 1 {
		return "", false, kerr(errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN, "%s is not a client this KDC knows", strings.Join(p.NameString, "/"))
	}
	return p.NameString[0], false, nil
}

// as answers an AS-REQ ([RFC 4120] 3.1): pre-authentication with PA-ENC-TIMESTAMP,
// then a ticket for the requested service (normally krbtgt).
func (x *Exchange) as(ctx context.Context, raw []byte, remote string, now time.Time) ([]byte, error) {
	fields, _, err := krbmsg.ParseKDCReq(raw, krbmsg.AppASReq)
	if err != nil {
		return nil, kerr(errorcode.KDC_ERR_BADOPTION, "malformed AS-REQ")
	}
	req := messages.ASReq{KDCReqFields: fields}
	body := req.ReqBody
	if !strings.EqualFold(body.Realm, x.Realm) {
		return nil, kerr(errorcode.KDC_ERR_WRONG_REALM, "this KDC serves %s, not %s", x.Realm, body.Realm)
	}
	name, enterprise, err := principalName(body.CName)
	if err != nil {
		return nil, err
	}
	client, err := x.Dir.KerberosClient(ctx, name, enterprise, x.Policy.ImplicitDollar)
	if errors.Is(err, directory.ErrNotFound) || errors.Is(err, directory.ErrNoKeys) {
		return nil, kerr(errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN, "client %s not found", name)
	}
	if err != nil {
		return nil, err
	}
	if client.Disabled || client.LockedOut {
		return nil, kerr(errorcode.KDC_ERR_CLIENT_REVOKED, "%s is disabled or locked out", client.SAM)
	}
	service, err := x.Dir.KerberosService(ctx, body.SName.NameString)
	if err != nil {
		return nil, unknown(err, errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN, "service %s not found", strings.Join(body.SName.NameString, "/"))
	}
	replyKey, err := x.preauth(ctx, &req, client, remote, now)
	if err != nil {
		return nil, err
	}
	if !x.Dir.KerberosPreauthSucceeded(ctx, client) {
		return nil, kerr(errorcode.KDC_ERR_CLIENT_REVOKED, "%s is locked out", client.SAM)
	}

	opts := &body.KDCOptions
	tflags := types.NewKrbFlags()
	types.SetFlag(&tflags, flags.Initial)
	types.SetFlag(&tflags, flags.PreAuthent)
	if types.IsFlagSet(opts, flags.Forwardable) {
		types.SetFlag(&tflags, flags.Forwardable)
	}
	end, renewTill := x.lifetimes(opts, body.Till, body.RTime, now, x.Policy.MaxTicketAge, time.Time{})
	if !renewTill.IsZero() {
		types.SetFlag(&tflags, flags.Renewable)
	}
	cname := body.CName
	if enterprise || types.IsFlagSet(opts, optCanonicalize) {
		cname = types.PrincipalName{NameType: nametype.KRB_NT_PRINCIPAL, NameString: []string{client.SAM}}
	}
	krbtgt, err := x.Dir.KerberosService(ctx, []string{"krbtgt", x.Realm})
	if err != nil {
		return nil, err
	}
	kdcKey, err := ticketKey(krbtgt)
	if err != nil {
		return nil, err
	}
	var bufs []pac.Buffer
	if want, asked := wantsPAC(req.PAData); want {
		if bufs, err = x.tgtBuffers(ctx, client, cname, now, asked, false); err != nil {
			return nil, err
		}
		if !service.TicketGranting { // a service ticket straight from AS (kadmin/changepw too): no TGT-only buffers
			bufs = bufs[:3]
		}
	}
	t, session, err := x.issue(service, body.SName, cname, body.EType, tflags, now, now, end, renewTill, bufs, kdcKey)
	if err != nil {
		return nil, err
	}
	enc := messages.EncKDCRepPart{Key: session, LastReqs: []messages.LastReq{{LRType: 0, LRValue: now}}, Nonce: body.Nonce,
		Flags: tflags, AuthTime: now, StartTime: now, EndTime: end, RenewTill: renewTill, SRealm: x.Realm, SName: body.SName}
	encPart, err := x.seal(replyKey.key, keyusage.AS_REP_ENCPART, krbmsg.EncKDCRepPart(&enc, krbmsg.AppEncASRepPart), replyKey.kvno, true)
	if err != nil {
		return nil, err
	}
	info := krbmsg.ETypeInfo2(types.ETypeInfo2{etypeInfo(replyKey.etype, replyKey.salt)})
	rep := messages.ASRep{KDCRepFields: messages.KDCRepFields{PVNO: iana.PVNO, MsgType: msgtype.KRB_AS_REP,
		PAData: []types.PAData{{PADataType: patype.PA_ETYPE_INFO2, PADataValue: info}}, CRealm: x.Realm, CName: cname, Ticket: t, EncPart: encPart}}
	x.Dir.KerberosTicketIssued(client, service, true, remote)
	return krbmsg.KDCRep(&rep.KDCRepFields, krbmsg.AppASRep), nil
}

// replyKey is the client key an AS-REP is encrypted in: the one pre-authentication used.
type replyKey struct {
	key   types.EncryptionKey
	etype int32
	kvno  uint32
	salt  string
}

// preauth checks PA-ENC-TIMESTAMP ([RFC 4120] 5.2.7.2) against the client's current
// keys and, for a gMSA just after a rollover, its previous ones; without it the client
// is told which keys and salts to use (PREAUTH_REQUIRED with ETYPE-INFO2).
func (x *Exchange) preauth(ctx context.Context, req *messages.ASReq, client *directory.KerberosPrincipal, remote string, now time.Time) (replyKey, error) {
	var ts *types.PAData
	for i := range req.PAData {
		if req.PAData[i].PADataType == patype.PA_ENC_TIMESTAMP {
			ts = &req.PAData[i]
		}
	}
	if ts == nil {
		var infos types.ETypeInfo2
		for _, e := range req.ReqBody.EType {
			if k, ok := client.Key(e); ok {
				infos = append(infos, etypeInfo(k.Etype, k.Salt))
			}
		}
		if len(infos) == 0 {
			return replyKey{}, kerr(errorcode.KDC_ERR_ETYPE_NOSUPP, "%s has no key of the encryption types asked for", client.SAM)
		}
		method := krbmsg.PADataSequence(types.PADataSequence{{PADataType: patype.PA_ETYPE_INFO2, PADataValue: krbmsg.ETypeInfo2(infos)},
			{PADataType: patype.PA_ENC_TIMESTAMP, PADataValue: []byte{}}})
		return replyKey{}, &krbError{code: errorcode.KDC_ERR_PREAUTH_REQUIRED, text: "pre-authentication required", edata: method}
	}
	ed, err := krbmsg.ParseEncryptedData(ts.PADataValue)
	if err != nil {
		return replyKey{}, kerr(errorcode.KDC_ERR_PREAUTH_FAILED, "malformed PA-ENC-TIMESTAMP")
	}
	for _, set := range [][]directory.KerberosKey{client.Keys, client.OldKeys} {
		for _, k := range set {
			if k.Etype != ed.EType {
				continue
			}
			ek := types.EncryptionKey{KeyType: k.Etype, KeyValue: k.Value}
			plain, err := x.open(ek, keyusage.AS_REQ_PA_ENC_TIMESTAMP, ed)
			if err != nil {
				continue
			}
			enc, err := krbmsg.ParsePAEncTSEnc(plain)
			if err != nil {
				continue
			}
			if d := now.Sub(enc.PATimestamp); d > x.Policy.MaxClockSkew || d < -x.Policy.MaxClockSkew {
				return replyKey{}, kerr(errorcode.KRB_AP_ERR_SKEW, "clock skew too great (%s)", d.Round(time.Second))
			}
			return replyKey{key: ek, etype: k.Etype, kvno: k.KVNO, salt: k.Salt}, nil
		}
	}
	x.Dir.KerberosPreauthFailed(ctx, client, remote, "wrong password")
	return replyKey{}, kerr(errorcode.KDC_ERR_PREAUTH_FAILED, "pre-authentication failed")
}

func etypeInfo(etype int32, salt string) types.ETypeInfo2Entry {
	e := types.ETypeInfo2Entry{EType: etype}
	if salt != "" {
		e.Salt = salt
	}
	return e
}

// lifetimes computes a ticket's end and renew-till ([RFC 4120] 3.1.3): till capped at
// maxAge (and at cap, when set); RENEWABLE as asked, or RENEWABLE-OK when the end had to
// be cut, with renew-till within MaxRenewAge and, for RENEWABLE-OK, the asked till.
func (x *Exchange) lifetimes(opts *asn1.BitString, till, rtime, now time.Time, maxAge time.Duration, cap time.Time) (end, renewTill time.Time) {
	end = now.Add(maxAge)
	if !till.IsZero() && till.Year() > 1970 && till.Before(end) {
		end = till
	}
	if !cap.IsZero() && cap.Before(end) {
		end = cap
	}
	renewMax := now.Add(x.Policy.MaxRenewAge)
	switch {
	case types.IsFlagSet(opts, flags.Renewable):
		renewTill = renewMax
		if !rtime.IsZero() && rtime.Year() > 1970 && rtime.Before(renewTill) {
			renewTill = rtime
		}
	case types.IsFlagSet(opts, optRenewableOK) && till.After(end):
		renewTill = till
		if renewMax.Before(renewTill) {
			renewTill = renewMax
		}
	}
	if !renewTill.IsZero() && !renewTill.After(end) {
		renewTill = time.Time{}
	}
	return end.Truncate(time.Second), renewTill.Truncate(time.Second)
}

// issue makes a ticket for service, encrypted in its strongest allowed key, with a new
// session key of the first type the client asked for that the service allows.
// With PAC buffers, the ticket carries them signed: as a TGT's when the service is
// krbtgt, else as a service ticket's (signed with kdcKey, krbtgt's key).
func (x *Exchange) issue(service *directory.KerberosPrincipal, sname, cname types.PrincipalName, clientEtypes []int32, tflags asn1.BitString,
	auth, start, end, renewTill time.Time, bufs []pac.Buffer, kdcKey directory.KerberosKey) (messages.Ticket, types.EncryptionKey, error) {
	skey, err := ticketKey(service)
	if err != nil {
		return messages.Ticket{}, types.EncryptionKey{}, err
	}
	session, err := x.sessionKey(service, clientEtypes)
	if err != nil {
		return messages.Ticket{}, types.EncryptionKey{}, err
	}
	etp := messages.EncTicketPart{Flags: tflags, Key: session, CRealm: x.Realm, CName: cname,
		Transited: messages.TransitedEncoding{TRType: 1, Contents: []byte{}}, AuthTime: auth, StartTime: start, EndTime: end, RenewTill: renewTill}
	if bufs != nil {
		if err := x.signPAC(&etp, bufs, skey, kdcKey, service.TicketGranting); err != nil {
			return messages.Ticket{}, types.EncryptionKey{}, err
		}
	}
	ed, err := x.seal(types.EncryptionKey{KeyType: skey.Etype, KeyValue: skey.Value}, keyusage.KDC_REP_TICKET, krbmsg.EncTicketPart(&etp), skey.KVNO, true)
	if err != nil {
		return messages.Ticket{}, types.EncryptionKey{}, err
	}
	return messages.Ticket{TktVNO: iana.PVNO, Realm: x.Realm, SName: sname, EncPart: ed}, session, nil
}

// allowed returns the encryption types a service accepts: its
// msDS-SupportedEncryptionTypes, or AES when unset (krbtgt and the domain default).
func allowed(p *directory.KerberosPrincipal) map[int32]bool {
	set := p.Enctypes
	if set&(directory.EnctypeRC4|directory.EnctypeAES128|directory.EnctypeAES256) == 0 {
		set = directory.EnctypeAES128 | directory.EnctypeAES256
	}
	m := map[int32]bool{}
	if set&directory.EnctypeAES256 != 0 {
		m[krbkey.EtypeAES256CTSHMACSHA] = true
	}
	if set&directory.EnctypeAES128 != 0 {
		m[krbkey.EtypeAES128CTSHMACSHA] = true
	}
	if set&directory.EnctypeRC4 != 0 {
		m[krbkey.EtypeRC4HMAC] = true
	}
	return m
}

// ticketKey is the service's strongest key among the types it allows.
func ticketKey(p *directory.KerberosPrincipal) (directory.KerberosKey, error) {
	ok := allowed(p)
	for _, e := range []int32{krbkey.EtypeAES256CTSHMACSHA, krbkey.EtypeAES128CTSHMACSHA, krbkey.EtypeRC4HMAC} {
		if k, has := p.Key(e); has && ok[e] {
			return k, nil
		}
	}
	return directory.KerberosKey{}, kerr(errorcode.KDC_ERR_ETYPE_NOSUPP, "%s has no key of a type its msDS-SupportedEncryptionTypes allows", p.SAM)
}

// sessionKey draws a key of the first type the client lists that the service allows
// (AES session keys also for an RC4 service, as AES-SK allows).
func (x *Exchange) sessionKey(service *directory.KerberosPrincipal, clientEtypes []int32) (types.EncryptionKey, error) {
	ok := allowed(service)
	ok[krbkey.EtypeAES256CTSHMACSHA], ok[krbkey.EtypeAES128CTSHMACSHA] = true, true
	for _, e := range clientEtypes {
		if !ok[e] {
			continue
		}
		et, err := crypto.GetEtype(e)
		if err != nil {
			continue
		}
		b := make([]byte, et.GetKeyByteSize())
		if _, err := io.ReadFull(x.Rand, b); err != nil {
			return types.EncryptionKey{}, err
		}
		return types.EncryptionKey{KeyType: e, KeyValue: et.RandomToKey(b)}, nil
	}
	return types.EncryptionKey{}, kerr(errorcode.KDC_ERR_ETYPE_NOSUPP, "none of the client's encryption types %v is allowed", clientEtypes)
}
