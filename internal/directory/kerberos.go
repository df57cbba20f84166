package directory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"gmsa/internal/audit"
	"gmsa/internal/kds"
	"gmsa/internal/krbkey"
	"gmsa/internal/ntsec"
	"gmsa/internal/pac"
	"gmsa/internal/store"
)

// KerberosKey is a long-term key of a principal at a key version.
type KerberosKey struct {
	Etype int32
	Value []byte
	KVNO  uint32
	Salt  string // the AES salt (ETYPE-INFO2); empty for RC4
}

func (k KerberosKey) String() string {
	return fmt.Sprintf("directory.KerberosKey{%s kvno %d, [REDACTED]}", krbkey.EtypeName(k.Etype), k.KVNO)
}

// KerberosPrincipal is what the KDC needs of an account: its names, its keys (current,
// and the previous ones still accepted), and whether it may get tickets.
type KerberosPrincipal struct {
	GUID        ntsec.GUID
	SAM, UPN    string
	SID         string
	Class       Class
	Enctypes    uint32        // msDS-SupportedEncryptionTypes (0: unset)
	Keys        []KerberosKey // current keys, AES256 first
	OldKeys     []KerberosKey // previous keys still accepted for pre-authentication
	Disabled    bool
	LockedOut   bool
	ServerTrust bool // a domain controller
	// TicketGranting is krbtgt looked up as krbtgt/REALM: its tickets are TGTs. The
	// same account as kadmin/changepw issues tickets to the kpasswd service.
	TicketGranting bool
	// Delegation: protocol transition (S4U2Self tickets forwardable) and the SPNs
	// the account may get tickets to on a user's behalf (S4U2Proxy).
	TrustedToAuth       bool
	AllowedToDelegateTo []string
}

// Key returns the current key of an encryption type.
func (p *KerberosPrincipal) Key(etype int32) (KerberosKey, bool) {
	for _, k := range p.Keys {
		if k.Etype == etype {
			return k, true
		}
	}
	return KerberosKey{}, false
}

// ErrNoKeys is an account the KDC cannot issue tickets for: it has no password yet.
var ErrNoKeys = errors.New("the account has no keys")

// kerberosEtypes are the key types the directory derives, strongest first.
var kerberosEtypes = []int32{krbkey.EtypeAES256CTSHMACSHA, krbkey.EtypeAES128CTSHMACSHA, krbkey.EtypeRC4HMAC}

// previousKeyWindow is how long a gMSA's previous keys are still accepted for
// pre-authentication, counted as Samba counts it (samdb_gmsa_key_is_recent) from the
// start of the current password's key period ([MS-ADTS] 3.1.1.4.5.39 MaxClockSkew:
// 5 minutes).
const previousKeyWindow = 5 * ntsec.TicksPerMinute

// KerberosClient finds the account a client principal names, as AD's KDC does:
// sAMAccountName case-insensitively, with an implicit trailing $ for computers and
// gMSAs when implicitDollar is set, or, for an enterprise name (NT-ENTERPRISE), a
// userPrincipalName or sam@domain. A gMSA's keys are derived from the schedule now,
// persisting a rotation as an LDAP read would.
func (d *Directory) KerberosClient(ctx context.Context, name string, enterprise, implicitDollar bool) (*KerberosPrincipal, error) {
	var o *Object
	var err error
	switch {
	case enterprise && strings.Contains(name, "@"):
		o, err = d.byUPN(ctx, name)
	default:
		if strings.ContainsAny(name, "\\@=,") || strings.HasPrefix(strings.ToUpper(name), "S-1-") {
			return nil, fmt.Errorf("directory: %q is not an account name: %w", name, ErrNotFound)
		}
		o, err = d.byIndex(ctx, samKey(name))
		if errors.Is(err, store.ErrNotFound) && implicitDollar && !strings.HasSuffix(name, "$") {
			o, err = d.byIndex(ctx, samKey(name+"$"))
		}
	}
	if errors.Is(err, store.ErrNotFound) || err == nil && (o.Class == ClassGroup || !o.IsPrincipal()) {
		return nil, fmt.Errorf("directory: Kerberos principal %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return d.kerberosPrincipal(ctx, o)
}

// byUPN finds an account by userPrincipalName, or by the implicit UPN sam@dnsdomain.
func (d *Directory) byUPN(ctx context.Context, upn string) (*Object, error) {
	sam, domain, ok := strings.Cut(upn, "@")
	if !ok {
		return nil, store.ErrNotFound
	}
	if strings.EqualFold(domain, d.domain.DNSName) || strings.EqualFold(domain, d.domain.Realm) {
		if o, err := d.byIndex(ctx, samKey(sam)); err == nil {
			return o, nil
		}
	}
	var found *Object
	for _, c := range []Class{ClassUser, ClassComputer, ClassGMSA} {
		objs, err := d.List(ctx, c)
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			if strings.EqualFold(o.UPN, upn) {
				found = o
			}
		}
	}
	if found == nil {
		return nil, store.ErrNotFound
	}
	return found, nil
}

// KerberosService finds the account a service principal names: krbtgt/REALM, or an
// account by servicePrincipalName (case-insensitive; host/ also answers for the
// aliases AD maps to it), or by sAMAccountName for a single-component name.
func (d *Directory) KerberosService(ctx context.Context, components []string) (*KerberosPrincipal, error) {
	spn := strings.Join(components, "/")
	var o *Object
	var err error
	switch {
	case len(components) == 2 && strings.EqualFold(components[0], "krbtgt") && strings.EqualFold(components[1], d.domain.Realm):
		o, err := d.byIndex(ctx, samKey("krbtgt"))
		if err != nil {
			return nil, err
		}
		p, err := d.kerberosPrincipal(ctx, o)
		if p != nil {
			p.TicketGranting = true
		}
		return p, err
	case len(components) == 2 && strings.EqualFold(components[0], "kadmin") && strings.EqualFold(components[1], "changepw"):
		// The kpasswd service shares krbtgt's keys, as in AD, where kadmin/changepw
		// is an SPN of krbtgt ([MS-KILE] 3.3.5.1.1); the PAC tells its tickets
		// from TGTs (only TGTs carry PAC_REQUESTOR).
		o, err = d.byIndex(ctx, samKey("krbtgt"))
	case len(components) == 1:
		return d.KerberosClient(ctx, components[0], false, true)
	default:
		o, err = d.byIndex(ctx, spnKey(spn))
		if errors.Is(err, store.ErrNotFound) && len(components) >= 2 && isHostAlias(components[0]) {
			o, err = d.byIndex(ctx, spnKey("host/"+strings.Join(components[1:], "/")))
		}
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("directory: service principal %q: %w", spn, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return d.kerberosPrincipal(ctx, o)
}

// isHostAlias reports whether a service class is one AD's sPNMappings maps to host.
func isHostAlias(class string) bool {
	switch strings.ToLower(class) {
	case "alerter", "http", "policyagent", "scm", "rpcss", "cifs", "schedule", "wins", "browser", "dhcp", "dnscache",
		"replicator", "eventlog", "eventsystem", "iisad", "messenger", "netlogon", "netman", "netdde", "netddedsm",
		"nmagent", "plugplay", "protectedstorage", "rasman", "remoteaccess", "rpc", "rpclocator", "seclogon",
		"snmp", "spooler", "tapisrv", "time", "trksvr", "trkwks", "ups", "w3svc", "wmi", "restrictedkrbhost":
		return true
	}
	return false
}

// kerberosPrincipal builds the KDC's view of an account, deriving a gMSA's keys.
func (d *Directory) kerberosPrincipal(ctx context.Context, o *Object) (*KerberosPrincipal, error) {
	p := &KerberosPrincipal{GUID: o.GUID, SAM: o.SAM, UPN: o.UPN, SID: o.SID, Class: o.Class, Enctypes: o.SupportedEnctypes,
		Disabled: !o.Enabled(), LockedOut: d.lockedOut(o, d.domainPolicy(ctx), d.nowFT()), ServerTrust: o.UAC&UACServerTrust != 0,
		TrustedToAuth: o.UAC&UACTrustedToAuthForDelegation != 0, AllowedToDelegateTo: o.AllowedToDelegateTo}
	if o.Class == ClassGMSA {
		return p, d.gmsaKeys(ctx, o, p)
	}
	if len(o.Keys) == 0 {
		return nil, fmt.Errorf("directory: %s: %w", o.SAM, ErrNoKeys)
	}
	salt := d.salt(o)
	p.Keys = make([]KerberosKey, 0, len(o.Keys))
	for _, k := range o.Keys {
		p.Keys = append(p.Keys, KerberosKey{Etype: k.Etype, Value: k.Value, KVNO: o.KVNO, Salt: saltFor(k.Etype, salt)})
	}
	for _, k := range o.PreviousKeys {
		p.OldKeys = append(p.OldKeys, KerberosKey{Etype: k.Etype, Value: k.Value, KVNO: o.KVNO - 1, Salt: saltFor(k.Etype, salt)})
	}
	return p, nil
}

// RotateKrbtgt resets krbtgt's keys to a new random password, keeping the previous
// ones, so TGTs issued before stay valid until they expire; a second rotation (after
// the longest ticket lifetime, as AD administrators do after an incident) retires them.
func (d *Directory) RotateKrbtgt(ctx context.Context, req *Requester) (*Object, error) {
	if err := d.authorizeAdmin(req, "reset krbtgt"); err != nil {
		return nil, err
	}
	o, err := d.byIndex(ctx, samKey("krbtgt"))
	if err != nil {
		return nil, err
	}
	pw, err := randomMachinePassword(d.rand)
	if err != nil {
		return nil, err
	}
	n, err := d.modify(ctx, o.GUID, func(n *Object) ([]store.Op, error) { return nil, d.setKeys(n, pw) })
	if err != nil {
		return nil, err
	}
	d.changed(req, "reset krbtgt", n.DN)
	return n, nil
}

func (d *Directory) salt(o *Object) string {
	if o.Class == ClassComputer || o.Class == ClassGMSA {
		return krbkey.ComputerSalt(d.domain.Realm, o.SAM, d.domain.DNSName)
	}
	return krbkey.UserSalt(d.domain.Realm, o.SAM)
}

func saltFor(etype int32, salt string) string {
	if etype == krbkey.EtypeRC4HMAC {
		return ""
	}
	return salt
}

// gmsaKeys derives a gMSA's current keys (and, within five minutes after a rollover, the
// previous ones; within five minutes before it, still the current ones) from the password schedule, persisting a rotation as the LDAP path
// does; derived keys are kept per key period, so a period already seen costs no
// derivation.
func (d *Directory) gmsaKeys(ctx context.Context, o *Object, p *KerberosPrincipal) error {
	now := d.nowFT()
	pw, err := d.passwords(ctx, o, now)
	if err != nil {
		return err
	}
	kvno := o.KVNO
	if pw.Plan.Rotated {
		if err := d.persistRotation(ctx, o, pw.Plan); err != nil {
			return err
		}
		if n, err := d.byGUID(ctx, o.GUID.String()); err == nil {
			kvno = n.KVNO
		}
	}
	salt := d.salt(o)
	if pw.Plan.LookAhead {
		// The blob already hands out the next password; the account's keys stay those
		// of the one in use until the rollover ([MS-ADTS] 3.1.1.4.5.39).
		p.Keys, err = d.derivedKeys(o, *pw.Plan.Previous, *pw.Previous, salt, kvno)
		return err
	}
	if p.Keys, err = d.derivedKeys(o, pw.Plan.Current, pw.Current, salt, kvno); err != nil {
		return err
	}
	if pw.Previous != nil && pw.Plan.Previous != nil && now < pw.Plan.Current.GKID.Start()+previousKeyWindow && kvno > 1 {
		if p.OldKeys, err = d.derivedKeys(o, *pw.Plan.Previous, *pw.Previous, salt, kvno-1); err != nil {
			return err
		}
	}
	return nil
}

// keysKey names a gMSA's derived keys: its SID, and the password they came from.
type keysKey struct {
	pw  pwKey
	kvn uint32
}

// derivedKeys turns a gMSA password into its Kerberos keys, through a cache.
func (d *Directory) derivedKeys(o *Object, ref kds.KeyRef, pw kds.Password, salt string, kvno uint32) ([]KerberosKey, error) {
	k := keysKey{pwKey{o.SID, ref.RootKey, ref.GKID}, kvno}
	d.pwMu.Lock()
	keys, ok := d.keyCache[k]
	d.pwMu.Unlock()
	if ok {
		return keys, nil
	}
	raw, err := krbkey.AccountKeys(pw[:], salt, kerberosEtypes)
	if err != nil {
		return nil, err
	}
	for _, r := range raw {
		keys = append(keys, KerberosKey{Etype: r.Etype, Value: r.Value, KVNO: kvno, Salt: saltFor(r.Etype, salt)})
	}
	d.pwMu.Lock()
	if d.keyCache == nil || len(d.keyCache) >= pwCacheSize {
		d.keyCache = map[keysKey][]KerberosKey{}
	}
	d.keyCache[k] = keys
	d.pwMu.Unlock()
	return keys, nil
}

// KerberosPreauthFailed counts a failed pre-authentication towards the account's
// lockout, as AD does for Kerberos, and audits it (event 4771), aggregated per source.
func (d *Directory) KerberosPreauthFailed(ctx context.Context, p *KerberosPrincipal, remote, why string) {
	if o, err := d.byGUID(ctx, p.GUID.String()); err == nil && o.Class != ClassGMSA {
		d.badPassword(ctx, o, d.domainPolicy(ctx), d.nowFT())
	}
	d.audit.RecordNoisy(remote, d.now(), audit.Warn, "Kerberos pre-authentication failed", "account", p.SAM, "remote", remote, "reason", why)
}

// KerberosPreauthSucceeded starts a user's or computer's bad-password count again. It
// reports false when the stored account is locked out meanwhile (by another server, or
// a concurrent failure): the lockout stands and the logon is refused.
func (d *Directory) KerberosPreauthSucceeded(ctx context.Context, p *KerberosPrincipal) bool {
	o, err := d.byGUID(ctx, p.GUID.String())
	if err != nil || o.BadPwdCount == 0 && o.LockoutTime == 0 {
		return true
	}
	pol, now := d.domainPolicy(ctx), d.nowFT()
	_, err = d.modify(ctx, o.GUID, func(n *Object) ([]store.Op, error) {
		if d.lockedOut(n, pol, now) {
			return nil, errLockedOut
		}
		n.BadPwdCount, n.LockoutTime = 0, 0
		return nil, nil
	})
	return !errors.Is(err, errLockedOut)
}

// KerberosTicketIssued audits a ticket, as AD's events 4768 (a TGT) and 4769 (a
// service ticket) do; TGTs of users and computers are frequent and not recorded.
func (d *Directory) KerberosTicketIssued(client, service *KerberosPrincipal, tgt bool, remote string) {
	switch {
	case tgt && client.Class == ClassGMSA:
		d.audit.Record(d.now(), audit.Info, "Kerberos TGT issued", "account", client.SAM, "remote", remote)
	case !tgt && service.Class == ClassGMSA:
		d.audit.Record(d.now(), audit.Info, "Kerberos service ticket issued", "account", client.SAM, "service", service.SAM, "remote", remote)
	}
}

// LogonInfo is what the PAC says of an account ([MS-PAC] 2.5, 2.10): its validation
// info (RIDs of its domain groups, primary group included) and its UPN, constructed
// from sam@domain when it has none.
// With serviceAsserted (an S4U2Self ticket) the PAC carries "Service asserted identity"
// instead of "Authentication authority asserted identity".
func (d *Directory) LogonInfo(ctx context.Context, g ntsec.GUID, authTime ntsec.FileTime, serviceAsserted bool) (*pac.LogonInfo, string, bool, error) {
	o, err := d.byGUID(ctx, g.String())
	if err != nil {
		return nil, "", false, err
	}
	tok, err := d.token(ctx, o)
	if err != nil {
		return nil, "", false, err
	}
	sid := o.ObjectSID()
	li := &pac.LogonInfo{LogonTime: authTime, PasswordLastSet: o.PwdLastSet, EffectiveName: o.SAM, BadPasswordCount: uint16(o.BadPwdCount),
		UserID: sid.RID(), PrimaryGroupID: o.PrimaryGroupRID, LogonServer: d.domain.DCName, LogonDomainName: d.domain.NetBIOS,
		LogonDomainID: d.sid, UserAccountControl: pac.ACB(o.UAC), ExtraSIDs: []ntsec.SID{sidAuthorityAsserted}}
	if serviceAsserted {
		li.ExtraSIDs = []ntsec.SID{sidServiceAsserted}
	}
	if o.Class == ClassUser {
		li.PasswordMustChange = 0 // never: password expiry is not modelled
	}
	for _, g := range tok.Groups {
		if g.Authority == d.sid.Authority && len(g.Sub) == len(d.sid.Sub)+1 && d.sid.Equal(ntsec.SID{Authority: g.Authority, Sub: g.Sub[:len(g.Sub)-1]}) {
			li.GroupIDs = append(li.GroupIDs, g.RID())
		}
	}
	upn, constructed := o.UPN, false
	if upn == "" {
		upn, constructed = o.SAM+"@"+d.domain.DNSName, true
	}
	return li, upn, constructed, nil
}

// sidAuthorityAsserted is "Authentication authority asserted identity" ([MS-DTYP]
// 2.4.2.4), which AD adds to a PAC for an AS logon.
var sidAuthorityAsserted = ntsec.MustParseSID("S-1-18-1")

// sidServiceAsserted is "Service asserted identity", for S4U2Self.
var sidServiceAsserted = ntsec.MustParseSID("S-1-18-2")

// KerberosLogon authenticates, over channel ch, the client of a Kerberos ticket this
// domain's KDC issued (a SASL GSSAPI or GSS-SPNEGO bind): the account the ticket names
// by sAMAccountName, which must still be enabled and not locked out, and its token
// built from the directory as the PAC was. Failures carry AD's bind data codes.
func (d *Directory) KerberosLogon(ctx context.Context, ch *Requester, sam string) (*Requester, error) {
	if strings.ContainsAny(sam, "\\@=,/") {
		return d.logonFailed(ch, sam, "525", "not an account name", "kerberos")
	}
	o, err := d.byIndex(ctx, samKey(sam))
	return d.logon(ctx, ch, sam, o, err, AuthKerberos, "kerberos")
}

// CertificateLogon authenticates, over a TLS channel ch, the holder of a client
// certificate the caller verified against the domain's CA, by the account SID AD's
// strong mapping puts in it (a SASL EXTERNAL bind).
func (d *Directory) CertificateLogon(ctx context.Context, ch *Requester, sid string) (*Requester, error) {
	if !strings.HasPrefix(strings.ToUpper(sid), "S-1-") {
		return d.logonFailed(ch, sid, "525", "the certificate maps to no SID", "certificate")
	}
	o, err := d.Resolve(ctx, sid)
	if errors.Is(err, ErrNotFound) {
		err = store.ErrNotFound
	}
	return d.logon(ctx, ch, sid, o, err, AuthCertificate, "certificate")
}

// logon ends a logon by a credential the transport verified: the account must exist,
// be a principal, enabled and not locked out.
func (d *Directory) logon(ctx context.Context, ch *Requester, name string, o *Object, err error, method AuthMethod, how string) (*Requester, error) {
	switch {
	case errors.Is(err, store.ErrNotFound) || err == nil && (o.Class == ClassGroup || !o.IsPrincipal()):
		return d.logonFailed(ch, name, "525", "unknown account", how)
	case err != nil:
		return nil, err
	case !o.Enabled():
		return d.logonFailed(ch, name, "533", "account disabled", how)
	case d.lockedOut(o, d.domainPolicy(ctx), d.nowFT()):
		return d.logonFailed(ch, name, "775", "account locked out", how)
	}
	tok, err := d.token(ctx, o)
	if err != nil {
		return nil, err
	}
	return &Requester{Token: tok, Auth: method, Protection: ch.Protection, Remote: ch.Remote}, nil
}

func (d *Directory) logonFailed(ch *Requester, name, data, why, how string) (*Requester, error) {
	d.audit.RecordNoisy(ch.Remote, d.now(), audit.Warn, "authentication failed", "name", name, "remote", ch.Remote, "data", data, "reason", why, "method", how)
	return nil, &ErrInvalidCredentials{Data: data}
}

// LDAPServiceKey returns the key of this domain controller's account that a ticket for
// one of its SPNs (ldap/…, host/…) was encrypted with, for the LDAP server's SASL
// acceptor: tickets for any other account are refused.
func (d *Directory) LDAPServiceKey(ctx context.Context, components []string, etype int32, kvno int) ([]byte, error) {
	spn := strings.Join(components, "/")
	dc, err := d.byIndex(ctx, samKey(d.domain.DCName+"$"))
	if err != nil {
		return nil, err
	}
	// The SPN must be the DC account's before any key is looked at: a ticket for another
	// account (a gMSA's, whose keys cost a KDS derivation) is refused at once.
	own := func(name string) bool {
		return slices.ContainsFunc(dc.SPNs, func(s string) bool { return strings.EqualFold(s, name) })
	}
	if !own(spn) && !(len(components) >= 2 && isHostAlias(components[0]) && own("host/"+strings.Join(components[1:], "/"))) {
		return nil, fmt.Errorf("directory: the ticket is for %s, not for this domain controller (%s$)", spn, d.domain.DCName)
	}
	p, err := d.kerberosPrincipal(ctx, dc)
	if err != nil {
		return nil, err
	}
	for _, k := range append(append([]KerberosKey{}, p.Keys...), p.OldKeys...) {
		if k.Etype == etype && (kvno == 0 || uint32(kvno) == k.KVNO) {
			return k.Value, nil
		}
	}
	return nil, fmt.Errorf("directory: %s has no %s key of version %d", p.SAM, krbkey.EtypeName(etype), kvno)
}
