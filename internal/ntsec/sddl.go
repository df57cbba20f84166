package ntsec

import (
	"fmt"
	"math/bits"
	"sort"
	"strconv"
	"strings"
)

// Access rights as SDDL names them ([MS-DTYP] 2.5.1.1, [MS-ADTS] 5.1.3.2).
const (
	RightDSCreateChild   = 0x00000001 // CC
	RightDSDeleteChild   = 0x00000002 // DC
	RightDSListChildren  = 0x00000004 // LC
	RightDSSelf          = 0x00000008 // SW
	RightDSReadProperty  = 0x00000010 // RP
	RightDSWriteProperty = 0x00000020 // WP
	RightDSDeleteTree    = 0x00000040 // DT
	RightDSListObject    = 0x00000080 // LO
	RightDSControlAccess = 0x00000100 // CR
	RightDelete          = 0x00010000 // SD
	RightReadControl     = 0x00020000 // RC
	RightWriteDAC        = 0x00040000 // WD
	RightWriteOwner      = 0x00080000 // WO
	RightGenericAll      = 0x10000000 // GA
	RightGenericExecute  = 0x20000000 // GX
	RightGenericWrite    = 0x40000000 // GW
	RightGenericRead     = 0x80000000 // GR
)

// rightLetters maps the two-letter SDDL rights to masks. Combined aliases come first so
// that formatting prefers them only on an exact match.
var rightLetters = []struct {
	name string
	mask uint32
}{
	{"GA", RightGenericAll}, {"GR", RightGenericRead}, {"GW", RightGenericWrite}, {"GX", RightGenericExecute},
	{"RC", RightReadControl}, {"SD", RightDelete}, {"WD", RightWriteDAC}, {"WO", RightWriteOwner},
	{"RP", RightDSReadProperty}, {"WP", RightDSWriteProperty}, {"CC", RightDSCreateChild}, {"DC", RightDSDeleteChild},
	{"LC", RightDSListChildren}, {"SW", RightDSSelf}, {"LO", RightDSListObject}, {"DT", RightDSDeleteTree},
	{"CR", RightDSControlAccess},
	{"FA", 0x001f01ff}, {"FR", 0x00120089}, {"FW", 0x00120116}, {"FX", 0x001200a0},
	{"KA", 0x000f003f}, {"KR", 0x00020019}, {"KW", 0x00020006}, {"KX", 0x00020019},
}

// sidAliases are the SDDL SID strings ([MS-DTYP] 2.5.1.1). A negative rid marks a
// domain-relative alias: the SID is the domain SID plus -rid.
var sidAliases = map[string]struct {
	sid string
	rid int32
}{
	"AN": {"S-1-5-7", 0}, "AO": {"S-1-5-32-548", 0}, "AU": {"S-1-5-11", 0}, "BA": {"S-1-5-32-544", 0},
	"BG": {"S-1-5-32-546", 0}, "BO": {"S-1-5-32-551", 0}, "BU": {"S-1-5-32-545", 0}, "CD": {"S-1-5-32-574", 0},
	"CG": {"S-1-3-1", 0}, "CO": {"S-1-3-0", 0}, "ED": {"S-1-5-9", 0}, "ER": {"S-1-5-32-573", 0},
	"IU": {"S-1-5-4", 0}, "LS": {"S-1-5-19", 0}, "NO": {"S-1-5-32-556", 0}, "NS": {"S-1-5-20", 0},
	"NU": {"S-1-5-2", 0}, "OW": {"S-1-3-4", 0}, "PO": {"S-1-5-32-550", 0}, "PS": {"S-1-5-10", 0},
	"PU": {"S-1-5-32-547", 0}, "RC": {"S-1-5-12", 0}, "RD": {"S-1-5-32-555", 0}, "RE": {"S-1-5-32-552", 0},
	"RU": {"S-1-5-32-554", 0}, "SO": {"S-1-5-32-549", 0}, "SU": {"S-1-5-6", 0}, "SY": {"S-1-5-18", 0},
	"WD": {"S-1-1-0", 0}, "WR": {"S-1-5-33", 0},
	"LA": {"", -500}, "LG": {"", -501}, "DA": {"", -512}, "DU": {"", -513}, "DG": {"", -514},
	"DC": {"", -515}, "DD": {"", -516}, "CA": {"", -517}, "SA": {"", -518}, "EA": {"", -519},
	"PA": {"", -520}, "RO": {"", -498}, "CN": {"", -522}, "RS": {"", -553},
}

var aceTypeNames = map[string]byte{
	"A": ACETypeAccessAllowed, "D": ACETypeAccessDenied, "AU": ACETypeSystemAudit,
	"OA": ACETypeAccessAllowedObject, "OD": ACETypeAccessDeniedObject, "OU": ACETypeSystemAuditObject,
}

var aceFlagNames = []struct {
	name string
	bit  byte
}{
	{"OI", ACEFlagObjectInherit}, {"CI", ACEFlagContainerInherit}, {"NP", ACEFlagNoPropagate},
	{"IO", ACEFlagInheritOnly}, {"ID", ACEFlagInherited}, {"SA", ACEFlagSuccessfulAccess}, {"FA", ACEFlagFailedAccess},
}

// maxSDDLACEs bounds the ACEs one SDDL string may produce, so an ACL stays within its
// 16-bit size field.
const maxSDDLACEs = 1000

// ParseSDDL reads the SDDL subset Active Directory uses: O:, G:, D: and S: parts, ACL
// flags P/AI/AR, ACE types A D OA OD AU OU, ACE flags, rights as letters or a 0x/decimal
// number, object GUIDs, and SIDs as S-1-… or two-letter aliases. Domain-relative
// aliases (DA, DU, EA, …) need domain; pass the zero SID when there is none.
func ParseSDDL(s string, domain SID) (*SecurityDescriptor, error) {
	p := sddlParser{src: s, domain: domain}
	sd, err := p.parse()
	if err != nil {
		return nil, fmt.Errorf("ntsec: SDDL %q: %w", s, err)
	}
	return sd, nil
}

type sddlParser struct {
	src    string
	pos    int
	domain SID
}

func (p *sddlParser) parse() (*SecurityDescriptor, error) {
	sd := &SecurityDescriptor{Control: ControlSelfRelative}
	seen := map[byte]bool{}
	for p.skipSpace(); p.pos < len(p.src); p.skipSpace() {
		if p.pos+1 >= len(p.src) || p.src[p.pos+1] != ':' {
			return nil, fmt.Errorf("at %d: want a part O:, G:, D: or S: here", p.pos)
		}
		part := p.src[p.pos]
		if seen[part] {
			return nil, fmt.Errorf("at %d: part %c appears twice", p.pos, part)
		}
		seen[part] = true
		p.pos += 2
		switch part {
		case 'O', 'G':
			end := p.pos
			for end < len(p.src) && !(end+1 < len(p.src) && p.src[end+1] == ':' && strings.IndexByte("OGDS", p.src[end]) >= 0) {
				end++
			}
			sid, err := p.sid(strings.TrimSpace(p.src[p.pos:end]))
			if err != nil {
				return nil, err
			}
			p.pos = end
			if part == 'O' {
				sd.Owner = &sid
			} else {
				sd.Group = &sid
			}
		case 'D', 'S':
			acl, flags, err := p.acl(part)
			if err != nil {
				return nil, err
			}
			if part == 'D' {
				sd.Control |= flags
				if acl != nil {
					sd.DACL = acl
					sd.Control |= ControlDACLPresent
				}
			} else {
				sd.Control |= flags | ControlSACLPresent
				sd.SACL = acl
				if acl == nil {
					sd.SACL = &ACL{Revision: 2}
				}
			}
		default:
			return nil, fmt.Errorf("at %d: unknown part %q (want O, G, D or S)", p.pos-2, part)
		}
	}
	return sd, nil
}

func (p *sddlParser) skipSpace() {
	for p.pos < len(p.src) && (p.src[p.pos] == ' ' || p.src[p.pos] == '\t' || p.src[p.pos] == '\n' || p.src[p.pos] == '\r') {
		p.pos++
	}
}

// acl reads ACL flags and ACEs. "NO_ACCESS_CONTROL" gives a nil (grant-all) DACL.
func (p *sddlParser) acl(part byte) (*ACL, uint16, error) {
	var control uint16
	if strings.HasPrefix(p.src[p.pos:], "NO_ACCESS_CONTROL") {
		p.pos += len("NO_ACCESS_CONTROL")
		if part == 'D' {
			control |= ControlDACLPresent
		}
		return nil, control, nil
	}
	for p.pos < len(p.src) && p.src[p.pos] != '(' {
		rest := p.src[p.pos:]
		switch {
		case strings.HasPrefix(rest, "AI"):
			control |= map[byte]uint16{'D': ControlDACLAutoInherited, 'S': ControlSACLAutoInherited}[part]
			p.pos += 2
		case strings.HasPrefix(rest, "AR"):
			control |= map[byte]uint16{'D': ControlDACLAutoInheritReq, 'S': ControlSACLAutoInheritReq}[part]
			p.pos += 2
		case strings.HasPrefix(rest, "P"):
			control |= map[byte]uint16{'D': ControlDACLProtected, 'S': ControlSACLProtected}[part]
			p.pos++
		default:
			if p.pos+1 < len(p.src) && p.src[p.pos+1] == ':' {
				return &ACL{Revision: 2}, control, nil // an empty ACL followed by the next part
			}
			return nil, 0, fmt.Errorf("at %d: unknown ACL flag %q (want P, AI, AR or an ACE in parentheses)", p.pos, rest[:1])
		}
	}
	acl := &ACL{Revision: 2}
	for p.pos < len(p.src) && p.src[p.pos] == '(' {
		end := strings.IndexByte(p.src[p.pos:], ')')
		if end < 0 {
			return nil, 0, fmt.Errorf("at %d: ACE without closing parenthesis", p.pos)
		}
		if len(acl.ACEs) == maxSDDLACEs {
			return nil, 0, fmt.Errorf("more than %d ACEs", maxSDDLACEs)
		}
		ace, err := p.ace(p.src[p.pos+1 : p.pos+end])
		if err != nil {
			return nil, 0, fmt.Errorf("ACE at %d: %w", p.pos, err)
		}
		if ace.IsObject() {
			acl.Revision = 4
		}
		acl.ACEs = append(acl.ACEs, ace)
		p.pos += end + 1
	}
	return acl, control, nil
}

func (p *sddlParser) ace(s string) (ACE, error) {
	f := strings.Split(s, ";")
	if len(f) != 6 {
		return ACE{}, fmt.Errorf("%q has %d fields, want 6 (type;flags;rights;object;inherited object;SID)", s, len(f))
	}
	var ace ACE
	t, ok := aceTypeNames[strings.ToUpper(f[0])]
	if !ok {
		return ace, fmt.Errorf("ACE type %q: want A, D, OA, OD, AU or OU", f[0])
	}
	ace.Type = t
	for rest := strings.ToUpper(f[1]); rest != ""; {
		found := false
		for _, fl := range aceFlagNames {
			if strings.HasPrefix(rest, fl.name) {
				ace.Flags |= fl.bit
				rest = rest[2:]
				found = true
				break
			}
		}
		if !found {
			return ace, fmt.Errorf("ACE flags %q: unknown flag at %q", f[1], rest)
		}
	}
	mask, err := parseRights(f[2])
	if err != nil {
		return ace, err
	}
	ace.Mask = mask
	for i, dst := range []**GUID{&ace.ObjectType, &ace.InheritedObjectType} {
		if f[3+i] == "" {
			continue
		}
		if !ace.IsObject() {
			return ace, fmt.Errorf("object GUID %q on a non-object ACE type %q", f[3+i], f[0])
		}
		g, err := ParseGUID(f[3+i])
		if err != nil {
			return ace, err
		}
		*dst = &g
	}
	if ace.SID, err = p.sid(f[5]); err != nil {
		return ace, err
	}
	return ace, nil
}

func parseRights(s string) (uint32, error) {
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, "0x") || strings.HasPrefix(t, "0X") {
		v, err := strconv.ParseUint(t[2:], 16, 32)
		if err != nil {
			return 0, fmt.Errorf("rights %q: not a 32-bit hexadecimal number", s)
		}
		return uint32(v), nil
	}
	if t != "" && t[0] >= '0' && t[0] <= '9' {
		v, err := strconv.ParseUint(t, 10, 32)
		if err != nil {
			return 0, fmt.Errorf("rights %q: not a 32-bit number", s)
		}
		return uint32(v), nil
	}
	if len(t)%2 != 0 {
		return 0, fmt.Errorf("rights %q: want two-letter rights (RP, WP, CR, GA, FR …) or a 0x number", s)
	}
	var mask uint32
	for i := 0; i < len(t); i += 2 {
		name := strings.ToUpper(t[i : i+2])
		found := false
		for _, r := range rightLetters {
			if r.name == name {
				mask |= r.mask
				found = true
				break
			}
		}
		if !found {
			return 0, fmt.Errorf("rights %q: unknown right %q", s, name)
		}
	}
	return mask, nil
}

func (p *sddlParser) sid(s string) (SID, error) {
	if strings.HasPrefix(strings.ToUpper(s), "S-") {
		return ParseSID(s)
	}
	a, ok := sidAliases[strings.ToUpper(s)]
	if !ok {
		return SID{}, fmt.Errorf("SID %q: not S-1-… nor a known alias (BA, SY, WD, AU, DA, EA, DC …)", s)
	}
	if a.rid == 0 {
		return MustParseSID(a.sid), nil
	}
	if p.domain.IsZero() {
		return SID{}, fmt.Errorf("SID alias %q is domain-relative and no domain SID is known", s)
	}
	return p.domain.Child(uint32(-a.rid)), nil
}

// SDDL formats sd. SIDs are written in S-1-… form except the machine-independent
// aliases; rights use letters when every bit has one, hexadecimal otherwise.
func (sd *SecurityDescriptor) SDDL() string {
	var b strings.Builder
	if sd.Owner != nil {
		b.WriteString("O:" + sidSDDL(*sd.Owner))
	}
	if sd.Group != nil {
		b.WriteString("G:" + sidSDDL(*sd.Group))
	}
	if sd.Control&ControlDACLPresent != 0 && sd.DACL == nil {
		b.WriteString("D:NO_ACCESS_CONTROL")
	} else if sd.DACL != nil {
		b.WriteString("D:")
		b.WriteString(aclFlagsSDDL(sd.Control, ControlDACLProtected, ControlDACLAutoInheritReq, ControlDACLAutoInherited))
		writeACEs(&b, sd.DACL)
	}
	if sd.SACL != nil {
		b.WriteString("S:")
		b.WriteString(aclFlagsSDDL(sd.Control, ControlSACLProtected, ControlSACLAutoInheritReq, ControlSACLAutoInherited))
		writeACEs(&b, sd.SACL)
	}
	return b.String()
}

func aclFlagsSDDL(control, protected, req, inherited uint16) string {
	s := ""
	if control&protected != 0 {
		s += "P"
	}
	if control&req != 0 {
		s += "AR"
	}
	if control&inherited != 0 {
		s += "AI"
	}
	return s
}

func writeACEs(b *strings.Builder, acl *ACL) {
	typeNames := map[byte]string{}
	for n, t := range aceTypeNames {
		typeNames[t] = n
	}
	for _, a := range acl.ACEs {
		name, ok := typeNames[a.Type]
		if !ok {
			name = fmt.Sprintf("0x%02x", a.Type) // not valid SDDL; makes unknown ACEs visible
		}
		b.WriteString("(" + name + ";")
		for _, fl := range aceFlagNames {
			if a.Flags&fl.bit != 0 {
				b.WriteString(fl.name)
			}
		}
		b.WriteString(";" + rightsSDDL(a.Mask) + ";")
		if a.ObjectType != nil {
			b.WriteString(a.ObjectType.String())
		}
		b.WriteString(";")
		if a.InheritedObjectType != nil {
			b.WriteString(a.InheritedObjectType.String())
		}
		b.WriteString(";" + sidSDDL(a.SID) + ")")
	}
}

// formatOrder is the order Windows writes rights in (ConvertSecurityDescriptorToStringSecurityDescriptor).
var formatOrder = []string{"GA", "GR", "GW", "GX", "CC", "DC", "LC", "SW", "RP", "WP", "DT", "LO", "CR", "SD", "RC", "WD", "WO"}

func rightsSDDL(mask uint32) string {
	for _, r := range rightLetters[17:] { // exact combined aliases: FA, FR, …
		if r.mask == mask {
			return r.name
		}
	}
	var s string
	rest := mask
	for _, name := range formatOrder {
		for _, r := range rightLetters[:17] {
			if r.name == name && bits.OnesCount32(r.mask) == 1 && mask&r.mask != 0 {
				s += r.name
				rest &^= r.mask
			}
		}
	}
	if rest != 0 || s == "" {
		return fmt.Sprintf("0x%x", mask)
	}
	return s
}

var aliasBySID = func() map[string]string {
	m := map[string]string{}
	names := make([]string, 0, len(sidAliases))
	for n := range sidAliases {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if a := sidAliases[n]; a.rid == 0 {
			m[a.sid] = n
		}
	}
	return m
}()

func sidSDDL(s SID) string {
	str := s.String()
	if a, ok := aliasBySID[str]; ok {
		return a
	}
	return str
}
