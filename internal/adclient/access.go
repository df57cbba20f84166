package adclient

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"gmsa/internal/ntsec"
)

// Access says whether a principal may retrieve a gMSA's password and why, as the DC
// would decide it from the principal's token.
type Access struct {
	Granted bool
	Reason  string
	// Via names the principal or group the deciding entry of msDS-GroupMSAMembership
	// names; Chain is the path from the principal to it through group memberships
	// (the principal first), and Since when the last link of that path was made, as
	// far as the DC tells (per-value metadata, else the group's whenChanged).
	Via   string
	Chain []string
	Since time.Time
	// Allowed are the principals and groups the allowing entries name, by name.
	Allowed          []string
	AccountDisabled  bool
	PrincipalMissing bool
}

// uacAccountDisable is userAccountControl's ACCOUNTDISABLE bit ([MS-ADTS] 2.2.16).
const uacAccountDisable = 0x2

// MayRetrieve evaluates the gMSA's msDS-GroupMSAMembership for principal's token as the
// DC reports it (tokenGroups, with Everyone and Authenticated Users): [MS-ADTS]
// 3.1.1.4.4's READ_PROPERTY check that guards msDS-ManagedPassword.
func (c *Client) MayRetrieve(account, principal string) (Access, error) {
	g, err := c.Find(account, "msDS-GroupMSAMembership", "objectSid", "userAccountControl", "sAMAccountName")
	if err != nil {
		return Access{}, err
	}
	acctName := g.GetAttributeValue("sAMAccountName")
	var out Access
	raw := g.GetRawAttributeValue("msDS-GroupMSAMembership")
	var sd *ntsec.SecurityDescriptor
	if len(raw) > 0 {
		if sd, err = ntsec.ParseSecurityDescriptor(raw); err != nil {
			return Access{}, fmt.Errorf("adclient: %s's msDS-GroupMSAMembership: %w", acctName, err)
		}
		var aces []ntsec.ACE
		if sd.DACL != nil {
			aces = sd.DACL.ACEs
		}
		for _, ace := range aces {
			if ace.Type == ntsec.ACETypeAccessAllowed || ace.Type == ntsec.ACETypeAccessAllowedObject {
				out.Allowed = append(out.Allowed, c.nameOf(ace.SID))
			}
		}
	}
	p, err := c.Find(principal, "objectSid", "sAMAccountName", "primaryGroupID")
	if err != nil {
		out.PrincipalMissing = true
		out.Reason = fmt.Sprintf("%s does not exist in %s", principal, c.DNSName)
		return out, nil
	}
	if len(raw) == 0 {
		out.Reason = acctName + " has no PrincipalsAllowedToRetrieveManagedPassword: nobody may read its password"
		return out, nil
	}
	r, err := c.Conn.Search(ldap.NewSearchRequest(p.DN, ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", []string{"tokenGroups"}, nil))
	if err != nil || len(r.Entries) == 0 {
		return Access{}, fmt.Errorf("adclient: reading tokenGroups of %s: %v", p.DN, err)
	}
	user, err := SID(p)
	if err != nil {
		return Access{}, fmt.Errorf("adclient: %s has no SID", p.DN)
	}
	tok := &ntsec.Token{User: user, Groups: []ntsec.SID{ntsec.SIDEveryone, ntsec.SIDAuthenticatedUsers}}
	for _, raw := range r.Entries[0].GetRawAttributeValues("tokenGroups") {
		if s, err := ntsec.SIDFromBytes(raw); err == nil {
			tok.Groups = append(tok.Groups, s)
		}
	}
	name := p.GetAttributeValue("sAMAccountName")
	self, _ := SID(g)
	dec := ntsec.AccessCheck(sd, tok, ntsec.RightDSReadProperty, self)
	switch {
	case dec.Granted && dec.ACE >= 0:
		out.Granted, out.Via = true, c.nameOf(dec.SID)
		out.Chain, out.Since = c.chain(p, dec.SID)
		out.Reason = fmt.Sprintf("allowed by entry %d of msDS-GroupMSAMembership, which names %s (%s)", dec.ACE, out.Via, strings.Join(out.Chain, " → "))
	case dec.Granted:
		out.Granted, out.Reason = true, dec.Reason()
	case dec.ACE >= 0:
		out.Via = c.nameOf(dec.SID)
		out.Reason = fmt.Sprintf("denied by entry %d of msDS-GroupMSAMembership, which denies %s", dec.ACE, out.Via)
	default:
		out.Reason = fmt.Sprintf("no entry of msDS-GroupMSAMembership (%s) names %s or any of its %d groups", sd.SDDL(), name, len(tok.Groups))
	}
	if uac, _ := strconv.ParseUint(g.GetAttributeValue("userAccountControl"), 10, 32); uac&uacAccountDisable != 0 {
		out.AccountDisabled = true
		if out.Granted {
			out.Reason += "; but " + acctName + " is disabled, so it cannot authenticate"
		}
	}
	return out, nil
}

// nameOf is a SID's sAMAccountName (or cn), else the SID itself.
func (c *Client) nameOf(s ntsec.SID) string {
	if e, err := c.Find(s.String(), "sAMAccountName", "cn"); err == nil {
		if n := e.GetAttributeValue("sAMAccountName"); n != "" {
			return n
		}
		return e.GetAttributeValue("cn")
	}
	if n, ok := wellKnownNames[s.String()]; ok {
		return n
	}
	return s.String()
}

var wellKnownNames = map[string]string{"S-1-1-0": "Everyone", "S-1-5-11": "Authenticated Users", "S-1-5-18": "SYSTEM"}

// chain finds the path of group memberships from p to the group target (breadth first
// over memberOf, the primary group included), with when its last link was made.
func (c *Client) chain(p *ldap.Entry, target ntsec.SID) ([]string, time.Time) {
	name := func(e *ldap.Entry) string {
		if n := e.GetAttributeValue("sAMAccountName"); n != "" {
			return n
		}
		return e.GetAttributeValue("cn")
	}
	start, _ := SID(p)
	if start.Equal(target) {
		return []string{name(p)}, time.Time{}
	}
	type node struct {
		dn, name string
		prev     *node
	}
	attrs := []string{"memberOf", "objectSid", "sAMAccountName", "cn", "primaryGroupID"}
	seen := map[string]bool{strings.ToLower(p.DN): true}
	queue := []*node{{dn: p.DN, name: name(p)}}
	for len(queue) > 0 && len(seen) < 500 {
		n := queue[0]
		queue = queue[1:]
		e, err := c.Find(n.dn, attrs...)
		if err != nil {
			continue
		}
		next := e.GetAttributeValues("memberOf")
		if pg := e.GetAttributeValue("primaryGroupID"); pg != "" && !c.DomainSID.IsZero() {
			if ge, err := c.Find(c.DomainSID.String()+"-"+pg, "objectSid"); err == nil {
				next = append(next, ge.DN)
			}
		}
		for _, dn := range next {
			if seen[strings.ToLower(dn)] {
				continue
			}
			seen[strings.ToLower(dn)] = true
			ge, err := c.Find(dn, attrs...)
			if err != nil {
				continue
			}
			m := &node{dn: dn, name: name(ge), prev: n}
			if s, err := SID(ge); err == nil && s.Equal(target) {
				var path []string
				for x := m; x != nil; x = x.prev {
					path = append([]string{x.name}, path...)
				}
				return path, c.memberSince(dn, n.dn)
			}
			queue = append(queue, m)
		}
	}
	return []string{name(p), "…", c.nameOf(target)}, time.Time{}
}

// valueMeta matches one member value's metadata in msDS-ReplValueMetaData's XML form.
var valueMeta = regexp.MustCompile(`(?s)<DS_REPL_VALUE_META_DATA>.*?</DS_REPL_VALUE_META_DATA>`)

// memberSince is when member was added to group: the value's ftimeCreated in
// msDS-ReplValueMetaData ([MS-ADTS] 3.1.1.4.5.19), else the group's whenChanged.
func (c *Client) memberSince(group, member string) time.Time {
	e, err := c.Find(group, "msDS-ReplValueMetaData", "whenChanged")
	if err != nil {
		return time.Time{}
	}
	for _, v := range e.GetAttributeValues("msDS-ReplValueMetaData") {
		for _, blk := range valueMeta.FindAllString(v, -1) {
			if !strings.Contains(blk, "<pszAttributeName>member</pszAttributeName>") ||
				!strings.Contains(strings.ToLower(blk), "<pszobjectdn>"+strings.ToLower(member)+"</pszobjectdn>") {
				continue
			}
			for _, tag := range []string{"ftimeCreated", "ftimeLastOriginatingChange"} {
				if m := regexp.MustCompile("<" + tag + ">([^<]+)</" + tag + ">").FindStringSubmatch(blk); m != nil {
					if t, err := time.Parse(time.RFC3339, m[1]); err == nil {
						return t
					}
				}
			}
		}
	}
	t, _ := ParseGeneralizedTime(e.GetAttributeValue("whenChanged"))
	return t
}

// ParseGeneralizedTime reads an LDAP GeneralizedTime such as 20261204133000.0Z.
func ParseGeneralizedTime(s string) (time.Time, error) {
	for _, layout := range []string{"20060102150405.0Z", "20060102150405Z", "20060102150405.0Z0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("adclient: %q is not a GeneralizedTime", s)
}
