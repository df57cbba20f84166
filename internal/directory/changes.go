package directory

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"

	"gmsa/internal/audit"
	"gmsa/internal/kds"
	"gmsa/internal/krbkey"
	"gmsa/internal/ntsec"
	"gmsa/internal/store"
)

// Write errors, mapped by transports to their result codes.
var (
	ErrConstraint      = errors.New("constraint violation")
	ErrNamingViolation = errors.New("naming violation")
	ErrObjectClass     = errors.New("object class violation")
	ErrInvalidSyntax   = errors.New("invalid attribute syntax")
	ErrValueExists     = fmt.Errorf("attribute or value exists: %w", ErrExists)
	errNoSuchValue     = fmt.Errorf("%w: %w", ErrNoSuchAttr, ErrNotFound) // a value to delete is not there
	ErrWrongPassword   = errors.New("the old password is not correct")
)

// authorizeChange checks one modify change against o's security descriptor: a
// password reset needs the Reset Password right, the security descriptor WRITE_DAC
// (DACL) and WRITE_OWNER (owner, group), anything else the right to write the
// attribute ([MS-ADTS] 3.1.1.5.3.1).
func (d *Directory) authorizeChange(ctx context.Context, req *Requester, o *Object, ch Change) error {
	switch strings.ToLower(ch.Attr) {
	case "unicodepwd":
		return d.checkAccess(ctx, req, o, ntsec.RightDSControlAccess, "reset the password", rightResetPassword)
	case "ntsecuritydescriptor":
		parts := ch.SDFlags
		if parts == 0 {
			parts = sdAll
		}
		if parts&sdSACL != 0 && !d.isAdmin(req) {
			return fmt.Errorf("directory: 00000005: %s may not write the SACL of %s (ACCESS_SYSTEM_SECURITY): %w", req.Name(), o.DN, ErrAccessDenied)
		}
		var rights uint32
		if parts&sdDACL != 0 {
			rights |= ntsec.RightWriteDAC
		}
		if parts&(sdOwner|sdGroup) != 0 {
			rights |= ntsec.RightWriteOwner
		}
		if err := d.checkAccess(ctx, req, o, rights, "write the security descriptor"); err != nil {
			return err
		}
		if parts&sdOwner != 0 && len(ch.Values) == 1 {
			if in, err := ntsec.ParseSecurityDescriptor(ch.Values[0]); err == nil && in.Owner != nil {
				if cur, err := d.explicitSD(o); err != nil || cur.Owner == nil || !cur.Owner.Equal(*in.Owner) {
					return d.mayAssignOwner(req, *in.Owner) // the owner as it is may stay
				}
			}
		}
		return nil
	}
	return d.authorizeWrite(ctx, req, o, ch.Attr)
}

// authorizeAdmin lets the domain's administrators do what only they do here (KDS root
// keys, krbtgt): SYSTEM, Domain Admins, Enterprise Admins and BUILTIN\Administrators.
func (d *Directory) authorizeAdmin(r *Requester, what string) error {
	if r == nil || r.Token == nil {
		return fmt.Errorf("directory: %w", ErrNeedBind)
	}
	if !d.isAdmin(r) {
		return fmt.Errorf("directory: %s may not %s: updates need Domain Admins, Enterprise Admins or Administrators: %w", r.Name(), what, ErrAccessDenied)
	}
	return nil
}

// changed records a change in the audit trail; transports acknowledge it only after
// the trail's barrier.
func (d *Directory) changed(r *Requester, op, dn string) {
	d.audit.Record(d.now(), audit.Info, "directory changed", "principal", r.Name(), "remote", r.Remote, "operation", op, "dn", dn)
}

// ChangeOp is a Modify's operation on one attribute ([RFC 4511] 4.6).
type ChangeOp uint8

// Change operations.
const (
	ChangeAdd ChangeOp = iota
	ChangeDelete
	ChangeReplace
)

// Change is one change of a Modify.
type Change struct {
	Op     ChangeOp
	Attr   string
	Values [][]byte
	// Permissive is the permissive modify control ([MS-ADTS] 3.1.1.3.4.1.8): adding a
	// value already there, or deleting one that is not, is no error.
	Permissive bool
	// SDFlags are the SD flags control's parts a nTSecurityDescriptor write replaces
	// (owner 1, group 2, DACL 4, SACL 8; 0: all).
	SDFlags uint32
	// EnforceHistory is the policy hints control's flag ([MS-ADTS] 3.1.1.3.4.1.35): a
	// unicodePwd reset may not reuse a remembered password, as a change may not.
	EnforceHistory bool
}

// systemOnly are attributes the directory assigns.
var systemOnly = []string{"objectSid", "objectGUID", "msDS-ManagedPasswordId", "msDS-ManagedPasswordPreviousId", "whenCreated",
	"whenChanged", "uSNCreated", "uSNChanged", "msDS-KeyVersionNumber", "pwdLastSet", "memberOf", "objectCategory", "sAMAccountType",
	"primaryGroupID", "instanceType", "badPwdCount", "badPasswordTime", "distinguishedName", "msKds-RootKeyData"}

// checkWritable refuses constructed and system-only attributes.
func checkWritable(name string) error {
	if a, ok := lookupAttr(name); ok && (a.Operational || a.Access == accessConstructedSecret) {
		return fmt.Errorf("directory: Att %s: %s is constructed and cannot be written: %w", a.Name, a.Name, ErrConstraint)
	}
	for _, s := range systemOnly {
		if strings.EqualFold(name, s) {
			return fmt.Errorf("directory: Att %s: %s can only be set by the system: %w", s, s, ErrConstraint)
		}
	}
	if strings.EqualFold(name, "msDS-ManagedPasswordInterval") {
		return fmt.Errorf("directory: Att %s: the password interval is fixed when the gMSA is created: %w", name, ErrConstraint)
	}
	return nil
}

// DecodeUnicodePwd reads AD's unicodePwd value: the password in double quotes, UTF-16LE.
func DecodeUnicodePwd(b []byte) (string, error) {
	if len(b)%2 != 0 || len(b) < 4 {
		return "", fmt.Errorf("directory: 0000052D: unicodePwd must be the quoted password in UTF-16LE: %w", ErrConstraint)
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	s := string(utf16.Decode(u))
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return "", fmt.Errorf("directory: 0000052D: unicodePwd must be enclosed in double quotes: %w", ErrConstraint)
	}
	return s[1 : len(s)-1], nil
}

// Modify applies all of a Modify's changes to one object, or none of them ([RFC 4511]
// 4.6), and records one audit record. Administrators may change what the directory
// lets anyone change; any requester may change an account's password by proving the
// old one (a delete of the old unicodePwd and an add of the new, as AD's "Change
// Password" right allows), and a wrong old password counts towards lockout.
func (d *Directory) Modify(ctx context.Context, req *Requester, dn string, changes []Change) (*Object, error) {
	if req == nil || req.Token == nil {
		return nil, fmt.Errorf("directory: %w", ErrNeedBind)
	}
	target, err := d.ResolveDN(ctx, dn)
	if err != nil {
		return nil, err
	}
	o, err := d.byIndex(ctx, dnKey(normDN(target)))
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("directory: %s: %w", dn, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	if o.Deleted {
		return nil, fmt.Errorf("directory: %s: %w", dn, ErrNotFound)
	}
	if oldPw, newPw, ok := passwordChange(changes); ok {
		if err := d.checkAccess(ctx, req, o, ntsec.RightDSControlAccess, "change the password", rightChangePassword); err != nil {
			return nil, err
		}
		return d.changePassword(ctx, req, o, oldPw, newPw)
	}
	for _, ch := range changes {
		if err := d.authorizeChange(ctx, req, o, ch); err != nil {
			return nil, err
		}
	}
	for _, ch := range changes {
		if err := checkWritable(ch.Attr); err != nil {
			return nil, err
		}
		if strings.EqualFold(ch.Attr, "unicodePwd") && !req.Protection.Encrypted() {
			return nil, fmt.Errorf("directory: 0000001F: unicodePwd can only be written over an encrypted connection (ldaps:// or StartTLS): %w", ErrInvalid)
		}
	}
	members, err := d.resolveMembers(ctx, changes)
	if err != nil {
		return nil, err
	}
	n, err := d.modify(ctx, o.GUID, func(n *Object) ([]store.Op, error) {
		var ops []store.Op
		changes, err := d.foldSwaps(ctx, n, changes)
		if err != nil {
			return nil, err
		}
		for _, ch := range changes {
			more, err := d.apply(n, ch, members)
			if err != nil {
				return nil, err
			}
			ops = append(ops, more...)
		}
		return ops, nil
	})
	if err != nil {
		return nil, err
	}
	d.changed(req, "modify", n.DN)
	return n, nil
}

// swappable are single-valued attributes clients change by deleting the value they
// read and adding the new one in one modify, a compare-and-swap (samba-tool does for
// userAccountControl).
var swappable = map[string]bool{"useraccountcontrol": true, "msds-supportedencryptiontypes": true, "dnshostname": true, "description": true}

// foldSwaps turns each delete of a single-valued attribute's value followed by an add
// of the same attribute into a replace, once the deleted value is n's current one;
// otherwise the modify fails as AD's does (noSuchAttribute), changing nothing.
func (d *Directory) foldSwaps(ctx context.Context, n *Object, changes []Change) ([]Change, error) {
	out := make([]Change, 0, len(changes))
	for i := 0; i < len(changes); i++ {
		ch := changes[i]
		if ch.Op == ChangeDelete && len(ch.Values) == 1 && swappable[strings.ToLower(ch.Attr)] && i+1 < len(changes) &&
			changes[i+1].Op == ChangeAdd && strings.EqualFold(changes[i+1].Attr, ch.Attr) {
			v := &View{d: d, ctx: ctx, req: LocalSystem(), o: n}
			if (Equal{Attr: ch.Attr, Value: ch.Values[0]}).eval(v) != fTrue {
				return nil, fmt.Errorf("directory: %s does not hold %s %q (changed meanwhile?): %w", n.DN, ch.Attr, ch.Values[0], errNoSuchValue)
			}
			next := changes[i+1]
			next.Op = ChangeReplace
			out = append(out, next)
			i++
			continue
		}
		out = append(out, ch)
	}
	return out, nil
}

// passwordChange recognizes AD's password change: delete unicodePwd old, add new.
func passwordChange(changes []Change) (oldPw, newPw []byte, ok bool) {
	if len(changes) != 2 || changes[0].Op != ChangeDelete || changes[1].Op != ChangeAdd ||
		!strings.EqualFold(changes[0].Attr, "unicodePwd") || !strings.EqualFold(changes[1].Attr, "unicodePwd") ||
		len(changes[0].Values) != 1 || len(changes[1].Values) != 1 {
		return nil, nil, false
	}
	return changes[0].Values[0], changes[1].Values[0], true
}

// changePassword sets a user's or computer's new password when the old one is right.
func (d *Directory) changePassword(ctx context.Context, req *Requester, o *Object, oldPw, newPw []byte) (*Object, error) {
	if !req.Protection.Encrypted() {
		return nil, fmt.Errorf("directory: 0000001F: unicodePwd can only be written over an encrypted connection (ldaps:// or StartTLS): %w", ErrInvalid)
	}
	if o.Class != ClassUser && o.Class != ClassComputer {
		return nil, fmt.Errorf("directory: %s is a %s; only users and computers have a password that can be changed: %w", o.DN, o.Class, ErrInvalid)
	}
	old, err := DecodeUnicodePwd(oldPw)
	if err != nil {
		return nil, err
	}
	pw, err := DecodeUnicodePwd(newPw)
	if err != nil {
		return nil, err
	}
	if pw == "" {
		return nil, fmt.Errorf("directory: 0000052D: the new password is empty: %w", ErrConstraint)
	}
	if err := checkPasswordPolicy(o, pw); err != nil {
		return nil, err
	}
	pol := d.domainPolicy(ctx)
	now := d.nowFT()
	if d.lockedOut(o, pol, now) {
		return nil, fmt.Errorf("directory: 00000775: %s is locked out: %w", o.SAM, ErrConstraint)
	}
	nt := krbkey.NTHash(EncodePassword(old))
	if len(o.NTHash) == 0 || subtle.ConstantTimeCompare(nt[:], o.NTHash) != 1 {
		d.badPassword(ctx, o, pol, now)
		d.audit.RecordNoisy(req.Remote, d.now(), audit.Warn, "password change refused", "principal", req.Name(), "remote", req.Remote,
			"account", o.SAM, "reason", "wrong old password")
		return nil, fmt.Errorf("directory: 00000056: Att 9005a (unicodePwd): %w", ErrWrongPassword)
	}
	if err := checkPasswordHistory(o, pw); err != nil {
		return nil, err
	}
	n, err := d.modify(ctx, o.GUID, func(n *Object) ([]store.Op, error) {
		n.BadPwdCount, n.LockoutTime = 0, 0
		return nil, d.setKeys(n, EncodePassword(pw))
	})
	if err != nil {
		return nil, err
	}
	d.audit.Record(d.now(), audit.Info, "password changed", "principal", req.Name(), "remote", req.Remote, "account", n.SAM)
	return n, nil
}

// ChangeOwnPassword sets the requester's own password after the transport proved the
// requester knew the old one (the kpasswd service's change request, [RFC 3244]: a
// ticket from an AS exchange, which needed the old password). Only users and
// computers have a password to change; the lockout counters are reset.
func (d *Directory) ChangeOwnPassword(ctx context.Context, req *Requester, password string) (*Object, error) {
	if req == nil || req.Token == nil {
		return nil, fmt.Errorf("directory: %w", ErrNeedBind)
	}
	o, err := d.Resolve(ctx, req.Token.User.String())
	if err != nil {
		return nil, err
	}
	if o.Class != ClassUser && o.Class != ClassComputer {
		return nil, fmt.Errorf("directory: %s is a %s; only users and computers have a password that can be changed: %w", o.DN, o.Class, ErrInvalid)
	}
	if err := d.checkAccess(ctx, req, o, ntsec.RightDSControlAccess, "change the password", rightChangePassword); err != nil {
		return nil, err
	}
	if password == "" {
		return nil, fmt.Errorf("directory: 0000052D: the new password is empty: %w", ErrConstraint)
	}
	if err := checkPasswordPolicy(o, password); err != nil {
		return nil, err
	}
	if err := checkPasswordHistory(o, password); err != nil {
		return nil, err
	}
	n, err := d.modify(ctx, o.GUID, func(n *Object) ([]store.Op, error) {
		n.BadPwdCount, n.LockoutTime = 0, 0
		return nil, d.setKeys(n, EncodePassword(password))
	})
	if err != nil {
		return nil, err
	}
	d.audit.Record(d.now(), audit.Info, "password changed", "principal", req.Name(), "remote", req.Remote, "account", n.SAM)
	return n, nil
}

// resolveMembers finds the objects that member changes name, before the transaction.
func (d *Directory) resolveMembers(ctx context.Context, changes []Change) (map[string]*Object, error) {
	out := map[string]*Object{}
	for _, ch := range changes {
		if !strings.EqualFold(ch.Attr, "member") {
			continue
		}
		for _, v := range ch.Values {
			m, err := d.Resolve(ctx, string(v))
			if err != nil {
				return nil, fmt.Errorf("directory: member %q: %w", v, err)
			}
			if !m.IsPrincipal() {
				return nil, fmt.Errorf("directory: %s has no SID and cannot be a group member: %w", m.DN, ErrInvalid)
			}
			out[strings.ToLower(string(v))] = m
		}
	}
	return out, nil
}

// apply makes one change to n, inside Modify's transaction.
func (d *Directory) apply(n *Object, ch Change, members map[string]*Object) ([]store.Op, error) {
	isAccount := n.Class == ClassUser || n.Class == ClassComputer || n.Class == ClassGMSA
	first := func() []byte {
		if ch.Op == ChangeDelete || len(ch.Values) == 0 {
			return nil
		}
		return ch.Values[0]
	}
	number := func() (uint64, error) {
		v := first()
		if v == nil {
			return 0, nil
		}
		x, err := strconv.ParseUint(string(v), 10, 32)
		if err != nil {
			return 0, fmt.Errorf("directory: %s %q is not a number: %w", ch.Attr, v, ErrInvalidSyntax)
		}
		return x, nil
	}
	strs := func() []string {
		var s []string
		for _, v := range ch.Values {
			s = append(s, string(v))
		}
		return s
	}
	notFor := func() error {
		return fmt.Errorf("directory: %s has no attribute %s: %w", n.DN, ch.Attr, ErrObjectClass)
	}
	switch strings.ToLower(ch.Attr) {
	case "member":
		if n.Class != ClassGroup {
			return nil, notFor()
		}
		return d.applyMembers(n, ch, members)
	case "serviceprincipalname":
		if !isAccount {
			return nil, notFor()
		}
		switch {
		case ch.Op == ChangeReplace || (ch.Op == ChangeDelete && len(ch.Values) == 0):
			n.SPNs = strs()
		case ch.Op == ChangeAdd:
			var err error
			if n.SPNs, err = appendValues("servicePrincipalName", n.SPNs, strs(), ch.Permissive); err != nil {
				return nil, err
			}
		default:
			for _, s := range strs() {
				before := len(n.SPNs)
				if n.SPNs = without(n.SPNs, s); len(n.SPNs) == before && !ch.Permissive {
					return nil, fmt.Errorf("directory: %s has no SPN %q: %w", n.SAM, s, errNoSuchValue)
				}
			}
		}
		return nil, checkSPNs(n.SPNs)
	case "msds-allowedtodelegateto":
		if !isAccount {
			return nil, notFor()
		}
		switch ch.Op {
		case ChangeReplace:
			n.AllowedToDelegateTo = strs()
		case ChangeAdd:
			var err error
			if n.AllowedToDelegateTo, err = appendValues("msDS-AllowedToDelegateTo", n.AllowedToDelegateTo, strs(), ch.Permissive); err != nil {
				return nil, err
			}
		default:
			if len(ch.Values) == 0 {
				n.AllowedToDelegateTo = nil
			}
			for _, s := range strs() {
				before := len(n.AllowedToDelegateTo)
				if n.AllowedToDelegateTo = without(n.AllowedToDelegateTo, s); len(n.AllowedToDelegateTo) == before && !ch.Permissive {
					return nil, fmt.Errorf("directory: %s may not delegate to %q: %w", n.SAM, s, errNoSuchValue)
				}
			}
		}
		return nil, checkSPNs(n.AllowedToDelegateTo)
	case "msds-groupmsamembership":
		if n.Class != ClassGMSA {
			return nil, notFor()
		}
		sd := first()
		if sd != nil {
			if _, err := ntsec.ParseSecurityDescriptor(sd); err != nil {
				return nil, fmt.Errorf("directory: msDS-GroupMSAMembership: %v: %w", err, ErrInvalidSyntax)
			}
		}
		n.GroupMSAMembership = bytes.Clone(sd)
	case "dnshostname":
		if n.Class != ClassComputer && n.Class != ClassGMSA {
			return nil, notFor()
		}
		v := strings.TrimSpace(string(first()))
		if v == "" && n.Class == ClassGMSA {
			return nil, fmt.Errorf("directory: %s: a gMSA's DNS host name cannot be empty: %w", n.SAM, ErrConstraint)
		}
		n.DNSHostName = v
	case "description":
		n.Description = string(first())
	case "msds-supportedencryptiontypes":
		if !isAccount {
			return nil, notFor()
		}
		x, err := number()
		if err != nil {
			return nil, err
		}
		n.SupportedEnctypes = uint32(x)
	case "useraccountcontrol":
		if !isAccount {
			return nil, notFor()
		}
		if first() == nil {
			return nil, fmt.Errorf("directory: userAccountControl cannot be deleted: %w", ErrInvalid)
		}
		x, err := number()
		if err != nil {
			return nil, err
		}
		const settable = UACAccountDisable | UACTrustedToAuthForDelegation
		if (uint32(x) &^ settable) != (n.UAC &^ settable) {
			return nil, fmt.Errorf("directory: only the ACCOUNTDISABLE (0x2) and TRUSTED_TO_AUTH_FOR_DELEGATION (0x1000000) bits of userAccountControl can be changed here: %w", ErrInvalid)
		}
		n.UAC = uint32(x)
	case "lockouttime":
		if x, err := number(); err != nil || x != 0 || !isAccount {
			return nil, fmt.Errorf("directory: lockoutTime can only be set to 0, which unlocks the account: %w", ErrConstraint)
		}
		n.LockoutTime, n.BadPwdCount = 0, 0
	case "unicodepwd":
		if n.Class != ClassUser && n.Class != ClassComputer {
			return nil, fmt.Errorf("directory: %s is a %s; only users and computers have a password that can be set: %w", n.DN, n.Class, ErrInvalid)
		}
		if ch.Op == ChangeDelete {
			return nil, fmt.Errorf("directory: 0000052D: a password is changed by deleting the old and adding the new value, or reset by a replace: %w", ErrConstraint)
		}
		if len(ch.Values) != 1 {
			return nil, fmt.Errorf("directory: unicodePwd needs one value: %w", ErrConstraint)
		}
		pw, err := DecodeUnicodePwd(ch.Values[0])
		if err != nil {
			return nil, err
		}
		if pw == "" {
			return nil, fmt.Errorf("directory: 0000052D: the password is empty: %w", ErrConstraint)
		}
		if err := checkPasswordPolicy(n, pw); err != nil {
			return nil, err
		}
		if ch.EnforceHistory {
			if err := checkPasswordHistory(n, pw); err != nil {
				return nil, err
			}
		}
		return nil, d.setKeys(n, EncodePassword(pw))
	case "ntsecuritydescriptor":
		if ch.Op == ChangeDelete || len(ch.Values) != 1 {
			return nil, fmt.Errorf("directory: nTSecurityDescriptor is replaced by one value: %w", ErrConstraint)
		}
		return nil, d.writeSD(n, ch.Values[0], ch.SDFlags)
	case "lockoutthreshold", "lockoutduration", "lockoutobservationwindow":
		if n.Class != ClassDomain {
			return nil, notFor()
		}
		v, err := strconv.ParseInt(strings.TrimSpace(string(first())), 10, 64)
		if err != nil || v < 0 && strings.EqualFold(ch.Attr, "lockoutThreshold") || v > 0 && !strings.EqualFold(ch.Attr, "lockoutThreshold") {
			return nil, fmt.Errorf("directory: %s %q: want a count, or a negative interval in 100 ns units: %w", ch.Attr, first(), ErrInvalidSyntax)
		}
		p := policyOf(n)
		switch strings.ToLower(ch.Attr) {
		case "lockoutthreshold":
			p.LockoutThreshold = uint32(v)
		case "lockoutduration":
			p.LockoutDuration = ntsec.FileTime(-v)
		default:
			p.ObservationWindow = ntsec.FileTime(-v)
		}
		n.Policy = &p
	default:
		if _, ok := lookupAttr(ch.Attr); !ok {
			return nil, fmt.Errorf("directory: %s is not an attribute of this directory's schema: %w", ch.Attr, ErrNoSuchAttr)
		}
		return nil, fmt.Errorf("directory: changing %s is not supported: %w", ch.Attr, ErrInvalid)
	}
	return nil, nil
}

// appendValues adds vs to a multi-valued string attribute: a value already there
// (case-insensitively) is attributeOrValueExists, or skipped with permissive set.
func appendValues(attr string, have, vs []string, permissive bool) ([]string, error) {
	for _, v := range vs {
		if slices.ContainsFunc(have, func(x string) bool { return strings.EqualFold(x, v) }) {
			if permissive {
				continue
			}
			return nil, fmt.Errorf("directory: %s already holds %q: %w", attr, v, ErrValueExists)
		}
		have = append(have, v)
	}
	return have, nil
}

// applyMembers changes a group's members under AD's nesting rules; every member added
// must still exist when the transaction commits.
func (d *Directory) applyMembers(g *Object, ch Change, members map[string]*Object) ([]store.Op, error) {
	var ops []store.Op
	add := func(m *Object) error {
		if err := checkNesting(g, m); err != nil {
			return err
		}
		for _, x := range g.Members {
			if strings.EqualFold(x, m.GUID.String()) {
				if ch.Permissive {
					return nil
				}
				return fmt.Errorf("directory: %s is already a member of %s: %w", m.Name, g.Name, ErrValueExists)
			}
		}
		g.Members = append(g.Members, m.GUID.String())
		ops = append(ops, store.Op{Key: objKey(m.GUID), Check: true, Cond: store.Present})
		return nil
	}
	switch ch.Op {
	case ChangeReplace:
		g.Members = nil
		fallthrough
	case ChangeAdd:
		for _, v := range ch.Values {
			if err := add(members[strings.ToLower(string(v))]); err != nil {
				return nil, err
			}
		}
	case ChangeDelete:
		if len(ch.Values) == 0 {
			g.Members = nil
		}
		for _, v := range ch.Values {
			m := members[strings.ToLower(string(v))]
			before := len(g.Members)
			if g.Members = without(g.Members, m.GUID.String()); len(g.Members) == before && !ch.Permissive {
				return nil, fmt.Errorf("directory: %s is not a member of %s: %w", m.Name, g.Name, errNoSuchValue)
			}
		}
	}
	return ops, nil
}

// checkNesting applies AD's group nesting rules: a global group holds accounts and
// global groups, a universal group also universal groups, a domain local group any of
// them and other domain local groups.
func checkNesting(g, m *Object) error {
	if m.Class != ClassGroup {
		return nil
	}
	if m.GUID == g.GUID {
		return fmt.Errorf("directory: %s cannot be a member of itself: %w", g.Name, ErrInvalid)
	}
	gs, ms := g.Scope(), m.Scope()
	if (gs == ScopeGlobal && ms != ScopeGlobal) || (gs == ScopeUniversal && ms == ScopeDomainLocal) {
		return fmt.Errorf("directory: a %s group cannot contain the %s group %s (AD nesting rules): %w", gs, ms, m.Name, ErrInvalid)
	}
	return nil
}

// AddOptions are what an add's controls ask of it ([MS-ADTS] 3.1.1.3.4.1).
type AddOptions struct {
	SDFlags uint32 // the SD flags control: the parts of a nTSecurityDescriptor given with the add that count (0: all)
	Owner   string // the set owner control: the new object's owner, a string SID
}

// Add creates the object an LDAP add describes — a user, computer, group, gMSA or KDS
// root key — at exactly the requested DN, or refuses it; one audit record.
func (d *Directory) Add(ctx context.Context, req *Requester, dn string, attrs map[string][][]byte, opt AddOptions) (*Object, error) {
	if req == nil || req.Token == nil {
		return nil, fmt.Errorf("directory: %w", ErrNeedBind)
	}
	for name := range attrs {
		if strings.EqualFold(name, "msKds-RootKeyData") || strings.EqualFold(name, "unicodePwd") || strings.EqualFold(name, "objectClass") ||
			strings.EqualFold(name, "sAMAccountName") {
			continue
		}
		if err := checkWritable(name); err != nil && !strings.EqualFold(name, "msDS-ManagedPasswordInterval") {
			return nil, err
		}
	}
	first := func(name string) string {
		if v := attrs[strings.ToLower(name)]; len(v) > 0 {
			return string(v[0])
		}
		return ""
	}
	all := func(name string) []string {
		var out []string
		for _, v := range attrs[strings.ToLower(name)] {
			out = append(out, string(v))
		}
		return out
	}
	rdnAttr, cn, parentDN, err := splitDN(dn)
	if err != nil {
		return nil, err
	}
	classes := strings.ToLower(strings.Join(all("objectClass"), " "))
	if c, ok := addedClass(classes); ok {
		parent := parentDN
		if r, err := d.ResolveDN(ctx, parent); err == nil {
			parent = r
		}
		if err := d.authorizeCreate(ctx, req, normDN(parent), c); err != nil {
			return nil, err
		}
		cr, err := newCreation(req, attrs["ntsecuritydescriptor"], opt)
		if err != nil {
			return nil, err
		}
		if err := d.authorizeNewSD(ctx, req, cr); err != nil {
			return nil, err
		}
		ctx = context.WithValue(ctx, creatorKey{}, cr)
	}
	if slices.Contains(strings.Fields(classes), "organizationalunit") || strings.TrimSpace(strings.ReplaceAll(classes, "top", "")) == "container" {
		class, want := ClassOU, "OU"
		if !strings.Contains(classes, "organizationalunit") {
			class, want = ClassContainer, "CN"
		}
		if !strings.EqualFold(rdnAttr, want) {
			return nil, fmt.Errorf("directory: 00002099: %s: a %s is named %s=…: %w", dn, class, want, ErrNamingViolation)
		}
		if v := first(want); v != "" && !strings.EqualFold(v, cn) {
			return nil, fmt.Errorf("directory: 00002099: %s %q differs from the DN's %q: %w", strings.ToLower(want), v, cn, ErrNamingViolation)
		}
		o, err := d.newContainer(ctx, class, cn, parentDN, first("description"))
		if err != nil {
			return nil, err
		}
		d.changed(req, "add", o.DN)
		return o, nil
	}
	if !strings.EqualFold(rdnAttr, "CN") {
		return nil, fmt.Errorf("directory: 00002099: %s: users, computers, groups, gMSAs and root keys are named CN=…: %w", dn, ErrNamingViolation)
	}
	parent, err := d.container(ctx, parentDN, "")
	if err != nil {
		return nil, err
	}
	if v := first("cn"); v != "" && !strings.EqualFold(v, cn) {
		return nil, fmt.Errorf("directory: 00002099: cn %q differs from the DN's %q: %w", v, cn, ErrNamingViolation)
	}
	if pw := first("unicodePwd"); pw != "" && !req.Protection.Encrypted() {
		return nil, fmt.Errorf("directory: 0000001F: unicodePwd can only be written over an encrypted connection (ldaps:// or StartTLS): %w", ErrInvalid)
	}
	disabled := false
	if uac := first("userAccountControl"); uac != "" {
		n, err := strconv.ParseUint(uac, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("directory: userAccountControl %q is not a number: %w", uac, ErrInvalidSyntax)
		}
		disabled = n&UACAccountDisable != 0
	}
	sam := first("sAMAccountName")
	var o *Object
	switch {
	case strings.Contains(classes, "mskds-provrootkey"):
		if !strings.EqualFold(parent, d.domain.RootKeysDN()) {
			return nil, fmt.Errorf("directory: 00002099: KDS root keys live under %s: %w", d.domain.RootKeysDN(), ErrNamingViolation)
		}
		attrs["cn"] = [][]byte{[]byte(cn)}
		k, err := kds.RootKeyFromAttributes(rawAttrs(attrs))
		if err != nil {
			return nil, fmt.Errorf("directory: %v: %w", err, ErrConstraint)
		}
		o, err = d.importRootKey(ctx, k)
		if err != nil {
			return nil, err
		}
	case strings.Contains(classes, "msds-groupmanagedserviceaccount"):
		opt := GMSAOptions{Name: strings.TrimSuffix(orDefault(sam, cn), "$"), CN: cn, DNSHostName: first("dNSHostName"), SPNs: all("servicePrincipalName"),
			Description: first("description"), Disabled: disabled, Container: parent}
		if v := first("msDS-ManagedPasswordInterval"); v != "" {
			if opt.IntervalDays, err = strconv.ParseInt(v, 10, 64); err != nil {
				return nil, fmt.Errorf("directory: msDS-ManagedPasswordInterval %q is not a number: %w", v, ErrInvalidSyntax)
			}
		}
		if v := first("msDS-SupportedEncryptionTypes"); v != "" {
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("directory: msDS-SupportedEncryptionTypes %q is not a number: %w", v, ErrInvalidSyntax)
			}
			opt.Enctypes = uint32(n)
		}
		if v := attrs["msds-groupmsamembership"]; len(v) > 0 {
			opt.Membership = v[0]
		}
		if o, err = d.newGMSA(ctx, opt); err != nil {
			return nil, err
		}
	case strings.Contains(classes, "computer"):
		opt := ComputerOptions{Name: orDefault(sam, cn), CN: cn, Container: parent, DNSHostName: first("dNSHostName"), SPNs: all("servicePrincipalName"), Exact: true}
		if v := attrs["unicodepwd"]; len(v) > 0 {
			pw, err := DecodeUnicodePwd(v[0])
			if err != nil {
				return nil, err
			}
			opt.Password = EncodePassword(pw)
		}
		if o, err = d.newComputer(ctx, opt); err != nil {
			return nil, err
		}
	case strings.Contains(classes, "group"):
		scope := ScopeGlobal
		if v := first("groupType"); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("directory: groupType %q is not a number: %w", v, ErrInvalidSyntax)
			}
			switch {
			case n&GroupUniversal != 0:
				scope = ScopeUniversal
			case n&GroupDomainLocal != 0:
				scope = ScopeDomainLocal
			}
		}
		members, err := d.resolveMembers(ctx, []Change{{Attr: "member", Values: attrs["member"]}})
		if err != nil {
			return nil, err
		}
		g := groupOptions{Name: orDefault(sam, cn), CN: cn, Container: parent, Scope: scope, Description: first("description")}
		if o, err = d.newGroup(ctx, g, func(n *Object) error {
			_, err := d.applyMembers(n, Change{Op: ChangeAdd, Values: attrs["member"]}, members)
			return err
		}); err != nil {
			return nil, err
		}
	case strings.Contains(classes, "user"):
		opt := UserOptions{Name: orDefault(sam, cn), CN: cn, Container: parent, Description: first("description"), Disabled: disabled,
			UPN: first("userPrincipalName")}
		if v := attrs["unicodepwd"]; len(v) > 0 {
			if opt.Password, err = DecodeUnicodePwd(v[0]); err != nil {
				return nil, err
			}
		}
		if o, err = d.newUser(ctx, opt); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("directory: 0000207F: objectClass %q is not one this directory creates (user, computer, group, msDS-GroupManagedServiceAccount, msKds-ProvRootKey): %w", classes, ErrObjectClass)
	}
	d.changed(req, "add", o.DN)
	return o, nil
}

// newCreation reads what an add asks of the new object's security descriptor.
func newCreation(req *Requester, sd [][]byte, opt AddOptions) (*creation, error) {
	cr := &creation{req: req, sdFlags: opt.SDFlags}
	switch len(sd) {
	case 0:
	case 1:
		cr.sd = sd[0]
	default:
		return nil, fmt.Errorf("directory: nTSecurityDescriptor takes one value: %w", ErrConstraint)
	}
	if opt.Owner != "" {
		sid, err := ntsec.ParseSID(opt.Owner)
		if err != nil {
			return nil, fmt.Errorf("directory: the set owner control's value is not a SID (want S-1-5-21-…): %w", ErrInvalidSyntax)
		}
		cr.owner = &sid
	}
	return cr, nil
}

// addedClass is the class an add's objectClass values ask for (most specific first).
func addedClass(classes string) (Class, bool) {
	for _, c := range []struct {
		name  string
		class Class
	}{{"mskds-provrootkey", ClassRootKey}, {"msds-groupmanagedserviceaccount", ClassGMSA}, {"computer", ClassComputer},
		{"group", ClassGroup}, {"user", ClassUser}, {"organizationalunit", ClassOU}, {"container", ClassContainer}} {
		if slices.Contains(strings.Fields(classes), c.name) {
			return c.class, true
		}
	}
	return "", false
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// rawAttrs lets kds.RootKeyFromAttributes read an LDAP add of a root key.
type rawAttrs map[string][][]byte

func (a rawAttrs) Text(name string) (string, bool) {
	v := a[strings.ToLower(name)]
	if len(v) == 0 {
		return "", false
	}
	return string(v[0]), true
}

func (a rawAttrs) Binary(name string) ([]byte, bool, error) {
	v := a[strings.ToLower(name)]
	if len(v) == 0 {
		return nil, false, nil
	}
	return v[0], true, nil
}

// splitDN splits a DN's first RDN from its parent. Values that need escaping (",",
// "+", "\"", "\\", "<", ">", ";", "=", a leading "#" or space) are refused with a
// naming violation: the directory keeps names that need no escaping.
func splitDN(dn string) (attr, value, parent string, err error) {
	rdn, parent, ok := strings.Cut(dn, ",")
	attr, value, ok2 := strings.Cut(rdn, "=")
	attr, value, parent = strings.TrimSpace(attr), strings.TrimSpace(value), strings.TrimSpace(parent)
	if !ok || !ok2 || attr == "" || value == "" || parent == "" {
		return "", "", "", fmt.Errorf("directory: 00002099: %q: want CN=name,<parent DN>: %w", dn, ErrNamingViolation)
	}
	if strings.ContainsAny(value, "+\"\\<>;=") || strings.HasPrefix(value, "#") {
		return "", "", "", fmt.Errorf("directory: 00002099: %q: names that need escaping in a DN are not supported: %w", value, ErrNamingViolation)
	}
	return attr, value, parent, nil
}

// Delete removes the object at dn (an LDAP delete); one audit record.
func (d *Directory) Delete(ctx context.Context, req *Requester, dn string) error {
	return d.Remove(ctx, req, dn, "")
}
