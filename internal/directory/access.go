package directory

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"gmsa/internal/ntsec"
	"gmsa/internal/store"
)

// Token is a requester's security context: its SID, every group SID it holds
// transitively (primary group included), Everyone and Authenticated Users, and
// Enterprise Domain Controllers for a DC. Via records how each group was reached.
type Token struct {
	ntsec.Token
	Name  string            // sAMAccountName, or SYSTEM
	Names map[string]string // SID → name, for explanations
	Via   map[string]string // group SID → the SID through which it was reached
}

// System is the token of the local system: always allowed to read passwords.
func System() *Token {
	return &Token{Token: ntsec.Token{User: ntsec.SIDSystem}, Name: "SYSTEM", Names: map[string]string{ntsec.SIDSystem.String(): "SYSTEM"}}
}

// TokenFor computes the token of a principal given by any name Resolve accepts.
func (d *Directory) TokenFor(ctx context.Context, ref string) (*Token, error) {
	if strings.EqualFold(ref, "SYSTEM") || ref == ntsec.SIDSystem.String() {
		return System(), nil
	}
	o, err := d.Resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	if !o.IsPrincipal() || o.Class == ClassGroup {
		return nil, fmt.Errorf("directory: %s is not an account that can hold a token: %w", o.DN, ErrInvalid)
	}
	return d.token(ctx, o)
}

// token returns o's token, from the token cache while the store vouches that nothing
// was written since it was computed (store.Generations). Tokens are shared: callers
// read them and never modify them.
func (d *Directory) token(ctx context.Context, o *Object) (*Token, error) {
	gens, cacheable := d.st.(store.Generations)
	if !cacheable {
		return d.computeToken(ctx, o)
	}
	gen, ok := gens.Generation()
	if !ok {
		return d.computeToken(ctx, o)
	}
	d.tokMu.Lock()
	c, hit := d.tokCache[o.GUID]
	d.tokMu.Unlock()
	if hit && c.gen == gen && c.usn == o.USNChanged {
		return c.tok, nil
	}
	t, err := d.computeToken(ctx, o)
	if err != nil {
		return nil, err
	}
	if after, ok := gens.Generation(); ok && after == gen { // no write overtook the reads
		d.tokMu.Lock()
		if d.tokCache == nil || len(d.tokCache) >= tokCacheSize {
			d.tokCache = map[ntsec.GUID]cachedToken{} // every entry of an older generation is dead anyway
		}
		d.tokCache[o.GUID] = cachedToken{gen, o.USNChanged, t}
		d.tokMu.Unlock()
	}
	return t, nil
}

// tokCacheSize bounds the token cache.
const tokCacheSize = 4096

// cachedToken is a token and what it was computed from: the store's generation and the
// account's record revision.
type cachedToken struct {
	gen uint64
	usn int64
	tok *Token
}

// computeToken expands o's group memberships transitively through the memberof/ links.
func (d *Directory) computeToken(ctx context.Context, o *Object) (*Token, error) {
	t := &Token{Token: ntsec.Token{User: o.ObjectSID()}, Name: o.SAM, Names: map[string]string{o.SID: o.SAM}, Via: map[string]string{}}
	seen := map[string]bool{o.GUID.String(): true}
	type item struct{ guid, via string }
	var queue []item
	addGroup := func(g *Object, via string) {
		if seen[g.GUID.String()] {
			return // cycles and diamonds end here
		}
		seen[g.GUID.String()] = true
		t.Groups = append(t.Groups, g.ObjectSID())
		t.Names[g.SID], t.Via[g.SID] = g.Name, via
		queue = append(queue, item{g.GUID.String(), g.SID})
	}
	if o.PrimaryGroupRID != 0 {
		if pg, err := d.Resolve(ctx, d.sid.Child(o.PrimaryGroupRID).String()); err == nil {
			addGroup(pg, o.SID)
		}
	}
	queue = append(queue, item{o.GUID.String(), o.SID})
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		kvs, err := d.st.List(ctx, "memberof/"+it.guid+"/")
		if err != nil {
			return nil, err
		}
		for _, kv := range kvs {
			g, err := d.byGUID(ctx, kv.Key[strings.LastIndexByte(kv.Key, '/')+1:])
			if err != nil {
				continue // a group removed meanwhile
			}
			addGroup(g, it.via)
		}
	}
	// The well-known and BUILTIN groups AD puts in a network logon's token: Everyone,
	// Authenticated Users and This Organization; BUILTIN\Users (which holds Domain
	// Users and Authenticated Users) and Pre-Windows 2000 Compatible Access (which holds
	// Authenticated Users in a new forest); DCs also Enterprise Domain Controllers and,
	// through it, Windows Authorization Access Group.
	wk := []wellKnown{{ntsec.SIDEveryone, "Everyone"}, {ntsec.SIDAuthenticatedUsers, "Authenticated Users"},
		{sidThisOrganization, "This Organization"}, {sidBuiltinUsers, "BUILTIN\\Users"},
		{sidPreWindows2000, "BUILTIN\\Pre-Windows 2000 Compatible Access"}}
	if o.UAC&UACServerTrust != 0 {
		wk = append(wk, wellKnown{ntsec.SIDEnterpriseDCs, "Enterprise Domain Controllers"},
			wellKnown{sidWindowsAuthorizationAccess, "BUILTIN\\Windows Authorization Access Group"})
	}
	for _, w := range wk {
		if !t.Has(w.sid) {
			t.Groups = append(t.Groups, w.sid)
			t.Names[w.sid.String()] = w.name
		}
	}
	return t, nil
}

type wellKnown struct {
	sid  ntsec.SID
	name string
}

// Well-known SIDs of tokens ([MS-DTYP] 2.4.2.4).
var (
	sidThisOrganization           = ntsec.MustParseSID("S-1-5-15")
	sidBuiltinUsers               = ntsec.MustParseSID("S-1-5-32-545")
	sidPreWindows2000             = ntsec.MustParseSID("S-1-5-32-554")
	sidWindowsAuthorizationAccess = ntsec.MustParseSID("S-1-5-32-560")
)

// path explains how the token holds sid: "web01$ → Web Hosts → Tier1 Hosts".
func (t *Token) path(sid string) string {
	parts := []string{t.Names[sid]}
	for cur, n := sid, 0; n < 64; n++ {
		via, ok := t.Via[cur]
		if !ok || via == cur {
			break
		}
		parts = append([]string{t.Names[via]}, parts...)
		cur = via
	}
	if sid == t.User.String() {
		return t.Name
	}
	if len(parts) == 1 {
		return t.Name + " → " + parts[0] // Everyone, Authenticated Users …
	}
	return strings.Join(parts, " → ")
}

// GroupNames lists the token's groups by name, sorted.
func (t *Token) GroupNames() []string {
	var n []string
	for _, g := range t.Groups {
		n = append(n, t.Names[g.String()])
	}
	sort.Strings(n)
	return n
}

// Decision is the outcome of a password-read check, with the reason a person reads.
type Decision struct {
	Granted bool
	Reason  string
}

// decide evaluates acct's msDS-GroupMSAMembership for tok ([MS-ADTS] 3.1.1.4.4): the
// requester needs READ_PROPERTY, the gMSA's SID stands for PRINCIPAL_SELF, SYSTEM
// is always allowed.
func (d *Directory) decide(tok *Token, acct *Object) Decision { return d.decideWhy(tok, acct, true) }

// decideWhy is decide; without explain, a grant carries no reason (the password read
// path needs only the answer; denials always say why).
func (d *Directory) decideWhy(tok *Token, acct *Object, explain bool) Decision {
	if tok.User.Equal(ntsec.SIDSystem) {
		return Decision{true, "SYSTEM may always read managed passwords"}
	}
	if len(acct.GroupMSAMembership) == 0 {
		return Decision{false, fmt.Sprintf("%s has no PrincipalsAllowedToRetrieveManagedPassword (msDS-GroupMSAMembership is empty): nobody may read its password", acct.SAM)}
	}
	sd, err := acct.Membership()
	if err != nil {
		return Decision{false, fmt.Sprintf("%s: msDS-GroupMSAMembership is damaged (%v): access denied", acct.SAM, err)}
	}
	dec := ntsec.AccessCheck(sd, &tok.Token, ntsec.RightDSReadProperty, acct.ObjectSID())
	if dec.Granted && !explain {
		return Decision{Granted: true}
	}
	if dec.Granted {
		if dec.ACE < 0 {
			return Decision{true, dec.Reason()}
		}
		return Decision{true, fmt.Sprintf("allowed by entry %d of msDS-GroupMSAMembership, which names %s (%s)", dec.ACE, tok.Names[dec.SID.String()], tok.path(dec.SID.String()))}
	}
	if dec.ACE >= 0 {
		return Decision{false, fmt.Sprintf("denied by entry %d of msDS-GroupMSAMembership, which denies %s (%s)", dec.ACE, tok.Names[dec.SID.String()], tok.path(dec.SID.String()))}
	}
	return Decision{false, fmt.Sprintf("no entry of msDS-GroupMSAMembership (%s) names %s or any of its groups (%s)", sd.SDDL(), tok.Name, strings.Join(tok.GroupNames(), ", "))}
}

// TestAccount is Test-ADServiceAccount seen from a principal: may it retrieve the
// password of the gMSA, and why.
func (d *Directory) TestAccount(ctx context.Context, gmsaRef, principal string) (Decision, error) {
	acct, err := d.gmsa(ctx, gmsaRef)
	if err != nil {
		return Decision{}, err
	}
	tok, err := d.TokenFor(ctx, principal)
	if err != nil {
		return Decision{}, err
	}
	dec := d.decide(tok, acct)
	if dec.Granted && !acct.Enabled() {
		return Decision{false, dec.Reason + "; but " + acct.SAM + " is disabled, so it cannot authenticate"}, nil
	}
	return dec, nil
}

// ManagedPassword is the capability to read one gMSA's password. Only AuthorizePassword
// hands one out, after the access check has passed.
type ManagedPassword struct {
	d    *Directory
	acct *Object
}

// Account is the gMSA the capability is for.
func (m *ManagedPassword) Account() *Object { return m.acct }

// AuthorizePassword checks whether tok may read acct's password; it returns the
// capability when granted, and the decision either way.
func (d *Directory) AuthorizePassword(tok *Token, acct *Object) (*ManagedPassword, Decision) {
	if acct.Class != ClassGMSA {
		return nil, Decision{false, acct.DN + " is not a gMSA"}
	}
	dec := d.decideWhy(tok, acct, false)
	if !dec.Granted {
		return nil, dec
	}
	return &ManagedPassword{d: d, acct: acct}, dec
}

// Read returns the passwords in force now and persists a rotation when the stored
// password id has expired, as a DC does on a read.
func (m *ManagedPassword) Read(ctx context.Context) (*Passwords, error) {
	p, err := m.d.passwords(ctx, m.acct, m.d.nowFT())
	if err != nil {
		return nil, err
	}
	if p.Plan.Rotated {
		if err := m.d.persistRotation(ctx, m.acct, p.Plan); err != nil {
			return nil, err
		}
	}
	return p, nil
}
