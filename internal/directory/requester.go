package directory

import (
	"errors"

	"gmsa/internal/ntsec"
)

// Protection is what protects the channel a request arrived on.
type Protection uint8

// Channel protections, weakest first.
const (
	ProtectionNone            Protection = iota // clear text
	ProtectionIntegrity                         // a SASL layer that signs only
	ProtectionConfidentiality                   // a SASL layer that seals
	ProtectionTLS                               // LDAPS or StartTLS
	ProtectionLocal                             // in-process: the data directory's own commands
)

// Encrypted reports whether secrets may cross the channel ([MS-ADTS] 3.1.1.4.4:
// msDS-ManagedPassword needs an encrypted connection).
func (p Protection) Encrypted() bool { return p >= ProtectionConfidentiality }

func (p Protection) String() string {
	return [...]string{"none", "integrity", "confidentiality", "tls", "local"}[p]
}

// AuthMethod is how the requester proved who it is.
type AuthMethod uint8

// Authentication methods.
const (
	AuthAnonymous   AuthMethod = iota
	AuthSimple                 // an LDAP simple bind (password)
	AuthKerberos               // a Kerberos ticket (SASL GSSAPI / GSS-SPNEGO)
	AuthCertificate            // a TLS client certificate (SASL EXTERNAL)
	AuthLocal                  // a command on the data directory, as SYSTEM
)

// Requester is who asks, how it authenticated and over what channel. Every read and
// write enters the directory with one; the directory alone decides what it may see
// and do.
type Requester struct {
	Token      *Token // nil: anonymous
	Auth       AuthMethod
	Protection Protection
	Remote     string // the peer's address, for the audit trail
}

// LocalSystem is the requester of commands run on the data directory itself.
func LocalSystem() *Requester {
	return &Requester{Token: System(), Auth: AuthLocal, Protection: ProtectionLocal, Remote: "local"}
}

// Anonymous is a requester that has not bound, on a channel with protection p.
func Anonymous(p Protection, remote string) *Requester {
	return &Requester{Protection: p, Remote: remote}
}

// Name is the requester's account name for the audit trail ("" when anonymous).
func (r *Requester) Name() string {
	if r == nil || r.Token == nil {
		return ""
	}
	return r.Token.Name
}

// ErrNeedBind refuses an operation to an anonymous requester.
var ErrNeedBind = errors.New("a successful bind is required")

// ErrNeedEncryption refuses msDS-ManagedPassword on an unencrypted channel.
var ErrNeedEncryption = errors.New("msDS-ManagedPassword requires an encrypted connection: use ldaps://, StartTLS or a sealed SASL bind")

// isAdmin reports whether the requester administers the domain: SYSTEM, Domain
// Admins, Enterprise Admins or BUILTIN\Administrators.
func (d *Directory) isAdmin(r *Requester) bool {
	if r == nil || r.Token == nil {
		return false
	}
	t := r.Token
	return t.User.Equal(ntsec.SIDSystem) || t.Has(d.sid.Child(ntsec.RIDDomainAdmins)) ||
		t.Has(d.sid.Child(ntsec.RIDEnterpriseAdmins)) || t.Has(ntsec.SIDBuiltinAdmins)
}

// canReadRootKeys: the Master Root Keys container grants read to SYSTEM, Domain Admins
// and Enterprise Admins only.
func (d *Directory) canReadRootKeys(r *Requester) bool {
	if r == nil || r.Token == nil {
		return false
	}
	t := r.Token
	return t.User.Equal(ntsec.SIDSystem) || t.Has(d.sid.Child(ntsec.RIDDomainAdmins)) || t.Has(d.sid.Child(ntsec.RIDEnterpriseAdmins))
}

// visible reports whether r may read attribute a of o ([MS-ADTS] 3.1.1.4.3): an
// attribute it may not read is treated as absent, in results and in filters alike.
// The decision never looks at the attribute's values.
func (d *Directory) visible(r *Requester, o *Object, a *attrDef) bool {
	switch a.Access {
	case accessPublic:
		return true
	case accessRootKey:
		return o.Class == ClassRootKey && d.canReadRootKeys(r)
	}
	return false // accessNever, accessConstructedSecret: never in a view or filter
}
