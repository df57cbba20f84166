package kdc

import (
	"context"
	"crypto/hmac"
	"errors"
	"strings"
	"time"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"gmsa/internal/directory"
	"gmsa/internal/krbmsg"
	"gmsa/internal/pac"
)

// verifyBodyChecksum checks the authenticator's checksum over the raw req-body with the
// TGT's session key ([RFC 4120] 7.2.2 key usage 6): HMAC-SHA1-96 for AES keys, gokrb5
// for the rest.
func (x *Exchange) verifyBodyChecksum(key types.EncryptionKey, c types.Checksum, body []byte) bool {
	const usage = keyusage.TGS_REQ_PA_TGS_REQ_AP_REQ_AUTHENTICATOR_CHKSUM
	if isAES(key.KeyType) && c.CksumType == checksumType(key.KeyType) {
		sum, err := x.checksumKey(key, usage, body, false)
		return err == nil && hmac.Equal(sum, c.Checksum)
	}
	et, err := crypto.GetChksumEtype(c.CksumType)
	return err == nil && et.VerifyChecksum(key.KeyValue, body, c.Checksum, usage)
}

// decryptTicket decrypts a ticket's part under a long-term key, into a value apart
// from the ticket (gokrb5's Ticket would re-marshal its clear part).
func (x *Exchange) decryptTicket(t *messages.Ticket, k directory.KerberosKey) (messages.EncTicketPart, error) {
	b, err := x.open(types.EncryptionKey{KeyType: k.Etype, KeyValue: k.Value}, keyusage.KDC_REP_TICKET, t.EncPart)
	if err != nil {
		return messages.EncTicketPart{}, err
	}
	return krbmsg.ParseEncTicketPart(b)
}

// tgs answers a TGS-REQ ([RFC 4120] 3.3): the TGT in PA-TGS-REQ is decrypted with the
// krbtgt key of its kvno, the authenticator checked (its checksum over the raw
// req-body when there is one: AD accepts requests without, as impacket sends them),
// and a ticket issued for the service, or the TGT renewed.
func (x *Exchange) tgs(ctx context.Context, raw []byte, remote string, now time.Time) ([]byte, error) {
	fields, rawBody, err := krbmsg.ParseKDCReq(raw, krbmsg.AppTGSReq)
	if err != nil {
		return nil, kerr(errorcode.KDC_ERR_BADOPTION, "malformed TGS-REQ")
	}
	req := messages.TGSReq{KDCReqFields: fields}
	body := req.ReqBody
	var ap *messages.APReq
	for _, pa := range req.PAData {
		if pa.PADataType == patype.PA_TGS_REQ {
			a, err := krbmsg.ParseAPReq(pa.PADataValue)
			if err != nil {
				return nil, kerr(errorcode.KRB_AP_ERR_MSG_TYPE, "malformed PA-TGS-REQ")
			}
			ap = &a
		}
	}
	if ap == nil {
		return nil, kerr(errorcode.KDC_ERR_PADATA_TYPE_NOSUPP, "a TGS-REQ needs PA-TGS-REQ")
	}
	tgt := ap.Ticket
	if !strings.EqualFold(tgt.Realm, x.Realm) || len(tgt.SName.NameString) != 2 || !strings.EqualFold(tgt.SName.NameString[0], "krbtgt") {
		return nil, kerr(errorcode.KRB_AP_ERR_NOT_US, "the ticket in PA-TGS-REQ is not a TGT of %s", x.Realm)
	}
	krbtgt, err := x.Dir.KerberosService(ctx, []string{"krbtgt", x.Realm})
	if err != nil {
		return nil, err
	}
	var key *directory.KerberosKey
	for _, k := range append(append([]directory.KerberosKey{}, krbtgt.Keys...), krbtgt.OldKeys...) {
		if k.Etype == tgt.EncPart.EType && int(k.KVNO) == tgt.EncPart.KVNO {
			key = &k
			break
		}
	}
	if key == nil {
		return nil, kerr(errorcode.KRB_AP_ERR_BADKEYVER, "no krbtgt key of version %d and type %d", tgt.EncPart.KVNO, tgt.EncPart.EType)
	}
	etp, err := x.decryptTicket(&tgt, *key)
	if err != nil {
		return nil, kerr(errorcode.KRB_AP_ERR_BAD_INTEGRITY, "the TGT does not decrypt")
	}
	b, err := x.openKey(etp.Key, keyusage.TGS_REQ_PA_TGS_REQ_AP_REQ_AUTHENTICATOR, ap.EncryptedAuthenticator, false)
	if err != nil {
		return nil, kerr(errorcode.KRB_AP_ERR_BAD_INTEGRITY, "the authenticator does not decrypt")
	}
	auth, err := krbmsg.ParseAuthenticator(b)
	if err != nil {
		return nil, kerr(errorcode.KRB_AP_ERR_BAD_INTEGRITY, "the authenticator does not decode")
	}
	if !strings.EqualFold(auth.CRealm, etp.CRealm) || !auth.CName.Equal(etp.CName) {
		return nil, kerr(errorcode.KRB_AP_ERR_BADMATCH, "the authenticator's client is not the ticket's")
	}
	if d := now.Sub(auth.CTime); d > x.Policy.MaxClockSkew || d < -x.Policy.MaxClockSkew {
		return nil, kerr(errorcode.KRB_AP_ERR_SKEW, "clock skew too great (%s)", d.Round(time.Second))
	}
	if auth.Cksum.CksumType != 0 && !x.verifyBodyChecksum(etp.Key, auth.Cksum, rawBody) {
		return nil, kerr(errorcode.KRB_AP_ERR_MODIFIED, "the authenticator's checksum does not cover this request")
	}
	opts := &body.KDCOptions
	renew := types.IsFlagSet(opts, optRenew)
	if !renew && now.After(etp.EndTime) {
		return nil, kerr(errorcode.KRB_AP_ERR_TKT_EXPIRED, "the TGT expired at %s", etp.EndTime.UTC().Format(time.RFC3339))
	}
	clientName, _, err := principalName(etp.CName)
	if err != nil {
		return nil, err
	}
	client, err := x.Dir.KerberosClient(ctx, clientName, false, false)
	if errors.Is(err, directory.ErrNotFound) || err == nil && (client.Disabled || client.LockedOut) {
		return nil, kerr(errorcode.KDC_ERR_CLIENT_REVOKED, "%s is gone, disabled or locked out", clientName)
	}
	if err != nil {
		return nil, err
	}
	keep, tgtOnly, requestor, err := x.ticketPAC(&etp, *key)
	if err != nil {
		return nil, kerr(errorcode.KDC_ERR_TGT_REVOKED, "%v", err)
	}
	if err := checkRequestor(client, requestor); err != nil {
		return nil, err
	}
	kdcKey, err := ticketKey(krbtgt)
	if err != nil {
		return nil, err
	}

	sname, cname, authTime := body.SName, etp.CName, etp.AuthTime
	replyKey, usage := etp.Key, uint32(keyusage.TGS_REP_ENCPART_SESSION_KEY)
	if auth.SubKey.KeyType != 0 {
		replyKey, usage = auth.SubKey, keyusage.TGS_REP_ENCPART_AUTHENTICATOR_SUB_KEY
	}
	tflags := types.NewKrbFlags()
	if types.IsFlagSet(&etp.Flags, flags.PreAuthent) {
		types.SetFlag(&tflags, flags.PreAuthent)
	}
	if types.IsFlagSet(opts, flags.Forwardable) && types.IsFlagSet(&etp.Flags, flags.Forwardable) {
		types.SetFlag(&tflags, flags.Forwardable)
	}
	var service *directory.KerberosPrincipal
	var start, end, renewTill time.Time
	var bufs []pac.Buffer
	var padata types.PADataSequence
	issuedTo := client
	s4u, err := findS4USelf(req.PAData, etp.Key, replyKey)
	if err != nil {
		return nil, err
	}
	switch {
	case renew:
		// RENEW ([RFC 4120] 3.3.3): the ticket in PA-TGS-REQ is renewed, for its own
		// service, up to its renew-till.
		if !types.IsFlagSet(&etp.Flags, flags.Renewable) || now.After(etp.RenewTill) {
			return nil, kerr(errorcode.KRB_AP_ERR_TKT_EXPIRED, "the ticket is not renewable, or past its renew-till")
		}
		sname = tgt.SName
		service = krbtgt
		start, end = now, now.Add(etp.EndTime.Sub(etp.StartTime))
		if end.After(etp.RenewTill) {
			end = etp.RenewTill
		}
		renewTill = etp.RenewTill
		types.SetFlag(&tflags, flags.Renewable)
		bufs = append(append([]pac.Buffer(nil), keep...), tgtOnly...)
	case types.IsFlagSet(opts, optCnameInAddlTkt): // S4U2Proxy
		evidence, evBufs, err := x.s4u2proxy(ctx, &req, client, kdcKey)
		if err != nil {
			return nil, err
		}
		if service, err = x.Dir.KerberosService(ctx, sname.NameString); err != nil {
			return nil, unknown(err, errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN, "service %s not found", strings.Join(sname.NameString, "/"))
		}
		cname, authTime, bufs = evidence.CName, evidence.AuthTime, evBufs
		start = now
		end, _ = x.lifetimes(opts, body.Till, time.Time{}, now, x.Policy.MaxServiceAge, evidence.EndTime)
		tflags = types.NewKrbFlags()
		types.SetFlag(&tflags, flags.Forwardable)
		if name, _, err := principalName(cname); err == nil {
			if u, err := x.Dir.KerberosClient(ctx, name, false, false); err == nil {
				issuedTo = u
			}
		}
	case s4u != nil: // S4U2Self
		var user *directory.KerberosPrincipal
		if user, cname, bufs, tflags, padata, err = x.s4u2self(ctx, &req, s4u, client, replyKey, now); err != nil {
			return nil, err
		}
		service, authTime, start = client, now, now
		end, _ = x.lifetimes(opts, body.Till, time.Time{}, now, x.Policy.MaxServiceAge, etp.EndTime)
		issuedTo = user
	default:
		if service, err = x.Dir.KerberosService(ctx, sname.NameString); err != nil {
			return nil, unknown(err, errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN, "service %s not found", strings.Join(sname.NameString, "/"))
		}
		if service.Disabled && service.SAM != "krbtgt" { // krbtgt is disabled as an account, as in AD
			return nil, kerr(errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN, "service %s is disabled", strings.Join(sname.NameString, "/"))
		}
		maxAge := x.Policy.MaxServiceAge
		if service.TicketGranting {
			maxAge = x.Policy.MaxTicketAge
		}
		start = now
		end, renewTill = x.lifetimes(opts, body.Till, body.RTime, now, maxAge, etp.EndTime)
		if !renewTill.IsZero() {
			if !types.IsFlagSet(&etp.Flags, flags.Renewable) {
				renewTill = time.Time{}
			} else {
				if renewTill.After(etp.RenewTill) {
					renewTill = etp.RenewTill
				}
				types.SetFlag(&tflags, flags.Renewable)
			}
		}
		bufs = keep
		if service.TicketGranting { // a TGT again: its PAC keeps its TGT-only buffers
			bufs = append(append([]pac.Buffer(nil), keep...), tgtOnly...)
		}
	}
	t, session, err := x.issue(service, sname, cname, body.EType, tflags, authTime, start, end, renewTill, bufs, kdcKey)
	if err != nil {
		return nil, err
	}
	enc := messages.EncKDCRepPart{Key: session, LastReqs: []messages.LastReq{{LRType: 0, LRValue: now}}, Nonce: body.Nonce,
		Flags: tflags, AuthTime: authTime, StartTime: start, EndTime: end, RenewTill: renewTill, SRealm: x.Realm, SName: sname}
	encPart, err := x.seal(replyKey, usage, krbmsg.EncKDCRepPart(&enc, krbmsg.AppEncTGSRepPart), 0, false)
	if err != nil {
		return nil, err
	}
	rep := messages.TGSRep{KDCRepFields: messages.KDCRepFields{PVNO: iana.PVNO, MsgType: msgtype.KRB_TGS_REP, PAData: padata, CRealm: x.Realm,
		CName: cname, Ticket: t, EncPart: encPart}}
	x.Dir.KerberosTicketIssued(issuedTo, service, false, remote)
	return krbmsg.KDCRep(&rep.KDCRepFields, krbmsg.AppTGSRep), nil
}
