package directory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"gmsa/internal/audit"
	"strconv"
	"strings"

	"gmsa/internal/kds"
	"gmsa/internal/managedpw"
	"gmsa/internal/ntsec"
	"gmsa/internal/store"
)

// GMSAOptions mirror New-ADServiceAccount's parameters.
type GMSAOptions struct {
	Name              string   // -Name; sAMAccountName is Name$
	DNSHostName       string   // -DNSHostName, required
	SPNs              []string // -ServicePrincipalNames
	PrincipalsAllowed []string // -PrincipalsAllowedToRetrieveManagedPassword: names, name$, SIDs or DNs
	IntervalDays      int64    // -ManagedPasswordIntervalInDays, default 30, only at creation
	Enctypes          uint32   // -KerberosEncryptionType as msDS-SupportedEncryptionTypes; default RC4|AES128|AES256
	Disabled          bool     // -Enabled $false
	Description       string
	Container         string // DN of the parent; default CN=Managed Service Accounts
	CN                string // default Name
	Membership        []byte // msDS-GroupMSAMembership as a binary SD, instead of PrincipalsAllowed
}

// DefaultGMSAEnctypes is what New-ADServiceAccount sets without -KerberosEncryptionType.
const DefaultGMSAEnctypes = EnctypeRC4 | EnctypeAES128 | EnctypeAES256

// ParseEnctypes reads "aes128,aes256" (also rc4, des is refused) into the bit mask.
func ParseEnctypes(s string) (uint32, error) {
	var m uint32
	for _, p := range strings.Split(s, ",") {
		switch strings.ToLower(strings.TrimSpace(p)) {
		case "rc4", "rc4-hmac", "arcfour-hmac":
			m |= EnctypeRC4
		case "aes128", "aes128-cts-hmac-sha1-96":
			m |= EnctypeAES128
		case "aes256", "aes256-cts-hmac-sha1-96":
			m |= EnctypeAES256
		case "none", "":
		default:
			return 0, fmt.Errorf("directory: encryption type %q: want aes128, aes256 or rc4: %w", p, ErrInvalid)
		}
	}
	return m, nil
}

// NewGMSA creates a group Managed Service Account under CN=Managed Service Accounts with
// its first msDS-ManagedPasswordId, as a DC does at creation (gmsa-algorithm.md §8).
func (d *Directory) NewGMSA(ctx context.Context, req *Requester, opt GMSAOptions) (*Object, error) {
	ctx, done := d.created(ctx, req, opt.Container, d.domain.MSADN(), ClassGMSA)
	return done(d.newGMSA(ctx, opt))
}

func (d *Directory) newGMSA(ctx context.Context, opt GMSAOptions) (*Object, error) {
	name := strings.TrimSuffix(opt.Name, "$")
	if err := checkName("gMSA", name, 15); err != nil {
		return nil, err
	}
	if strings.TrimSpace(opt.DNSHostName) == "" {
		return nil, fmt.Errorf("directory: gMSA %s needs a DNS host name (-DNSHostName), e.g. %s.%s: %w", name, strings.ToLower(name), d.domain.DNSName, ErrInvalid)
	}
	if opt.IntervalDays == 0 {
		opt.IntervalDays = 30
	}
	if _, err := kds.RolloverInterval(opt.IntervalDays); err != nil {
		return nil, fmt.Errorf("directory: password interval %d days: want 1 to 21350397: %w", opt.IntervalDays, ErrInvalid)
	}
	if err := checkSPNs(opt.SPNs); err != nil {
		return nil, err
	}
	if opt.Enctypes == 0 {
		opt.Enctypes = DefaultGMSAEnctypes
	}
	sd, err := d.membershipSD(ctx, opt.PrincipalsAllowed)
	if err != nil {
		return nil, err
	}
	if opt.Membership != nil {
		if len(opt.PrincipalsAllowed) > 0 {
			return nil, fmt.Errorf("directory: give principals or a membership security descriptor, not both: %w", ErrInvalid)
		}
		if _, err := ntsec.ParseSecurityDescriptor(opt.Membership); err != nil {
			return nil, fmt.Errorf("directory: msDS-GroupMSAMembership: %v: %w", err, ErrInvalid)
		}
		sd = opt.Membership
	}
	cn, dn, err := d.place(ctx, opt.CN, name, opt.Container, d.domain.MSADN())
	if err != nil {
		return nil, err
	}
	keys, err := d.rootKeys(ctx)
	if err != nil {
		return nil, err
	}
	now := d.nowFT()
	rk, err := kds.SelectRootKeyForNewAccount(keys, now)
	if err != nil {
		return nil, d.noRootKeyError(keys, now)
	}
	o := &Object{GUID: d.newGUID(), Class: ClassGMSA, Name: cn, DN: dn, SAM: name + "$",
		UAC: UACWorkstationTrust, DNSHostName: opt.DNSHostName, SPNs: opt.SPNs, SupportedEnctypes: opt.Enctypes,
		PrimaryGroupRID: ntsec.RIDDomainComputers, PasswordInterval: opt.IntervalDays, GroupMSAMembership: sd,
		Description: opt.Description, KVNO: 1, PwdLastSet: now,
		PasswordID: kds.NewPasswordID(rk, kds.GKIDAt(now), d.domain.DNSName, d.domain.DNSName).Bytes()}
	if opt.Disabled {
		o.UAC |= UACAccountDisable
	}
	if err := d.create(ctx, o, true); err != nil {
		return nil, err
	}
	return o, nil
}

// noRootKeyError says why no root key serves a new gMSA and what to do.
func (d *Directory) noRootKeyError(keys []kds.RootKey, now ntsec.FileTime) error {
	const lab = "in a lab, back-date a key: 'gmsa kds add --effective-time " // + a time 10 h ago
	backdate := (now - kds.CreationLag - ntsec.TicksPerMinute).Time().Format("2006-01-02T15:04:05Z")
	if len(keys) == 0 {
		return fmt.Errorf("directory: no KDS root key exists: add one with 'gmsa kds add' (Add-KdsRootKey); %s%s': %w", lab, backdate, ErrNoRootKey)
	}
	newest := keys[0]
	for _, k := range keys {
		if k.CreateTime > newest.CreateTime {
			newest = k
		}
	}
	return fmt.Errorf("directory: no KDS root key is usable yet: the newest, %s, becomes usable for new gMSAs at %s (its effective time + 10 h); wait, or %s%s': %w",
		newest.ID, fmtTime(newest.UseStartTime+kds.CreationLag), lab, backdate, ErrNoRootKey)
}

// membershipSD builds msDS-GroupMSAMembership from principal names:
// O:S-1-5-32-544D:(A;;0xf01ff;;;SID)… with one ACE per principal, as the AD module does.
func (d *Directory) membershipSD(ctx context.Context, principals []string) ([]byte, error) {
	if len(principals) == 0 {
		return nil, nil
	}
	owner := ntsec.SIDBuiltinAdmins
	sd := &ntsec.SecurityDescriptor{Owner: &owner, DACL: &ntsec.ACL{Revision: 2}}
	seen := map[string]bool{}
	for _, p := range principals {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		o, err := d.Resolve(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("directory: principal allowed to retrieve the password %q: %w", p, err)
		}
		if !o.IsPrincipal() {
			return nil, fmt.Errorf("directory: %s has no SID and cannot be allowed to retrieve a password: %w", o.DN, ErrInvalid)
		}
		if seen[o.SID] {
			continue
		}
		seen[o.SID] = true
		sd.DACL.ACEs = append(sd.DACL.ACEs, ntsec.ACE{Type: ntsec.ACETypeAccessAllowed, Mask: 0xf01ff, SID: o.ObjectSID()})
	}
	return sd.Bytes(), nil
}

// container checks that a parent DN exists and is a container; "" gives def.
func (d *Directory) container(ctx context.Context, dn, def string) (string, error) {
	if dn == "" {
		return def, nil
	}
	o, err := d.byIndex(ctx, dnKey(dn))
	if err != nil {
		return "", fmt.Errorf("directory: parent %q does not exist: %w", dn, ErrNoSuchBase)
	}
	if o.Class != ClassContainer && o.Class != ClassOU && o.Class != ClassDomain {
		return "", fmt.Errorf("directory: parent %s is a %s, not a container: %w", o.DN, o.Class, ErrInvalid)
	}
	return o.DN, nil
}

// GMSAChanges mirror Set-ADServiceAccount; nil fields stay as they are.
type GMSAChanges struct {
	DNSHostName       *string
	SPNs              *[]string // replace the list
	AddSPNs           []string
	RemoveSPNs        []string
	PrincipalsAllowed *[]string // replace the list
	Enctypes          *uint32
	Enabled           *bool
	Description       *string
	IntervalDays      *int64  // refused: system-only after creation
	Membership        *[]byte // msDS-GroupMSAMembership as a binary SD
	// Delegation (Set-ADServiceAccount -TrustedForDelegation…, msDS-AllowedToDelegateTo).
	AllowedToDelegateTo *[]string // replace the list of SPNs
	TrustedToAuth       *bool     // TRUSTED_TO_AUTH_FOR_DELEGATION: protocol transition
}

// SetGMSA changes a gMSA.
func (d *Directory) SetGMSA(ctx context.Context, req *Requester, ref string, ch GMSAChanges) (*Object, error) {
	o, err := d.gmsa(ctx, ref)
	if err != nil {
		return nil, err
	}
	return d.SetAccount(ctx, req, o.DN, ch)
}

// SetAccount applies changes to a gMSA, computer or user, all or none, as one Modify;
// the gMSA-only changes (principals, membership, interval) are refused for the others.
func (d *Directory) SetAccount(ctx context.Context, req *Requester, ref string, ch GMSAChanges) (*Object, error) {
	o, err := d.Resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	if o.Class != ClassGMSA && o.Class != ClassComputer && o.Class != ClassUser {
		return nil, fmt.Errorf("directory: %s is a %s, not an account: %w", o.DN, o.Class, ErrInvalid)
	}
	if o.Class != ClassGMSA && (ch.PrincipalsAllowed != nil || ch.Membership != nil || ch.IntervalDays != nil) {
		return nil, fmt.Errorf("directory: %s is a %s; only gMSAs have a managed password: %w", o.DN, o.Class, ErrInvalid)
	}
	if ch.IntervalDays != nil && *ch.IntervalDays != o.PasswordInterval {
		return nil, fmt.Errorf("directory: %s: the password interval (msDS-ManagedPasswordInterval) can only be set when the account is created; remove the account and create it again with the interval you want: %w", o.SAM, ErrInvalid)
	}
	var changes []Change
	set := func(op ChangeOp, attr string, vals ...[]byte) {
		changes = append(changes, Change{Op: op, Attr: attr, Values: vals})
	}
	if ch.DNSHostName != nil {
		if strings.TrimSpace(*ch.DNSHostName) == "" {
			return nil, fmt.Errorf("directory: %s: the DNS host name cannot be empty: %w", o.SAM, ErrInvalid)
		}
		set(ChangeReplace, "dNSHostName", []byte(*ch.DNSHostName))
	}
	spns := func(list []string) [][]byte {
		out := [][]byte{}
		for _, s := range list {
			out = append(out, []byte(s))
		}
		return out
	}
	if ch.SPNs != nil {
		set(ChangeReplace, "servicePrincipalName", spns(*ch.SPNs)...)
	}
	if len(ch.RemoveSPNs) > 0 {
		set(ChangeDelete, "servicePrincipalName", spns(ch.RemoveSPNs)...)
	}
	if len(ch.AddSPNs) > 0 {
		set(ChangeAdd, "servicePrincipalName", spns(ch.AddSPNs)...)
	}
	if ch.PrincipalsAllowed != nil {
		sd, err := d.membershipSD(ctx, *ch.PrincipalsAllowed)
		if err != nil {
			return nil, err
		}
		ch.Membership = &sd
	}
	if ch.Membership != nil {
		if len(*ch.Membership) == 0 {
			set(ChangeDelete, "msDS-GroupMSAMembership")
		} else {
			set(ChangeReplace, "msDS-GroupMSAMembership", *ch.Membership)
		}
	}
	if ch.Enctypes != nil {
		set(ChangeReplace, "msDS-SupportedEncryptionTypes", []byte(strconv.FormatUint(uint64(*ch.Enctypes), 10)))
	}
	if ch.Enabled != nil || ch.TrustedToAuth != nil {
		uac := o.UAC
		if ch.Enabled != nil {
			uac &^= UACAccountDisable
			if !*ch.Enabled {
				uac |= UACAccountDisable
			}
		}
		if ch.TrustedToAuth != nil {
			uac &^= UACTrustedToAuthForDelegation
			if *ch.TrustedToAuth {
				uac |= UACTrustedToAuthForDelegation
			}
		}
		set(ChangeReplace, "userAccountControl", []byte(strconv.FormatUint(uint64(uac), 10)))
	}
	if ch.AllowedToDelegateTo != nil {
		set(ChangeReplace, "msDS-AllowedToDelegateTo", spns(*ch.AllowedToDelegateTo)...)
	}
	if ch.Description != nil {
		set(ChangeReplace, "description", []byte(*ch.Description))
	}
	return d.Modify(ctx, req, o.DN, changes)
}

func (d *Directory) gmsa(ctx context.Context, ref string) (*Object, error) {
	o, err := d.Resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	if o.Class != ClassGMSA {
		return nil, fmt.Errorf("directory: %s is a %s, not a gMSA: %w", o.DN, o.Class, ErrInvalid)
	}
	return o, nil
}

// Passwords is what a read of msDS-ManagedPassword yields at one instant.
type Passwords struct {
	Plan     kds.Plan
	Current  kds.Password
	Previous *kds.Password
}

// Blob encodes the msDS-ManagedPassword value.
func (p *Passwords) Blob() []byte {
	b := managedpw.Blob{Current: p.Current[:], QueryInterval: p.Plan.Query, UnchangedInterval: p.Plan.Unchanged}
	if p.Previous != nil {
		b.Previous = p.Previous[:]
	}
	return b.Encode()
}

// passwords applies the schedule to acct at now and derives through the cache.
func (d *Directory) passwords(ctx context.Context, acct *Object, now ntsec.FileTime) (*Passwords, error) {
	keys, err := d.rootKeys(ctx)
	if err != nil {
		return nil, err
	}
	ids, err := acct.PasswordIDs()
	if err != nil {
		return nil, err
	}
	a := kds.Account{Created: acct.Created, IntervalDays: acct.PasswordInterval, CurrentID: ids[0], PreviousID: ids[1]}
	plan, err := kds.PlanPasswords(a, keys, now)
	if err != nil {
		return nil, fmt.Errorf("directory: %s: %w", acct.SAM, err)
	}
	p := &Passwords{Plan: plan}
	if p.Current, err = d.password(acct, plan.Current); err != nil {
		return nil, err
	}
	if plan.Previous != nil {
		prev, err := d.password(acct, *plan.Previous)
		if err != nil {
			return nil, err
		}
		p.Previous = &prev
	}
	return p, nil
}

// pwKey names a derived password: the account's SID, and the root key (as loaded by
// rootKeys: a reload makes new keys) and key period it came from.
type pwKey struct {
	sid string
	rk  *kds.RootKey
	g   kds.GKID
}

// pwCacheSize bounds the passwords kept (two per gMSA in use: current and previous).
const pwCacheSize = 1 << 15

// password derives the password of ref for acct through the engine's cache, and keeps
// it: further reads in the same key period cost no KDF.
func (d *Directory) password(acct *Object, ref kds.KeyRef) (kds.Password, error) {
	k := pwKey{acct.SID, ref.RootKey, ref.GKID}
	d.pwMu.Lock()
	pw, ok := d.pwCache[k]
	d.pwMu.Unlock()
	if ok {
		return pw, nil
	}
	pw, err := d.cache.Password(ref.RootKey, ref.GKID, acct.ObjectSID().Bytes())
	if err != nil {
		return pw, err
	}
	d.pwMu.Lock()
	if d.pwCache == nil || len(d.pwCache) >= pwCacheSize {
		d.pwCache = map[pwKey]kds.Password{}
	}
	d.pwCache[k] = pw
	d.pwMu.Unlock()
	return pw, nil
}

var errUnchanged = errors.New("unchanged")

// persistRotation stores the new ids, key version and pwdLastSet a rotation produced,
// once: a concurrent reader that already stored them makes this a no-op.
func (d *Directory) persistRotation(ctx context.Context, acct *Object, plan kds.Plan) error {
	dom := d.domain.DNSName
	cur := kds.NewPasswordID(plan.NewCurrent.RootKey, plan.NewCurrent.GKID, dom, dom).Bytes()
	var prev []byte
	if plan.NewPrevious != nil {
		prev = kds.NewPasswordID(plan.NewPrevious.RootKey, plan.NewPrevious.GKID, dom, dom).Bytes()
	}
	_, err := d.modify(ctx, acct.GUID, func(n *Object) ([]store.Op, error) {
		if bytes.Equal(n.PasswordID, cur) {
			return nil, errUnchanged
		}
		n.PasswordID, n.PreviousPasswordID = cur, prev
		n.KVNO++
		n.PwdLastSet = plan.NewCurrent.GKID.Start()
		return nil, nil
	})
	if errors.Is(err, errUnchanged) {
		return nil
	}
	if err == nil {
		d.log.Info("gMSA password rotated", "account", acct.SAM, "period", plan.NewCurrent.GKID.String(), "root_key", plan.NewCurrent.RootKey.ID.String())
		d.audit.Record(d.now(), audit.Info, "gMSA password rotated", "account", acct.SAM, "period", plan.NewCurrent.GKID.String(),
			"root_key", plan.NewCurrent.RootKey.ID.String())
	}
	return err
}
