package directory

import (
	"context"
	"encoding/binary"
	"errors"
	"net/netip"
	"strconv"
	"strings"

	"gmsa/internal/netlogon"
	"gmsa/internal/ntsec"
	"gmsa/internal/store"
)

// PingQuery is an LDAP ping ([MS-ADTS] 6.3.3.1): the equality terms of a search of
// the root DSE for the Netlogon attribute.
type PingQuery struct {
	DNSDomain  string
	Host       string
	User       string
	AAC        uint32 // account control bits the User must have one of (0: any)
	DomainSID  *ntsec.SID
	DomainGUID *ntsec.GUID
	NtVer      uint32
}

// ParsePing reads an LDAP ping from a root DSE search filter: an AND of equality terms
// (or one term) among DnsDomain, Host, DnsHostName, User, AAC, DomainSid, DomainGuid
// and NtVer, NtVer among them. ok is false for any other filter.
func ParsePing(f Filter) (q PingQuery, ok bool) {
	terms, isAnd := f.(And)
	if !isAnd {
		terms = And{f}
	}
	hasVer := false
	for _, t := range terms {
		e, isEq := t.(Equal)
		if !isEq {
			return q, false
		}
		switch strings.ToLower(e.Attr) {
		case "dnsdomain":
			q.DNSDomain = string(e.Value)
		case "host", "dnshostname":
			q.Host = string(e.Value)
		case "user":
			q.User = string(e.Value)
		case "aac":
			if len(e.Value) != 4 {
				return q, false
			}
			q.AAC = binary.LittleEndian.Uint32(e.Value)
		case "domainsid":
			s, err := ntsec.SIDFromBytes(e.Value)
			if err != nil {
				if s, err = ntsec.ParseSID(string(e.Value)); err != nil {
					return q, false
				}
			}
			q.DomainSID = &s
		case "domainguid":
			g, err := ntsec.GUIDFromBytes(e.Value)
			if err != nil {
				return q, false
			}
			q.DomainGUID = &g
		case "ntver":
			if len(e.Value) != 4 {
				return q, false
			}
			q.NtVer, hasVer = binary.LittleEndian.Uint32(e.Value), true
		default:
			return q, false
		}
	}
	return q, hasVer
}

// Ping answers an LDAP ping as a writable DC of this domain at dcHost (and dcAddr,
// when the client asks for it) answers ([MS-ADTS] 6.3.3.2): nil when the ping names
// another domain or asks only for a response version older than
// NETLOGON_SAM_LOGON_RESPONSE_EX. A ping that names a User gets
// LOGON_SAM_USER_UNKNOWN_EX unless that account exists (with one of the AAC bits).
func (d *Directory) Ping(ctx context.Context, q PingQuery, dcHost string, dcAddr netip.Addr) (*netlogon.Response, error) {
	dom := d.domain
	if q.DNSDomain != "" && !strings.EqualFold(strings.TrimSuffix(q.DNSDomain, "."), dom.DNSName) ||
		q.DomainSID != nil && !q.DomainSID.Equal(d.sid) {
		return nil, nil
	}
	if q.NtVer&(netlogon.NtVersion5EX|netlogon.NtVersion5EXWithIP) == 0 {
		return nil, nil
	}
	domObj, err := d.byIndex(ctx, dnKey(dom.BaseDN))
	if err != nil {
		return nil, err
	}
	if q.DomainGUID != nil && *q.DomainGUID != domObj.GUID {
		return nil, nil
	}
	const site = "Default-First-Site-Name"
	r := &netlogon.Response{Opcode: netlogon.OpSAMLogonResponseEX,
		Flags: netlogon.FlagPDC | netlogon.FlagLDAP | netlogon.FlagDS | netlogon.FlagKDC | netlogon.FlagClosest | netlogon.FlagWritable |
			netlogon.FlagFullSecret | netlogon.FlagDS8 | netlogon.FlagDS9 | netlogon.FlagDS10 |
			netlogon.FlagDNSController | netlogon.FlagDNSDomain | netlogon.FlagDNSForest,
		DomainGUID: domObj.GUID, DNSForest: dom.DNSName, DNSDomain: dom.DNSName, DNSHost: dcHost,
		NetBIOSDomain: dom.NetBIOS, NetBIOSDC: dom.DCName, User: q.User, DCSite: site, ClientSite: site,
		NtVersion: netlogon.NtVersion1 | netlogon.NtVersion5EX | q.NtVer&(netlogon.NtVersion5EXWithIP|netlogon.NtVersionWithClosest)}
	if r.NtVersion&netlogon.NtVersion5EXWithIP != 0 {
		if dcAddr.Is4In6() {
			dcAddr = dcAddr.Unmap()
		}
		if !dcAddr.Is4() {
			r.NtVersion &^= netlogon.NtVersion5EXWithIP
		}
		r.DCAddr = dcAddr
	}
	if q.User != "" {
		o, err := d.byIndex(ctx, samKey(q.User))
		switch {
		case errors.Is(err, store.ErrNotFound):
			r.Opcode = netlogon.OpSAMUserUnknownEX
		case err != nil:
			return nil, err
		case !o.IsPrincipal() || q.AAC != 0 && o.UAC&q.AAC == 0:
			r.Opcode = netlogon.OpSAMUserUnknownEX
		}
	}
	return r, nil
}

// String names what a ping asked, for logs.
func (q PingQuery) String() string {
	return "DnsDomain=" + q.DNSDomain + " User=" + q.User + " NtVer=0x" + strconv.FormatUint(uint64(q.NtVer), 16)
}
