// Package admin is the one interface behind the admin commands (the AD cmdlets'
// counterparts). Local serves it from a directory opened on a data directory; an LDAP
// implementation will serve the same calls against any DC. Entries are plain views:
// they never carry keys or root key data.
package admin

import (
	"context"

	"gmsa/internal/directory"
	"gmsa/internal/kds"
	"gmsa/internal/krbkey"
	"gmsa/internal/ntsec"
)

// Entry is what the commands show of an object.
type Entry struct {
	DN                string   `json:"dn"`
	Class             string   `json:"object_class"`
	Name              string   `json:"name"`
	SAMAccountName    string   `json:"sam_account_name,omitempty"`
	SID               string   `json:"sid,omitempty"`
	GUID              string   `json:"guid"`
	Enabled           *bool    `json:"enabled,omitempty"`
	UAC               uint32   `json:"user_account_control,omitempty"`
	Description       string   `json:"description,omitempty"`
	DNSHostName       string   `json:"dns_host_name,omitempty"`
	SPNs              []string `json:"service_principal_names,omitempty"`
	SupportedEnctypes uint32   `json:"supported_encryption_types,omitempty"`
	// Delegation: msDS-AllowedToDelegateTo and TRUSTED_TO_AUTH_FOR_DELEGATION.
	AllowedToDelegateTo []string `json:"allowed_to_delegate_to,omitempty"`
	TrustedToAuth       bool     `json:"trusted_to_auth_for_delegation,omitempty"`
	GroupScope          string   `json:"group_scope,omitempty"`
	Members             []string `json:"members,omitempty"`
	MemberOf            []string `json:"member_of,omitempty"`
	KVNO                uint32   `json:"key_version_number,omitempty"`
	PwdLastSet          string   `json:"pwd_last_set,omitempty"`
	Created             string   `json:"when_created"`
	Changed             string   `json:"when_changed"`
	USNCreated          int64    `json:"usn_created"`
	USNChanged          int64    `json:"usn_changed"`

	// gMSAs.
	PasswordIntervalDays int64    `json:"managed_password_interval_days,omitempty"`
	PrincipalsAllowed    []string `json:"principals_allowed_to_retrieve_managed_password,omitempty"`
	MembershipSDDL       string   `json:"group_msa_membership_sddl,omitempty"`
	PasswordPeriod       string   `json:"managed_password_period,omitempty"`
	PasswordRootKey      string   `json:"managed_password_root_key,omitempty"`

	// KDS root keys.
	KDFHash       string `json:"kdf_hash,omitempty"`
	CreateTime    string `json:"create_time,omitempty"`
	EffectiveTime string `json:"effective_time,omitempty"`
	UsableForNew  string `json:"usable_for_new_accounts_from,omitempty"`
}

// Admin is what the admin commands need of a directory, local or remote.
type Admin interface {
	Domain(ctx context.Context) (directory.Domain, error)

	KDSAdd(ctx context.Context, opt directory.RootKeyOptions) (Entry, []string, error)
	KDSList(ctx context.Context) ([]Entry, error)
	KDSGet(ctx context.Context, id string) (Entry, error)
	KDSRemove(ctx context.Context, id string) error
	KDSTest(ctx context.Context, id string) error
	// KDSExport returns a root key with its secret data (msKds-RootKeyData).
	KDSExport(ctx context.Context, id string) (kds.RootKey, error)

	AccountNew(ctx context.Context, opt directory.GMSAOptions) (Entry, error)
	AccountSet(ctx context.Context, ref string, ch directory.GMSAChanges) (Entry, error)
	AccountTest(ctx context.Context, ref, principal string) (directory.Decision, error)
	// AccountPassword reads msDS-ManagedPassword as principal would: nil blob and the
	// reason when not granted.
	AccountPassword(ctx context.Context, ref, principal string) ([]byte, directory.Decision, error)

	GroupNew(ctx context.Context, name string, scope directory.GroupScope, description string) (Entry, error)
	GroupAddMember(ctx context.Context, group, member string) (Entry, error)
	GroupRemoveMember(ctx context.Context, group, member string) (Entry, error)

	// ComputerNew returns the new account with its keys, for a keytab.
	ComputerNew(ctx context.Context, opt directory.ComputerOptions) (Entry, []krbkey.Key, error)

	UserNew(ctx context.Context, opt directory.UserOptions) (Entry, error)
	// UserImport adds many users (Import-Csv | New-ADUser), returning how many were
	// added before any error.
	UserImport(ctx context.Context, users []directory.UserOptions) (int, error)
	UserSetPassword(ctx context.Context, ref, password string) (Entry, error)
	// Unlock clears an account's lockout (Unlock-ADAccount).
	Unlock(ctx context.Context, ref string) (Entry, error)
	// KrbtgtReset gives krbtgt a new random password; the previous keys stay valid for
	// the TGTs issued under them (New-KrbtgtKeys.ps1).
	KrbtgtReset(ctx context.Context) (Entry, error)

	// OUNew creates an organizational unit under parent (default the domain).
	OUNew(ctx context.Context, name, parent, description string) (Entry, error)
	// RemoveTree removes an object and everything below it (the tree delete control).
	RemoveTree(ctx context.Context, ref string) error

	// Get, List and Remove work on any of the classes above.
	Get(ctx context.Context, ref string, class directory.Class) (Entry, error)
	List(ctx context.Context, class directory.Class) ([]Entry, error)
	Remove(ctx context.Context, ref string, class directory.Class) error

	Close() error
}

func fmtTime(t ntsec.FileTime) string {
	if t == 0 {
		return ""
	}
	return t.Time().Format("2006-01-02T15:04:05Z")
}
