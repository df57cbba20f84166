package directory

import (
	"context"
	"slices"
	"strconv"
	"strings"

	"gmsa/internal/ntsec"
)

// Syntax is how an attribute's values compare ([MS-ADTS] 3.1.1.2.2.2).
type Syntax uint8

const (
	SyntaxString  Syntax = iota // Unicode/Directory String: case-insensitive
	SyntaxInteger               // Integer / LargeInteger: numeric
	SyntaxBinary                // OctetString, SID, security descriptor: bytewise
	SyntaxDN                    // DN-String: case-insensitive DN
	SyntaxTime                  // GeneralizedTime
)

// access says who may read an attribute ([MS-ADTS] 3.1.1.4.3); see Directory.visible.
type access uint8

const (
	accessPublic            access = iota // any authenticated requester
	accessRootKey                         // msKds-RootKeyData: SYSTEM, Domain and Enterprise Admins
	accessConstructedSecret               // msDS-ManagedPassword: built per read after the access check, never filtered on
	accessNever                           // stored passwords and keys: never read over a protocol
)

// attrDef is one attribute of AD's schema as the directory serves it.
type attrDef struct {
	Name   string // as AD spells it
	Syntax Syntax
	// Operational attributes are returned only when named, like constructed ones.
	Operational bool
	Access      access
	lower       string // Name in lower case

	// For read access checks: the attribute's place in attrByIdx, its schemaIDGUID and
	// property set (the object types a check names), and the confidential bit of its
	// searchFlags ([MS-ADTS] 3.1.1.2.3: reading it needs CONTROL_ACCESS too).
	idx          int
	types        []ntsec.GUID
	confidential bool
}

// attrByIdx lists the schema's attributes by attrDef.idx.
var attrByIdx []*attrDef

// schema lists the attributes the directory serves, by lower-case name.
var schema = func() map[string]*attrDef {
	m := map[string]*attrDef{}
	pub := func(name string, s Syntax) attrDef { return attrDef{Name: name, Syntax: s} }
	secret := func(name string) attrDef { return attrDef{Name: name, Syntax: SyntaxBinary, Access: accessNever} }
	for _, a := range []attrDef{
		pub("objectClass", SyntaxString), pub("objectCategory", SyntaxDN), pub("cn", SyntaxString),
		pub("name", SyntaxString), pub("distinguishedName", SyntaxDN), pub("objectGUID", SyntaxBinary),
		pub("objectSid", SyntaxBinary), pub("sAMAccountName", SyntaxString), pub("userPrincipalName", SyntaxString),
		pub("sAMAccountType", SyntaxInteger), pub("userAccountControl", SyntaxInteger), pub("description", SyntaxString),
		pub("whenCreated", SyntaxTime), pub("whenChanged", SyntaxTime), pub("uSNCreated", SyntaxInteger),
		pub("uSNChanged", SyntaxInteger), pub("instanceType", SyntaxInteger), pub("primaryGroupID", SyntaxInteger),
		pub("pwdLastSet", SyntaxInteger),
		{Name: "msDS-KeyVersionNumber", Syntax: SyntaxInteger, Operational: true}, // constructed: returned when named
		pub("dNSHostName", SyntaxString), pub("servicePrincipalName", SyntaxString), pub("msDS-AllowedToDelegateTo", SyntaxString),
		pub("msDS-SupportedEncryptionTypes", SyntaxInteger), pub("groupType", SyntaxInteger),
		pub("member", SyntaxDN), pub("memberOf", SyntaxDN), pub("ou", SyntaxString), pub("dc", SyntaxString),
		pub("wellKnownObjects", SyntaxString), pub("otherWellKnownObjects", SyntaxString), // DN-Binary, B:32:GUID:DN
		pub("msDS-ManagedPasswordInterval", SyntaxInteger), pub("msDS-ManagedPasswordId", SyntaxBinary),
		pub("msDS-ManagedPasswordPreviousId", SyntaxBinary), pub("msDS-GroupMSAMembership", SyntaxBinary),
		pub("badPwdCount", SyntaxInteger), pub("badPasswordTime", SyntaxInteger), pub("lockoutTime", SyntaxInteger),
		pub("lockoutThreshold", SyntaxInteger), pub("lockoutDuration", SyntaxInteger), pub("lockOutObservationWindow", SyntaxInteger),
		pub("isDeleted", SyntaxString), pub("lastKnownParent", SyntaxDN),
		// Account and domain attributes AD keeps at their defaults here ([MS-ADTS] 3.1.1.5.2.2).
		pub("accountExpires", SyntaxInteger), pub("codePage", SyntaxInteger), pub("countryCode", SyntaxInteger),
		pub("lastLogoff", SyntaxInteger), pub("lastLogon", SyntaxInteger), pub("logonCount", SyntaxInteger),
		pub("isCriticalSystemObject", SyntaxString), pub("showInAdvancedViewOnly", SyntaxString),
		pub("maxPwdAge", SyntaxInteger), pub("minPwdAge", SyntaxInteger), pub("minPwdLength", SyntaxInteger),
		pub("pwdHistoryLength", SyntaxInteger), pub("pwdProperties", SyntaxInteger), pub("forceLogoff", SyntaxInteger),
		pub("ms-DS-MachineAccountQuota", SyntaxInteger), pub("msDS-Behavior-Version", SyntaxInteger), pub("nTMixedDomain", SyntaxInteger),
		pub("nETBIOSName", SyntaxString), pub("nCName", SyntaxDN), pub("dnsRoot", SyntaxString),
		pub("fSMORoleOwner", SyntaxDN), pub("masteredBy", SyntaxDN), pub("msDS-masteredBy", SyntaxDN), pub("msDS-isDomainFor", SyntaxDN),
		pub("nTSecurityDescriptor", SyntaxBinary), // read through Match.Attributes only, when named
		// Schema entries ([MS-ADTS] 3.1.1.2.3, 3.1.1.2.4).
		pub("lDAPDisplayName", SyntaxString), pub("attributeID", SyntaxString), pub("attributeSyntax", SyntaxString),
		pub("oMSyntax", SyntaxInteger), pub("isSingleValued", SyntaxString), pub("searchFlags", SyntaxInteger),
		pub("systemFlags", SyntaxInteger), pub("schemaIDGUID", SyntaxBinary), pub("attributeSecurityGUID", SyntaxBinary),
		pub("governsID", SyntaxString), pub("subClassOf", SyntaxString), pub("objectClassCategory", SyntaxInteger),
		pub("systemPossSuperiors", SyntaxString), pub("systemMustContain", SyntaxString), pub("systemMayContain", SyntaxString),
		pub("mayContain", SyntaxString), pub("defaultSecurityDescriptor", SyntaxString),
		{Name: "attributeTypes", Syntax: SyntaxString, Operational: true}, {Name: "objectClasses", Syntax: SyntaxString, Operational: true},
		{Name: "dITContentRules", Syntax: SyntaxString, Operational: true},
		{Name: "msDS-User-Account-Control-Computed", Syntax: SyntaxInteger, Operational: true},
		{Name: "tokenGroups", Syntax: SyntaxBinary, Operational: true},
		// Constructed ([MS-ADTS] 3.1.1.4.5): returned only when named.
		{Name: "canonicalName", Syntax: SyntaxString, Operational: true}, {Name: "primaryGroupToken", Syntax: SyntaxInteger, Operational: true},
		{Name: "createTimeStamp", Syntax: SyntaxTime, Operational: true}, {Name: "modifyTimeStamp", Syntax: SyntaxTime, Operational: true},
		{Name: "structuralObjectClass", Syntax: SyntaxString, Operational: true}, {Name: "subSchemaSubEntry", Syntax: SyntaxDN, Operational: true},
		{Name: "msDS-PrincipalName", Syntax: SyntaxString, Operational: true}, {Name: "msDS-Approx-Immed-Subordinates", Syntax: SyntaxInteger, Operational: true},
		{Name: "sDRightsEffective", Syntax: SyntaxInteger, Operational: true},
		{Name: "allowedAttributes", Syntax: SyntaxString, Operational: true}, {Name: "allowedAttributesEffective", Syntax: SyntaxString, Operational: true},
		{Name: "msDS-ManagedPassword", Syntax: SyntaxBinary, Operational: true, Access: accessConstructedSecret},
		{Name: "msKds-RootKeyData", Syntax: SyntaxBinary, Access: accessRootKey},
		pub("msKds-Version", SyntaxInteger),
		pub("msKds-KDFAlgorithmID", SyntaxString), pub("msKds-KDFParam", SyntaxBinary),
		pub("msKds-CreateTime", SyntaxInteger), pub("msKds-UseStartTime", SyntaxInteger),
		pub("msKds-DomainID", SyntaxDN), pub("msKds-SecretAgreementAlgorithmID", SyntaxString),
		pub("msKds-SecretAgreementParam", SyntaxBinary), pub("msKds-PublicKeyLength", SyntaxInteger),
		pub("msKds-PrivateKeyLength", SyntaxInteger),
		// Stored secrets: AD never returns them, to anyone, and a filter never sees them.
		secret("unicodePwd"), secret("dBCSPwd"), secret("ntPwdHistory"), secret("lmPwdHistory"),
		secret("supplementalCredentials"), secret("userPassword"),
	} {
		a.lower = strings.ToLower(a.Name)
		a.idx, a.types = len(attrByIdx), attributeTypes(a.lower)
		a.confidential = attributeFacts[a.lower].SearchFlags&searchFlagConfidential != 0
		m[a.lower] = &a
		attrByIdx = append(attrByIdx, &a)
	}
	return m
}()

// lookupAttr returns the schema entry of name (case-insensitive), without allocating
// for names already in lower case.
func lookupAttr(name string) (*attrDef, bool) {
	if a, ok := schema[name]; ok {
		return a, true
	}
	if a, ok := schemaByName[name]; ok { // AD's spelling, as clients send it
		return a, true
	}
	a, ok := schema[strings.ToLower(name)]
	return a, ok
}

// schemaByName is schema by AD's spelling of each name.
var schemaByName = func() map[string]*attrDef {
	m := map[string]*attrDef{}
	for _, a := range schema {
		m[a.Name] = a
	}
	return m
}()

// Attribute returns the schema entry of name (case-insensitive).
func Attribute(name string) (name2 string, syntax Syntax, operational, ok bool) {
	a, ok := lookupAttr(name)
	if !ok {
		return "", 0, false, false
	}
	return a.Name, a.Syntax, a.Operational, true
}

// classChain is each class's objectClass values as AD returns them, most general first,
// with its objectCategory's CN.
var classChain = map[Class]struct {
	chain    []string
	category string
}{
	ClassDomain:          {[]string{"top", "domain", "domainDNS"}, "Domain-DNS"},
	ClassContainer:       {[]string{"top", "container"}, "Container"},
	ClassOU:              {[]string{"top", "organizationalUnit"}, "Organizational-Unit"},
	ClassUser:            {[]string{"top", "person", "organizationalPerson", "user"}, "Person"},
	ClassComputer:        {[]string{"top", "person", "organizationalPerson", "user", "computer"}, "Computer"},
	ClassGroup:           {[]string{"top", "group"}, "Group"},
	ClassGMSA:            {[]string{"top", "person", "organizationalPerson", "user", "computer", "msDS-GroupManagedServiceAccount"}, "ms-DS-Group-Managed-Service-Account"},
	ClassRootKey:         {[]string{"top", "msKds-ProvRootKey"}, "ms-Kds-Prov-RootKey"},
	ClassDMD:             {[]string{"top", "dMD"}, "DMD"},
	ClassAttributeSchema: {[]string{"top", "attributeSchema"}, "Attribute-Schema"},
	ClassClassSchema:     {[]string{"top", "classSchema"}, "Class-Schema"},
	ClassSubSchema:       {[]string{"top", "subSchema"}, "SubSchema"},
	ClassCrossRef:        {[]string{"top", "crossRef"}, "Cross-Ref"},
}

// sAMAccountType values ([MS-ADTS] 2.2.15).
func samAccountType(o *Object) (uint32, bool) {
	switch o.Class {
	case ClassUser:
		return 0x30000000, true
	case ClassComputer, ClassGMSA:
		return 0x30000001, true
	case ClassGroup:
		if o.GroupType&(GroupDomainLocal|GroupBuiltinLocal) != 0 {
			return 0x20000000, true
		}
		return 0x10000000, true
	}
	return 0, false
}

// GeneralizedTime formats t as AD does ("20260301120000.0Z").
func GeneralizedTime(t ntsec.FileTime) string { return t.Time().Format("20060102150405") + ".0Z" }

// View is an object seen as AD attributes by one requester: attributes the requester
// may not read are absent from it ([MS-ADTS] 3.1.1.4.3), so filters and results agree.
// Values are computed on first use; memberOf and member DNs need the store.
type View struct {
	d   *Directory
	ctx context.Context
	req *Requester
	o   *Object
	b   *budget     // the search's work budget; nil outside a search
	r   *readRights // o's read decisions, once asked
}

// userAttributes are the attributes "*" returns, in the order AD lists them.
var userAttributes = []string{"objectClass", "cn", "name", "distinguishedName", "objectGUID", "objectSid", "objectCategory",
	"instanceType", "whenCreated", "whenChanged", "uSNCreated", "uSNChanged", "description", "sAMAccountName", "sAMAccountType",
	"userPrincipalName", "userAccountControl", "primaryGroupID", "pwdLastSet", "badPwdCount", "badPasswordTime", "lockoutTime",
	"dNSHostName",
	"servicePrincipalName", "msDS-AllowedToDelegateTo", "msDS-SupportedEncryptionTypes", "groupType", "member", "memberOf", "ou", "dc",
	"lockoutThreshold", "lockoutDuration", "lockOutObservationWindow", "wellKnownObjects", "otherWellKnownObjects",
	"msDS-ManagedPasswordInterval", "msDS-ManagedPasswordId", "msDS-ManagedPasswordPreviousId", "msDS-GroupMSAMembership",
	"msKds-Version", "msKds-KDFAlgorithmID", "msKds-KDFParam", "msKds-CreateTime", "msKds-UseStartTime", "msKds-DomainID",
	"msKds-SecretAgreementAlgorithmID", "msKds-SecretAgreementParam", "msKds-PublicKeyLength", "msKds-PrivateKeyLength",
	"msKds-RootKeyData", "isDeleted", "lastKnownParent", "accountExpires", "codePage", "countryCode", "lastLogoff", "lastLogon",
	"logonCount", "isCriticalSystemObject", "showInAdvancedViewOnly", "maxPwdAge", "minPwdAge", "minPwdLength", "pwdHistoryLength",
	"pwdProperties", "forceLogoff", "ms-DS-MachineAccountQuota", "msDS-Behavior-Version", "nTMixedDomain", "systemFlags",
	"fSMORoleOwner", "masteredBy", "msDS-masteredBy", "msDS-isDomainFor", "nETBIOSName", "nCName", "dnsRoot", "lDAPDisplayName", "attributeID", "attributeSyntax", "oMSyntax",
	"isSingleValued", "searchFlags", "systemFlags", "schemaIDGUID", "attributeSecurityGUID", "governsID", "subClassOf",
	"objectClassCategory", "systemPossSuperiors", "systemMustContain", "systemMayContain", "mayContain", "defaultSecurityDescriptor"}

// names lists the user attributes the view has values for, in AD's spelling.
func (v *View) names() []string {
	var out []string
	for _, a := range userAttributes {
		if len(v.Get(a)) > 0 {
			out = append(out, a)
		}
	}
	return out
}

func str(s string) [][]byte {
	if s == "" {
		return nil
	}
	return [][]byte{[]byte(s)}
}

func num[T uint32 | int64 | uint64 | int32 | ntsec.FileTime](n T, keepZero bool) [][]byte {
	if n == 0 && !keepZero {
		return nil
	}
	return [][]byte{[]byte(strconv.FormatInt(int64(n), 10))}
}

func bin(b []byte) [][]byte {
	if len(b) == 0 {
		return nil
	}
	return [][]byte{b}
}

// Get returns the values of an attribute (case-insensitive name) that the requester
// may read, nil when absent or not visible to it.
func (v *View) Get(name string) [][]byte {
	a, ok := lookupAttr(name)
	if !ok || !v.readable(a) {
		return nil
	}
	return v.value(a.lower)
}

// readable reports whether the view's requester may read a: the attribute's own rule,
// then the object's security descriptor (see readaccess.go).
func (v *View) readable(a *attrDef) bool {
	return v.d.visible(v.req, v.o, a) && v.rights().may(a)
}

// rights are the requester's read decisions for the view's object.
func (v *View) rights() *readRights {
	if v.r == nil {
		v.r = v.d.reads(v.ctx, v.b, v.req, v.o)
	}
	return v.r
}

// at points the view at o.
func (v *View) at(o *Object) {
	v.o, v.r = o, nil
}

// value computes an attribute's values, whoever asks: callers decide visibility.
func (v *View) value(lower string) [][]byte {
	o := v.o
	isAccount := (o.Class == ClassUser || o.Class == ClassComputer || o.Class == ClassGMSA) && !o.Deleted
	if o.SchemaName != "" || o.Class == ClassSubSchema || o.Class == ClassCrossRef {
		if vals, ok := v.schemaValue(lower); ok {
			return vals
		}
	}
	switch lower {
	case "accountexpires":
		if isAccount {
			if o.Class == ClassUser {
				return str("9223372036854775807") // never
			}
			return str("0")
		}
	case "codepage", "countrycode", "lastlogoff", "lastlogon", "logoncount":
		if isAccount {
			return str("0")
		}
	case "iscriticalsystemobject":
		switch {
		case o.Class == ClassDomain, o.UAC&UACServerTrust != 0, (o.Class == ClassContainer || o.Class == ClassOU) && v.d.systemObject(o):
			return str("TRUE")
		case o.Class == ClassComputer || o.Class == ClassGMSA:
			return str("FALSE")
		}
	case "fsmoroleowner", "masteredby", "msds-masteredby", "msds-isdomainfor":
		if o.Class == ClassDomain && o.DN == v.d.domain.BaseDN { // this DC holds every role of its one domain
			return str("CN=NTDS Settings,CN=" + v.d.domain.DCName + ",CN=Servers,CN=Default-First-Site-Name,CN=Sites," + v.d.domain.ConfigDN)
		}
	case "showinadvancedviewonly":
		if o.Class == ClassRootKey || o.Class == ClassAttributeSchema || o.Class == ClassClassSchema {
			return str("TRUE")
		}
		if o.Class == ClassOU && v.d.systemObject(o) {
			return str("FALSE")
		}
	case "systemflags":
		switch {
		case o.Class == ClassDomain:
			return str("-1946157056") // FLAG_DISALLOW_DELETE | DOMAIN_DISALLOW_RENAME | DOMAIN_DISALLOW_MOVE
		case o.Class == ClassOU && v.d.systemObject(o), o.Class == ClassContainer && v.d.systemObject(o):
			return str("-1946157056")
		}
	case "maxpwdage", "minpwdage", "minpwdlength", "pwdhistorylength", "pwdproperties", "forcelogoff", "ms-ds-machineaccountquota",
		"msds-behavior-version", "ntmixeddomain":
		if o.Class == ClassDomain && o.DN == v.d.domain.BaseDN {
			return str(map[string]string{"maxpwdage": "-36288000000000", "minpwdage": "-864000000000", "minpwdlength": "7",
				"pwdhistorylength": "24", "pwdproperties": "1", "forcelogoff": "-9223372036854775808", "ms-ds-machineaccountquota": "10",
				"msds-behavior-version": "7", "ntmixeddomain": "0"}[lower])
		}
	case "isdeleted":
		if o.Deleted {
			return str("TRUE")
		}
	case "lastknownparent":
		return str(o.LastKnownParent)
	case "objectclass":
		var out [][]byte
		for _, c := range classChain[o.Class].chain {
			out = append(out, []byte(c))
		}
		return out
	case "objectcategory":
		if o.Deleted { // a tombstone keeps no category ([MS-ADTS] 3.1.1.5.5.1.1)
			return nil
		}
		return str("CN=" + classChain[o.Class].category + ",CN=Schema," + v.d.domain.ConfigDN)
	case "cn":
		if o.Class == ClassOU || o.Class == ClassDomain {
			return nil
		}
		return str(o.Name)
	case "ou":
		if o.Class == ClassOU {
			return str(o.Name)
		}
	case "dc":
		if o.Class == ClassDomain {
			return str(o.Name)
		}
	case "wellknownobjects", "otherwellknownobjects":
		if o.Class == ClassDomain && o.DN == v.d.domain.BaseDN {
			return wellKnownValues(v.d.domain, lower == "otherwellknownobjects")
		}
	case "name":
		return str(o.Name)
	case "distinguishedname":
		return str(o.DN)
	case "objectguid":
		return [][]byte{append([]byte(nil), o.GUID[:]...)}
	case "objectsid":
		if o.SID != "" {
			return [][]byte{o.ObjectSID().Bytes()}
		}
	case "instancetype":
		if o.DN == v.d.domain.BaseDN || o.DN == v.d.domain.ConfigDN || o.DN == v.d.domain.SchemaDN() {
			return num(uint32(5), true) // IT_NC_HEAD | IT_WRITE
		}
		return num(uint32(4), true)
	case "whencreated":
		return str(GeneralizedTime(o.Created))
	case "whenchanged":
		return str(GeneralizedTime(o.Changed))
	case "usncreated":
		return num(o.USNCreated, true)
	case "usnchanged":
		return num(o.USNChanged, true)
	case "description":
		return str(o.Description)
	case "samaccountname":
		return str(o.SAM)
	case "samaccounttype":
		if t, ok := samAccountType(o); ok {
			return num(t, true)
		}
	case "userprincipalname":
		return str(o.UPN)
	case "useraccountcontrol":
		if isAccount {
			return num(o.UAC, true)
		}
	case "primarygroupid":
		if isAccount {
			return num(o.PrimaryGroupRID, true)
		}
	case "pwdlastset":
		if isAccount {
			return num(uint64(o.PwdLastSet), true)
		}
	case "msds-keyversionnumber":
		if isAccount {
			return num(o.KVNO, true)
		}
	case "dnshostname":
		return str(o.DNSHostName)
	case "serviceprincipalname":
		var out [][]byte
		for _, s := range o.SPNs {
			out = append(out, []byte(s))
		}
		return out
	case "msds-supportedencryptiontypes":
		return num(o.SupportedEnctypes, false)
	case "msds-allowedtodelegateto":
		var out [][]byte
		for _, s := range o.AllowedToDelegateTo {
			out = append(out, []byte(s))
		}
		return out
	case "grouptype":
		if o.Class == ClassGroup {
			return num(int64(int32(o.GroupType)), true)
		}
	case "member":
		var out [][]byte
		for _, g := range o.Members {
			if m, err := v.d.byGUID(v.ctx, g); err == nil {
				out = append(out, []byte(m.DN))
			}
		}
		return out
	case "memberof":
		var out [][]byte
		for _, g := range v.d.memberOf(v.ctx, o) {
			out = append(out, []byte(g.DN))
		}
		return out
	case "msds-managedpasswordinterval":
		if o.Class == ClassGMSA {
			return num(o.PasswordInterval, true)
		}
	case "msds-managedpasswordid":
		return bin(o.PasswordID)
	case "msds-managedpasswordpreviousid":
		return bin(o.PreviousPasswordID)
	case "msds-groupmsamembership":
		return bin(o.GroupMSAMembership)
	case "badpwdcount":
		if isAccount {
			return num(o.BadPwdCount, true)
		}
	case "badpasswordtime":
		if isAccount {
			return num(uint64(o.BadPasswordTime), true)
		}
	case "lockouttime":
		if isAccount {
			return num(uint64(o.LockoutTime), false) // set once an account was locked out
		}
	case "canonicalname":
		return str(canonicalName(o.DN))
	case "createtimestamp": // constructed ([MS-ADTS] 3.1.1.4.5.33): whenCreated
		return v.value("whencreated")
	case "modifytimestamp": // whenChanged
		return v.value("whenchanged")
	case "structuralobjectclass":
		return v.value("objectclass")
	case "subschemasubentry":
		return str("CN=Aggregate,CN=Schema," + v.d.domain.ConfigDN)
	case "msds-principalname": // NetBIOS-domain\sAMAccountName of a security principal ([MS-ADTS] 3.1.1.4.5.29)
		if o.IsPrincipal() && o.SAM != "" {
			return str(v.d.domain.NetBIOS + `\` + o.SAM)
		}
	case "msds-approx-immed-subordinates": // the objects directly below ([MS-ADTS] 3.1.1.4.5.16)
		if kids, err := v.d.children(v.ctx, normDN(o.DN), 0); err == nil {
			return num(int64(len(kids)), true)
		}
	case "primarygrouptoken":
		if o.Class == ClassGroup && o.SID != "" {
			return num(o.ObjectSID().RID(), true)
		}
	case "allowedattributes":
		var out [][]byte
		for _, a := range allowedAttributes(o.Class) {
			out = append(out, []byte(a))
		}
		return out
	case "msds-user-account-control-computed":
		if isAccount {
			var flags uint32
			if v.d.lockedOut(o, v.d.domainPolicy(v.ctx), v.d.nowFT()) {
				flags |= UACLockout
			}
			return num(flags, true)
		}
	case "lockoutthreshold", "lockoutduration", "lockoutobservationwindow":
		if o.Class == ClassDomain {
			p := policyOf(o)
			return num(map[string]int64{"lockoutthreshold": int64(p.LockoutThreshold),
				"lockoutduration": -int64(p.LockoutDuration), "lockoutobservationwindow": -int64(p.ObservationWindow)}[lower], true)
		}
	}
	if r := o.RootKey; r != nil {
		switch lower {
		case "mskds-rootkeydata":
			return bin(r.Data)
		case "mskds-version":
			return num(r.Version, true)
		case "mskds-kdfalgorithmid":
			return str(r.KDFAlgorithm)
		case "mskds-kdfparam":
			return bin(r.KDFParam)
		case "mskds-createtime":
			return num(uint64(r.CreateTime), true)
		case "mskds-usestarttime":
			return num(uint64(r.UseStartTime), true)
		case "mskds-domainid":
			return str(r.DomainID)
		case "mskds-secretagreementalgorithmid":
			return str(r.SecretAgreementAlgorithm)
		case "mskds-secretagreementparam":
			return bin(r.SecretAgreementParam)
		case "mskds-publickeylength":
			return num(r.PublicKeyLength, true)
		case "mskds-privatekeylength":
			return num(r.PrivateKeyLength, true)
		}
	}
	return nil
}

// MemberOf returns the groups o is a direct member of (its memberOf back links).
func (d *Directory) MemberOf(ctx context.Context, o *Object) ([]*Object, error) {
	kvs, err := d.st.List(ctx, "memberof/"+o.GUID.String()+"/")
	if err != nil {
		return nil, err
	}
	var out []*Object
	for _, kv := range kvs {
		if g, err := d.byGUID(ctx, kv.Key[strings.LastIndexByte(kv.Key, '/')+1:]); err == nil {
			out = append(out, g) // a group removed meanwhile is skipped
		}
	}
	return out, nil
}

// memberOf is MemberOf for attribute views and filters, where a store error reads as
// no groups.
func (d *Directory) memberOf(ctx context.Context, o *Object) []*Object {
	gs, _ := d.MemberOf(ctx, o)
	return gs
}

// canonicalName is a DN in AD's canonical form ([MS-ADTS] 3.1.1.4.5.12): the domain's
// DNS name, then each RDN's value from the top down, joined by slashes.
func canonicalName(dn string) string {
	var dcs, rest []string
	for _, rdn := range strings.Split(dn, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(rdn), "=")
		if strings.EqualFold(k, "DC") {
			dcs = append(dcs, v)
		} else {
			rest = append(rest, v)
		}
	}
	slices.Reverse(rest)
	return strings.Join(append([]string{strings.Join(dcs, ".")}, rest...), "/")
}

// allowedAttributes are the attributes the directory serves that an object of class c
// may hold: the must and may lists of its classes ([MS-ADTS] 3.1.1.4.5.7), in AD's
// spelling.
func allowedAttributes(c Class) []string {
	seen := map[string]bool{}
	var out []string
	for _, cl := range classChain[c].chain {
		f, ok := classFacts[strings.ToLower(cl)]
		if !ok {
			continue
		}
		for _, l := range [][]string{f.MustContain, f.MayContain, f.MayContainToo} {
			for _, a := range l {
				if !seen[a] {
					seen[a] = true
					out = append(out, a)
				}
			}
		}
	}
	for _, a := range []string{"objectClass", "cn", "name", "distinguishedName", "objectGUID", "description", "whenCreated", "whenChanged",
		"uSNCreated", "uSNChanged", "instanceType", "nTSecurityDescriptor", "objectCategory", "isDeleted", "lastKnownParent"} { // top's
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	slices.Sort(out)
	return out
}
