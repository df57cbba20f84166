package ldapserver

import (
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"

	ber "github.com/go-asn1-ber/asn1-ber"

	"gmsa/internal/audit"
	"gmsa/internal/directory"
	"gmsa/internal/kds"
	"gmsa/internal/ntsec"
)

// Diagnostics of refused writes, in AD's form.
const (
	diagInsufficient  = "00000005: SecErr: DSID-03152E29, problem 4003 (INSUFF_ACCESS_RIGHTS), data 0: updates need Domain Admins, Enterprise Admins or Administrators"
	diagConstructed   = "00002077: AtrErr: DSID-03152D2C, #1: 0: 00002077: DSID-03152D2C, problem 1005 (CONSTRAINT_ATT_TYPE), data 0, Att %s: %s is constructed and cannot be written"
	diagSystemOnly    = "000020B1: AtrErr: DSID-030F23F6, #1: 0: 000020B1: DSID-030F23F6, problem 1005 (CONSTRAINT_ATT_TYPE), data 0, Att %s: %s can only be set by the system"
	diagUnicodePwdTLS = "0000001F: SvcErr: DSID-031A126C, problem 5003 (WILL_NOT_PERFORM), data 0: unicodePwd can only be written over an encrypted connection (ldaps:// or StartTLS)"
)

// systemOnly are attributes the directory assigns; constructed ones are computed.
var (
	systemOnly  = []string{"objectSid", "objectGUID", "msDS-ManagedPasswordId", "msDS-ManagedPasswordPreviousId", "whenCreated", "whenChanged", "uSNCreated", "uSNChanged", "msDS-KeyVersionNumber", "pwdLastSet", "memberOf", "objectCategory", "sAMAccountType", "primaryGroupID", "instanceType"}
	constructed = []string{"msDS-ManagedPassword"}
)

// attrs holds an entry's or a change's attributes by lower-case name.
type attrs map[string][][]byte

func (a attrs) first(name string) string {
	if v := a[strings.ToLower(name)]; len(v) > 0 {
		return string(v[0])
	}
	return ""
}

func (a attrs) strs(name string) []string {
	var out []string
	for _, v := range a[strings.ToLower(name)] {
		out = append(out, string(v))
	}
	return out
}

// Text and Binary let kds.RootKeyFromAttributes read an LDAP add of a root key.
func (a attrs) Text(name string) (string, bool) {
	v := a[strings.ToLower(name)]
	return a.first(name), len(v) > 0
}
func (a attrs) Binary(name string) ([]byte, bool, error) {
	v := a[strings.ToLower(name)]
	if len(v) == 0 {
		return nil, false, nil
	}
	return v[0], true, nil
}

func parseAttributes(p *ber.Packet) attrs {
	a := attrs{}
	for _, at := range p.Children {
		if len(at.Children) < 2 {
			continue
		}
		name := strings.ToLower(str(at.Children[0]))
		for _, v := range at.Children[1].Children {
			a[name] = append(a[name], raw(v))
		}
	}
	return a
}

// checkWritable refuses constructed and system-only attributes.
func checkWritable(names []string) *ldapError {
	for _, n := range names {
		for _, c := range constructed {
			if strings.EqualFold(n, c) {
				return lerr(resultConstraintViolation, diagConstructed, c, c)
			}
		}
		for _, s := range systemOnly {
			if strings.EqualFold(n, s) {
				return lerr(resultConstraintViolation, diagSystemOnly, s, s)
			}
		}
	}
	return nil
}

// decodeUnicodePwd reads AD's unicodePwd value: the password in double quotes, UTF-16LE.
func decodeUnicodePwd(b []byte) (string, *ldapError) {
	if len(b)%2 != 0 || len(b) < 4 {
		return "", lerr(resultConstraintViolation, "0000052D: unicodePwd must be the quoted password in UTF-16LE")
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	s := string(utf16.Decode(u))
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return "", lerr(resultConstraintViolation, "0000052D: unicodePwd must be enclosed in double quotes")
	}
	return s[1 : len(s)-1], nil
}

// write serves Add, Modify, Delete, ModifyDN and Compare.
func (c *conn) write(ctx context.Context, id int64, op *ber.Packet) {
	resp := map[ber.Tag]ber.Tag{appModifyRequest: appModifyResponse, appAddRequest: appAddResponse, appDelRequest: appDelResponse,
		appModDNRequest: appModDNResponse}[op.Tag]
	reply := func(e *ldapError) {
		if e == nil {
			c.send(message(id, result(resp, resultSuccess, "", "")))
			return
		}
		c.send(message(id, result(resp, e.code, e.matched, e.diag)))
	}
	if c.tok == nil {
		reply(lerr(resultOperationsError, diagNeedBind))
		return
	}
	dir := c.srv.cfg.Dir
	if !dir.InGroup(c.tok, ntsec.RIDDomainAdmins) && !dir.InGroup(c.tok, ntsec.RIDEnterpriseAdmins) && !c.tok.Has(ntsec.SIDBuiltinAdmins) {
		reply(lerr(resultInsufficientAccess, diagInsufficient))
		return
	}
	var err error
	switch op.Tag {
	case appAddRequest:
		if len(op.Children) < 2 {
			reply(lerr(resultProtocolError, "malformed AddRequest"))
			return
		}
		err = c.add(ctx, str(op.Children[0]), parseAttributes(op.Children[1]))
	case appModifyRequest:
		if len(op.Children) < 2 {
			reply(lerr(resultProtocolError, "malformed ModifyRequest"))
			return
		}
		err = c.modify(ctx, str(op.Children[0]), op.Children[1].Children)
	case appDelRequest:
		err = dir.Remove(ctx, str(op), "")
	case appModDNRequest:
		err = c.modifyDN(ctx, op)
	}
	if err != nil {
		reply(fromDomain(err))
		return
	}
	target := ""
	if op.Tag == appDelRequest {
		target = str(op)
	} else if len(op.Children) > 0 {
		target = str(op.Children[0])
	}
	c.srv.cfg.Audit.Record(c.srv.cfg.Now(), audit.Info, "directory changed", "principal", c.tok.Name, "remote", c.remote, "operation",
		map[ber.Tag]string{appAddRequest: "add", appModifyRequest: "modify", appDelRequest: "delete", appModDNRequest: "modify DN"}[op.Tag],
		"dn", target)
	reply(nil)
}

// add creates a gMSA, root key, computer, group or user from an LDAP entry.
func (c *conn) add(ctx context.Context, dn string, a attrs) error {
	names := make([]string, 0, len(a))
	for n := range a {
		names = append(names, n)
	}
	if e := checkWritable(names); e != nil {
		return e
	}
	rdn, parent, ok := strings.Cut(dn, ",")
	key, name, _ := strings.Cut(rdn, "=")
	if !ok || !strings.EqualFold(strings.TrimSpace(key), "CN") || name == "" {
		return lerr(resultNamingViolation, "00002099: NameErr: DSID-0305109C, problem 2005 (NAMING_VIOLATION), data 0: want CN=name,<parent>: %s", dn)
	}
	classes := strings.ToLower(strings.Join(a.strs("objectClass"), " "))
	dir := c.srv.cfg.Dir
	sam := strings.TrimSuffix(a.first("sAMAccountName"), "$")
	if sam == "" {
		sam = name
	}
	if pw := a.first("unicodePwd"); pw != "" && !c.encrypted {
		return lerr(resultUnwillingToPerform, diagUnicodePwdTLS)
	}
	disabled := false
	if uac := a.first("userAccountControl"); uac != "" {
		n, err := strconv.ParseUint(uac, 10, 32)
		if err != nil {
			return lerr(resultInvalidSyntax, "userAccountControl %q is not a number", uac)
		}
		disabled = n&directory.UACAccountDisable != 0
	}
	switch {
	case strings.Contains(classes, "msds-groupmanagedserviceaccount"):
		opt := directory.GMSAOptions{Name: sam, DNSHostName: a.first("dNSHostName"), SPNs: a.strs("servicePrincipalName"),
			Description: a.first("description"), Disabled: disabled, Container: parent}
		if v := a.first("msDS-ManagedPasswordInterval"); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return lerr(resultInvalidSyntax, "msDS-ManagedPasswordInterval %q is not a number", v)
			}
			opt.IntervalDays = n
		}
		if v := a.first("msDS-SupportedEncryptionTypes"); v != "" {
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return lerr(resultInvalidSyntax, "msDS-SupportedEncryptionTypes %q is not a number", v)
			}
			opt.Enctypes = uint32(n)
		}
		if v, ok, _ := a.Binary("msDS-GroupMSAMembership"); ok {
			opt.Membership = v
		}
		if !strings.EqualFold(name, sam) {
			return lerr(resultUnwillingToPerform, "0000209A: the cn (%s) and sAMAccountName (%s$) of a gMSA must agree here", name, sam)
		}
		_, err := dir.NewGMSA(ctx, opt)
		return err
	case strings.Contains(classes, "mskds-provrootkey"):
		dom := dir.Domain()
		if !strings.EqualFold(parent, dom.RootKeysDN()) {
			return lerr(resultNamingViolation, "00002099: KDS root keys live under %s", dom.RootKeysDN())
		}
		a["cn"] = [][]byte{[]byte(name)}
		k, err := kds.RootKeyFromAttributes(a)
		if err != nil {
			return lerr(resultConstraintViolation, "0000209A: %v", err)
		}
		_, err = dir.ImportRootKey(ctx, k)
		return err
	case strings.Contains(classes, "computer"):
		opt := directory.ComputerOptions{Name: sam, DNSHostName: a.first("dNSHostName"), SPNs: a.strs("servicePrincipalName")}
		if v := a.first("unicodePwd"); v != "" {
			pw, e := decodeUnicodePwd([]byte(v))
			if e != nil {
				return e
			}
			opt.Password = directory.EncodePassword(pw)
		}
		_, err := dir.NewComputer(ctx, opt)
		return err
	case strings.Contains(classes, "group"):
		scope := directory.ScopeGlobal
		if v := a.first("groupType"); v != "" {
			n, _ := strconv.ParseInt(v, 10, 64)
			switch {
			case n&directory.GroupUniversal != 0:
				scope = directory.ScopeUniversal
			case n&directory.GroupDomainLocal != 0:
				scope = directory.ScopeDomainLocal
			}
		}
		if _, err := dir.NewGroup(ctx, sam, scope, a.first("description")); err != nil {
			return err
		}
		for _, m := range a.strs("member") {
			if _, err := dir.AddMember(ctx, sam, m); err != nil {
				return err
			}
		}
		return nil
	case strings.Contains(classes, "user"):
		pw := ""
		if v := a.first("unicodePwd"); v != "" {
			p, e := decodeUnicodePwd([]byte(v))
			if e != nil {
				return e
			}
			pw = p
		}
		_, err := dir.NewUser(ctx, directory.UserOptions{Name: sam, Password: pw, Description: a.first("description"), Disabled: disabled})
		return err
	}
	return lerr(resultObjectClassViolation, "0000207F: UpdErr: DSID-03150F4C, problem 6002 (OBJ_CLASS_VIOLATION), data 0: objectClass %q is not one this directory creates (user, computer, group, msDS-GroupManagedServiceAccount, msKds-ProvRootKey)", classes)
}

// modify applies changes ([RFC 4511] 4.6: add 0, delete 1, replace 2) atomically per
// attribute through the directory's rules.
func (c *conn) modify(ctx context.Context, dn string, changes []*ber.Packet) error {
	dir := c.srv.cfg.Dir
	o, err := dir.Resolve(ctx, dn)
	if err != nil {
		return err
	}
	for _, ch := range changes {
		if len(ch.Children) < 2 || len(ch.Children[1].Children) < 2 {
			return lerr(resultProtocolError, "malformed change")
		}
		opn, _ := intValue(ch.Children[0])
		attr := str(ch.Children[1].Children[0])
		var vals [][]byte
		for _, v := range ch.Children[1].Children[1].Children {
			vals = append(vals, raw(v))
		}
		if strings.EqualFold(attr, "msDS-ManagedPasswordInterval") {
			return lerr(resultConstraintViolation, diagSystemOnly, attr, attr+" (fixed when the gMSA is created)")
		}
		if e := checkWritable([]string{attr}); e != nil {
			return e
		}
		if err := c.change(ctx, o, int(opn), strings.ToLower(attr), vals); err != nil {
			return err
		}
	}
	return nil
}

func (c *conn) change(ctx context.Context, o *directory.Object, op int, attr string, vals [][]byte) error {
	dir := c.srv.cfg.Dir
	const opAdd, opDelete, opReplace = 0, 1, 2
	set := func(ch directory.GMSAChanges) error { _, err := dir.SetAccount(ctx, o.DN, ch); return err }
	strs := func() []string {
		var s []string
		for _, v := range vals {
			s = append(s, string(v))
		}
		return s
	}
	switch attr {
	case "member":
		for _, m := range vals {
			var err error
			switch op {
			case opAdd:
				_, err = dir.AddMember(ctx, o.DN, string(m))
			case opDelete:
				_, err = dir.RemoveMember(ctx, o.DN, string(m))
			default:
				return lerr(resultUnwillingToPerform, "0000209A: replace member is not supported; add and delete members")
			}
			if err != nil {
				return err
			}
		}
		return nil
	case "serviceprincipalname":
		switch op {
		case opAdd:
			return set(directory.GMSAChanges{AddSPNs: strs()})
		case opDelete:
			if len(vals) == 0 {
				empty := []string{}
				return set(directory.GMSAChanges{SPNs: &empty})
			}
			return set(directory.GMSAChanges{RemoveSPNs: strs()})
		}
		l := strs()
		return set(directory.GMSAChanges{SPNs: &l})
	case "msds-groupmsamembership":
		sd := []byte{}
		if op != opDelete && len(vals) > 0 {
			sd = vals[0]
		}
		return set(directory.GMSAChanges{Membership: &sd})
	case "dnshostname":
		v := ""
		if len(vals) > 0 {
			v = string(vals[0])
		}
		return set(directory.GMSAChanges{DNSHostName: &v})
	case "description":
		v := ""
		if op != opDelete && len(vals) > 0 {
			v = string(vals[0])
		}
		return set(directory.GMSAChanges{Description: &v})
	case "msds-supportedencryptiontypes":
		var n uint64
		if op != opDelete && len(vals) > 0 {
			var err error
			if n, err = strconv.ParseUint(string(vals[0]), 10, 32); err != nil {
				return lerr(resultInvalidSyntax, "msDS-SupportedEncryptionTypes %q is not a number", vals[0])
			}
		}
		m := uint32(n)
		return set(directory.GMSAChanges{Enctypes: &m})
	case "useraccountcontrol":
		if len(vals) == 0 {
			return lerr(resultUnwillingToPerform, "userAccountControl cannot be deleted")
		}
		n, err := strconv.ParseUint(string(vals[0]), 10, 32)
		if err != nil {
			return lerr(resultInvalidSyntax, "userAccountControl %q is not a number", vals[0])
		}
		if (uint32(n) &^ directory.UACAccountDisable) != (o.UAC &^ directory.UACAccountDisable) {
			return lerr(resultUnwillingToPerform, "0000209A: only the ACCOUNTDISABLE bit (0x2) of userAccountControl can be changed here")
		}
		enabled := n&directory.UACAccountDisable == 0
		return set(directory.GMSAChanges{Enabled: &enabled})
	case "unicodepwd":
		if !c.encrypted {
			return lerr(resultUnwillingToPerform, diagUnicodePwdTLS)
		}
		if op == opDelete { // the delete half of a password change: the add half sets it
			return nil
		}
		if len(vals) == 0 {
			return lerr(resultConstraintViolation, "unicodePwd needs a value")
		}
		pw, e := decodeUnicodePwd(vals[0])
		if e != nil {
			return e
		}
		_, err := dir.SetPassword(ctx, o.DN, pw)
		return err
	}
	return lerr(resultUnwillingToPerform, "0000209A: SvcErr: DSID-031A1248, problem 5003 (WILL_NOT_PERFORM), data 0: changing %s is not supported", fmt.Sprint(attr))
}

// modifyDN renames or moves an account or group ([RFC 4511] 4.9). The old RDN value
// is never kept: cn is single-valued in AD, so deleteoldrdn must be true.
func (c *conn) modifyDN(ctx context.Context, op *ber.Packet) error {
	if len(op.Children) < 3 {
		return lerr(resultProtocolError, "malformed ModifyDNRequest")
	}
	key, name, ok := strings.Cut(str(op.Children[1]), "=")
	if !ok || !strings.EqualFold(strings.TrimSpace(key), "CN") {
		return lerr(resultNamingViolation, "00002099: the new RDN must be CN=name")
	}
	if !boolValue(op.Children[2]) {
		return lerr(resultUnwillingToPerform, "0000209A: cn is single-valued: deleteoldrdn must be TRUE")
	}
	newParent := ""
	if len(op.Children) > 3 && op.Children[3].ClassType == ber.ClassContext && op.Children[3].Tag == 0 {
		newParent = str(op.Children[3])
	}
	_, err := c.srv.cfg.Dir.Rename(ctx, str(op.Children[0]), name, newParent)
	return err
}

// compare answers whether an entry holds an attribute value ([RFC 4511] 4.10), with the
// same matching as a search filter. Secret and constructed attributes cannot be probed.
func (c *conn) compare(ctx context.Context, id int64, op *ber.Packet) {
	reply := func(code int, diag string) { c.send(message(id, result(appCompareResponse, code, "", diag))) }
	if c.tok == nil {
		reply(resultOperationsError, diagNeedBind)
		return
	}
	if len(op.Children) < 2 || len(op.Children[1].Children) < 2 {
		reply(resultProtocolError, "malformed CompareRequest")
		return
	}
	attr, value := str(op.Children[1].Children[0]), raw(op.Children[1].Children[1])
	name, _, operational, ok := directory.Attribute(attr)
	switch {
	case !ok:
		reply(16, fmt.Sprintf("00002080: AtrErr: no such attribute %s", attr)) // noSuchAttribute
		return
	case operational || strings.EqualFold(name, "msKds-RootKeyData"):
		reply(resultUnwillingToPerform, fmt.Sprintf("0000209A: %s cannot be compared", name))
		return
	}
	matched := false
	err := c.srv.cfg.Dir.Search(ctx, directory.Query{Base: str(op.Children[0]), Scope: directory.ScopeBase, Filter: directory.Equal{Attr: name, Value: value}},
		func(*directory.View) error { matched = true; return nil })
	if err != nil {
		le := fromDomain(err)
		reply(le.code, le.diag)
		return
	}
	if matched {
		reply(resultCompareTrue, "")
	} else {
		reply(resultCompareFalse, "")
	}
}
