package gss

import (
	"crypto/md5"
	"crypto/subtle"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	krbasn1 "github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/asnAppTag"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"gmsa/internal/krbkey"
)

// Kerberos key usages of the AP exchange ([RFC 4120] 7.5.1).
const (
	usageTicket        = 2
	usageAuthenticator = 11
	usageAPRepPart     = 12
)

// checksumGSS is the authenticator checksum type that carries GSS flags and channel
// bindings ([RFC 4121] 4.1.1).
const checksumGSS = 0x8003

// apOptionMutual is the mutual-required AP option ([RFC 4120] 5.5.1).
const apOptionMutual = 2

// ErrRejected is an AP-REQ the acceptor refuses; the wrapped text says why.
var ErrRejected = errors.New("gss: the Kerberos ticket was refused")

// ServiceKey returns the service's long-term key a ticket was encrypted with.
type ServiceKey func(sname types.PrincipalName, realm string, etype int32, kvno int) ([]byte, error)

// ChannelBindingPolicy says how the acceptor treats channel bindings ([MS-ADTS]
// 5.1.2.2; AD's LdapEnforceChannelBinding).
type ChannelBindingPolicy uint8

// The policies, by AD's setting values.
const (
	BindingsNever         ChannelBindingPolicy = iota // 0: not checked
	BindingsWhenSupported                             // 1: checked when the client sends them
	BindingsAlways                                    // 2: required
)

// Acceptor accepts Kerberos AP-REQs as a service of Realm.
type Acceptor struct {
	Realm    string
	Key      ServiceKey
	MaxSkew  time.Duration
	Now      func() time.Time
	Rand     io.Reader
	Replay   *ReplayCache // nil: no replay detection
	Bindings ChannelBindingPolicy
}

// Accepted is an established acceptor context and who the client is.
type Accepted struct {
	Context *Context
	Mech    asn1.ObjectIdentifier  // the OID the initiator used (krb5 or Microsoft's)
	Client  types.PrincipalName    // the ticket's client
	Realm   string                 // the client's realm
	Ticket  messages.EncTicketPart // the decrypted ticket, for its authorization data
	Reply   []byte                 // the AP-REP context token; nil when mutual authentication was not asked for
}

// Accept verifies an AP-REQ context token ([RFC 4121] 4.1; [RFC 4120] 3.2.3): the ticket
// under the service key, times within MaxSkew, the authenticator under the ticket's
// session key, its GSS checksum and channel bindings. appData is the channel's
// application data for bindings (tls-server-end-point), nil without TLS.
func (a *Acceptor) Accept(token, appData []byte) (acc *Accepted, err error) {
	defer decoderPanic(&err)
	oid, id, msg, err := parseKrb5Token(token)
	if err != nil {
		return nil, err
	}
	if id != tokAPReq {
		return nil, fmt.Errorf("%w: token identifier %x is not an AP-REQ", ErrMalformed, id)
	}
	v, err := a.Verify(msg)
	if err != nil {
		return nil, err
	}
	ap, etp, auth := v.APReq, v.Ticket, v.Authenticator
	reject := func(format string, args ...any) (*Accepted, error) {
		return nil, fmt.Errorf("%w: %s", ErrRejected, fmt.Sprintf(format, args...))
	}
	gssFlags, err := a.checkChecksum(auth.Cksum, appData)
	if err != nil {
		return reject("%v", err)
	}
	ctxKey := etp.Key
	if auth.SubKey.KeyType != 0 {
		ctxKey = auth.SubKey
	}
	initSeq := uint64(auth.SeqNumber) & 0xffffffff
	out := &Accepted{Mech: oid, Client: etp.CName, Realm: etp.CRealm, Ticket: etp}
	sendSeq := initSeq // without mutual authentication both directions start alike
	if types.IsFlagSet(&ap.APOptions, apOptionMutual) {
		var b [4]byte
		if _, err := io.ReadFull(a.Rand, b[:]); err != nil {
			return nil, err
		}
		sendSeq = uint64(binary.BigEndian.Uint32(b[:])&0x3fffffff | 1) // below 2^30 (MIT's older peers read it signed)
		rep, err := a.APRep(etp.Key, auth, sendSeq)
		if err != nil {
			return nil, err
		}
		out.Reply = krb5Token(oid, tokAPRep, rep)
		gssFlags |= FlagMutual
	}
	if out.Context, err = newContext(false, false, ctxKey.KeyType, ctxKey.KeyValue, gssFlags, sendSeq, initSeq, a.Rand); err != nil {
		return nil, err
	}
	return out, nil
}

// Verified is an AP-REQ whose ticket and authenticator checked out.
type Verified struct {
	APReq         messages.APReq
	Ticket        messages.EncTicketPart
	Authenticator types.Authenticator
}

// Verify checks a bare AP-REQ ([RFC 4120] 3.2.3) as Accept does, without the GSS
// framing and checksum (the kpasswd protocol sends one, [RFC 3244]): the ticket under
// the service key, its times within MaxSkew, the authenticator under the ticket's
// session key, for the ticket's client, fresh.
func (a *Acceptor) Verify(msg []byte) (v *Verified, err error) {
	defer decoderPanic(&err)
	var ap messages.APReq
	if err := ap.Unmarshal(msg); err != nil {
		return nil, fmt.Errorf("%w: AP-REQ: %v", ErrMalformed, err)
	}
	reject := func(format string, args ...any) (*Verified, error) {
		return nil, fmt.Errorf("%w: %s", ErrRejected, fmt.Sprintf(format, args...))
	}
	if !strings.EqualFold(ap.Ticket.Realm, a.Realm) {
		return reject("the ticket is for realm %s, not %s", ap.Ticket.Realm, a.Realm)
	}
	key, err := a.Key(ap.Ticket.SName, ap.Ticket.Realm, ap.Ticket.EncPart.EType, ap.Ticket.EncPart.KVNO)
	if err != nil {
		return reject("%v", err)
	}
	plain, err := decrypt(ap.Ticket.EncPart.EType, key, usageTicket, ap.Ticket.EncPart.Cipher)
	if err != nil {
		return reject("the ticket does not decrypt with the service key of version %d (was the account's password changed?)", ap.Ticket.EncPart.KVNO)
	}
	var etp messages.EncTicketPart
	if err := etp.Unmarshal(plain); err != nil {
		return reject("the ticket's part does not parse")
	}
	now := a.Now()
	start := etp.AuthTime
	if !etp.StartTime.IsZero() {
		start = etp.StartTime
	}
	switch {
	case now.Add(a.MaxSkew).Before(start):
		return reject("the ticket is not valid yet (KRB_AP_ERR_TKT_NYV)")
	case now.Add(-a.MaxSkew).After(etp.EndTime):
		return reject("the ticket expired at %s (KRB_AP_ERR_TKT_EXPIRED)", etp.EndTime.UTC().Format(time.RFC3339))
	case types.IsFlagSet(&etp.Flags, flags.Invalid):
		return reject("the ticket is marked invalid")
	}
	authPlain, err := decrypt(etp.Key.KeyType, etp.Key.KeyValue, usageAuthenticator, ap.EncryptedAuthenticator.Cipher)
	if err != nil {
		return reject("the authenticator does not decrypt (KRB_AP_ERR_BAD_INTEGRITY)")
	}
	var auth types.Authenticator
	if err := auth.Unmarshal(authPlain); err != nil {
		return reject("the authenticator does not parse")
	}
	if !strings.EqualFold(auth.CRealm, etp.CRealm) || !auth.CName.Equal(etp.CName) {
		return reject("the authenticator's client is not the ticket's (KRB_AP_ERR_BADMATCH)")
	}
	if d := now.Sub(auth.CTime); d > a.MaxSkew || d < -a.MaxSkew {
		return reject("clock skew too great: %s (KRB_AP_ERR_SKEW)", d.Round(time.Second))
	}
	if a.Replay != nil && !a.Replay.Fresh(ap.EncryptedAuthenticator.Cipher, auth.CTime, now) {
		return reject("the authenticator was seen before (KRB_AP_ERR_REPEAT)")
	}
	return &Verified{APReq: ap, Ticket: etp, Authenticator: auth}, nil
}

// checkChecksum reads the GSS checksum ([RFC 4121] 4.1.1: Lgth 16, Bnd, Flags) and
// checks the channel bindings against appData as the policy asks.
func (a *Acceptor) checkChecksum(c types.Checksum, appData []byte) (uint32, error) {
	if c.CksumType != checksumGSS || len(c.Checksum) < 24 || binary.LittleEndian.Uint32(c.Checksum) != 16 {
		return 0, errors.New("the authenticator carries no GSS checksum")
	}
	bnd, gssFlags := c.Checksum[4:20], binary.LittleEndian.Uint32(c.Checksum[20:24])
	sent := !allZero(bnd)
	switch {
	case a.Bindings == BindingsNever:
	case appData == nil && a.Bindings == BindingsAlways:
		// Without TLS there is no channel to bind to ([MS-ADTS] 5.1.2.2 applies to LDAPS).
	case appData == nil:
	case !sent && a.Bindings == BindingsAlways:
		return 0, errors.New("channel binding is required on this server (LdapEnforceChannelBinding 2) and the client sent none")
	case sent && subtle.ConstantTimeCompare(bnd, ChannelBindingHash(appData)) != 1:
		return 0, errors.New("the channel bindings do not match this TLS connection")
	}
	return gssFlags, nil
}

// ChannelBindingHash is the Bnd field for application data alone ([RFC 4121] 4.1.1.2:
// MD5 of the gss_channel_bindings_struct with empty addresses).
func ChannelBindingHash(appData []byte) []byte {
	var b []byte
	b = binary.LittleEndian.AppendUint32(b, 0) // initiator address type
	b = binary.LittleEndian.AppendUint32(b, 0) // and length
	b = binary.LittleEndian.AppendUint32(b, 0) // acceptor address type
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(appData)))
	b = append(b, appData...)
	sum := md5.Sum(b)
	return sum[:]
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// apRepPart is EncAPRepPart for marshalling ([RFC 4120] 5.5.2).
type apRepPart struct {
	CTime          time.Time `asn1:"generalized,explicit,tag:0"`
	Cusec          int       `asn1:"explicit,tag:1"`
	SequenceNumber int64     `asn1:"explicit,tag:3"`
}

// APRep builds the AP-REP: the authenticator's time and our sequence number under the
// ticket's session key (usage 12). No acceptor subkey is sent: the initiator's subkey
// protects the messages.
func (a *Acceptor) APRep(session types.EncryptionKey, auth types.Authenticator, seq uint64) ([]byte, error) {
	part, err := krbasn1.Marshal(apRepPart{CTime: auth.CTime.UTC(), Cusec: auth.Cusec, SequenceNumber: int64(seq)})
	if err != nil {
		return nil, err
	}
	enc, err := encrypt(session.KeyType, session.KeyValue, usageAPRepPart, appTag(part, asnAppTag.EncAPRepPart), a.Rand)
	if err != nil {
		return nil, err
	}
	rep, err := krbasn1.Marshal(messages.APRep{PVNO: 5, MsgType: msgtype.KRB_AP_REP, EncPart: types.EncryptedData{EType: session.KeyType, Cipher: enc}})
	if err != nil {
		return nil, err
	}
	return appTag(rep, asnAppTag.APREP), nil
}

// appTag wraps DER in an [APPLICATION n] constructed tag.
func appTag(b []byte, n int) []byte {
	out, _ := krbasn1.Marshal(krbasn1.RawValue{Class: krbasn1.ClassApplication, Tag: n, IsCompound: true, Bytes: b})
	return out
}

// decrypt opens RFC 3961 ciphertext: AES keys here, others (RC4 service keys) through
// gokrb5.
func decrypt(etype int32, key []byte, usage uint32, ct []byte) ([]byte, error) {
	if etype == krbkey.EtypeAES128CTSHMACSHA || etype == krbkey.EtypeAES256CTSHMACSHA {
		u, err := krbkey.NewUsageKey(key, usage)
		if err != nil {
			return nil, err
		}
		return u.Decrypt(ct)
	}
	et, err := crypto.GetEtype(etype)
	if err != nil {
		return nil, err
	}
	return et.DecryptMessage(key, ct, usage)
}

// encrypt is RFC 3961 encryption under an AES key with an injected confounder.
func encrypt(etype int32, key []byte, usage uint32, plain []byte, rand io.Reader) ([]byte, error) {
	if etype != krbkey.EtypeAES128CTSHMACSHA && etype != krbkey.EtypeAES256CTSHMACSHA {
		return nil, fmt.Errorf("%w (the session key is %s)", ErrUnsupported, krbkey.EtypeName(etype))
	}
	u, err := krbkey.NewUsageKey(key, usage)
	if err != nil {
		return nil, err
	}
	var conf [krbkey.ConfounderSize]byte
	if _, err := io.ReadFull(rand, conf[:]); err != nil {
		return nil, err
	}
	return u.Encrypt(nil, conf[:], plain), nil
}

// decoderPanic turns a panic of gokrb5's decoders (they index past the end of some
// malformed input) into ErrMalformed for the one token: a peer's bytes never end the
// process. Deferred by the functions that decode a peer's Kerberos messages.
func decoderPanic(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%w: the Kerberos decoder failed (%v)", ErrMalformed, r)
	}
}

func hmacEqual(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }
