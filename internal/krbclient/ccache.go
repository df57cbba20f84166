package krbclient

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// Credential is a ticket with what a ticket cache keeps beside it (the client's view of
// the KDC's reply, RFC 4120 §5.4.2).
type Credential struct {
	Client      types.PrincipalName
	ClientRealm string
	Server      types.PrincipalName
	ServerRealm string
	Key         types.EncryptionKey
	AuthTime    time.Time
	StartTime   time.Time
	EndTime     time.Time
	RenewTill   time.Time
	Flags       []byte // TicketFlags as sent: bit 0 (reserved) is the top bit of the first byte
	Ticket      []byte // the Ticket's DER, as the KDC sent it
}

func (c *Credential) String() string {
	return fmt.Sprintf("krbclient.Credential{%s@%s for %s@%s, until %s, key [REDACTED]}", c.Client.PrincipalNameString(), c.ClientRealm,
		c.Server.PrincipalNameString(), c.ServerRealm, c.EndTime.UTC().Format(time.RFC3339))
}

// NewTGT asks the KDC for a fresh TGT for the identity, which must hold its key (a
// keytab or a password): an AS exchange with pre-authentication (RFC 4120 §3.1).
func (c *Client) NewTGT() (*Credential, error) {
	if !c.hasKey {
		return nil, fmt.Errorf("krbclient: %s came from a ticket cache: no key to ask for a new TGT", c.Name())
	}
	req, err := messages.NewASReqForTGT(c.Realm, c.cl.Config, c.Principal)
	if err != nil {
		return nil, fmt.Errorf("krbclient: %w", err)
	}
	var rep messages.ASRep
	if err := guard(func() (err error) { rep, err = c.cl.ASExchange(c.Realm, req, 0); return err }); err != nil {
		return nil, fmt.Errorf("krbclient: a TGT for %s: %w", c.Name(), err)
	}
	tkt, err := rep.Ticket.Marshal()
	if err != nil {
		return nil, fmt.Errorf("krbclient: %w", err)
	}
	p := rep.DecryptedEncPart
	start := p.StartTime
	if start.IsZero() {
		start = p.AuthTime
	}
	return &Credential{Client: rep.CName, ClientRealm: rep.CRealm, Server: p.SName, ServerRealm: p.SRealm, Key: p.Key,
		AuthTime: p.AuthTime, StartTime: start, EndTime: p.EndTime, RenewTill: p.RenewTill, Flags: p.Flags.Bytes, Ticket: tkt}, nil
}

// MarshalCCache encodes a ticket cache in MIT's FILE format version 4 (the layout of
// MIT's ccache.txt: big-endian, a header of tagged fields, the default principal, then
// each credential), which klist, kvno and every GSS-API library read.
func MarshalCCache(client types.PrincipalName, realm string, creds []*Credential) []byte {
	be := binary.BigEndian
	b := be.AppendUint16(nil, 0x0504)
	b = be.AppendUint16(b, 12) // header: one field, the KDC time offset (tag 1), zero
	b = be.AppendUint16(b, 1)
	b = be.AppendUint16(b, 8)
	b = append(b, make([]byte, 8)...)
	data := func(d []byte) { b = be.AppendUint32(b, uint32(len(d))); b = append(b, d...) }
	principal := func(p types.PrincipalName, realm string) {
		b = be.AppendUint32(b, uint32(p.NameType))
		b = be.AppendUint32(b, uint32(len(p.NameString)))
		data([]byte(realm))
		for _, s := range p.NameString {
			data([]byte(s))
		}
	}
	stamp := func(t time.Time) {
		if t.IsZero() {
			b = be.AppendUint32(b, 0)
			return
		}
		b = be.AppendUint32(b, uint32(t.Unix()))
	}
	principal(client, realm)
	for _, c := range creds {
		principal(c.Client, c.ClientRealm)
		principal(c.Server, c.ServerRealm)
		b = be.AppendUint16(b, uint16(c.Key.KeyType))
		data(c.Key.KeyValue)
		stamp(c.AuthTime)
		stamp(c.StartTime)
		stamp(c.EndTime)
		stamp(c.RenewTill)
		b = append(b, 0) // is_skey
		var flags [4]byte
		copy(flags[:], c.Flags)
		b = append(b, flags[:]...)
		b = be.AppendUint32(b, 0) // addresses
		b = be.AppendUint32(b, 0) // authdata
		data(c.Ticket)
		data(nil) // second ticket
	}
	return b
}
