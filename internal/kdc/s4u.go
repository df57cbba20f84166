package kdc

import (
	"context"
	"encoding/binary"
	"strings"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"gmsa/internal/directory"
	"gmsa/internal/pac"
)

// S4U pre-authentication data and key usages ([MS-SFU] 2.2, [RFC 4120] registry).
const (
	paForUser          = 129
	paS4UX509User      = 130
	usageS4URequest    = 26
	usageS4UReply      = 27
	optCnameInAddlTkt  = 14
	s4uUseReplyKeyBit  = 2 // KRB5_S4U_OPTS_USE_REPLY_KEY_USAGE (0x20000000)
	checksumHMACMD5    = -138
	checksumUsageForPA = 17
)

// s4uUserID is S4UUserID ([MS-SFU] 2.2.2).
type s4uUserID struct {
	Nonce       int64               `asn1:"explicit,tag:0"`
	CName       types.PrincipalName `asn1:"explicit,optional,tag:1"`
	CRealm      string              `asn1:"generalstring,explicit,tag:2"`
	SubjectCert []byte              `asn1:"explicit,optional,tag:3"`
	Options     asn1.BitString      `asn1:"explicit,optional,tag:4"`
}

// paS4UX509 is PA-S4U-X509-USER, keeping the user-id's bytes its checksum covers.
type paS4UX509 struct {
	UserID   asn1.RawValue  `asn1:"explicit,tag:0"`
	Checksum types.Checksum `asn1:"explicit,tag:1"`
}

type paS4UX509Out struct {
	UserID   s4uUserID      `asn1:"explicit,tag:0"`
	Checksum types.Checksum `asn1:"explicit,tag:1"`
}

// paForUserData is PA-FOR-USER ([MS-SFU] 2.2.1).
type paForUserData struct {
	UserName    types.PrincipalName `asn1:"explicit,tag:0"`
	UserRealm   string              `asn1:"generalstring,explicit,tag:1"`
	Cksum       types.Checksum      `asn1:"explicit,tag:2"`
	AuthPackage string              `asn1:"generalstring,explicit,tag:3"`
}

// s4uSelf is an S4U2Self request: the user asked for, and the PA-S4U-X509-USER to echo.
type s4uSelf struct {
	user    types.PrincipalName
	x509    *s4uUserID // nil when only PA-FOR-USER came
	useRepl bool
}

// findS4USelf reads PA-S4U-X509-USER (checked with the reply key, as MIT sends it) or
// PA-FOR-USER (HMAC-MD5 with the TGT session key, as Windows sends it); nil when the
// request is not S4U2Self.
func findS4USelf(pas types.PADataSequence, session, replyKey types.EncryptionKey) (*s4uSelf, error) {
	var forUser, x509 []byte
	for _, pa := range pas {
		switch pa.PADataType {
		case paForUser:
			forUser = pa.PADataValue
		case paS4UX509User:
			x509 = pa.PADataValue
		}
	}
	if len(x509) > 0 {
		var p paS4UX509
		if _, err := asn1.Unmarshal(x509, &p); err != nil {
			return nil, kerr(errorcode.KDC_ERR_PADATA_TYPE_NOSUPP, "malformed PA-S4U-X509-USER")
		}
		var id s4uUserID
		if _, err := asn1.Unmarshal(p.UserID.Bytes, &id); err != nil {
			return nil, kerr(errorcode.KDC_ERR_PADATA_TYPE_NOSUPP, "malformed S4UUserID")
		}
		et, err := crypto.GetChksumEtype(p.Checksum.CksumType)
		if err != nil || !et.VerifyChecksum(replyKey.KeyValue, p.UserID.Bytes, p.Checksum.Checksum, usageS4URequest) {
			return nil, kerr(errorcode.KRB_AP_ERR_MODIFIED, "the PA-S4U-X509-USER checksum does not verify")
		}
		if len(id.CName.NameString) == 0 {
			return nil, kerr(errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN, "S4U2Self by certificate is not supported")
		}
		return &s4uSelf{user: id.CName, x509: &id, useRepl: types.IsFlagSet(&id.Options, s4uUseReplyKeyBit)}, nil
	}
	if len(forUser) > 0 {
		var p paForUserData
		if _, err := asn1.Unmarshal(forUser, &p); err != nil {
			return nil, kerr(errorcode.KDC_ERR_PADATA_TYPE_NOSUPP, "malformed PA-FOR-USER")
		}
		data := binary.LittleEndian.AppendUint32(nil, uint32(p.UserName.NameType))
		for _, s := range p.UserName.NameString {
			data = append(data, s...)
		}
		data = append(append(data, p.UserRealm...), p.AuthPackage...)
		et, err := crypto.GetChksumEtype(checksumHMACMD5)
		if err != nil || p.Cksum.CksumType != checksumHMACMD5 || !et.VerifyChecksum(session.KeyValue, data, p.Cksum.Checksum, checksumUsageForPA) {
			return nil, kerr(errorcode.KRB_AP_ERR_MODIFIED, "the PA-FOR-USER checksum does not verify")
		}
		return &s4uSelf{user: p.UserName}, nil
	}
	return nil, nil
}

// s4u2self issues a ticket to the requesting service itself for another user
// ([MS-SFU] 3.2.5.1.2): the user's PAC with "Service asserted identity", forwardable
// only when the service is trusted to authenticate for delegation.
func (x *Exchange) s4u2self(ctx context.Context, req *messages.TGSReq, s *s4uSelf, requester *directory.KerberosPrincipal,
	replyKey types.EncryptionKey, now time.Time) (user *directory.KerberosPrincipal, cname types.PrincipalName, bufs []pac.Buffer, tflags asn1.BitString, padata types.PADataSequence, err error) {
	service, err := x.Dir.KerberosService(ctx, req.ReqBody.SName.NameString)
	if err != nil || service.GUID != requester.GUID {
		return nil, cname, nil, tflags, nil, kerr(errorcode.KDC_ERR_BADOPTION, "S4U2Self is for the requesting service's own name")
	}
	name, enterprise, err := principalName(s.user)
	if err != nil {
		return nil, cname, nil, tflags, nil, err
	}
	user, err = x.Dir.KerberosClient(ctx, name, enterprise, x.Policy.ImplicitDollar)
	if err != nil {
		return nil, cname, nil, tflags, nil, unknown(err, errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN, "user %s not found", name)
	}
	if user.Disabled || user.LockedOut {
		return nil, cname, nil, tflags, nil, kerr(errorcode.KDC_ERR_CLIENT_REVOKED, "%s is disabled or locked out", user.SAM)
	}
	cname = types.PrincipalName{NameType: nametype.KRB_NT_PRINCIPAL, NameString: []string{user.SAM}}
	if !enterprise {
		cname = s.user
	}
	if bufs, err = x.tgtBuffers(ctx, user, cname, now, true, true); err != nil {
		return nil, cname, nil, tflags, nil, err
	}
	bufs = bufs[:3]
	tflags = types.NewKrbFlags()
	if requester.TrustedToAuth && types.IsFlagSet(&req.ReqBody.KDCOptions, flags.Forwardable) {
		types.SetFlag(&tflags, flags.Forwardable)
	}
	if s.x509 != nil { // echo the user-id, checksummed with the reply key, as MIT requires
		id := *s.x509
		id.CName, id.CRealm = cname, x.Realm
		b, err := asn1.Marshal(id)
		if err != nil {
			return nil, cname, nil, tflags, nil, err
		}
		usage := uint32(usageS4URequest)
		if s.useRepl {
			usage = usageS4UReply
		}
		et, err := crypto.GetEtype(replyKey.KeyType)
		if err != nil {
			return nil, cname, nil, tflags, nil, err
		}
		sum, err := et.GetChecksumHash(replyKey.KeyValue, b, usage)
		if err != nil {
			return nil, cname, nil, tflags, nil, err
		}
		out, err := asn1.Marshal(paS4UX509Out{UserID: id, Checksum: types.Checksum{CksumType: checksumType(replyKey.KeyType), Checksum: sum[:et.GetHMACBitLength()/8]}})
		if err != nil {
			return nil, cname, nil, tflags, nil, err
		}
		padata = types.PADataSequence{{PADataType: paS4UX509User, PADataValue: out}}
	}
	return user, cname, bufs, tflags, padata, nil
}

// checksumType is the keyed checksum of an encryption type ([RFC 3961] 4, RFC 3962).
func checksumType(etype int32) int32 {
	switch etype {
	case 18:
		return 16
	case 17:
		return 15
	}
	return checksumHMACMD5
}

// s4u2proxy issues a ticket for a user to another service on behalf of the requesting
// service ([MS-SFU] 3.2.5.2): the evidence ticket (the user's ticket to the requester)
// must decrypt with the requester's key and be forwardable, and the target must be in
// the requester's msDS-AllowedToDelegateTo; the user's PAC comes from the evidence.
func (x *Exchange) s4u2proxy(ctx context.Context, req *messages.TGSReq, requester *directory.KerberosPrincipal, krbtgtKey directory.KerberosKey) (*messages.EncTicketPart, []pac.Buffer, error) {
	if len(req.ReqBody.AdditionalTickets) != 1 {
		return nil, nil, kerr(errorcode.KDC_ERR_BADOPTION, "S4U2Proxy needs one evidence ticket")
	}
	target := strings.Join(req.ReqBody.SName.NameString, "/")
	allowed := false
	for _, spn := range requester.AllowedToDelegateTo {
		allowed = allowed || strings.EqualFold(spn, target)
	}
	if !allowed {
		return nil, nil, kerr(errorcode.KDC_ERR_BADOPTION, "%s may not delegate to %s (msDS-AllowedToDelegateTo)", requester.SAM, target)
	}
	ev := req.ReqBody.AdditionalTickets[0]
	var key *directory.KerberosKey
	for _, k := range requester.Keys {
		if k.Etype == ev.EncPart.EType {
			key = &k
			break
		}
	}
	if key == nil {
		return nil, nil, kerr(errorcode.KRB_AP_ERR_BADKEYVER, "the evidence ticket is not under a key of %s", requester.SAM)
	}
	etp, err := x.decryptTicket(&ev, *key)
	if err != nil {
		return nil, nil, kerr(errorcode.KRB_AP_ERR_BAD_INTEGRITY, "the evidence ticket does not decrypt with %s's key", requester.SAM)
	}
	if !types.IsFlagSet(&etp.Flags, flags.Forwardable) {
		return nil, nil, kerr(errorcode.KDC_ERR_BADOPTION, "the evidence ticket is not forwardable")
	}
	bufs, err := x.evidencePAC(&etp, *key, krbtgtKey)
	if err != nil {
		return nil, nil, kerr(errorcode.KDC_ERR_BADOPTION, "evidence PAC: %v", err)
	}
	// The delegation is recorded in the PAC ([MS-PAC] 2.9): the target and the service
	// that delegated.
	bufs = append(bufs, pac.Buffer{Type: pac.TypeDelegationInfo, Data: pac.DelegationInfo(target, []string{requester.SAM + "@" + x.Realm})})
	return &etp, bufs, nil
}

// evidencePAC verifies a service ticket's PAC (server signature with the service's key,
// KDC signature with krbtgt's) and returns its buffers without signatures.
func (x *Exchange) evidencePAC(etp *messages.EncTicketPart, serviceKey, krbtgtKey directory.KerberosKey) ([]pac.Buffer, error) {
	raw, err := findPAC(etp)
	if err != nil {
		return nil, err
	}
	srv, err := x.signer(serviceKey)
	if err != nil {
		return nil, err
	}
	kdc, err := x.signer(krbtgtKey)
	if err != nil {
		return nil, err
	}
	if err := pac.Verify(raw, srv, kdc); err != nil {
		return nil, err
	}
	bufs, err := pac.Decode(raw)
	if err != nil {
		return nil, err
	}
	var keep []pac.Buffer
	for _, b := range bufs {
		switch b.Type {
		case pac.TypeServerChecksum, pac.TypeKDCChecksum, pac.TypeTicketChecksum, pac.TypeFullChecksum, pac.TypeAttributes, pac.TypeRequestor,
			pac.TypeDelegationInfo:
		default:
			keep = append(keep, b)
		}
	}
	return keep, nil
}
