package directory

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf16"

	"gmsa/internal/krbkey"
	"gmsa/internal/ntsec"
	"gmsa/internal/store"
)

// allKeyTypes are the long-term keys stored for every principal.
var allKeyTypes = []int32{krbkey.EtypeAES256CTSHMACSHA, krbkey.EtypeAES128CTSHMACSHA, krbkey.EtypeRC4HMAC}

// setKeys derives and stores o's keys from a UTF-16LE password.
func (d *Directory) setKeys(o *Object, utf16pw []byte) error {
	salt := krbkey.UserSalt(d.domain.Realm, o.SAM)
	if o.Class == ClassComputer || o.Class == ClassGMSA {
		salt = krbkey.ComputerSalt(d.domain.Realm, o.SAM, d.domain.DNSName)
	}
	keys, err := krbkey.AccountKeys(utf16pw, salt, allKeyTypes)
	if err != nil {
		return err
	}
	if o.SAM == "krbtgt" && len(o.Keys) > 0 { // TGTs under the old key stay valid until the next reset
		o.PreviousKeys = append([]StoredKey(nil), o.Keys...)
	}
	o.Keys = nil
	for _, k := range keys {
		o.Keys = append(o.Keys, StoredKey{Etype: k.Etype, Value: k.Value})
	}
	nt := krbkey.NTHash(utf16pw)
	if o.Class == ClassUser && len(o.NTHash) > 0 {
		o.NTHistory = append([][]byte{o.NTHash}, o.NTHistory...)[:min(len(o.NTHistory)+1, passwordHistoryLength-1)]
	}
	o.NTHash = nt[:]
	o.KVNO++
	o.PwdLastSet = d.nowFT()
	return nil
}

// EncodePassword turns a password string into UTF-16LE.
func EncodePassword(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b
}

// randomPassword returns n characters a person can type, with every character class.
func randomPassword(r io.Reader, n int) (string, error) {
	const sets = "ABCDEFGHJKLMNPQRSTUVWXYZ" + "abcdefghijkmnopqrstuvwxyz" + "23456789" + "-_.+!#%"
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return "", err
	}
	out := make([]byte, n)
	for i, c := range buf {
		out[i] = sets[int(c)%len(sets)]
	}
	out[0], out[1], out[2], out[3] = 'Q', 'q', '7', '!' // complexity: each class at least once
	return string(out), nil
}

// randomMachinePassword returns a 240-byte random UTF-16LE password without NUL units,
// as Windows sets for computer accounts.
func randomMachinePassword(r io.Reader) ([]byte, error) {
	b := make([]byte, 240)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	for i := 0; i < len(b); i += 2 {
		if b[i] == 0 && b[i+1] == 0 {
			b[i] = 1
		}
	}
	return b, nil
}

// checkName applies sAMAccountName rules ([MS-ADTS] 3.1.1.5.2.4 and the AD cmdlets):
// 1 to max characters, none of "/\[]:;|=,+*?<>@, no leading or trailing space, no
// trailing dot; computer and gMSA names, being host names, have no spaces at all.
func checkName(kind, name string, max int) error {
	if name == "" {
		return fmt.Errorf("directory: %s name is empty: %w", kind, ErrInvalid)
	}
	if n := len([]rune(name)); n > max {
		return fmt.Errorf("directory: %s name %q has %d characters; at most %d are allowed (the sAMAccountName limit): %w", kind, name, n, max, ErrInvalid)
	}
	forbidden := "\"/\\[]:;|=,+*?<>@"
	if kind == "computer" || kind == "gMSA" || kind == "NetBIOS domain" {
		forbidden += " "
	}
	if strings.TrimSpace(name) != name {
		return fmt.Errorf("directory: %s name %q starts or ends with a space: %w", kind, name, ErrInvalid)
	}
	if i := strings.IndexAny(name, forbidden); i >= 0 {
		return fmt.Errorf("directory: %s name %q contains %q, which sAMAccountName does not allow: %w", kind, name, name[i], ErrInvalid)
	}
	if strings.HasSuffix(name, ".") {
		return fmt.Errorf("directory: %s name %q ends with a dot: %w", kind, name, ErrInvalid)
	}
	return nil
}

// UserOptions describe a new user.
type UserOptions struct {
	Name        string // sAMAccountName
	CN          string // default Name
	Container   string // parent DN; default CN=Users
	Password    string // empty: no password yet, and the account starts disabled
	Description string
	Disabled    bool
	UPN         string // userPrincipalName; none by default, as New-ADUser and an LDAP add leave it
}

// NewUser creates a user (by default in CN=Users) with keys from its password.
func (d *Directory) NewUser(ctx context.Context, req *Requester, opt UserOptions) (*Object, error) {
	ctx, done := d.created(ctx, req, opt.Container, d.domain.UsersDN(), ClassUser)
	return done(d.newUser(ctx, opt))
}

// created authorizes the creation of an object of class c in container (default def)
// and records it: the exported constructors' wrapper. The returned context carries the
// creator, who owns what a delegated (non-administrator) requester creates.
func (d *Directory) created(ctx context.Context, req *Requester, container, def string, c Class) (context.Context, func(*Object, error) (*Object, error)) {
	parent := orDefault(container, def)
	if dn, err := d.ResolveDN(ctx, parent); err == nil {
		parent = dn
	}
	if err := d.authorizeCreate(ctx, req, normDN(parent), c); err != nil {
		return ctx, func(*Object, error) (*Object, error) { return nil, err }
	}
	return withCreator(ctx, req), func(o *Object, err error) (*Object, error) {
		if err != nil {
			return nil, err
		}
		d.changed(req, "add", o.DN)
		return o, nil
	}
}

// place returns the DN of a new object named cn (default name) in container (default
// def), checking that the container exists.
func (d *Directory) place(ctx context.Context, cn, name, container, def string) (string, string, error) {
	cn = orDefault(cn, name)
	if strings.ContainsAny(cn, ",+\"<>;=\\") || strings.TrimSpace(cn) != cn || strings.HasPrefix(cn, "#") {
		return "", "", fmt.Errorf("directory: 00002099: cn %q needs escaping in a DN, which this directory does not support: %w", cn, ErrNamingViolation)
	}
	parent, err := d.container(ctx, container, def)
	if err != nil {
		return "", "", err
	}
	return cn, "CN=" + cn + "," + parent, nil
}

func (d *Directory) newUser(ctx context.Context, opt UserOptions) (*Object, error) {
	o, err := d.userObject(ctx, opt)
	if err != nil {
		return nil, err
	}
	if err := d.create(ctx, o, true); err != nil {
		return nil, err
	}
	return o, nil
}

// userObject builds a new user's object, not yet stored and without its SID.
func (d *Directory) userObject(ctx context.Context, opt UserOptions) (*Object, error) {
	if err := checkName("user", opt.Name, 20); err != nil {
		return nil, err
	}
	cn, dn, err := d.place(ctx, opt.CN, opt.Name, opt.Container, d.domain.UsersDN())
	if err != nil {
		return nil, err
	}
	o := &Object{GUID: d.newGUID(), Class: ClassUser, Name: cn, DN: dn,
		SAM: opt.Name, UPN: opt.UPN, UAC: UACNormalAccount, Description: opt.Description,
		PrimaryGroupRID: ntsec.RIDDomainUsers}
	if opt.Disabled || opt.Password == "" { // AD: a user without a password starts disabled
		o.UAC |= UACAccountDisable
	}
	if opt.Password != "" {
		if err := checkPasswordPolicy(o, opt.Password); err != nil {
			return nil, err
		}
		if err := d.setKeys(o, EncodePassword(opt.Password)); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// ImportUsers adds many users at once, as an offline import of a directory export or
// of a CSV (Import-Csv | New-ADUser): each user is checked as NewUser checks it, and
// the users are written in transactions of many, each user whole within one. A name
// already taken fails its transaction; the users of earlier transactions stay, and the
// error says how many were added.
func (d *Directory) ImportUsers(ctx context.Context, req *Requester, users []UserOptions) (int, error) {
	allowed := map[string]bool{} // each container's create right, checked once
	for _, u := range users {
		c := orDefault(u.Container, d.domain.UsersDN())
		if allowed[c] {
			continue
		}
		parent := c
		if r, err := d.ResolveDN(ctx, c); err == nil {
			parent = r
		}
		if err := d.authorizeCreate(ctx, req, normDN(parent), ClassUser); err != nil {
			return 0, err
		}
		allowed[c] = true
	}
	ctx = withCreator(ctx, req)
	maxOps := 30_000
	if b, ok := d.st.(interface{ MaxBatch() int }); ok {
		maxOps = min(maxOps, b.MaxBatch())
	}
	var batch []store.Op
	var names []string
	var guids []ntsec.GUID
	taken := map[string]bool{} // the batch's unique names: its creates are checked against the store before it
	added := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if _, err := d.commit(ctx, batch...); err != nil {
			return fmt.Errorf("%w (%d users added before this batch)", d.conflictError(ctx, err), added)
		}
		for _, dn := range names {
			d.changed(req, "add", dn)
		}
		d.published(guids...)
		added += len(names)
		batch, names, guids = batch[:0], names[:0], guids[:0]
		clear(taken)
		return nil
	}
	now := d.nowFT()
	sd, err := d.creatorSD(ctx, ClassUser)
	if err != nil {
		return 0, err
	}
	for _, opt := range users {
		o, err := d.userObject(ctx, opt)
		if err != nil {
			return added, fmt.Errorf("%w (%d users added)", err, added)
		}
		o.SD = sd
		rid, err := d.allocateRID(ctx)
		if err != nil {
			return added, err
		}
		o.SID, o.Created, o.Changed = d.sid.Child(rid).String(), now, now
		ops := createOps(o)
		if len(batch)+len(ops) > maxOps {
			if err := flush(); err != nil {
				return added, err
			}
		}
		for _, op := range ops {
			if uniqueIndex(op.Key) && taken[op.Key] {
				return added, fmt.Errorf("directory: %s is imported twice: %w (%d users added)", op.Key, ErrExists, added)
			}
			if uniqueIndex(op.Key) {
				taken[op.Key] = true
			}
		}
		batch, names, guids = append(batch, ops...), append(names, o.DN), append(guids, o.GUID)
	}
	return added, flush()
}

// SetPassword sets a user's or computer's password (keys, kvno, pwdLastSet). A gMSA's
// password belongs to the system.
func (d *Directory) SetPassword(ctx context.Context, req *Requester, ref, password string) (*Object, error) {
	if req == nil || req.Token == nil {
		return nil, fmt.Errorf("directory: %w", ErrNeedBind)
	}
	o, err := d.Resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	if err := d.checkAccess(ctx, req, o, ntsec.RightDSControlAccess, "reset the password", rightResetPassword); err != nil {
		return nil, err
	}
	if o.Class != ClassUser && o.Class != ClassComputer {
		return nil, fmt.Errorf("directory: %s is a %s; only users and computers have a password that can be set: %w", o.DN, o.Class, ErrInvalid)
	}
	if password == "" {
		return nil, fmt.Errorf("directory: empty password: %w", ErrInvalid)
	}
	if err := checkPasswordPolicy(o, password); err != nil {
		return nil, err
	}
	n, err := d.modify(ctx, o.GUID, func(n *Object) ([]store.Op, error) { return nil, d.setKeys(n, EncodePassword(password)) })
	if err == nil {
		d.changed(req, "set password", n.DN)
	}
	return n, err
}

// ComputerOptions describe a new computer account.
type ComputerOptions struct {
	Name        string // host name without $, at most 15 characters
	CN          string // default the upper-case Name
	Container   string // parent DN; default CN=Computers
	DNSHostName string // default name.domain
	SPNs        []string
	Password    []byte // UTF-16LE machine password; default random, as Windows sets
	// Exact creates the account with the names given and nothing more, as an LDAP add
	// does in AD: no default dNSHostName or SPNs, the sAMAccountName's case kept.
	Exact bool
}

// NewComputer creates a computer account with a random machine password, as adcli join
// does, and returns it with its keys (to write a keytab).
func (d *Directory) NewComputer(ctx context.Context, req *Requester, opt ComputerOptions) (*Object, error) {
	ctx, done := d.created(ctx, req, opt.Container, d.domain.ComputersDN(), ClassComputer)
	return done(d.newComputer(ctx, opt))
}

func (d *Directory) newComputer(ctx context.Context, opt ComputerOptions) (*Object, error) {
	name := strings.TrimSuffix(opt.Name, "$")
	if err := checkName("computer", name, 15); err != nil {
		return nil, err
	}
	host := opt.DNSHostName
	if host == "" && !opt.Exact {
		host = strings.ToLower(name) + "." + d.domain.DNSName
	}
	short := strings.ToLower(name)
	spns := []string{"HOST/" + short, "HOST/" + host, "RestrictedKrbHost/" + short, "RestrictedKrbHost/" + host}
	sam := strings.ToUpper(name) + "$"
	if opt.Exact {
		spns, sam = nil, name+"$"
	}
	for _, s := range opt.SPNs { // the defaults and the SPNs given, once each (adcli and admin tools send the defaults too)
		if !slices.ContainsFunc(spns, func(x string) bool { return strings.EqualFold(x, s) }) {
			spns = append(spns, s)
		}
	}
	if err := checkSPNs(spns); err != nil {
		return nil, err
	}
	cn, dn, err := d.place(ctx, opt.CN, strings.ToUpper(name), opt.Container, d.domain.ComputersDN())
	if err != nil {
		return nil, err
	}
	o := &Object{GUID: d.newGUID(), Class: ClassComputer, Name: cn, DN: dn,
		SAM: sam, UAC: UACWorkstationTrust, DNSHostName: host, SPNs: spns,
		PrimaryGroupRID: ntsec.RIDDomainComputers, SupportedEnctypes: EnctypeAES128 | EnctypeAES256 | EnctypeRC4}
	if opt.Exact {
		o.SupportedEnctypes = 0 // as an LDAP add in AD: the KDC's default (AES) until the host sets it
	}
	pw := opt.Password
	if pw == nil {
		var err error
		if pw, err = randomMachinePassword(d.rand); err != nil {
			return nil, err
		}
	}
	if err := d.setKeys(o, pw); err != nil {
		return nil, err
	}
	if err := d.create(ctx, o, true); err != nil {
		return nil, err
	}
	return o, nil
}

// checkSPNs validates service/host[:port][/service name] forms and duplicates.
func checkSPNs(spns []string) error {
	seen := map[string]bool{}
	for _, s := range spns {
		svc, rest, ok := strings.Cut(s, "/")
		if !ok || svc == "" || rest == "" || strings.ContainsAny(s, " @\\") {
			return fmt.Errorf("directory: SPN %q: want service/host such as http/web.example.test: %w", s, ErrInvalid)
		}
		if seen[strings.ToLower(s)] {
			return fmt.Errorf("directory: SPN %q is listed twice: %w", s, ErrInvalid)
		}
		seen[strings.ToLower(s)] = true
	}
	return nil
}

// GroupScope is a group's scope.
type GroupScope string

// Group scopes.
const (
	ScopeGlobal      GroupScope = "global"
	ScopeUniversal   GroupScope = "universal"
	ScopeDomainLocal GroupScope = "domainlocal"
)

// ParseScope reads global, universal or domainlocal (also "domain-local", "DomainLocal").
func ParseScope(s string) (GroupScope, error) {
	switch strings.ReplaceAll(strings.ToLower(s), "-", "") {
	case "global", "":
		return ScopeGlobal, nil
	case "universal":
		return ScopeUniversal, nil
	case "domainlocal", "local":
		return ScopeDomainLocal, nil
	}
	return "", fmt.Errorf("directory: group scope %q: want global, universal or domainlocal: %w", s, ErrInvalid)
}

func (s GroupScope) groupType() uint32 {
	return map[GroupScope]uint32{ScopeGlobal: GroupGlobal, ScopeUniversal: GroupUniversal, ScopeDomainLocal: GroupDomainLocal}[s] | GroupSecurity
}

// Scope returns a group's scope from its groupType.
func (o *Object) Scope() GroupScope {
	switch {
	case o.GroupType&GroupUniversal != 0:
		return ScopeUniversal
	case o.GroupType&(GroupDomainLocal|GroupBuiltinLocal) != 0:
		return ScopeDomainLocal
	}
	return ScopeGlobal
}

// NewGroup creates a security group in CN=Users.
func (d *Directory) NewGroup(ctx context.Context, req *Requester, name string, scope GroupScope, description string) (*Object, error) {
	ctx, done := d.created(ctx, req, "", d.domain.UsersDN(), ClassGroup)
	return done(d.newGroup(ctx, groupOptions{Name: name, Scope: scope, Description: description}, nil))
}

type groupOptions struct {
	Name, CN, Container, Description string
	Scope                            GroupScope
}

// newGroup creates a group; members, when set, fills its member list first.
func (d *Directory) newGroup(ctx context.Context, opt groupOptions, members func(*Object) error) (*Object, error) {
	if err := checkName("group", opt.Name, 64); err != nil {
		return nil, err
	}
	cn, dn, err := d.place(ctx, opt.CN, opt.Name, opt.Container, d.domain.UsersDN())
	if err != nil {
		return nil, err
	}
	o := &Object{GUID: d.newGUID(), Class: ClassGroup, Name: cn, DN: dn, SAM: opt.Name,
		GroupType: opt.Scope.groupType(), Description: opt.Description}
	if members != nil {
		if err := members(o); err != nil {
			return nil, err
		}
	}
	if err := d.create(ctx, o, true); err != nil {
		return nil, err
	}
	return o, nil
}

// AddMember adds member to group under AD's nesting rules (see checkNesting).
func (d *Directory) AddMember(ctx context.Context, req *Requester, groupRef, memberRef string) (*Object, error) {
	return d.memberChange(ctx, req, groupRef, memberRef, ChangeAdd)
}

// RemoveMember removes member from group.
func (d *Directory) RemoveMember(ctx context.Context, req *Requester, groupRef, memberRef string) (*Object, error) {
	return d.memberChange(ctx, req, groupRef, memberRef, ChangeDelete)
}

func (d *Directory) memberChange(ctx context.Context, req *Requester, groupRef, memberRef string, op ChangeOp) (*Object, error) {
	g, m, err := d.groupAndMember(ctx, groupRef, memberRef)
	if err != nil {
		return nil, err
	}
	return d.Modify(ctx, req, g.DN, []Change{{Op: op, Attr: "member", Values: [][]byte{[]byte(m.DN)}}})
}

func (d *Directory) groupAndMember(ctx context.Context, groupRef, memberRef string) (*Object, *Object, error) {
	g, err := d.Resolve(ctx, groupRef)
	if err != nil {
		return nil, nil, err
	}
	if g.Class != ClassGroup {
		return nil, nil, fmt.Errorf("directory: %s is a %s, not a group: %w", g.DN, g.Class, ErrInvalid)
	}
	m, err := d.Resolve(ctx, memberRef)
	if err != nil {
		return nil, nil, err
	}
	if !m.IsPrincipal() {
		return nil, nil, fmt.Errorf("directory: %s has no SID and cannot be a group member: %w", m.DN, ErrInvalid)
	}
	return g, m, nil
}

// Remove deletes a user, computer, group or gMSA. Well-known principals (RID < 1000)
// and the domain controller cannot be removed.
func (d *Directory) Remove(ctx context.Context, req *Requester, ref string, class Class) error {
	if req == nil || req.Token == nil {
		return fmt.Errorf("directory: %w", ErrNeedBind)
	}
	o, err := d.Resolve(ctx, ref)
	if err != nil {
		return err
	}
	if o.Class == ClassRootKey {
		return d.RemoveRootKey(ctx, req, o.GUID.String())
	}
	if err := d.authorizeDelete(ctx, req, o); err != nil {
		return err
	}
	if class != "" && o.Class != class {
		return fmt.Errorf("directory: %s is a %s, not a %s: %w", o.DN, o.Class, class, ErrInvalid)
	}
	switch o.Class {
	case ClassRootKey:
		return d.RemoveRootKey(ctx, req, o.GUID.String())
	case ClassDomain:
		return fmt.Errorf("directory: %s is a container of the domain's layout and cannot be removed: %w", o.DN, ErrInvalid)
	case ClassContainer, ClassOU:
		if err := d.removeContainer(ctx, o); err != nil {
			return err
		}
		d.changed(req, "delete", o.DN)
		return nil
	}
	if sid := o.ObjectSID(); !sid.IsZero() && (sid.RID() < 1000 || o.UAC&UACServerTrust != 0) {
		return fmt.Errorf("directory: %s is a built-in principal and cannot be removed: %w", o.DN, ErrInvalid)
	}
	if err := d.tombstone(ctx, o); err != nil {
		return err
	}
	d.changed(req, "delete", o.DN)
	return nil
}

// Rename gives a user, computer, group or gMSA a new cn and, with newParent, moves it
// to another container (an LDAP modify DN). sAMAccountName, SID and memberships stay.
func (d *Directory) Rename(ctx context.Context, req *Requester, ref, newName, newParent string) (*Object, error) {
	if req == nil || req.Token == nil {
		return nil, fmt.Errorf("directory: %w", ErrNeedBind)
	}
	o, err := d.Resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	if err := d.authorizeWrite(ctx, req, o, "name"); err != nil {
		return nil, err
	}
	rdn := "CN"
	switch o.Class {
	case ClassUser, ClassComputer, ClassGroup, ClassGMSA:
	case ClassOU, ClassContainer:
		// The objects below move with it, in the same transaction (moveBelow).
		if d.systemObject(o) {
			return nil, fmt.Errorf("directory: %s is a container of the domain's layout and cannot be renamed or moved: %w", o.DN, ErrInvalid)
		}
		if o.Class == ClassOU {
			rdn = "OU"
		}
	default:
		return nil, fmt.Errorf("directory: %s is a %s; only accounts, groups, OUs and containers can be renamed or moved: %w", o.DN, o.Class, ErrInvalid)
	}
	if newName == "" || strings.ContainsAny(newName, ",=+\"\\<>;") || strings.TrimSpace(newName) != newName {
		return nil, fmt.Errorf("directory: new name %q is not a valid cn: %w", newName, ErrInvalid)
	}
	_, parent, _ := strings.Cut(o.DN, ",")
	if newParent != "" {
		if newParent, err = d.ResolveDN(ctx, newParent); err != nil {
			return nil, err
		}
		if parent, err = d.container(ctx, newParent, parent); err != nil {
			return nil, err
		}
		if err := d.authorizeCreate(ctx, req, normDN(parent), o.Class); err != nil {
			return nil, err
		}
	}
	newDN := rdn + "=" + newName + "," + parent
	if under(parent, normDN(o.DN), true) {
		return nil, fmt.Errorf("directory: %s cannot move below itself (%s): %w", o.DN, parent, ErrInvalid)
	}
	var below []store.Op
	var moved []ntsec.GUID
	if o.Class == ClassOU || o.Class == ClassContainer {
		if below, moved, err = d.moveBelow(ctx, o.DN, newDN); err != nil {
			return nil, err
		}
	}
	n, err := d.modify(ctx, o.GUID, func(n *Object) ([]store.Op, error) {
		n.Name, n.DN = newName, newDN
		return below, nil
	})
	if err == nil && (o.Class == ClassOU || o.Class == ClassContainer) {
		// An object created below the old DN while the move committed follows it.
		if late, guids, lerr := d.moveBelow(ctx, o.DN, newDN); lerr == nil && len(guids) > 0 {
			if _, lerr = d.commit(ctx, late...); lerr == nil {
				moved = append(moved, guids...)
			}
		}
	}
	if err == nil {
		d.published(moved...)
		what := "modify DN"
		if len(moved) > 0 {
			what = fmt.Sprintf("modify DN (%d objects below moved with it)", len(moved))
		}
		d.changed(req, what, o.DN+" → "+n.DN)
	}
	return n, err
}
