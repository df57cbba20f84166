// Package directory is the domain: principals, groups, KDS root keys and gMSAs with
// Active Directory's rules, the password schedule a DC applies, and the one place that
// decides who may read a gMSA password. It is the only package that combines storage
// with key derivation; transports (LDAP, Kerberos) and the CLI translate into it.
package directory

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"gmsa/internal/kds"
	"gmsa/internal/ntsec"
)

// Class is an object's most specific objectClass.
type Class string

// The classes the directory holds ([MS-ADSC]).
const (
	ClassDomain    Class = "domainDNS"
	ClassContainer Class = "container"
	ClassOU        Class = "organizationalUnit"
	ClassUser      Class = "user"
	ClassComputer  Class = "computer"
	ClassGroup     Class = "group"
	ClassGMSA      Class = "msDS-GroupManagedServiceAccount"
	ClassRootKey   Class = "msKds-ProvRootKey"
)

// userAccountControl flags ([MS-ADTS] 2.2.16).
const (
	UACAccountDisable             = 0x0002
	UACLockout                    = 0x0010 // in msDS-User-Account-Control-Computed only
	UACPasswdNotReqd              = 0x0020
	UACNormalAccount              = 0x0200
	UACWorkstationTrust           = 0x1000
	UACServerTrust                = 0x2000
	UACDontExpirePassword         = 0x10000
	UACTrustedForDelegation       = 0x80000   // unconstrained delegation
	UACTrustedToAuthForDelegation = 0x1000000 // protocol transition: S4U2Self tickets are forwardable
)

// groupType flags ([MS-ADTS] 2.2.12).
const (
	GroupBuiltinLocal = 0x00000001
	GroupGlobal       = 0x00000002
	GroupDomainLocal  = 0x00000004
	GroupUniversal    = 0x00000008
	GroupSecurity     = 0x80000000
)

// msDS-SupportedEncryptionTypes bits ([MS-KILE] 2.2.7).
const (
	EnctypeRC4    = 0x04
	EnctypeAES128 = 0x08
	EnctypeAES256 = 0x10
)

// StoredKey is a long-term Kerberos key of a principal.
type StoredKey struct {
	Etype int32  `json:"etype"`
	Value []byte `json:"value"`
}

// Object is one directory entry. Secret fields (keys, root key data) are stored with
// it; commands that print objects choose their fields and never print those.
type Object struct {
	GUID        ntsec.GUID     `json:"guid"`
	Class       Class          `json:"class"`
	DN          string         `json:"dn"`
	Name        string         `json:"name"` // cn (or ou/dc): the RDN value
	SID         string         `json:"sid,omitempty"`
	SAM         string         `json:"sam,omitempty"`
	UPN         string         `json:"upn,omitempty"`
	UAC         uint32         `json:"uac,omitempty"`
	Description string         `json:"description,omitempty"`
	Created     ntsec.FileTime `json:"created"`
	Changed     ntsec.FileTime `json:"changed"`
	USNCreated  int64          `json:"usn_created,omitempty"`
	USNChanged  int64          `json:"-"` // the store revision of the record

	// Principals.
	PrimaryGroupRID uint32 `json:"primary_group_rid,omitempty"`
	NTHash          []byte `json:"nt_hash,omitempty"`
	// NTHistory are the NT hashes of a user's previous passwords, newest first, at most
	// pwdHistoryLength-1 of them (AD's ntPwdHistory: the current one counts too).
	NTHistory    [][]byte       `json:"nt_history,omitempty"`
	Keys         []StoredKey    `json:"keys,omitempty"`
	PreviousKeys []StoredKey    `json:"previous_keys,omitempty"` // krbtgt: the keys before the last reset, at KVNO-1
	KVNO         uint32         `json:"kvno,omitempty"`
	PwdLastSet   ntsec.FileTime `json:"pwd_last_set,omitempty"`

	// Account lockout ([MS-ADTS] 3.1.1.5.3 badPwdCount, badPasswordTime, lockoutTime).
	BadPwdCount     uint32         `json:"bad_pwd_count,omitempty"`
	BadPasswordTime ntsec.FileTime `json:"bad_password_time,omitempty"`
	LockoutTime     ntsec.FileTime `json:"lockout_time,omitempty"`

	// The domain object: its password and lockout policy (nil: the defaults).
	Policy *DomainPolicy `json:"policy,omitempty"`

	// Computers and gMSAs.
	DNSHostName       string   `json:"dns_host_name,omitempty"`
	SPNs              []string `json:"spns,omitempty"`
	SupportedEnctypes uint32   `json:"supported_enctypes,omitempty"`
	// msDS-AllowedToDelegateTo: the SPNs this account may get tickets to on a user's
	// behalf (classic constrained delegation, S4U2Proxy).
	AllowedToDelegateTo []string `json:"allowed_to_delegate_to,omitempty"`

	// Groups: members by GUID.
	GroupType uint32   `json:"group_type,omitempty"`
	Members   []string `json:"members,omitempty"`

	// gMSAs.
	PasswordInterval   int64  `json:"password_interval,omitempty"`
	PasswordID         []byte `json:"password_id,omitempty"`
	PreviousPasswordID []byte `json:"previous_password_id,omitempty"`
	GroupMSAMembership []byte `json:"group_msa_membership,omitempty"`

	// KDS root keys.
	RootKey *RootKeyRecord `json:"root_key,omitempty"`

	// SchemaName is a schema entry's lDAPDisplayName: its values come from the schema
	// facts (schema.go).
	SchemaName string `json:"schema_name,omitempty"`

	// SD is the object's own nTSecurityDescriptor (self-relative): owner, group and the
	// explicit ACEs; inherited ACEs are computed from the parents when it is used. Nil
	// means the class's default security descriptor with Domain Admins as owner.
	SD []byte `json:"sd,omitempty"`

	// Tombstones ([MS-ADTS] 3.1.1.5.5): a deleted object keeps its GUID, SID and names
	// under CN=Deleted Objects until the tombstone lifetime ends; isDeleted is TRUE.
	Deleted         bool   `json:"deleted,omitempty"`
	LastKnownParent string `json:"last_known_parent,omitempty"`

	sid        ntsec.SID                 // SID parsed when the record was read
	membership *ntsec.SecurityDescriptor // msDS-GroupMSAMembership parsed when the record was read

	ids       [2]*kds.PasswordID // current and previous password id, when idsParsed
	idsErr    error
	idsParsed bool
}

// parsed fills the fields parsed from the record's values, once the record is final.
func (o *Object) parsed() {
	if o.SID != "" {
		o.sid, _ = ntsec.ParseSID(o.SID)
	}
	o.membership = nil
	if len(o.GroupMSAMembership) > 0 {
		o.membership, _ = ntsec.ParseSecurityDescriptor(o.GroupMSAMembership)
	}
	o.ids, o.idsErr = o.parseIDs()
	o.idsParsed = true
}

// PasswordIDs returns msDS-ManagedPasswordId and msDS-ManagedPasswordPreviousId parsed
// (nil when absent).
func (o *Object) PasswordIDs() ([2]*kds.PasswordID, error) {
	if o.idsParsed {
		return o.ids, o.idsErr
	}
	return o.parseIDs()
}

func (o *Object) parseIDs() (ids [2]*kds.PasswordID, err error) {
	for i, raw := range [2][]byte{o.PasswordID, o.PreviousPasswordID} {
		if len(raw) > 0 {
			if ids[i], err = kds.ParsePasswordID(raw); err != nil {
				return ids, fmt.Errorf("directory: %s: %w", o.SAM, err)
			}
		}
	}
	return ids, nil
}

// Membership returns the parsed msDS-GroupMSAMembership (nil when empty).
func (o *Object) Membership() (*ntsec.SecurityDescriptor, error) {
	if len(o.GroupMSAMembership) == 0 {
		return nil, nil
	}
	if o.membership != nil {
		return o.membership, nil
	}
	return ntsec.ParseSecurityDescriptor(o.GroupMSAMembership)
}

// RootKeyRecord holds an msKds-ProvRootKey's attributes.
type RootKeyRecord struct {
	Data                     []byte         `json:"data"`
	Version                  uint32         `json:"version"`
	KDFAlgorithm             string         `json:"kdf_algorithm"`
	KDFParam                 []byte         `json:"kdf_param"`
	CreateTime               ntsec.FileTime `json:"create_time"`
	UseStartTime             ntsec.FileTime `json:"use_start_time"`
	DomainID                 string         `json:"domain_id"`
	SecretAgreementAlgorithm string         `json:"secret_agreement_algorithm"`
	SecretAgreementParam     []byte         `json:"secret_agreement_param"`
	PublicKeyLength          uint32         `json:"public_key_length"`
	PrivateKeyLength         uint32         `json:"private_key_length"`
}

// KDSRootKey converts the record for the engine.
func (o *Object) KDSRootKey() (kds.RootKey, error) {
	r := o.RootKey
	h, err := kds.DecodeKDFParam(r.KDFParam)
	if err != nil {
		return kds.RootKey{}, err
	}
	return kds.RootKey{ID: o.GUID, Data: r.Data, Version: r.Version, KDFAlgorithm: r.KDFAlgorithm, Hash: h,
		CreateTime: r.CreateTime, UseStartTime: r.UseStartTime, DomainID: r.DomainID,
		SecretAgreementAlgorithm: r.SecretAgreementAlgorithm, SecretAgreementParam: r.SecretAgreementParam,
		PublicKeyLength: r.PublicKeyLength, PrivateKeyLength: r.PrivateKeyLength}, nil
}

// ObjectSID returns the parsed SID; the zero SID for objects without one.
func (o *Object) ObjectSID() ntsec.SID {
	if o.SID == "" {
		return ntsec.SID{}
	}
	if !o.sid.IsZero() { // parsed by decode; a SID never changes
		return o.sid
	}
	s, _ := ntsec.ParseSID(o.SID)
	return s
}

// Enabled reports whether the account is not disabled.
func (o *Object) Enabled() bool { return o.UAC&UACAccountDisable == 0 }

// IsPrincipal reports whether the object can authenticate or be a group member with a SID.
func (o *Object) IsPrincipal() bool { return o.SID != "" }

func (o *Object) encode() []byte { return encodeRecord(o) }

// Store keys. Every object lives at obj/<guid>; the indexes make names, SIDs, SPNs and
// DNs unique and findable, memberof/ and members/ hold group links both ways (a token is
// computed without scanning), and ix/ and tree/ serve the query planner (plan.go).
func objKey(g ntsec.GUID) string        { return "obj/" + g.String() }
func dnKey(dn string) string            { return "dn/" + strings.ToLower(dn) }
func samKey(sam string) string          { return "sam/" + strings.ToLower(sam) }
func sidKey(sid string) string          { return "sid/" + sid }
func spnKey(spn string) string          { return "spn/" + strings.ToLower(spn) }
func classKey(c Class, g string) string { return "class/" + string(c) + "/" + g }
func memberOfKey(member, group string) string {
	return "memberof/" + member + "/" + group
}
func membersKey(group, member string) string { return "members/" + group + "/" + member }

// ixPrefix is where an attribute's non-unique index holds a value: every object with
// it has the key prefix+guid, whose value is the object's normalized DN (so a scope is
// checked without reading the object).
func ixPrefix(attr, lowerValue string) string { return "ix/" + attr + "/" + lowerValue + "\x00" }

// treeKey is an object's place in the DN tree: its parent's normalized DN with the RDNs
// from the root down, NUL, then its own RDN. A container's children are then the range
// treeParent(dn)+"\x00" and its deeper descendants the range treeParent(dn)+",". Names
// with escaped separators are refused when objects are named (splitDN), so a comma
// always separates RDNs.
func treeKey(ndn string) string {
	rdn, parent, _ := strings.Cut(ndn, ",")
	return treeParent(parent) + "\x00" + rdn
}

// treeParent is the tree/ prefix of the objects below the container ndn.
func treeParent(ndn string) string {
	rdns := strings.Split(ndn, ",")
	slices.Reverse(rdns)
	return "tree/" + strings.Join(rdns, ",")
}

const (
	keyDomain         = "domain"
	keyNextRID        = "rid"
	keyRootKeyVersion = "kds/version" // changes with every root key add or remove
	// keyIndexVersion says which index layout the store's index keys follow; Open
	// rebuilds them when it is older than indexVersion.
	keyIndexVersion = "ixversion"
	indexVersion    = "4"
)

// indexedAttrs are the attributes with a non-unique ix/ index: those AD marks fATTINDEX
// in searchFlags ([MS-ADTS] 3.1.1.2.3, the values in [MS-ADA1..3]) that are not unique
// here (sAMAccountName, objectSid, servicePrincipalName and the DN have unique keys;
// objectClass and objectCategory the class/ keys; member and memberOf the link keys).
// cn, name, ou and dc share the RDN value's index.
var indexedAttrs = map[string]string{"cn": "name", "name": "name", "ou": "name", "dc": "name",
	"userprincipalname": "upn", "dnshostname": "dnshostname", "samaccounttype": "samaccounttype", "primarygroupid": "primarygroupid"}

// integerIndexes are the ix/ indexes of integers, keyed by the decimal value.
var integerIndexes = map[string]bool{"samaccounttype": true, "primarygroupid": true}

// indexOps returns the index entries of o.
func indexOps(o *Object) map[string][]byte {
	gs := o.GUID.String()
	g := []byte(gs)
	ndn := []byte(normDN(o.DN))
	if o.Deleted { // a tombstone holds no name another object may need, and no class or value index
		return map[string][]byte{dnKey(o.DN): g, treeKey(string(ndn)): g}
	}
	m := map[string][]byte{dnKey(o.DN): g, classKey(o.Class, gs): ndn, treeKey(string(ndn)): g}
	if o.SAM != "" {
		m[samKey(o.SAM)] = g
	}
	if o.SID != "" {
		m[sidKey(o.SID)] = g
	}
	for _, s := range o.SPNs {
		m[spnKey(s)] = g
	}
	for _, member := range o.Members {
		m[memberOfKey(member, gs)] = nil
		m[membersKey(gs, member)] = nil
	}
	var samType, primaryGroup string
	if t, ok := samAccountType(o); ok {
		samType = strconv.FormatUint(uint64(t), 10)
	}
	if o.Class == ClassUser || o.Class == ClassComputer || o.Class == ClassGMSA { // as the view has primaryGroupID
		primaryGroup = strconv.FormatUint(uint64(o.PrimaryGroupRID), 10)
	}
	for _, ix := range [...]struct{ attr, value string }{{"name", o.Name}, {"upn", o.UPN}, {"dnshostname", o.DNSHostName},
		{"samaccounttype", samType}, {"primarygroupid", primaryGroup}} {
		if ix.value != "" {
			m[ixPrefix(ix.attr, strings.ToLower(ix.value))+gs] = ndn
		}
	}
	return m
}
