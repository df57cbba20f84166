package gss

import (
	"encoding/asn1"
	"encoding/binary"
	"fmt"
	"io"
	"time"

	krbasn1 "github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/iana/asnAppTag"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// Initiator is what a client needs to open a context: a service ticket, its session
// key and the client's name.
type Initiator struct {
	Ticket     messages.Ticket
	SessionKey types.EncryptionKey
	Client     types.PrincipalName
	Realm      string
	Flags      uint32 // GSS flags to ask for (FlagMutual is always asked)
	AppData    []byte // channel binding application data (tls-server-end-point), or nil
	Mech       asn1.ObjectIdentifier
	Now        func() time.Time
	Rand       io.Reader
}

// Pending is a context waiting for the acceptor's AP-REP.
type Pending struct {
	session types.EncryptionKey
	subkey  types.EncryptionKey
	ctime   time.Time
	cusec   int
	seq     uint64
	flags   uint32
	rand    io.Reader
}

// Initiate builds the AP-REQ context token ([RFC 4121] 4.1): an authenticator with a
// fresh subkey of the session key's type, a sequence number and the GSS checksum,
// asking for mutual authentication.
func (in *Initiator) Initiate() ([]byte, *Pending, error) {
	if in.Mech == nil {
		in.Mech = OIDKerberos
	}
	et := in.SessionKey.KeyType
	sub := make([]byte, len(in.SessionKey.KeyValue))
	var seqb [4]byte
	if _, err := io.ReadFull(in.Rand, sub); err != nil {
		return nil, nil, err
	}
	if _, err := io.ReadFull(in.Rand, seqb[:]); err != nil {
		return nil, nil, err
	}
	now := in.Now().UTC()
	p := &Pending{session: in.SessionKey, subkey: types.EncryptionKey{KeyType: et, KeyValue: sub},
		ctime: now.Truncate(time.Second), cusec: now.Nanosecond() / 1000, seq: uint64(binary.BigEndian.Uint32(seqb[:]) & 0x3fffffff),
		flags: in.Flags | FlagMutual, rand: in.Rand}
	cksum := binary.LittleEndian.AppendUint32(nil, 16)
	if in.AppData != nil {
		cksum = append(cksum, ChannelBindingHash(in.AppData)...)
	} else {
		cksum = append(cksum, make([]byte, 16)...)
	}
	cksum = binary.LittleEndian.AppendUint32(cksum, p.flags)
	auth := types.Authenticator{AVNO: 5, CRealm: in.Realm, CName: in.Client, Cksum: types.Checksum{CksumType: checksumGSS, Checksum: cksum},
		Cusec: p.cusec, CTime: p.ctime, SubKey: p.subkey, SeqNumber: int64(p.seq)}
	ab, err := auth.Marshal()
	if err != nil {
		return nil, nil, fmt.Errorf("gss: authenticator: %w", err)
	}
	enc, err := encrypt(et, in.SessionKey.KeyValue, usageAuthenticator, ab, in.Rand)
	if err != nil {
		return nil, nil, err
	}
	ap := messages.APReq{PVNO: 5, MsgType: msgtype.KRB_AP_REQ, APOptions: types.NewKrbFlags(), Ticket: in.Ticket,
		EncryptedAuthenticator: types.EncryptedData{EType: et, Cipher: enc}}
	types.SetFlag(&ap.APOptions, apOptionMutual)
	msg, err := ap.Marshal()
	if err != nil {
		return nil, nil, fmt.Errorf("gss: AP-REQ: %w", err)
	}
	return krb5Token(in.Mech, tokAPReq, msg), p, nil
}

// Complete checks the acceptor's AP-REP ([RFC 4120] 3.2.5: our authenticator's time
// echoed under the session key) and returns the established context.
func (p *Pending) Complete(token []byte) (ctx *Context, err error) {
	defer decoderPanic(&err)
	_, id, msg, err := parseKrb5Token(token)
	if err != nil {
		return nil, err
	}
	if id == tokKRBError {
		var ke messages.KRBError
		if ke.Unmarshal(msg) == nil {
			return nil, fmt.Errorf("%w: the server answered with a Kerberos error: %s", ErrRejected, ke.Error())
		}
		return nil, fmt.Errorf("%w: the server answered with a Kerberos error", ErrRejected)
	}
	if id != tokAPRep {
		return nil, fmt.Errorf("%w: token identifier %x is not an AP-REP", ErrMalformed, id)
	}
	var rep messages.APRep
	if err := rep.Unmarshal(msg); err != nil {
		return nil, fmt.Errorf("%w: AP-REP: %v", ErrMalformed, err)
	}
	plain, err := decrypt(rep.EncPart.EType, p.session.KeyValue, usageAPRepPart, rep.EncPart.Cipher)
	if err != nil {
		return nil, fmt.Errorf("%w: the AP-REP does not decrypt with the session key: the server is not the ticket's service", ErrRejected)
	}
	var part messages.EncAPRepPart
	if _, err := krbasn1.UnmarshalWithParams(plain, &part, fmt.Sprintf("application,explicit,tag:%d", asnAppTag.EncAPRepPart)); err != nil {
		return nil, fmt.Errorf("%w: EncAPRepPart: %v", ErrMalformed, err)
	}
	if !part.CTime.Equal(p.ctime) || part.Cusec != p.cusec {
		return nil, fmt.Errorf("%w: the AP-REP does not echo our authenticator", ErrRejected)
	}
	key, acceptorSubkey := p.subkey, false
	if part.Subkey.KeyType != 0 {
		key, acceptorSubkey = part.Subkey, true
	}
	return newContext(true, acceptorSubkey, key.KeyType, key.KeyValue, p.flags, p.seq, uint64(part.SequenceNumber)&0xffffffff, p.rand)
}
