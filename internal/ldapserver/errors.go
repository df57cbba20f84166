package ldapserver

import (
	"errors"

	"gmsa/internal/directory"
)

// The one table from domain errors to LDAP result codes (with AD's problem strings).
var errorTable = []struct {
	err  error
	code int
	form string
}{
	// The specific before the general: some errors wrap others.
	{directory.ErrNeedBind, resultOperationsError, "000004DC: LdapErr: DSID-0C090A5C, comment: In order to perform this operation a successful bind must be completed on the connection., data 0, v4563 (%s)"},
	{directory.ErrNeedEncryption, resultOperationsError, "0000202D: LdapErr: DSID-0C090D14, comment: %s, data 0, v4563"},
	{directory.ErrRangeBeyond, resultOperationsError, "%s (send the range retrieval no-error control 1.2.840.113556.1.4.1948 to get no values instead)"},
	{directory.ErrTimeLimit, resultTimeLimitExceeded, "00000DAD: LdapErr: DSID-0C0906C9, comment: Time limit exceeded: %s, data 0, v4563"},
	{directory.ErrAdminLimit, resultAdminLimitExceeded, "00002024: SvcErr: DSID-02080485, problem 5008 (ADMIN_LIMIT_EXCEEDED), data 0: %s"},
	{directory.ErrValueExists, resultAttributeOrValueExists, "00002083: AtrErr: DSID-03151818, #1: 0: 00002083: DSID-03151818, problem 1006 (ATT_OR_VALUE_EXISTS), data 0: %s"},
	{directory.ErrNoSuchAttr, resultNoSuchAttribute, "00002080: AtrErr: DSID-03080155, #1: 0: 00002080: DSID-03080155, problem 1001 (NO_ATTRIBUTE_OR_VAL), data 0: %s"},
	{directory.ErrWrongPassword, resultConstraintViolation, "00000056: AtrErr: DSID-03191083, #1: 0: 00000056: DSID-03191083, problem 1005 (CONSTRAINT_ATT_TYPE), data 0: %s"},
	{directory.ErrConstraint, resultConstraintViolation, "0000202F: AtrErr: DSID-03152D2C, #1: 0: problem 1005 (CONSTRAINT_ATT_TYPE), data 0: %s"},
	{directory.ErrNamingViolation, resultNamingViolation, "00002099: NameErr: DSID-0305109C, problem 2005 (NAMING_VIOLATION), data 0: %s"},
	{directory.ErrObjectClass, resultObjectClassViolation, "0000207F: UpdErr: DSID-03150F4C, problem 6002 (OBJ_CLASS_VIOLATION), data 0: %s"},
	{directory.ErrInvalidSyntax, resultInvalidSyntax, "0000200B: AtrErr: DSID-03152D2C, problem 1005 (INVALID_ATT_SYNTAX), data 0: %s"},
	{directory.ErrInvalidDN, resultInvalidDNSyntax, "0000208F: NameErr: DSID-03100225, problem 2006 (BAD_NAME_SYNTAX), data 8350: %s"},
	{directory.ErrNotLeaf, resultNotAllowedOnNonLeaf, "0000208C: UpdErr: DSID-03120A9A, problem 6003 (CANT_ON_NON_LEAF), data 0: %s"},
	{directory.ErrNoSuchBase, resultNoSuchObject, "0000208D: NameErr: DSID-0310028D, problem 2001 (NO_OBJECT), data 0: %s"},
	{directory.ErrNotFound, resultNoSuchObject, "0000208D: NameErr: DSID-0310028D, problem 2001 (NO_OBJECT), data 0: %s"},
	{directory.ErrExists, resultEntryAlreadyExists, "00002071: UpdErr: DSID-0305038D, problem 6005 (ENTRY_EXISTS), data 0: %s"},
	{directory.ErrInvalid, resultUnwillingToPerform, "0000209A: SvcErr: DSID-031A1248, problem 5003 (WILL_NOT_PERFORM), data 0: %s"},
	{directory.ErrNoRootKey, resultUnwillingToPerform, "0000209A: SvcErr: DSID-031A1248, problem 5003 (WILL_NOT_PERFORM), data 0: %s"},
	{directory.ErrUnavailable, resultUnavailable, "00000034: LdapErr: DSID-0C090A5C, comment: %s, data 0, v4563"},
	{directory.ErrAccessDenied, resultInsufficientAccess, "00000005: SecErr: DSID-03152E29, problem 4003 (INSUFF_ACCESS_RIGHTS), data 0: %s"},
}

// fromDomain turns a directory error into an LDAP result.
func fromDomain(err error) *ldapError {
	var le *ldapError
	if errors.As(err, &le) {
		return le
	}
	for _, e := range errorTable {
		if errors.Is(err, e.err) {
			return lerr(e.code, e.form, err.Error())
		}
	}
	return lerr(resultOther, "%s", err.Error())
}
