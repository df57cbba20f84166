package kdc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/iana"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"gmsa/internal/directory"
	"gmsa/internal/gss"
	"gmsa/internal/ntsec"
	"gmsa/internal/pac"
)

// Protocol versions of a kpasswd request ([RFC 3244] 2).
const (
	kpasswdChange = 0x0001 // the new password alone (the original change protocol)
	kpasswdSet    = 0xff80 // ChangePasswdData: a new password, and a target to set it for
)

// Result codes of a kpasswd reply ([RFC 3244] 2).
const (
	kpasswdSuccess       = 0
	kpasswdMalformed     = 1
	kpasswdHardError     = 2
	kpasswdAuthError     = 3
	kpasswdSoftError     = 4
	kpasswdAccessDenied  = 5
	kpasswdBadVersion    = 6
	kpasswdInitialNeeded = 7
)

// Kpasswd serves the Kerberos change/set password protocol ([RFC 3244], [MS-KILE]
// 3.1.5.12 and 3.3.5.8) on port 464: a user or computer changes its own password with a
// ticket to kadmin/changepw from an AS exchange (it knew the old password), or a
// principal with the right to reset passwords sets another account's. Every decision
// is the directory's.
type Kpasswd struct {
	x        *Exchange
	acceptor *gss.Acceptor
	addr     netip.Addr // the server's address, for the replies' s-address
}

// NewKpasswd returns the kpasswd service of the KDC x, answering from addr.
func NewKpasswd(x *Exchange, addr netip.Addr) *Kpasswd {
	k := &Kpasswd{x: x, addr: addr.Unmap()}
	k.acceptor = &gss.Acceptor{Realm: x.Realm, Key: k.serviceKey, MaxSkew: x.Policy.MaxClockSkew, Now: x.Now, Rand: x.Rand,
		Replay: &gss.ReplayCache{Skew: x.Policy.MaxClockSkew, Max: 1 << 16}}
	return k
}

// serviceKey is krbtgt's key a kadmin/changepw ticket was encrypted with.
func (k *Kpasswd) serviceKey(sname types.PrincipalName, realm string, etype int32, kvno int) ([]byte, error) {
	if len(sname.NameString) != 2 || !strings.EqualFold(sname.NameString[0], "kadmin") || !strings.EqualFold(sname.NameString[1], "changepw") {
		return nil, fmt.Errorf("the ticket is for %s, not kadmin/changepw", strings.Join(sname.NameString, "/"))
	}
	key, err := k.changepwKey(context.Background(), etype, kvno)
	if err != nil {
		return nil, err
	}
	return key.Value, nil
}

func (k *Kpasswd) changepwKey(ctx context.Context, etype int32, kvno int) (directory.KerberosKey, error) {
	p, err := k.x.Dir.KerberosService(ctx, []string{"kadmin", "changepw"})
	if err != nil {
		return directory.KerberosKey{}, err
	}
	for _, key := range append(append([]directory.KerberosKey{}, p.Keys...), p.OldKeys...) {
		if key.Etype == etype && int(key.KVNO) == kvno {
			return key, nil
		}
	}
	return directory.KerberosKey{}, fmt.Errorf("no kadmin/changepw key of version %d and type %d", kvno, etype)
}

// kpasswdError is a refusal before the request's AP-REQ was accepted: a framed
// KRB-ERROR whose e-data holds the result.
type kpasswdError struct {
	result uint16
	text   string
}

func (e *kpasswdError) Error() string { return e.text }

// TooBig is what a UDP client gets instead of a reply too large for a datagram.
func (k *Kpasswd) TooBig() []byte {
	return k.framedError(kpasswdHardError, "the reply is too large for UDP: use TCP")
}

// Handle answers one kpasswd request (without the TCP length prefix).
func (k *Kpasswd) Handle(ctx context.Context, req []byte, remote string) (reply []byte) {
	defer func() {
		if r := recover(); r != nil { // gokrb5's reflective decoders panic on some input
			reply = k.framedError(kpasswdMalformed, "malformed request")
		}
	}()
	reply, err := k.handle(ctx, req, remote)
	if err != nil {
		var ke *kpasswdError
		if !errors.As(err, &ke) {
			ke = &kpasswdError{kpasswdHardError, err.Error()}
		}
		if k.x.Log != nil {
			k.x.Log.Debug("kpasswd request refused", "remote", remote, "result", ke.result, "reason", ke.text)
		}
		return k.framedError(ke.result, ke.text)
	}
	return reply
}

func (k *Kpasswd) handle(ctx context.Context, req []byte, remote string) ([]byte, error) {
	if len(req) < 6 || int(binary.BigEndian.Uint16(req)) != len(req) {
		return nil, &kpasswdError{kpasswdMalformed, "the request's length field does not match its size"}
	}
	version, apLen := binary.BigEndian.Uint16(req[2:]), int(binary.BigEndian.Uint16(req[4:]))
	if version != kpasswdChange && version != kpasswdSet {
		return nil, &kpasswdError{kpasswdBadVersion, fmt.Sprintf("protocol version %#x is neither 1 nor 0xff80", version)}
	}
	if apLen == 0 || 6+apLen >= len(req) {
		return nil, &kpasswdError{kpasswdMalformed, "the AP-REQ length runs past the request"}
	}
	v, err := k.acceptor.Verify(req[6 : 6+apLen])
	if err != nil {
		return nil, &kpasswdError{kpasswdAuthError, err.Error()}
	}
	if err := k.checkPAC(ctx, v); err != nil {
		return nil, &kpasswdError{kpasswdAuthError, err.Error()}
	}
	key := v.Ticket.Key
	if v.Authenticator.SubKey.KeyType != 0 {
		key = v.Authenticator.SubKey
	}
	result, text := k.change(ctx, v, version, key, req[6+apLen:], remote)
	return k.reply(v, key, result, text)
}

// checkPAC refuses a TGT presented as a kpasswd ticket (it shares krbtgt's key; only
// TGTs carry PAC_REQUESTOR) and a ticket whose client no longer names the account it
// was issued to.
func (k *Kpasswd) checkPAC(ctx context.Context, v *gss.Verified) error {
	raw, err := findPAC(&v.Ticket)
	if err != nil {
		return err
	}
	key, err := k.changepwKey(ctx, v.APReq.Ticket.EncPart.EType, v.APReq.Ticket.EncPart.KVNO)
	if err != nil {
		return err
	}
	s, err := k.x.signer(key)
	if err != nil {
		return err
	}
	if err := pac.Verify(raw, s, s); err != nil {
		return err
	}
	bufs, err := pac.Decode(raw)
	if err != nil {
		return err
	}
	var sid ntsec.SID
	for _, b := range bufs {
		switch b.Type {
		case pac.TypeRequestor:
			return errors.New("a TGT may not be used as a ticket to kpasswd")
		case pac.TypeUPNDNSInfo:
			if sid, err = pac.UPNDNSInfoSID(b.Data); err != nil {
				return err
			}
		}
	}
	name, _, err := principalName(v.Ticket.CName)
	if err != nil {
		return err
	}
	client, err := k.x.Dir.KerberosClient(ctx, name, false, false)
	if err != nil || client.SID != sid.String() {
		return fmt.Errorf("the ticket's client %s no longer names the account it was issued to", name)
	}
	return nil
}

// changePasswdData is ChangePasswdData ([RFC 3244] 2).
type changePasswdData struct {
	NewPasswd []byte              `asn1:"explicit,tag:0"`
	TargName  types.PrincipalName `asn1:"optional,explicit,tag:1"`
	TargRealm string              `asn1:"generalstring,optional,explicit,tag:2"`
}

// change decrypts the KRB-PRIV and asks the directory to change or set the password;
// it returns the reply's result code and text.
func (k *Kpasswd) change(ctx context.Context, v *gss.Verified, version uint16, key types.EncryptionKey, privBytes []byte, remote string) (uint16, string) {
	var priv messages.KRBPriv
	if err := priv.Unmarshal(privBytes); err != nil {
		return kpasswdMalformed, "the KRB-PRIV does not decode"
	}
	plain, err := k.x.openKey(key, keyusage.KRB_PRIV_ENCPART, priv.EncPart, false)
	if err != nil {
		return kpasswdAuthError, "the KRB-PRIV does not decrypt"
	}
	var part messages.EncKrbPrivPart
	if err := part.Unmarshal(plain); err != nil {
		return kpasswdMalformed, "the KRB-PRIV's part does not decode"
	}
	newPassword, target := string(part.UserData), ""
	var targetName []string
	if version == kpasswdSet {
		var data changePasswdData
		if rest, err := asn1.Unmarshal(part.UserData, &data); err != nil || len(rest) != 0 {
			return kpasswdMalformed, "ChangePasswdData does not decode"
		}
		newPassword = string(data.NewPasswd)
		if (len(data.TargName.NameString) == 0) != (data.TargRealm == "") {
			return kpasswdMalformed, "the target's name and realm must be both present or both absent"
		}
		if data.TargRealm != "" {
			if !strings.EqualFold(data.TargRealm, k.x.Realm) {
				return kpasswdSoftError, fmt.Sprintf("this DC sets passwords in %s, not %s", k.x.Realm, data.TargRealm)
			}
			targetName = data.TargName.NameString
			target = strings.Join(targetName, "/")
		}
	}
	name, _, _ := principalName(v.Ticket.CName)
	req, err := k.x.Dir.KerberosLogon(ctx, &directory.Requester{Protection: directory.ProtectionConfidentiality, Remote: remote}, name)
	if err != nil {
		return kpasswdAuthError, "the ticket's client may not log on"
	}
	var ref string // the account to set the password of; "" changes the client's own
	if target != "" {
		var p *directory.KerberosPrincipal
		var lerr error
		if len(targetName) == 1 {
			p, lerr = k.x.Dir.KerberosClient(ctx, targetName[0], false, true)
		} else { // a service principal names its account
			p, lerr = k.x.Dir.KerberosService(ctx, targetName)
		}
		if lerr != nil {
			return kpasswdSoftError, fmt.Sprintf("no account has the principal name %s", target)
		}
		if p.SID != req.Token.User.String() { // naming oneself is a change (gokrb5's client does)
			ref = p.GUID.String()
		}
	}
	if ref == "" {
		// A change needs a ticket from an AS exchange, which needed the old password.
		if !types.IsFlagSet(&v.Ticket.Flags, flags.Initial) {
			return kpasswdInitialNeeded, "changing a password needs an initial ticket (kinit with the old password)"
		}
		_, err = k.x.Dir.ChangeOwnPassword(ctx, req, newPassword)
	} else {
		_, err = k.x.Dir.SetPassword(ctx, req, ref, newPassword)
	}
	switch {
	case err == nil:
		return kpasswdSuccess, "Password changed"
	case errors.Is(err, directory.ErrAccessDenied):
		return kpasswdAccessDenied, err.Error()
	case errors.Is(err, directory.ErrNotFound), errors.Is(err, directory.ErrConstraint), errors.Is(err, directory.ErrInvalid):
		return kpasswdSoftError, err.Error()
	}
	return kpasswdHardError, err.Error()
}

// reply is the AP-REP and a KRB-PRIV with the result under the client's key, carrying
// the sequence number the AP-REP announced ([RFC 3244] 2; MIT checks it).
func (k *Kpasswd) reply(v *gss.Verified, key types.EncryptionKey, result uint16, text string) ([]byte, error) {
	var b [4]byte
	if _, err := io.ReadFull(k.x.Rand, b[:]); err != nil {
		return nil, err
	}
	seq := int64(binary.BigEndian.Uint32(b[:]) & 0x3fffffff)
	apRep, err := k.acceptor.APRep(v.Ticket.Key, v.Authenticator, uint64(seq))
	if err != nil {
		return nil, err
	}
	now := k.x.Now().UTC()
	addr := types.HostAddress{AddrType: 2, Address: []byte{0, 0, 0, 0}} // IPv4
	if k.addr.Is4() {
		a := k.addr.As4()
		addr.Address = a[:]
	}
	part := messages.EncKrbPrivPart{UserData: resultData(result, text), Timestamp: now.Truncate(time.Second), Usec: now.Nanosecond() / 1000,
		SequenceNumber: seq, SAddress: addr}
	inner, err := asn1.Marshal(part)
	if err != nil {
		return nil, err
	}
	ed, err := k.x.seal(key, keyusage.KRB_PRIV_ENCPART, appTagged(inner, 28), 0, false)
	if err != nil {
		return nil, err
	}
	priv := messages.KRBPriv{PVNO: iana.PVNO, MsgType: msgtype.KRB_PRIV, EncPart: ed}
	privBytes, err := priv.Marshal()
	if err != nil {
		return nil, err
	}
	return frame(apRep, privBytes), nil
}

// framedError is a refusal before an AP-REQ was accepted: a KRB-ERROR after a zero
// AP-REP length, its e-data the result code and text.
func (k *Kpasswd) framedError(result uint16, text string) []byte {
	now := k.x.Now().UTC()
	m := messages.KRBError{PVNO: iana.PVNO, MsgType: msgtype.KRB_ERROR, STime: now.Truncate(time.Second), Susec: now.Nanosecond() / 1000,
		ErrorCode: errorcode.KRB_ERR_GENERIC, Realm: k.x.Realm, SName: types.PrincipalName{NameType: 2, NameString: []string{"kadmin", "changepw"}},
		EText: text, EData: resultData(result, text)}
	b, err := m.Marshal()
	if err != nil {
		return nil
	}
	return frame(nil, b)
}

// resultData is a reply's result: a big-endian code, then the text ([RFC 3244] 2).
func resultData(result uint16, text string) []byte {
	if len(text) > 512 {
		text = text[:512]
	}
	return append(binary.BigEndian.AppendUint16(nil, result), text...)
}

// frame builds a reply: its length, version 1, the AP-REP's length, the AP-REP, then
// the KRB-PRIV or KRB-ERROR.
func frame(apRep, rest []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(6+len(apRep)+len(rest)))
	b = binary.BigEndian.AppendUint16(b, kpasswdChange)
	b = binary.BigEndian.AppendUint16(b, uint16(len(apRep)))
	return append(append(b, apRep...), rest...)
}

// appTagged wraps DER in an [APPLICATION n] constructed tag.
func appTagged(b []byte, n int) []byte {
	out, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassApplication, Tag: n, IsCompound: true, Bytes: b})
	return out
}
