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
	{directory.ErrNoSuchBase, resultNoSuchObject, "0000208D: NameErr: DSID-0310028D, problem 2001 (NO_OBJECT), data 0: %s"},
	{directory.ErrNotFound, resultNoSuchObject, "0000208D: NameErr: DSID-0310028D, problem 2001 (NO_OBJECT), data 0: %s"},
	{directory.ErrExists, resultEntryAlreadyExists, "00002071: UpdErr: DSID-0305038D, problem 6005 (ENTRY_EXISTS), data 0: %s"},
	{directory.ErrInvalid, resultUnwillingToPerform, "0000209A: SvcErr: DSID-031A1248, problem 5003 (WILL_NOT_PERFORM), data 0: %s"},
	{directory.ErrNoRootKey, resultUnwillingToPerform, "0000209A: SvcErr: DSID-031A1248, problem 5003 (WILL_NOT_PERFORM), data 0: %s"},
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
