package gss

import (
	"encoding/asn1"
	"fmt"
)

// NegState is the SPNEGO negotiation state ([RFC 4178] 4.2.2).
type NegState int

// The states.
const (
	AcceptCompleted  NegState = 0
	AcceptIncomplete NegState = 1
	Reject           NegState = 2
	RequestMIC       NegState = 3
)

// NegTokenInit is the initiator's first SPNEGO token ([RFC 4178] 4.2.1).
type NegTokenInit struct {
	MechTypes   []asn1.ObjectIdentifier
	MechToken   []byte // the optimistic token of the first mechanism
	MechListMIC []byte
}

type negTokenInit struct {
	MechTypes   []asn1.ObjectIdentifier `asn1:"explicit,tag:0"`
	ReqFlags    asn1.BitString          `asn1:"explicit,optional,tag:1"`
	MechToken   []byte                  `asn1:"explicit,optional,tag:2"`
	MechListMIC []byte                  `asn1:"explicit,optional,tag:3"`
}

// NegTokenResp is every later SPNEGO token ([RFC 4178] 4.2.2).
type NegTokenResp struct {
	State         NegState
	HasState      bool
	SupportedMech asn1.ObjectIdentifier
	ResponseToken []byte
	MechListMIC   []byte
}

type negTokenRespIn struct {
	NegState      asn1.RawValue         `asn1:"explicit,optional,tag:0"`
	SupportedMech asn1.ObjectIdentifier `asn1:"explicit,optional,tag:1"`
	ResponseToken []byte                `asn1:"explicit,optional,tag:2"`
	MechListMIC   []byte                `asn1:"explicit,optional,tag:3"`
}

type negTokenRespOut struct {
	NegState      asn1.Enumerated       `asn1:"explicit,tag:0"`
	SupportedMech asn1.ObjectIdentifier `asn1:"explicit,optional,tag:1"`
	ResponseToken []byte                `asn1:"explicit,optional,tag:2"`
	MechListMIC   []byte                `asn1:"explicit,optional,tag:3"`
}

// negTokenRespNoState is a later initiator token, which carries no state (Samba's and
// Windows' clients send their mechListMIC so).
type negTokenRespNoState struct {
	ResponseToken []byte `asn1:"explicit,optional,tag:2"`
	MechListMIC   []byte `asn1:"explicit,optional,tag:3"`
}

// MechListBytes is the DER of a MechTypeList, what mechListMIC covers ([RFC 4178] 5).
func MechListBytes(mechs []asn1.ObjectIdentifier) []byte {
	b, _ := asn1.Marshal(mechs)
	return b
}

// ParseNegTokenInit reads the initiator's first token, framed with the SPNEGO OID.
func ParseNegTokenInit(b []byte) (*NegTokenInit, error) {
	oid, inner, err := unframe(b)
	if err != nil {
		return nil, err
	}
	if !oid.Equal(OIDSPNEGO) {
		return nil, fmt.Errorf("%w: mechanism %s is not SPNEGO", ErrMalformed, oid)
	}
	var choice asn1.RawValue
	if rest, err := asn1.Unmarshal(inner, &choice); err != nil || len(rest) != 0 || choice.Class != asn1.ClassContextSpecific || choice.Tag != 0 {
		return nil, fmt.Errorf("%w: not a NegTokenInit", ErrMalformed)
	}
	var n negTokenInit
	if rest, err := asn1.Unmarshal(choice.Bytes, &n); err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("%w: NegTokenInit: %v", ErrMalformed, err)
	}
	if len(n.MechTypes) == 0 {
		return nil, fmt.Errorf("%w: NegTokenInit lists no mechanism", ErrMalformed)
	}
	return &NegTokenInit{MechTypes: n.MechTypes, MechToken: n.MechToken, MechListMIC: n.MechListMIC}, nil
}

// Marshal frames the token for the first message.
func (n *NegTokenInit) Marshal() []byte {
	b, _ := asn1.Marshal(negTokenInit{MechTypes: n.MechTypes, MechToken: n.MechToken, MechListMIC: n.MechListMIC})
	c, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: b})
	return frame(OIDSPNEGO, c)
}

// ParseNegTokenResp reads a NegTokenResp (unframed, [1]).
func ParseNegTokenResp(b []byte) (*NegTokenResp, error) {
	if len(b) > maxContextToken {
		return nil, fmt.Errorf("%w: %d bytes is over the %d-byte limit", ErrMalformed, len(b), maxContextToken)
	}
	var choice asn1.RawValue
	if rest, err := asn1.Unmarshal(b, &choice); err != nil || len(rest) != 0 || choice.Class != asn1.ClassContextSpecific || choice.Tag != 1 {
		return nil, fmt.Errorf("%w: not a NegTokenResp", ErrMalformed)
	}
	var n negTokenRespIn
	if rest, err := asn1.Unmarshal(choice.Bytes, &n); err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("%w: NegTokenResp: %v", ErrMalformed, err)
	}
	r := &NegTokenResp{SupportedMech: n.SupportedMech, ResponseToken: n.ResponseToken, MechListMIC: n.MechListMIC}
	if len(n.NegState.FullBytes) > 0 {
		var e asn1.Enumerated
		if _, err := asn1.Unmarshal(n.NegState.Bytes, &e); err != nil {
			return nil, fmt.Errorf("%w: negState: %v", ErrMalformed, err)
		}
		r.State, r.HasState = NegState(e), true
	}
	return r, nil
}

// Marshal encodes the token, with its state and mechanism when HasState is set.
func (r *NegTokenResp) Marshal() []byte {
	var b []byte
	if r.HasState {
		b, _ = asn1.Marshal(negTokenRespOut{NegState: asn1.Enumerated(r.State), SupportedMech: r.SupportedMech, ResponseToken: r.ResponseToken, MechListMIC: r.MechListMIC})
	} else {
		b, _ = asn1.Marshal(negTokenRespNoState{ResponseToken: r.ResponseToken, MechListMIC: r.MechListMIC})
	}
	c, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 1, IsCompound: true, Bytes: b})
	return c
}
