package directory

// The schema facts the directory needs of AD's schema ([MS-ADA1], [MS-ADA2], [MS-ADA3],
// [MS-ADSC], Windows Server 2016 level): each attribute's and class's identity
// (schemaIDGUID, OID), syntax and flags, the property set an attribute belongs to
// (attributeSecurityGUID, which access control entries name), and each class's
// default security descriptor.

// attributeFact is an attributeSchema entry.
type attributeFact struct {
	Name         string // lDAPDisplayName
	CN           string // the schema entry's cn
	GUID         string // schemaIDGUID
	PropertySet  string // attributeSecurityGUID, "" when in none
	OID          string // attributeID
	Syntax       string // attributeSyntax
	OMSyntax     int
	SingleValued bool
	SearchFlags  int
	SystemFlags  int
}

// classFact is a classSchema entry; the may-contain lists hold the attributes this
// directory serves.
type classFact struct {
	Name                    string // lDAPDisplayName
	CN                      string
	GUID                    string // schemaIDGUID
	OID                     string // governsID
	SubClassOf              string
	Category                int // objectClassCategory: 1 structural, 2 abstract, 3 auxiliary
	PossSuperiors           []string
	MustContain, MayContain []string // systemMustContain, systemMayContain
	MayContainToo           []string // mayContain
	DefaultSD               string   // defaultSecurityDescriptor (SDDL)
}

// attributeFacts: AD's schema entries ([MS-ADA1..3]) for the attributes the directory serves.
var attributeFacts = map[string]attributeFact{
	"objectclass":                        {"objectClass", "Object-Class", "bf9679e5-0de6-11d0-a285-00aa003049e2", "e48d0154-bcf8-11d1-8702-00c04fb96050", "2.5.4.0", "2.5.5.2", 6, false, 9, 18},
	"objectcategory":                     {"objectCategory", "Object-Category", "26d97369-6070-11d1-a9c6-0000f80367c1", "e48d0154-bcf8-11d1-8702-00c04fb96050", "1.2.840.113556.1.4.782", "2.5.5.1", 127, true, 1, 18},
	"cn":                                 {"cn", "Common-Name", "bf96793f-0de6-11d0-a285-00aa003049e2", "e48d0154-bcf8-11d1-8702-00c04fb96050", "2.5.4.3", "2.5.5.12", 64, true, 1, 18},
	"name":                               {"name", "RDN", "bf967a0e-0de6-11d0-a285-00aa003049e2", "e48d0154-bcf8-11d1-8702-00c04fb96050", "1.2.840.113556.1.4.1", "2.5.5.12", 64, true, 13, 18},
	"distinguishedname":                  {"distinguishedName", "Obj-Dist-Name", "bf9679e4-0de6-11d0-a285-00aa003049e2", "e48d0154-bcf8-11d1-8702-00c04fb96050", "2.5.4.49", "2.5.5.1", 127, true, 8, 19},
	"objectguid":                         {"objectGUID", "Object-Guid", "bf9679e7-0de6-11d0-a285-00aa003049e2", "e48d0154-bcf8-11d1-8702-00c04fb96050", "1.2.840.113556.1.4.2", "2.5.5.10", 4, true, 9, 19},
	"objectsid":                          {"objectSid", "Object-Sid", "bf9679e8-0de6-11d0-a285-00aa003049e2", "59ba2f42-79a2-11d0-9020-00c04fc2d3cf", "1.2.840.113556.1.4.146", "2.5.5.17", 4, true, 9, 18},
	"samaccountname":                     {"sAMAccountName", "SAM-Account-Name", "3e0abfd0-126a-11d0-a060-00aa006c33ed", "59ba2f42-79a2-11d0-9020-00c04fc2d3cf", "1.2.840.113556.1.4.221", "2.5.5.12", 64, true, 13, 18},
	"userprincipalname":                  {"userPrincipalName", "User-Principal-Name", "28630ebb-41d5-11d1-a9c1-0000f80367c1", "e48d0154-bcf8-11d1-8702-00c04fb96050", "1.2.840.113556.1.4.656", "2.5.5.12", 64, true, 1, 18},
	"samaccounttype":                     {"sAMAccountType", "SAM-Account-Type", "6e7b626c-64f2-11d0-afd2-00c04fd930c9", "59ba2f42-79a2-11d0-9020-00c04fc2d3cf", "1.2.840.113556.1.4.302", "2.5.5.9", 2, true, 1, 18},
	"useraccountcontrol":                 {"userAccountControl", "User-Account-Control", "bf967a68-0de6-11d0-a285-00aa003049e2", "4c164200-20c0-11d0-a768-00aa006e0529", "1.2.840.113556.1.4.8", "2.5.5.9", 2, true, 25, 18},
	"description":                        {"description", "Description", "bf967950-0de6-11d0-a285-00aa003049e2", "e48d0154-bcf8-11d1-8702-00c04fb96050", "2.5.4.13", "2.5.5.12", 64, false, 0, 16},
	"whencreated":                        {"whenCreated", "When-Created", "bf967a78-0de6-11d0-a285-00aa003049e2", "", "1.2.840.113556.1.2.2", "2.5.5.11", 24, true, 0, 18},
	"whenchanged":                        {"whenChanged", "When-Changed", "bf967a77-0de6-11d0-a285-00aa003049e2", "", "1.2.840.113556.1.2.3", "2.5.5.11", 24, true, 0, 19},
	"usncreated":                         {"uSNCreated", "USN-Created", "bf967a70-0de6-11d0-a285-00aa003049e2", "", "1.2.840.113556.1.2.19", "2.5.5.16", 65, true, 9, 19},
	"usnchanged":                         {"uSNChanged", "USN-Changed", "bf967a6f-0de6-11d0-a285-00aa003049e2", "", "1.2.840.113556.1.2.120", "2.5.5.16", 65, true, 9, 19},
	"instancetype":                       {"instanceType", "Instance-Type", "bf96798c-0de6-11d0-a285-00aa003049e2", "", "1.2.840.113556.1.2.1", "2.5.5.9", 2, true, 8, 18},
	"primarygroupid":                     {"primaryGroupID", "Primary-Group-ID", "bf967a00-0de6-11d0-a285-00aa003049e2", "59ba2f42-79a2-11d0-9020-00c04fc2d3cf", "1.2.840.113556.1.4.98", "2.5.5.9", 2, true, 17, 18},
	"pwdlastset":                         {"pwdLastSet", "Pwd-Last-Set", "bf967a0a-0de6-11d0-a285-00aa003049e2", "4c164200-20c0-11d0-a768-00aa006e0529", "1.2.840.113556.1.4.96", "2.5.5.16", 65, true, 0, 16},
	"msds-keyversionnumber":              {"msDS-KeyVersionNumber", "ms-DS-KeyVersionNumber", "c523e9c0-33b5-4ac8-8923-b57b927f42f6", "", "1.2.840.113556.1.4.1782", "2.5.5.9", 2, true, 0, 20},
	"dnshostname":                        {"dNSHostName", "DNS-Host-Name", "72e39547-7b18-11d1-adef-00c04fd8d5cd", "72e39547-7b18-11d1-adef-00c04fd8d5cd", "1.2.840.113556.1.4.619", "2.5.5.12", 64, true, 0, 16},
	"serviceprincipalname":               {"servicePrincipalName", "Service-Principal-Name", "f3a64788-5306-11d1-a9c5-0000f80367c1", "e48d0154-bcf8-11d1-8702-00c04fb96050", "1.2.840.113556.1.4.771", "2.5.5.12", 64, false, 1, 18},
	"msds-allowedtodelegateto":           {"msDS-AllowedToDelegateTo", "ms-DS-Allowed-To-Delegate-To", "800d94d7-b7a1-42a1-b14d-7cae1423d07f", "e48d0154-bcf8-11d1-8702-00c04fb96050", "1.2.840.113556.1.4.1787", "2.5.5.12", 64, false, 0, 16},
	"msds-supportedencryptiontypes":      {"msDS-SupportedEncryptionTypes", "ms-DS-Supported-Encryption-Types", "20119867-1d04-4ab7-9371-cfc3d5df0afd", "77b5b886-944a-11d1-aebd-0000f80367c1", "1.2.840.113556.1.4.1963", "2.5.5.9", 2, true, 0, 16},
	"grouptype":                          {"groupType", "Group-Type", "9a9a021e-4a5b-11d1-a9c3-0000f80367c1", "", "1.2.840.113556.1.4.750", "2.5.5.9", 2, true, 9, 18},
	"member":                             {"member", "Member", "bf9679c0-0de6-11d0-a285-00aa003049e2", "bc0ac240-79a9-11d0-9020-00c04fc2d4cf", "2.5.4.31", "2.5.5.1", 127, false, 0, 18},
	"memberof":                           {"memberOf", "Is-Member-Of-DL", "bf967991-0de6-11d0-a285-00aa003049e2", "bc0ac240-79a9-11d0-9020-00c04fc2d4cf", "1.2.840.113556.1.2.102", "2.5.5.1", 127, false, 16, 17},
	"ou":                                 {"ou", "Organizational-Unit-Name", "bf9679f0-0de6-11d0-a285-00aa003049e2", "e48d0154-bcf8-11d1-8702-00c04fb96050", "2.5.4.11", "2.5.5.12", 64, false, 1, 18},
	"dc":                                 {"dc", "Domain-Component", "19195a55-6da0-11d0-afd3-00c04fd930c9", "", "0.9.2342.19200300.100.1.25", "2.5.5.12", 64, true, 0, 18},
	"wellknownobjects":                   {"wellKnownObjects", "Well-Known-Objects", "05308983-7688-11d1-aded-00c04fd8d5cd", "", "1.2.840.113556.1.4.618", "2.5.5.7", 127, false, 0, 18},
	"otherwellknownobjects":              {"otherWellKnownObjects", "Other-Well-Known-Objects", "1ea64e5d-ac0f-11d2-90df-00c04fd91ab1", "", "1.2.840.113556.1.4.1359", "2.5.5.7", 127, false, 0, 16},
	"msds-managedpasswordinterval":       {"msDS-ManagedPasswordInterval", "ms-DS-ManagedPasswordInterval", "f8758ef7-ac76-8843-a2ee-a26b4dcaf409", "", "1.2.840.113556.1.4.2199", "2.5.5.9", 2, true, 0, 16},
	"msds-managedpasswordid":             {"msDS-ManagedPasswordId", "ms-DS-ManagedPasswordId", "0e78295a-c6d3-0a40-b491-d62251ffa0a6", "", "1.2.840.113556.1.4.2197", "2.5.5.10", 4, true, 0, 16},
	"msds-managedpasswordpreviousid":     {"msDS-ManagedPasswordPreviousId", "ms-DS-ManagedPasswordPreviousId", "d0d62131-2d4a-d04f-99d9-1c63646229a4", "", "1.2.840.113556.1.4.2198", "2.5.5.10", 4, true, 0, 16},
	"msds-groupmsamembership":            {"msDS-GroupMSAMembership", "ms-DS-GroupMSAMembership", "888eedd6-ce04-df40-b462-b8a50e41ba38", "", "1.2.840.113556.1.4.2200", "2.5.5.15", 66, true, 0, 16},
	"badpwdcount":                        {"badPwdCount", "Bad-Pwd-Count", "bf96792e-0de6-11d0-a285-00aa003049e2", "5f202010-79a5-11d0-9020-00c04fc2d4cf", "1.2.840.113556.1.4.12", "2.5.5.9", 2, true, 0, 17},
	"badpasswordtime":                    {"badPasswordTime", "Bad-Password-Time", "bf96792d-0de6-11d0-a285-00aa003049e2", "", "1.2.840.113556.1.4.49", "2.5.5.16", 65, true, 0, 17},
	"lockouttime":                        {"lockoutTime", "Lockout-Time", "28630ebf-41d5-11d1-a9c1-0000f80367c1", "", "1.2.840.113556.1.4.662", "2.5.5.16", 65, true, 0, 16},
	"lockoutthreshold":                   {"lockoutThreshold", "Lockout-Threshold", "bf9679a6-0de6-11d0-a285-00aa003049e2", "c7407360-20bf-11d0-a768-00aa006e0529", "1.2.840.113556.1.4.73", "2.5.5.9", 2, true, 0, 16},
	"lockoutduration":                    {"lockoutDuration", "Lockout-Duration", "bf9679a5-0de6-11d0-a285-00aa003049e2", "c7407360-20bf-11d0-a768-00aa006e0529", "1.2.840.113556.1.4.60", "2.5.5.16", 65, true, 0, 16},
	"lockoutobservationwindow":           {"lockOutObservationWindow", "Lock-Out-Observation-Window", "bf9679a4-0de6-11d0-a285-00aa003049e2", "c7407360-20bf-11d0-a768-00aa006e0529", "1.2.840.113556.1.4.61", "2.5.5.16", 65, true, 0, 16},
	"msds-user-account-control-computed": {"msDS-User-Account-Control-Computed", "ms-DS-User-Account-Control-Computed", "2cc4b836-b63f-4940-8d23-ea7acf06af56", "4c164200-20c0-11d0-a768-00aa006e0529", "1.2.840.113556.1.4.1460", "2.5.5.9", 2, true, 0, 20},
	"tokengroups":                        {"tokenGroups", "Token-Groups", "b7c69e6d-2cc7-11d2-854e-00a0c983f608", "037088f8-0ae1-11d2-b422-00a0c968f939", "1.2.840.113556.1.4.1301", "2.5.5.17", 4, false, 0, 134217748},
	"msds-managedpassword":               {"msDS-ManagedPassword", "ms-DS-ManagedPassword", "e362ed86-b728-0842-b27d-2dea7a9df218", "", "1.2.840.113556.1.4.2196", "2.5.5.10", 4, true, 0, 20},
	"mskds-rootkeydata":                  {"msKds-RootKeyData", "ms-Kds-RootKeyData", "26627c27-08a2-0a40-a1b1-8dce85b42993", "", "1.2.840.113556.1.4.2175", "2.5.5.10", 4, true, 640, 16},
	"mskds-version":                      {"msKds-Version", "ms-Kds-Version", "d5f07340-e6b0-1e4a-97be-0d3318bd9db1", "", "1.2.840.113556.1.4.2176", "2.5.5.9", 2, true, 640, 16},
	"mskds-kdfalgorithmid":               {"msKds-KDFAlgorithmID", "ms-Kds-KDF-AlgorithmID", "db2c48b2-d14d-ec4e-9f58-ad579d8b440e", "", "1.2.840.113556.1.4.2169", "2.5.5.12", 64, true, 640, 16},
	"mskds-kdfparam":                     {"msKds-KDFParam", "ms-Kds-KDF-Param", "8a800772-f4b8-154f-b41c-2e4271eff7a7", "", "1.2.840.113556.1.4.2170", "2.5.5.10", 4, true, 640, 16},
	"mskds-createtime":                   {"msKds-CreateTime", "ms-Kds-CreateTime", "ae18119f-6390-0045-b32d-97dbc701aef7", "", "1.2.840.113556.1.4.2179", "2.5.5.16", 65, true, 640, 16},
	"mskds-usestarttime":                 {"msKds-UseStartTime", "ms-Kds-UseStartTime", "6cdc047f-f522-b74a-9a9c-d95ac8cdfda2", "", "1.2.840.113556.1.4.2178", "2.5.5.16", 65, true, 640, 16},
	"mskds-domainid":                     {"msKds-DomainID", "ms-Kds-DomainID", "96400482-cf07-e94c-90e8-f2efc4f0495e", "", "1.2.840.113556.1.4.2177", "2.5.5.1", 127, true, 640, 16},
	"mskds-secretagreementalgorithmid":   {"msKds-SecretAgreementAlgorithmID", "ms-Kds-SecretAgreement-AlgorithmID", "1702975d-225e-cb4a-b15d-0daea8b5e990", "", "1.2.840.113556.1.4.2171", "2.5.5.12", 64, true, 640, 16},
	"mskds-secretagreementparam":         {"msKds-SecretAgreementParam", "ms-Kds-SecretAgreement-Param", "30b099d9-edfe-7549-b807-eba444da79e9", "", "1.2.840.113556.1.4.2172", "2.5.5.10", 4, true, 640, 16},
	"mskds-publickeylength":              {"msKds-PublicKeyLength", "ms-Kds-PublicKey-Length", "e338f470-39cd-4549-ab5b-f69f9e583fe0", "", "1.2.840.113556.1.4.2173", "2.5.5.9", 2, true, 640, 16},
	"mskds-privatekeylength":             {"msKds-PrivateKeyLength", "ms-Kds-PrivateKey-Length", "615f42a1-37e7-1148-a0dd-3007e09cfc81", "", "1.2.840.113556.1.4.2174", "2.5.5.9", 2, true, 640, 16},
	"unicodepwd":                         {"unicodePwd", "Unicode-Pwd", "bf9679e1-0de6-11d0-a285-00aa003049e2", "", "1.2.840.113556.1.4.90", "2.5.5.10", 4, true, 0, 16},
	"dbcspwd":                            {"dBCSPwd", "DBCS-Pwd", "bf96799c-0de6-11d0-a285-00aa003049e2", "", "1.2.840.113556.1.4.55", "2.5.5.10", 4, true, 0, 16},
	"ntpwdhistory":                       {"ntPwdHistory", "Nt-Pwd-History", "bf9679e2-0de6-11d0-a285-00aa003049e2", "", "1.2.840.113556.1.4.94", "2.5.5.10", 4, false, 0, 16},
	"lmpwdhistory":                       {"lmPwdHistory", "Lm-Pwd-History", "bf96799d-0de6-11d0-a285-00aa003049e2", "", "1.2.840.113556.1.4.160", "2.5.5.10", 4, false, 0, 16},
	"supplementalcredentials":            {"supplementalCredentials", "Supplemental-Credentials", "bf967a3f-0de6-11d0-a285-00aa003049e2", "", "1.2.840.113556.1.4.125", "2.5.5.10", 4, false, 0, 16},
	"userpassword":                       {"userPassword", "User-Password", "bf967a6e-0de6-11d0-a285-00aa003049e2", "", "2.5.4.35", "2.5.5.10", 4, false, 0, 16},
	"isdeleted":                          {"isDeleted", "Is-Deleted", "bf96798f-0de6-11d0-a285-00aa003049e2", "", "1.2.840.113556.1.2.48", "2.5.5.8", 1, true, 0, 18},
	"lastknownparent":                    {"lastKnownParent", "Last-Known-Parent", "52ab8670-5709-11d1-a9c6-0000f80367c1", "", "1.2.840.113556.1.4.781", "2.5.5.1", 127, true, 0, 16},
	"ntsecuritydescriptor":               {"nTSecurityDescriptor", "NT-Security-Descriptor", "bf9679e3-0de6-11d0-a285-00aa003049e2", "", "1.2.840.113556.1.2.281", "2.5.5.15", 66, true, 8, 26},
	"canonicalname":                      {"canonicalName", "Canonical-Name", "9a7ad945-ca53-11d1-bbd0-0080c76670c0", "", "1.2.840.113556.1.4.916", "2.5.5.12", 64, false, 0, 134217748},
	"createtimestamp":                    {"createTimeStamp", "Create-Time-Stamp", "2df90d73-009f-11d2-aa4c-00c04fd7d83a", "", "2.5.18.1", "2.5.5.11", 24, true, 0, 134217748},
	"modifytimestamp":                    {"modifyTimeStamp", "Modify-Time-Stamp", "9a7ad94a-ca53-11d1-bbd0-0080c76670c0", "", "2.5.18.2", "2.5.5.11", 24, true, 0, 134217748},
	"structuralobjectclass":              {"structuralObjectClass", "Structural-Object-Class", "3860949f-f6a8-4b38-9950-81ecb6bc2982", "", "2.5.21.9", "2.5.5.2", 6, false, 0, 20},
	"subschemasubentry":                  {"subSchemaSubEntry", "SubSchemaSubEntry", "9a7ad94d-ca53-11d1-bbd0-0080c76670c0", "", "2.5.18.10", "2.5.5.1", 127, false, 0, 134217748},
	"msds-principalname":                 {"msDS-PrincipalName", "ms-DS-Principal-Name", "564e9325-d057-c143-9e3b-4f9e5ef46f93", "", "1.2.840.113556.1.4.1865", "2.5.5.12", 64, true, 0, 20},
	"msds-approx-immed-subordinates":     {"msDS-Approx-Immed-Subordinates", "ms-DS-Approx-Immed-Subordinates", "e185d243-f6ce-4adb-b496-b0c005d7823c", "e48d0154-bcf8-11d1-8702-00c04fb96050", "1.2.840.113556.1.4.1669", "2.5.5.9", 2, true, 0, 20},
	"sdrightseffective":                  {"sDRightsEffective", "SD-Rights-Effective", "c3dbafa6-33df-11d2-98b2-0000f87a57d4", "59ba2f42-79a2-11d0-9020-00c04fc2d3cf", "1.2.840.113556.1.4.1304", "2.5.5.9", 2, true, 0, 134217748},
}

// classFacts: AD's classSchema entries ([MS-ADSC]) for the classes the directory holds.
var classFacts = map[string]classFact{
	"top": {"top", "Top", "bf967ab7-0de6-11d0-a285-00aa003049e2", "2.5.6.0", "top", 2,
		[]string{"lostAndFound"}, []string{"objectClass", "objectCategory", "nTSecurityDescriptor", "instanceType"}, []string{"whenCreated", "whenChanged", "wellKnownObjects", "uSNCreated", "uSNChanged", "name", "otherWellKnownObjects", "objectGUID", "distinguishedName", "lastKnownParent", "memberOf", "isDeleted", "description", "cn", "canonicalName",
			"createTimeStamp", "modifyTimeStamp", "structuralObjectClass", "subSchemaSubEntry", "msDS-PrincipalName", "msDS-Approx-Immed-Subordinates", "sDRightsEffective"}, []string{},
		"D:(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;DA)(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;SY)(A;;RPLCLORC;;;AU)"},
	"person": {"person", "Person", "bf967aa7-0de6-11d0-a285-00aa003049e2", "2.5.6.6", "top", 0,
		[]string{"organizationalUnit", "container"}, []string{"cn"}, []string{"userPassword"}, []string{},
		"D:(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;DA)(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;SY)(A;;RPLCLORC;;;AU)"},
	"organizationalperson": {"organizationalPerson", "Organizational-Person", "bf967aa4-0de6-11d0-a285-00aa003049e2", "2.5.6.7", "person", 0,
		[]string{"organizationalUnit", "organization", "container"}, []string{}, []string{"ou", "msDS-AllowedToDelegateTo"}, []string{},
		"D:(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;DA)(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;SY)(A;;RPLCLORC;;;AU)"},
	"user": {"user", "User", "bf967aba-0de6-11d0-a285-00aa003049e2", "1.2.840.113556.1.5.9", "organizationalPerson", 1,
		[]string{"builtinDomain", "organizationalUnit", "domainDNS"}, []string{}, []string{"msDS-SupportedEncryptionTypes", "userPrincipalName", "userAccountControl", "unicodePwd", "servicePrincipalName", "pwdLastSet", "primaryGroupID", "ntPwdHistory", "msDS-User-Account-Control-Computed", "lockoutTime", "lmPwdHistory", "dBCSPwd", "badPwdCount", "badPasswordTime"}, []string{},
		"D:(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;DA)(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;SY)(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;AO)(A;;RPLCLORC;;;PS)(OA;;CR;ab721a53-1e2f-11d0-9819-00aa0040529b;;PS)(OA;;CR;ab721a54-1e2f-11d0-9819-00aa0040529b;;PS)(OA;;CR;ab721a56-1e2f-11d0-9819-00aa0040529b;;PS)(OA;;RPWP;77B5B886-944A-11d1-AEBD-0000F80367C1;;PS)(OA;;RPWP;E45795B2-9455-11d1-AEBD-0000F80367C1;;PS)(OA;;RPWP;E45795B3-9455-11d1-AEBD-0000F80367C1;;PS)(OA;;RP;037088f8-0ae1-11d2-b422-00a0c968f939;;RS)(OA;;RP;4c164200-20c0-11d0-a768-00aa006e0529;;RS)(OA;;RP;bc0ac240-79a9-11d0-9020-00c04fc2d4cf;;RS)(A;;RC;;;AU)(OA;;RP;59ba2f42-79a2-11d0-9020-00c04fc2d3cf;;AU)(OA;;RP;77B5B886-944A-11d1-AEBD-0000F80367C1;;AU)(OA;;RP;E45795B3-9455-11d1-AEBD-0000F80367C1;;AU)(OA;;RP;e48d0154-bcf8-11d1-8702-00c04fb96050;;AU)(OA;;CR;ab721a53-1e2f-11d0-9819-00aa0040529b;;WD)(OA;;RP;5f202010-79a5-11d0-9020-00c04fc2d4cf;;RS)(OA;;RPWP;bf967a7f-0de6-11d0-a285-00aa003049e2;;CA)(OA;;RP;46a9b11d-60ae-405a-b7e8-ff8a58d456d2;;S-1-5-32-560)(OA;;WPRP;6db69a1c-9422-11d1-aebd-0000f80367c1;;S-1-5-32-561)(OA;;WPRP;5805bc62-bdc9-4428-a5e2-856a0f4c185e;;S-1-5-32-561)"},
	"computer": {"computer", "Computer", "bf967a86-0de6-11d0-a285-00aa003049e2", "1.2.840.113556.1.3.30", "user", 1,
		[]string{"container", "organizationalUnit", "domainDNS"}, []string{}, []string{"dNSHostName", "cn"}, []string{},
		"D:(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;DA)(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;AO)(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;SY)(A;;RPCRLCLORCSDDT;;;CO)(OA;;WP;4c164200-20c0-11d0-a768-00aa006e0529;;CO)(A;;RPLCLORC;;;AU)(OA;;CR;ab721a53-1e2f-11d0-9819-00aa0040529b;;WD)(A;;CCDC;;;PS)(OA;;CCDC;bf967aa8-0de6-11d0-a285-00aa003049e2;;PO)(OA;;RPWP;bf967a7f-0de6-11d0-a285-00aa003049e2;;CA)(OA;;SW;f3a64788-5306-11d1-a9c5-0000f80367c1;;PS)(OA;;RPWP;77B5B886-944A-11d1-AEBD-0000F80367C1;;PS)(OA;;SW;72e39547-7b18-11d1-adef-00c04fd8d5cd;;PS)(OA;;SW;72e39547-7b18-11d1-adef-00c04fd8d5cd;;CO)(OA;;SW;f3a64788-5306-11d1-a9c5-0000f80367c1;;CO)(OA;;WP;3e0abfd0-126a-11d0-a060-00aa006c33ed;bf967a86-0de6-11d0-a285-00aa003049e2;CO)(OA;;WP;5f202010-79a5-11d0-9020-00c04fc2d4cf;bf967a86-0de6-11d0-a285-00aa003049e2;CO)(OA;;WP;bf967950-0de6-11d0-a285-00aa003049e2;bf967a86-0de6-11d0-a285-00aa003049e2;CO)(OA;;WP;bf967953-0de6-11d0-a285-00aa003049e2;bf967a86-0de6-11d0-a285-00aa003049e2;CO)(OA;;RP;46a9b11d-60ae-405a-b7e8-ff8a58d456d2;;S-1-5-32-560)"},
	"group": {"group", "Group", "bf967a9c-0de6-11d0-a285-00aa003049e2", "1.2.840.113556.1.5.8", "top", 1,
		[]string{"msDS-AzScope", "msDS-AzApplication", "msDS-AzAdminManager", "container", "builtinDomain", "organizationalUnit", "domainDNS"}, []string{"groupType"}, []string{"member"}, []string{},
		"D:(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;DA)(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;SY)(A;;RPLCLORC;;;AU)(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;AO)(A;;RPLCLORC;;;PS)(OA;;CR;ab721a55-1e2f-11d0-9819-00aa0040529b;;AU)(OA;;RP;46a9b11d-60ae-405a-b7e8-ff8a58d456d2;;S-1-5-32-560)"},
	"organizationalunit": {"organizationalUnit", "Organizational-Unit", "bf967aa5-0de6-11d0-a285-00aa003049e2", "2.5.6.5", "top", 1,
		[]string{"country", "organization", "organizationalUnit", "domainDNS"}, []string{"ou"}, []string{"userPassword"}, []string{},
		"D:(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;SY)(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;DA)(OA;;CCDC;bf967a86-0de6-11d0-a285-00aa003049e2;;AO)(OA;;CCDC;bf967aba-0de6-11d0-a285-00aa003049e2;;AO)(OA;;CCDC;bf967a9c-0de6-11d0-a285-00aa003049e2;;AO)(OA;;CCDC;bf967aa8-0de6-11d0-a285-00aa003049e2;;PO)(A;;RPLCLORC;;;AU)(A;;LCRPLORC;;;ED)(OA;;CCDC;4828CC14-1437-45bc-9B07-AD6F015E5F28;;AO)"},
	"container": {"container", "Container", "bf967a8b-0de6-11d0-a285-00aa003049e2", "1.2.840.113556.1.3.23", "top", 1,
		[]string{"msDS-AzScope", "msDS-AzApplication", "msDS-AzAdminManager", "subnet", "server", "nTDSService", "domainDNS", "organization", "configuration", "container", "organizationalUnit"}, []string{"cn"}, []string{}, []string{},
		"D:(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;DA)(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;SY)(A;;RPLCLORC;;;AU)"},
	"domain": {"domain", "Domain", "19195a5a-6da0-11d0-afd3-00c04fd930c9", "1.2.840.113556.1.5.66", "top", 2,
		[]string{"domain", "organization"}, []string{"dc"}, []string{}, []string{},
		""},
	"domaindns": {"domainDNS", "Domain-DNS", "19195a5b-6da0-11d0-afd3-00c04fd930c9", "1.2.840.113556.1.5.67", "domain", 1,
		[]string{"domainDNS"}, []string{}, []string{}, []string{},
		"D:(OA;;CR;1131f6aa-9c07-11d1-f79f-00c04fc2dcd2;;S-1-5-21-2063560558-3296776465-833389195-498)(A;;RP;;;WD)(OA;;CR;1131f6aa-9c07-11d1-f79f-00c04fc2dcd2;;ED)(OA;;CR;1131f6ab-9c07-11d1-f79f-00c04fc2dcd2;;ED)(OA;;CR;1131f6ac-9c07-11d1-f79f-00c04fc2dcd2;;ED)(OA;;CR;1131f6aa-9c07-11d1-f79f-00c04fc2dcd2;;BA)(OA;;CR;1131f6ab-9c07-11d1-f79f-00c04fc2dcd2;;BA)(OA;;CR;1131f6ac-9c07-11d1-f79f-00c04fc2dcd2;;BA)(A;;RPLCLORC;;;AU)(A;;RPWPCRLCLOCCRCWDWOSW;;;DA)(A;CI;RPWPCRLCLOCCRCWDWOSDSW;;;BA)(A;;RPWPCRLCLOCCDCRCWDWOSDDTSW;;;SY)(A;CI;RPWPCRLCLOCCDCRCWDWOSDDTSW;;;EA)(A;CI;LC;;;RU)(OA;CIIO;RP;037088f8-0ae1-11d2-b422-00a0c968f939;bf967aba-0de6-11d0-a285-00aa003049e2;RU)(OA;CIIO;RP;59ba2f42-79a2-11d0-9020-00c04fc2d3cf;bf967aba-0de6-11d0-a285-00aa003049e2;RU)(OA;CIIO;RP;bc0ac240-79a9-11d0-9020-00c04fc2d4cf;bf967aba-0de6-11d0-a285-00aa003049e2;RU)(OA;CIIO;RP;4c164200-20c0-11d0-a768-00aa006e0529;bf967aba-0de6-11d0-a285-00aa003049e2;RU)(OA;CIIO;RP;5f202010-79a5-11d0-9020-00c04fc2d4cf;bf967aba-0de6-11d0-a285-00aa003049e2;RU)(OA;;RP;c7407360-20bf-11d0-a768-00aa006e0529;;RU)(OA;CIIO;RPLCLORC;;bf967a9c-0de6-11d0-a285-00aa003049e2;RU)(A;;RPRC;;;RU)(OA;CIIO;RPLCLORC;;bf967aba-0de6-11d0-a285-00aa003049e2;RU)(A;;LCRPLORC;;;ED)(OA;CIIO;RP;037088f8-0ae1-11d2-b422-00a0c968f939;4828CC14-1437-45bc-9B07-AD6F015E5F28;RU)(OA;CIIO;RP;59ba2f42-79a2-11d0-9020-00c04fc2d3cf;4828CC14-1437-45bc-9B07-AD6F015E5F28;RU)(OA;CIIO;RP;bc0ac240-79a9-11d0-9020-00c04fc2d4cf;4828CC14-1437-45bc-9B07-AD6F015E5F28;RU)(OA;CIIO;RP;4c164200-20c0-11d0-a768-00aa006e0529;4828CC14-1437-45bc-9B07-AD6F015E5F28;RU)(OA;CIIO;RP;5f202010-79a5-11d0-9020-00c04fc2d4cf;4828CC14-1437-45bc-9B07-AD6F015E5F28;RU)(OA;CIIO;RPLCLORC;;4828CC14-1437-45bc-9B07-AD6F015E5F28;RU)(OA;;RP;b8119fd0-04f6-4762-ab7a-4986c76b3f9a;;RU)(OA;;RP;b8119fd0-04f6-4762-ab7a-4986c76b3f9a;;AU)(OA;CIIO;RP;b7c69e6d-2cc7-11d2-854e-00a0c983f608;bf967aba-0de6-11d0-a285-00aa003049e2;ED)(OA;CIIO;RP;b7c69e6d-2cc7-11d2-854e-00a0c983f608;bf967a9c-0de6-11d0-a285-00aa003049e2;ED)(OA;CIIO;RP;b7c69e6d-2cc7-11d2-854e-00a0c983f608;bf967a86-0de6-11d0-a285-00aa003049e2;ED)(OA;CIIO;WP;ea1b7b93-5e48-46d5-bc6c-4df4fda78a35;bf967a86-0de6-11d0-a285-00aa003049e2;PS)(OA;;CR;1131f6ad-9c07-11d1-f79f-00c04fc2dcd2;;DD)(OA;;CR;89e95b76-444d-4c62-991a-0facbeda640c;;ED)(OA;;CR;1131f6ad-9c07-11d1-f79f-00c04fc2dcd2;;BA)(OA;;CR;89e95b76-444d-4c62-991a-0facbeda640c;;BA)(OA;;CR;e2a36dc9-ae17-47c3-b58b-be34c55ba633;;S-1-5-32-557)(OA;;CR;280f369c-67c7-438e-ae98-1d46f3c6f541;;AU)(OA;;CR;ccc2dc7d-a6ad-4a7a-8846-c04e3cc53501;;AU)(OA;;CR;05c74c5e-4deb-43b4-bd9f-86664c2a7fd5;;AU)(OA;;CR;1131f6ae-9c07-11d1-f79f-00c04fc2dcd2;;ED)(OA;;CR;1131f6ae-9c07-11d1-f79f-00c04fc2dcd2;;BA)(OA;CIIO;CRRPWP;91e647de-d96f-4b70-9557-d63ff4f3ccd8;;PS)(OA;CIOI;RPWP;3f78c3e5-f79a-46bd-a0b8-9d18116ddc79;;PS)(OA;CIIO;SW;9b026da6-0d3c-465c-8bee-5199d7165cba;bf967a86-0de6-11d0-a285-00aa003049e2;PS)(OA;CIIO;SW;9b026da6-0d3c-465c-8bee-5199d7165cba;bf967a86-0de6-11d0-a285-00aa003049e2;CO)S:(AU;SA;WDWOWP;;;WD)(AU;SA;CR;;;BA)(AU;SA;CR;;;DU)(OU;CISA;WP;f30e3bbe-9ff0-11d1-b603-0000f80367c1;bf967aa5-0de6-11d0-a285-00aa003049e2;WD)(OU;CISA;WP;f30e3bbf-9ff0-11d1-b603-0000f80367c1;bf967aa5-0de6-11d0-a285-00aa003049e2;WD)"},
	"msds-groupmanagedserviceaccount": {"msDS-GroupManagedServiceAccount", "ms-DS-Group-Managed-Service-Account", "7b8b558a-93a5-4af7-adca-c017e67f1057", "1.2.840.113556.1.5.282", "computer", 1,
		[]string{"computer", "container", "organizationalUnit", "domainDNS"}, []string{"msDS-ManagedPasswordInterval"}, []string{"msDS-GroupMSAMembership", "msDS-ManagedPasswordPreviousId", "msDS-ManagedPasswordId", "msDS-ManagedPassword"}, []string{},
		"D:(OD;;CR;00299570-246d-11d0-a768-00aa006e0529;;WD)(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;DA)(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;AO)(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;SY)(A;;RPCRLCLORCSDDT;;;CO)(OA;;WP;4c164200-20c0-11d0-a768-00aa006e0529;;CO)(OA;;SW;72e39547-7b18-11d1-adef-00c04fd8d5cd;;CO)(OA;;SW;f3a64788-5306-11d1-a9c5-0000f80367c1;;CO)(OA;;WP;3e0abfd0-126a-11d0-a060-00aa006c33ed;bf967a86-0de6-11d0-a285-00aa003049e2;CO)(OA;;WP;5f202010-79a5-11d0-9020-00c04fc2d4cf;bf967a86-0de6-11d0-a285-00aa003049e2;CO)(OA;;WP;bf967950-0de6-11d0-a285-00aa003049e2;bf967a86-0de6-11d0-a285-00aa003049e2;CO)(OA;;WP;bf967953-0de6-11d0-a285-00aa003049e2;bf967a86-0de6-11d0-a285-00aa003049e2;CO)(OA;;SW;f3a64788-5306-11d1-a9c5-0000f80367c1;;PS)(OA;;RPWP;77B5B886-944A-11d1-AEBD-0000F80367C1;;PS)(OA;;SW;72e39547-7b18-11d1-adef-00c04fd8d5cd;;PS)(A;;RPLCLORC;;;AU)(OA;;RPWP;bf967a7f-0de6-11d0-a285-00aa003049e2;;CA)(OA;;RP;46a9b11d-60ae-405a-b7e8-ff8a58d456d2;;S-1-5-32-560)(OA;;RP;e362ed86-b728-0842-b27d-2dea7a9df218;;WD)"},
	"mskds-provrootkey": {"msKds-ProvRootKey", "ms-Kds-Prov-RootKey", "aa02fd41-17e0-4f18-8687-b2239649736b", "1.2.840.113556.1.5.278", "top", 1,
		[]string{"container"}, []string{"msKds-CreateTime", "msKds-RootKeyData", "msKds-PrivateKeyLength", "msKds-PublicKeyLength", "msKds-SecretAgreementAlgorithmID", "msKds-KDFAlgorithmID", "msKds-UseStartTime", "msKds-DomainID", "msKds-Version", "cn"}, []string{"msKds-SecretAgreementParam", "msKds-KDFParam"}, []string{},
		"D:(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;EA)(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;SY)(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;DA)"},
}
