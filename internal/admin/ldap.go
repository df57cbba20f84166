package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"gmsa/internal/adclient"
	"gmsa/internal/directory"
	"gmsa/internal/kds"
	"gmsa/internal/krbkey"
	"gmsa/internal/ntsec"
)

// LDAP serves Admin against any AD-compatible DC over LDAPS or StartTLS.
type LDAP struct {
	C    *adclient.Client
	Now  func() time.Time
	Rand io.Reader
	// User is who the connection is bound as; AccountPassword reads with its rights.
	User string
}

func (l *LDAP) Close() error { return l.C.Close() }

// ldapErr maps LDAP result codes onto the directory's error kinds for exit codes.
func ldapErr(err error) error {
	var le *ldap.Error
	if !errors.As(err, &le) {
		if errors.Is(err, adclient.ErrNotFound) {
			return fmt.Errorf("%v: %w", err, directory.ErrNotFound)
		}
		return err
	}
	switch le.ResultCode {
	case ldap.LDAPResultNoSuchObject:
		return fmt.Errorf("%v: %w", err, directory.ErrNotFound)
	case ldap.LDAPResultEntryAlreadyExists, ldap.LDAPResultAttributeOrValueExists:
		return fmt.Errorf("%v: %w", err, directory.ErrExists)
	case ldap.LDAPResultInsufficientAccessRights:
		return fmt.Errorf("%v: %w", err, directory.ErrAccessDenied)
	case ldap.LDAPResultConstraintViolation, ldap.LDAPResultUnwillingToPerform, ldap.LDAPResultObjectClassViolation, ldap.LDAPResultNamingViolation:
		return fmt.Errorf("%v: %w", err, directory.ErrInvalid)
	}
	return err
}

func (l *LDAP) Domain(context.Context) (directory.Domain, error) {
	c := l.C
	dc := strings.ToUpper(strings.SplitN(c.DCHostName, ".", 2)[0])
	return directory.Domain{DNSName: c.DNSName, Realm: c.Realm, NetBIOS: c.NetBIOS, GUID: c.DomainGUID,
		SID: c.DomainSID.String(), BaseDN: c.BaseDN, ConfigDN: c.ConfigDN, DCName: dc}, nil
}

func (l *LDAP) rootKeysDN() string {
	return "CN=Master Root Keys,CN=Group Key Distribution Service,CN=Services," + l.C.ConfigDN
}

var entryAttrs = []string{"objectClass", "cn", "name", "sAMAccountName", "objectSid", "objectGUID", "userAccountControl", "description",
	"dNSHostName", "servicePrincipalName", "msDS-SupportedEncryptionTypes", "groupType", "member", "memberOf", "msDS-KeyVersionNumber",
	"pwdLastSet", "whenCreated", "whenChanged", "uSNCreated", "uSNChanged", "msDS-ManagedPasswordInterval", "msDS-GroupMSAMembership", "msDS-AllowedToDelegateTo",
	"msDS-ManagedPasswordId", "msKds-KDFParam", "msKds-CreateTime", "msKds-UseStartTime"}

func rdnValue(dn string) string {
	first := strings.SplitN(dn, ",", 2)[0]
	_, v, _ := strings.Cut(first, "=")
	return v
}

func genTime(s string) string {
	t, err := time.Parse("20060102150405.0Z", s)
	if err != nil {
		return s
	}
	return t.UTC().Format("2006-01-02T15:04:05Z")
}

func fileTime(s string) string {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 {
		return ""
	}
	return fmtTime(ntsec.FileTime(n))
}

// entry builds the view of an LDAP entry.
func (l *LDAP) entry(e *ldap.Entry) Entry {
	oc := e.GetAttributeValues("objectClass")
	en := Entry{DN: e.DN, Name: e.GetAttributeValue("name"), SAMAccountName: e.GetAttributeValue("sAMAccountName"),
		Description: e.GetAttributeValue("description"), DNSHostName: e.GetAttributeValue("dNSHostName"),
		SPNs: e.GetAttributeValues("servicePrincipalName"), PwdLastSet: fileTime(e.GetAttributeValue("pwdLastSet")),
		Created: genTime(e.GetAttributeValue("whenCreated")), Changed: genTime(e.GetAttributeValue("whenChanged"))}
	if en.Name == "" {
		en.Name = e.GetAttributeValue("cn")
	}
	if len(oc) > 0 {
		en.Class = oc[len(oc)-1]
	}
	if sid, err := adclient.SID(e); err == nil {
		en.SID = sid.String()
	}
	if g, err := ntsec.GUIDFromBytes(e.GetRawAttributeValue("objectGUID")); err == nil {
		en.GUID = g.String()
	}
	num := func(a string) int64 { n, _ := strconv.ParseInt(e.GetAttributeValue(a), 10, 64); return n }
	if uac := e.GetAttributeValue("userAccountControl"); uac != "" {
		en.UAC = uint32(num("userAccountControl"))
		enabled := en.UAC&directory.UACAccountDisable == 0
		en.Enabled = &enabled
	}
	en.SupportedEnctypes = uint32(num("msDS-SupportedEncryptionTypes"))
	en.AllowedToDelegateTo = e.GetAttributeValues("msDS-AllowedToDelegateTo")
	en.TrustedToAuth = uint32(num("userAccountControl"))&directory.UACTrustedToAuthForDelegation != 0
	en.KVNO = uint32(num("msDS-KeyVersionNumber"))
	en.USNCreated, en.USNChanged = num("uSNCreated"), num("uSNChanged")
	en.PasswordIntervalDays = num("msDS-ManagedPasswordInterval")
	if gt := num("groupType"); gt != 0 {
		switch {
		case gt&directory.GroupUniversal != 0:
			en.GroupScope = string(directory.ScopeUniversal)
		case gt&(directory.GroupDomainLocal|directory.GroupBuiltinLocal) != 0:
			en.GroupScope = string(directory.ScopeDomainLocal)
		default:
			en.GroupScope = string(directory.ScopeGlobal)
		}
	}
	for _, m := range e.GetAttributeValues("member") {
		en.Members = append(en.Members, rdnValue(m))
	}
	for _, m := range e.GetAttributeValues("memberOf") {
		en.MemberOf = append(en.MemberOf, rdnValue(m))
	}
	sort.Strings(en.MemberOf)
	if raw := e.GetRawAttributeValue("msDS-GroupMSAMembership"); len(raw) > 0 {
		if sd, err := ntsec.ParseSecurityDescriptor(raw); err == nil {
			en.MembershipSDDL = sd.SDDL()
			if sd.DACL != nil {
				for _, ace := range sd.DACL.ACEs {
					name := ace.SID.String()
					if p, err := l.C.Find(name, "sAMAccountName", "cn"); err == nil {
						name = p.GetAttributeValue("sAMAccountName")
					}
					if ace.Type == ntsec.ACETypeAccessDenied {
						name = "deny " + name
					}
					en.PrincipalsAllowed = append(en.PrincipalsAllowed, name)
				}
			}
		}
	}
	if id, err := kds.ParsePasswordID(e.GetRawAttributeValue("msDS-ManagedPasswordId")); err == nil {
		en.PasswordPeriod = fmt.Sprintf("%v from %s", id.GKID, fmtTime(id.GKID.Start()))
		en.PasswordRootKey = id.RootKeyID.String()
	}
	if strings.EqualFold(en.Class, "msKds-ProvRootKey") {
		if h, err := kds.DecodeKDFParam(e.GetRawAttributeValue("msKds-KDFParam")); err == nil {
			en.KDFHash = h.String()
		}
		en.CreateTime, en.EffectiveTime = fileTime(e.GetAttributeValue("msKds-CreateTime")), fileTime(e.GetAttributeValue("msKds-UseStartTime"))
		if n, err := strconv.ParseUint(e.GetAttributeValue("msKds-UseStartTime"), 10, 64); err == nil {
			en.UsableForNew = fmtTime(ntsec.FileTime(n) + kds.CreationLag)
		}
	}
	return en
}

func (l *LDAP) KDSAdd(ctx context.Context, opt directory.RootKeyOptions) (Entry, []string, error) {
	now := ntsec.FileTimeFromTime(l.Now())
	start := now + directory.DefaultRootKeyDelay
	switch {
	case opt.EffectiveTime != nil && opt.Immediately:
		return Entry{}, nil, fmt.Errorf("give an effective time or immediately, not both: %w", directory.ErrInvalid)
	case opt.EffectiveTime != nil:
		start = *opt.EffectiveTime
	case opt.Immediately:
		start = now
	}
	var id ntsec.GUID
	data := make([]byte, kds.RootKeyDataLen)
	if _, err := io.ReadFull(l.Rand, id[:]); err != nil {
		return Entry{}, nil, err
	}
	if _, err := io.ReadFull(l.Rand, data); err != nil {
		return Entry{}, nil, err
	}
	id[7], id[8] = id[7]&0x0f|0x40, id[8]&0x3f|0x80
	existing, _ := l.KDSList(ctx)
	dom, _ := l.Domain(ctx)
	dn := "CN=" + id.String() + "," + l.rootKeysDN()
	req := ldap.NewAddRequest(dn, nil)
	req.Attribute("objectClass", []string{"msKds-ProvRootKey"})
	req.Attribute("msKds-RootKeyData", []string{string(data)})
	req.Attribute("msKds-KDFAlgorithmID", []string{kds.KDFAlgorithm})
	req.Attribute("msKds-KDFParam", []string{string(kds.EncodeKDFParam(kds.SHA512))})
	req.Attribute("msKds-SecretAgreementAlgorithmID", []string{"DH"})
	req.Attribute("msKds-SecretAgreementParam", []string{string(directory.DHParams())})
	req.Attribute("msKds-PublicKeyLength", []string{"2048"})
	req.Attribute("msKds-PrivateKeyLength", []string{"512"})
	req.Attribute("msKds-Version", []string{"1"})
	req.Attribute("msKds-CreateTime", []string{strconv.FormatUint(uint64(now), 10)})
	req.Attribute("msKds-UseStartTime", []string{strconv.FormatUint(uint64(start), 10)})
	req.Attribute("msKds-DomainID", []string{"CN=" + dom.DCName + ",OU=Domain Controllers," + l.C.BaseDN})
	if err := l.C.Conn.Add(req); err != nil {
		return Entry{}, nil, ldapErr(err)
	}
	var warn []string
	if len(existing) > 0 {
		warn = append(warn, fmt.Sprintf("%d other root key(s) exist: accounts keep the key their password id names; new password periods take the newest usable key", len(existing)))
	}
	if usable := start + kds.CreationLag; usable > now {
		warn = append(warn, fmt.Sprintf("new gMSAs can use this key from %s (effective time + 10 h, as domain controllers wait for replication)", fmtTime(usable)))
	}
	en, err := l.KDSGet(ctx, id.String())
	return en, warn, err
}

func (l *LDAP) KDSList(ctx context.Context) ([]Entry, error) {
	es, err := l.C.Search(l.rootKeysDN(), "(objectClass=msKds-ProvRootKey)", entryAttrs...)
	if err != nil {
		return nil, ldapErr(err)
	}
	out := make([]Entry, 0, len(es))
	for _, e := range es {
		out = append(out, l.entry(e))
	}
	return out, nil
}

func (l *LDAP) rootKey(id string, attrs ...string) (*ldap.Entry, error) {
	g, err := ntsec.ParseGUID(id)
	if err != nil {
		return nil, fmt.Errorf("root key %q: %w", id, directory.ErrInvalid)
	}
	es, err := l.C.Search(l.rootKeysDN(), "(cn="+g.String()+")", attrs...)
	if err != nil {
		return nil, ldapErr(err)
	}
	if len(es) != 1 {
		return nil, fmt.Errorf("root key %s: %w", g, directory.ErrNotFound)
	}
	return es[0], nil
}

func (l *LDAP) KDSGet(ctx context.Context, id string) (Entry, error) {
	e, err := l.rootKey(id, entryAttrs...)
	if err != nil {
		return Entry{}, err
	}
	return l.entry(e), nil
}

func (l *LDAP) KDSRemove(ctx context.Context, id string) error {
	e, err := l.rootKey(id, "cn")
	if err != nil {
		return err
	}
	return ldapErr(l.C.Conn.Del(ldap.NewDelRequest(e.DN, nil)))
}

// KDSExport reads msKds-RootKeyData (Domain and Enterprise Admins only, on AD).
func (l *LDAP) KDSExport(ctx context.Context, id string) (kds.RootKey, error) {
	e, err := l.rootKey(id, "cn", "msKds-RootKeyData", "msKds-KDFParam", "msKds-KDFAlgorithmID", "msKds-Version", "msKds-CreateTime", "msKds-UseStartTime", "msKds-DomainID")
	if err != nil {
		return kds.RootKey{}, err
	}
	if len(e.GetRawAttributeValue("msKds-RootKeyData")) == 0 {
		return kds.RootKey{}, fmt.Errorf("the DC did not return msKds-RootKeyData: only Domain and Enterprise Admins may read it: %w", directory.ErrAccessDenied)
	}
	return kds.RootKeyFromAttributes(entryAttributes{e})
}

func (l *LDAP) KDSTest(ctx context.Context, id string) error {
	k, err := l.KDSExport(ctx, id)
	if err != nil {
		return err
	}
	return k.Validate()
}

type entryAttributes struct{ e *ldap.Entry }

func (a entryAttributes) Text(n string) (string, bool) {
	v := a.e.GetAttributeValues(n)
	if len(v) == 0 {
		return "", false
	}
	return v[0], true
}

func (a entryAttributes) Binary(n string) ([]byte, bool, error) {
	v := a.e.GetRawAttributeValue(n)
	return v, len(v) > 0, nil
}

// membership builds msDS-GroupMSAMembership from principal names, as the AD module does.
func (l *LDAP) membership(principals []string) ([]byte, error) {
	owner := ntsec.SIDBuiltinAdmins
	sd := &ntsec.SecurityDescriptor{Owner: &owner, DACL: &ntsec.ACL{Revision: 2}}
	for _, p := range principals {
		e, err := l.C.Find(p, "objectSid")
		if err != nil {
			return nil, ldapErr(err)
		}
		sid, err := adclient.SID(e)
		if err != nil {
			return nil, fmt.Errorf("%s has no SID and cannot be allowed to retrieve a password: %w", e.DN, directory.ErrInvalid)
		}
		sd.DACL.ACEs = append(sd.DACL.ACEs, ntsec.ACE{Type: ntsec.ACETypeAccessAllowed, Mask: 0xf01ff, SID: sid})
	}
	return sd.Bytes(), nil
}

func (l *LDAP) AccountNew(ctx context.Context, opt directory.GMSAOptions) (Entry, error) {
	name := strings.TrimSuffix(opt.Name, "$")
	if opt.IntervalDays == 0 {
		opt.IntervalDays = 30
	}
	if opt.Enctypes == 0 {
		opt.Enctypes = directory.DefaultGMSAEnctypes
	}
	dn := "CN=" + name + ",CN=Managed Service Accounts," + l.C.BaseDN
	req := ldap.NewAddRequest(dn, nil)
	req.Attribute("objectClass", []string{"msDS-GroupManagedServiceAccount"})
	req.Attribute("sAMAccountName", []string{name + "$"})
	req.Attribute("dNSHostName", []string{opt.DNSHostName})
	req.Attribute("msDS-ManagedPasswordInterval", []string{strconv.FormatInt(opt.IntervalDays, 10)})
	req.Attribute("msDS-SupportedEncryptionTypes", []string{strconv.FormatUint(uint64(opt.Enctypes), 10)})
	uac := directory.UACWorkstationTrust
	if opt.Disabled {
		uac |= directory.UACAccountDisable
	}
	req.Attribute("userAccountControl", []string{strconv.Itoa(uac)})
	if len(opt.SPNs) > 0 {
		req.Attribute("servicePrincipalName", opt.SPNs)
	}
	if opt.Description != "" {
		req.Attribute("description", []string{opt.Description})
	}
	if len(opt.PrincipalsAllowed) > 0 {
		sd, err := l.membership(opt.PrincipalsAllowed)
		if err != nil {
			return Entry{}, err
		}
		req.Attribute("msDS-GroupMSAMembership", []string{string(sd)})
	}
	if err := l.C.Conn.Add(req); err != nil {
		return Entry{}, ldapErr(err)
	}
	return l.Get(ctx, dn, directory.ClassGMSA)
}

func (l *LDAP) AccountSet(ctx context.Context, ref string, ch directory.GMSAChanges) (Entry, error) {
	e, err := l.C.Find(ref, "userAccountControl", "msDS-ManagedPasswordInterval")
	if err != nil {
		return Entry{}, ldapErr(err)
	}
	mod := ldap.NewModifyRequest(e.DN, nil)
	if ch.IntervalDays != nil {
		mod.Replace("msDS-ManagedPasswordInterval", []string{strconv.FormatInt(*ch.IntervalDays, 10)}) // the DC refuses it, as it should
	}
	if ch.DNSHostName != nil {
		mod.Replace("dNSHostName", []string{*ch.DNSHostName})
	}
	if ch.Description != nil {
		mod.Replace("description", []string{*ch.Description})
	}
	if ch.SPNs != nil {
		mod.Replace("servicePrincipalName", *ch.SPNs)
	}
	if len(ch.AddSPNs) > 0 {
		mod.Add("servicePrincipalName", ch.AddSPNs)
	}
	if len(ch.RemoveSPNs) > 0 {
		mod.Delete("servicePrincipalName", ch.RemoveSPNs)
	}
	if ch.Enctypes != nil {
		mod.Replace("msDS-SupportedEncryptionTypes", []string{strconv.FormatUint(uint64(*ch.Enctypes), 10)})
	}
	if ch.Enabled != nil || ch.TrustedToAuth != nil {
		uac, _ := strconv.ParseUint(e.GetAttributeValue("userAccountControl"), 10, 32)
		if ch.Enabled != nil {
			uac &^= directory.UACAccountDisable
			if !*ch.Enabled {
				uac |= directory.UACAccountDisable
			}
		}
		if ch.TrustedToAuth != nil {
			uac &^= directory.UACTrustedToAuthForDelegation
			if *ch.TrustedToAuth {
				uac |= directory.UACTrustedToAuthForDelegation
			}
		}
		mod.Replace("userAccountControl", []string{strconv.FormatUint(uac, 10)})
	}
	if ch.AllowedToDelegateTo != nil {
		mod.Replace("msDS-AllowedToDelegateTo", *ch.AllowedToDelegateTo)
	}
	if ch.PrincipalsAllowed != nil {
		sd, err := l.membership(*ch.PrincipalsAllowed)
		if err != nil {
			return Entry{}, err
		}
		mod.Replace("msDS-GroupMSAMembership", []string{string(sd)})
	}
	if len(mod.Changes) > 0 {
		if err := l.C.Conn.Modify(mod); err != nil {
			return Entry{}, ldapErr(err)
		}
	}
	return l.Get(ctx, e.DN, "")
}

// AccountTest evaluates the gMSA's msDS-GroupMSAMembership for the principal's token as
// the DC reports it (tokenGroups), with Everyone and Authenticated Users.
func (l *LDAP) AccountTest(ctx context.Context, ref, principal string) (directory.Decision, error) {
	acc, err := l.C.MayRetrieve(ref, principal)
	if err != nil {
		return directory.Decision{}, ldapErr(err)
	}
	if acc.PrincipalMissing {
		return directory.Decision{}, fmt.Errorf("%s: %w", acc.Reason, directory.ErrNotFound)
	}
	return directory.Decision{Granted: acc.Granted && !acc.AccountDisabled, Reason: acc.Reason}, nil
}

// AccountPassword reads msDS-ManagedPassword with the bound user's rights; over LDAP the
// principal must be that user.
func (l *LDAP) AccountPassword(ctx context.Context, ref, principal string) ([]byte, directory.Decision, error) {
	bound, err := l.C.Find(l.User, "objectSid")
	if err != nil {
		return nil, directory.Decision{}, ldapErr(err)
	}
	asked, err := l.C.Find(principal, "objectSid")
	if err != nil {
		return nil, directory.Decision{}, ldapErr(err)
	}
	if bound.DN != asked.DN {
		return nil, directory.Decision{}, fmt.Errorf("over LDAP the password is read with the bound user's rights: bind as %s (--user) to read it as %s: %w", principal, principal, directory.ErrInvalid)
	}
	e, err := l.C.Find(ref, "msDS-ManagedPassword")
	if err != nil {
		return nil, directory.Decision{}, ldapErr(err)
	}
	blob := e.GetRawAttributeValue("msDS-ManagedPassword")
	if len(blob) == 0 {
		return nil, directory.Decision{Reason: "the DC returned no msDS-ManagedPassword: the bound user is not in PrincipalsAllowedToRetrieveManagedPassword"}, nil
	}
	return blob, directory.Decision{Granted: true, Reason: "returned by the DC"}, nil
}

func (l *LDAP) GroupNew(ctx context.Context, name string, scope directory.GroupScope, desc string) (Entry, error) {
	gt := map[directory.GroupScope]int64{directory.ScopeGlobal: directory.GroupGlobal, directory.ScopeUniversal: directory.GroupUniversal,
		directory.ScopeDomainLocal: directory.GroupDomainLocal}[scope] | -0x80000000
	dn := "CN=" + name + ",CN=Users," + l.C.BaseDN
	req := ldap.NewAddRequest(dn, nil)
	req.Attribute("objectClass", []string{"group"})
	req.Attribute("sAMAccountName", []string{name})
	req.Attribute("groupType", []string{strconv.FormatInt(gt, 10)})
	if desc != "" {
		req.Attribute("description", []string{desc})
	}
	if err := l.C.Conn.Add(req); err != nil {
		return Entry{}, ldapErr(err)
	}
	return l.Get(ctx, dn, "")
}

func (l *LDAP) member(ctx context.Context, group, member string, add bool) (Entry, error) {
	g, err := l.C.Find(group, "cn")
	if err != nil {
		return Entry{}, ldapErr(err)
	}
	m, err := l.C.Find(member, "cn")
	if err != nil {
		return Entry{}, ldapErr(err)
	}
	mod := ldap.NewModifyRequest(g.DN, nil)
	if add {
		mod.Add("member", []string{m.DN})
	} else {
		mod.Delete("member", []string{m.DN})
	}
	if err := l.C.Conn.Modify(mod); err != nil {
		return Entry{}, ldapErr(err)
	}
	return l.Get(ctx, g.DN, "")
}

func (l *LDAP) GroupAddMember(ctx context.Context, group, member string) (Entry, error) {
	return l.member(ctx, group, member, true)
}

func (l *LDAP) GroupRemoveMember(ctx context.Context, group, member string) (Entry, error) {
	return l.member(ctx, group, member, false)
}

// randomPassword is 64 printable characters for accounts whose password nobody types.
func (l *LDAP) randomPassword() (string, error) {
	const set = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789-_.+!#%"
	b := make([]byte, 64)
	if _, err := io.ReadFull(l.Rand, b); err != nil {
		return "", err
	}
	for i := range b {
		b[i] = set[int(b[i])%len(set)]
	}
	b[0], b[1], b[2], b[3] = 'Q', 'q', '7', '!'
	return string(b), nil
}

// ComputerNew creates a computer account with a random password set through
// unicodePwd, as adcli join does, and derives its keys here.
func (l *LDAP) ComputerNew(ctx context.Context, opt directory.ComputerOptions) (Entry, []krbkey.Key, error) {
	name := strings.ToUpper(strings.TrimSuffix(opt.Name, "$"))
	host := opt.DNSHostName
	if host == "" {
		host = strings.ToLower(name) + "." + l.C.DNSName
	}
	pw, err := l.randomPassword()
	if err != nil {
		return Entry{}, nil, err
	}
	short := strings.ToLower(name)
	dn := "CN=" + name + "," + orDefault(opt.Container, "CN=Computers,"+l.C.BaseDN)
	req := ldap.NewAddRequest(dn, nil)
	req.Attribute("objectClass", []string{"computer"})
	req.Attribute("sAMAccountName", []string{name + "$"})
	req.Attribute("userAccountControl", []string{strconv.Itoa(directory.UACWorkstationTrust)})
	req.Attribute("dNSHostName", []string{host})
	req.Attribute("servicePrincipalName", append([]string{"HOST/" + short, "HOST/" + host, "RestrictedKrbHost/" + short, "RestrictedKrbHost/" + host}, opt.SPNs...))
	req.Attribute("unicodePwd", []string{adclient.UnicodePwd(pw)})
	if err := l.C.Conn.Add(req); err != nil {
		return Entry{}, nil, ldapErr(err)
	}
	keys, err := krbkey.AccountKeys(directory.EncodePassword(pw), krbkey.ComputerSalt(l.C.Realm, name+"$", l.C.DNSName),
		[]int32{krbkey.EtypeAES256CTSHMACSHA, krbkey.EtypeAES128CTSHMACSHA, krbkey.EtypeRC4HMAC})
	if err != nil {
		return Entry{}, nil, err
	}
	en, err := l.Get(ctx, dn, "")
	return en, keys, err
}

func (l *LDAP) UserNew(ctx context.Context, opt directory.UserOptions) (Entry, error) {
	dn := "CN=" + opt.Name + "," + orDefault(opt.Container, "CN=Users,"+l.C.BaseDN)
	req := ldap.NewAddRequest(dn, nil)
	req.Attribute("objectClass", []string{"user"})
	req.Attribute("sAMAccountName", []string{opt.Name})
	uac := directory.UACNormalAccount
	if opt.Disabled {
		uac |= directory.UACAccountDisable
	}
	req.Attribute("userAccountControl", []string{strconv.Itoa(uac)})
	req.Attribute("unicodePwd", []string{adclient.UnicodePwd(opt.Password)})
	if opt.Description != "" {
		req.Attribute("description", []string{opt.Description})
	}
	if err := l.C.Conn.Add(req); err != nil {
		return Entry{}, ldapErr(err)
	}
	return l.Get(ctx, dn, "")
}

// UserImport adds the users one LDAP add each, as New-ADUser does per CSV row.
func (l *LDAP) UserImport(_ context.Context, users []directory.UserOptions) (int, error) {
	for i, opt := range users {
		cn, container := opt.CN, opt.Container
		if cn == "" {
			cn = opt.Name
		}
		if container == "" {
			container = "CN=Users," + l.C.BaseDN
		}
		req := ldap.NewAddRequest("CN="+cn+","+container, nil)
		req.Attribute("objectClass", []string{"user"})
		req.Attribute("sAMAccountName", []string{opt.Name})
		uac := directory.UACNormalAccount
		if opt.Disabled || opt.Password == "" {
			uac |= directory.UACAccountDisable
		}
		req.Attribute("userAccountControl", []string{strconv.Itoa(uac)})
		if opt.Password != "" {
			req.Attribute("unicodePwd", []string{adclient.UnicodePwd(opt.Password)})
		}
		if opt.Description != "" {
			req.Attribute("description", []string{opt.Description})
		}
		if err := l.C.Conn.Add(req); err != nil {
			return i, fmt.Errorf("%s: %w", opt.Name, ldapErr(err))
		}
	}
	return len(users), nil
}

func (l *LDAP) UserSetPassword(ctx context.Context, ref, password string) (Entry, error) {
	e, err := l.C.Find(ref, "cn")
	if err != nil {
		return Entry{}, ldapErr(err)
	}
	mod := ldap.NewModifyRequest(e.DN, nil)
	mod.Replace("unicodePwd", []string{adclient.UnicodePwd(password)})
	if err := l.C.Conn.Modify(mod); err != nil {
		return Entry{}, ldapErr(err)
	}
	return l.Get(ctx, e.DN, "")
}

// KrbtgtReset sets a new random password on krbtgt over LDAP, as New-KrbtgtKeys.ps1 does.
func (l *LDAP) KrbtgtReset(ctx context.Context) (Entry, error) {
	pw, err := l.randomPassword()
	if err != nil {
		return Entry{}, err
	}
	return l.UserSetPassword(ctx, "krbtgt", pw)
}

// Unlock writes lockoutTime 0, which is how AD unlocks an account over LDAP.
func (l *LDAP) Unlock(ctx context.Context, ref string) (Entry, error) {
	e, err := l.C.Find(ref, "cn")
	if err != nil {
		return Entry{}, ldapErr(err)
	}
	mod := ldap.NewModifyRequest(e.DN, nil)
	mod.Replace("lockoutTime", []string{"0"})
	if err := l.C.Conn.Modify(mod); err != nil {
		return Entry{}, ldapErr(err)
	}
	return l.Get(ctx, e.DN, "")
}

var ldapClass = map[directory.Class]string{directory.ClassGMSA: "msDS-GroupManagedServiceAccount", directory.ClassGroup: "group",
	directory.ClassComputer: "computer", directory.ClassUser: "user", directory.ClassRootKey: "msKds-ProvRootKey", directory.ClassOU: "organizationalUnit"}

func (l *LDAP) Get(ctx context.Context, ref string, class directory.Class) (Entry, error) {
	e, err := l.C.Find(ref, entryAttrs...)
	if err != nil {
		return Entry{}, ldapErr(err)
	}
	en := l.entry(e)
	if class != "" && !strings.EqualFold(en.Class, ldapClass[class]) {
		return Entry{}, fmt.Errorf("%s is a %s, not a %s: %w", e.DN, en.Class, ldapClass[class], directory.ErrNotFound)
	}
	return en, nil
}

func (l *LDAP) List(ctx context.Context, class directory.Class) ([]Entry, error) {
	filter := "(objectClass=" + ldapClass[class] + ")"
	if class == directory.ClassUser {
		filter = "(&(objectCategory=person)(objectClass=user))"
	}
	base := ""
	if class == directory.ClassRootKey {
		base = l.rootKeysDN()
	}
	es, err := l.C.Search(base, filter, entryAttrs...)
	if err != nil {
		return nil, ldapErr(err)
	}
	out := make([]Entry, 0, len(es))
	for _, e := range es {
		en := l.entry(e)
		if class == directory.ClassComputer && strings.EqualFold(en.Class, ldapClass[directory.ClassGMSA]) {
			continue // gMSAs are computers too; list them with 'account list'
		}
		out = append(out, en)
	}
	sort.Slice(out, func(i, j int) bool { return strings.ToLower(out[i].Name) < strings.ToLower(out[j].Name) })
	return out, nil
}

func (l *LDAP) Remove(ctx context.Context, ref string, class directory.Class) error {
	e, err := l.Get(ctx, ref, class)
	if err != nil {
		return err
	}
	return ldapErr(l.C.Conn.Del(ldap.NewDelRequest(e.DN, nil)))
}

func (l *LDAP) OUNew(ctx context.Context, name, parent, desc string) (Entry, error) {
	if parent == "" {
		parent = l.C.BaseDN
	}
	dn := "OU=" + name + "," + parent
	req := ldap.NewAddRequest(dn, nil)
	req.Attribute("objectClass", []string{"top", "organizationalUnit"})
	if desc != "" {
		req.Attribute("description", []string{desc})
	}
	if err := l.C.Conn.Add(req); err != nil {
		return Entry{}, ldapErr(err)
	}
	return l.Get(ctx, dn, "")
}

// oidTreeDelete is the tree delete control ([MS-ADTS] 3.1.1.3.4.1.3).
const oidTreeDelete = "1.2.840.113556.1.4.805"

func (l *LDAP) RemoveTree(ctx context.Context, ref string) error {
	e, err := l.Get(ctx, ref, "")
	if err != nil {
		return err
	}
	return ldapErr(l.C.Conn.Del(ldap.NewDelRequest(e.DN, []ldap.Control{ldap.NewControlString(oidTreeDelete, true, "")})))
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

var _ Admin = (*LDAP)(nil)
