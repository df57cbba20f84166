package kdc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"gmsa/internal/directory"
	"gmsa/internal/krbkey"
	"gmsa/internal/krbmsg"
	"gmsa/internal/ntsec"
	"gmsa/internal/pac"
)

// Authorization data types ([RFC 4120] 5.2.6, [MS-PAC] 2.1).
const (
	adIfRelevant = 1
	adWin2KPAC   = 128
	// keyUsagePAC is KERB_NON_KERB_CKSUM_SALT, the key usage of PAC signatures ([MS-PAC] 2.8).
	keyUsagePAC = 17
)

// signer returns the PAC checksum of a key's type: HMAC-SHA1-96 with the AES key (15,
// 16), HMAC-MD5 (-138) with the RC4 key ([MS-PAC] 2.8.1).
func (x *Exchange) signer(k directory.KerberosKey) (pac.Signer, error) {
	sums := map[int32]int32{krbkey.EtypeAES256CTSHMACSHA: 16, krbkey.EtypeAES128CTSHMACSHA: 15, krbkey.EtypeRC4HMAC: -138}
	typ, ok := sums[k.Etype]
	if !ok {
		return pac.Signer{}, fmt.Errorf("kdc: no PAC checksum for key type %d", k.Etype)
	}
	et, err := crypto.GetEtype(k.Etype)
	if err != nil {
		return pac.Signer{}, err
	}
	size := et.GetHMACBitLength() / 8
	if isAES(k.Etype) {
		key := types.EncryptionKey{KeyType: k.Etype, KeyValue: k.Value}
		return pac.Signer{Type: typ, Size: size, Sum: func(data []byte) ([]byte, error) { return x.checksum(key, keyUsagePAC, data) }}, nil
	}
	return pac.Signer{Type: typ, Size: size, Sum: func(data []byte) ([]byte, error) {
		sum, err := et.GetChecksumHash(k.Value, data, keyUsagePAC)
		if err != nil {
			return nil, err
		}
		return sum[:size], nil
	}}, nil
}

// wantsPAC reads PA-PAC-REQUEST ([MS-KILE] 2.2.3): a PAC unless the client asks for none.
func wantsPAC(pas types.PADataSequence) (want, asked bool) {
	for _, pa := range pas {
		if pa.PADataType != patype.PA_PAC_REQUEST {
			continue
		}
		if include, err := krbmsg.ParsePACRequest(pa.PADataValue); err == nil {
			return include, true
		}
	}
	return true, false
}

// tgtBuffers are the PAC buffers of a TGT for client ([MS-PAC] 2.4): validation info,
// client info, UPN and DNS info, attributes and requestor.
func (x *Exchange) tgtBuffers(ctx context.Context, client *directory.KerberosPrincipal, cname types.PrincipalName, authTime time.Time, asked, s4u bool) ([]pac.Buffer, error) {
	at := ntsec.FileTimeFromTime(authTime.Truncate(time.Second))
	li, upn, constructed, err := x.Dir.LogonInfo(ctx, client.GUID, at, s4u)
	if err != nil {
		return nil, err
	}
	sid, err := ntsec.ParseSID(client.SID)
	if err != nil {
		return nil, err
	}
	return []pac.Buffer{
		{Type: pac.TypeLogonInfo, Data: li.Bytes()},
		{Type: pac.TypeClientInfo, Data: pac.ClientInfo(at, strings.Join(cname.NameString, "/"))},
		{Type: pac.TypeUPNDNSInfo, Data: pac.UPNDNSInfo(upn, strings.ToUpper(x.Dir.Domain().DNSName), constructed, client.SAM, sid)},
		{Type: pac.TypeAttributes, Data: pac.Attributes(asked)},
		{Type: pac.TypeRequestor, Data: pac.Requestor(sid)},
	}, nil
}

// authData wraps a PAC as a ticket carries it: AD-IF-RELEVANT { AD-WIN2K-PAC }.
func authData(p []byte) types.AuthorizationData {
	inner := krbmsg.AuthorizationData(types.AuthorizationData{{ADType: adWin2KPAC, ADData: p}})
	return types.AuthorizationData{{ADType: adIfRelevant, ADData: inner}}
}

// signPAC signs bufs into etp's authorization data: for a TGT with krbtgt's key as
// server and KDC key; for a service ticket also with the ticket signature (over the
// ticket with a one-byte placeholder PAC) and the full signature.
func (x *Exchange) signPAC(etp *messages.EncTicketPart, bufs []pac.Buffer, serviceKey, kdcKey directory.KerberosKey, tgt bool) error {
	srv, err := x.signer(serviceKey)
	if err != nil {
		return err
	}
	kdc, err := x.signer(kdcKey)
	if err != nil {
		return err
	}
	var ticketSig []byte
	if !tgt {
		etp.AuthorizationData = authData([]byte{0})
		if ticketSig, err = kdc.Sum(krbmsg.EncTicketPart(etp)); err != nil {
			return err
		}
	}
	p, err := pac.Sign(bufs, srv, kdc, ticketSig, !tgt)
	if err != nil {
		return err
	}
	etp.AuthorizationData = authData(p)
	return nil
}

// ticketPAC finds and verifies the PAC of a TGT with krbtgt's key, and returns its
// buffers without signatures, attributes or requestor, and the requestor's SID.
func (x *Exchange) ticketPAC(etp *messages.EncTicketPart, krbtgtKey directory.KerberosKey) ([]pac.Buffer, []pac.Buffer, ntsec.SID, error) {
	raw, err := findPAC(etp)
	if err != nil {
		return nil, nil, ntsec.SID{}, err
	}
	s, err := x.signer(krbtgtKey)
	if err != nil {
		return nil, nil, ntsec.SID{}, err
	}
	if err := pac.Verify(raw, s, s); err != nil {
		return nil, nil, ntsec.SID{}, err
	}
	bufs, err := pac.Decode(raw)
	if err != nil {
		return nil, nil, ntsec.SID{}, err
	}
	var keep, tgtOnly []pac.Buffer
	var requestor ntsec.SID
	for _, b := range bufs {
		switch b.Type {
		case pac.TypeServerChecksum, pac.TypeKDCChecksum, pac.TypeTicketChecksum, pac.TypeFullChecksum:
		case pac.TypeAttributes:
			tgtOnly = append(tgtOnly, b)
		case pac.TypeRequestor:
			tgtOnly = append(tgtOnly, b)
			if requestor, err = ntsec.SIDFromBytes(b.Data); err != nil {
				return nil, nil, ntsec.SID{}, err
			}
		default:
			keep = append(keep, b)
		}
	}
	if requestor.IsZero() {
		return nil, nil, ntsec.SID{}, errors.New("the TGT's PAC names no requestor")
	}
	return keep, tgtOnly, requestor, nil
}

// findPAC returns the PAC a ticket carries in AD-IF-RELEVANT { AD-WIN2K-PAC }.
func findPAC(etp *messages.EncTicketPart) ([]byte, error) {
	var raw []byte
	for _, ad := range etp.AuthorizationData {
		if ad.ADType != adIfRelevant {
			continue
		}
		inner, err := krbmsg.ParseAuthorizationData(ad.ADData)
		if err != nil {
			continue
		}
		for _, e := range inner {
			if e.ADType == adWin2KPAC {
				if raw != nil {
					return nil, errors.New("two PACs")
				}
				raw = e.ADData
			}
		}
	}
	if raw == nil {
		return nil, errors.New("the ticket carries no PAC")
	}
	return raw, nil
}

// checkRequestor applies the CVE-2021-42287 hardening: the account the TGT's client
// name resolves to now must be the one the TGT was issued to.
func checkRequestor(client *directory.KerberosPrincipal, requestor ntsec.SID) error {
	if client.SID != requestor.String() {
		return kerr(errorcode.KDC_ERR_TGT_REVOKED, "the TGT was issued to %s, not to the account %s names now", requestor, client.SAM)
	}
	return nil
}
