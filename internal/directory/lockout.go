package directory

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"

	"gmsa/internal/audit"
	"gmsa/internal/krbkey"
	"gmsa/internal/ntsec"
	"gmsa/internal/store"
)

// DomainPolicy is the domain's account lockout policy, the attributes of the domain
// object that Group Policy sets ([MS-ADTS] 3.1.1.5.3, [MS-SAMR] 3.1.1.5).
type DomainPolicy struct {
	LockoutThreshold  uint32         `json:"lockout_threshold"`  // failed attempts that lock an account; 0: never
	LockoutDuration   ntsec.FileTime `json:"lockout_duration"`   // how long it stays locked; 0: until unlocked
	ObservationWindow ntsec.FileTime `json:"observation_window"` // after which badPwdCount starts again
}

// DefaultPolicy is current Windows's default: 10 attempts, 10 minutes, 10 minutes.
func DefaultPolicy() DomainPolicy {
	return DomainPolicy{LockoutThreshold: 10, LockoutDuration: 10 * ntsec.TicksPerMinute, ObservationWindow: 10 * ntsec.TicksPerMinute}
}

func policyOf(o *Object) DomainPolicy {
	if o == nil || o.Policy == nil {
		return DefaultPolicy()
	}
	return *o.Policy
}

// domainPolicy reads the lockout policy from the domain object.
func (d *Directory) domainPolicy(ctx context.Context) DomainPolicy {
	o, err := d.byIndex(ctx, dnKey(d.domain.BaseDN))
	if err != nil {
		return DefaultPolicy()
	}
	return policyOf(o)
}

// Policy returns the domain's lockout policy.
func (d *Directory) Policy(ctx context.Context) DomainPolicy { return d.domainPolicy(ctx) }

// SetPolicy changes the domain's lockout policy (Set-ADDefaultDomainPasswordPolicy).
func (d *Directory) SetPolicy(ctx context.Context, req *Requester, p DomainPolicy) error {
	if p.LockoutDuration != 0 && p.ObservationWindow > p.LockoutDuration {
		return fmt.Errorf("directory: the observation window must not be longer than the lockout duration: %w", ErrInvalid)
	}
	dom, err := d.byIndex(ctx, dnKey(d.domain.BaseDN))
	if err != nil {
		return err
	}
	if err := d.authorizeWrite(ctx, req, dom, "lockoutThreshold", "lockoutDuration", "lockOutObservationWindow"); err != nil {
		return err
	}
	if _, err := d.modify(ctx, dom.GUID, func(n *Object) ([]store.Op, error) { n.Policy = &p; return nil, nil }); err != nil {
		return err
	}
	d.changed(req, "modify", dom.DN)
	return nil
}

// lockedOut reports whether o is locked out at now.
func (d *Directory) lockedOut(o *Object, p DomainPolicy, now ntsec.FileTime) bool {
	return o.LockoutTime != 0 && (p.LockoutDuration == 0 || now < o.LockoutTime+p.LockoutDuration)
}

// Unlock clears an account's lockout (Unlock-ADAccount).
func (d *Directory) Unlock(ctx context.Context, req *Requester, ref string) (*Object, error) {
	o, err := d.Resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	if err := d.authorizeWrite(ctx, req, o, "lockoutTime"); err != nil {
		return nil, err
	}
	if o.Class != ClassUser && o.Class != ClassComputer && o.Class != ClassGMSA {
		return nil, fmt.Errorf("directory: %s is a %s, not an account: %w", o.DN, o.Class, ErrInvalid)
	}
	n, err := d.modify(ctx, o.GUID, func(n *Object) ([]store.Op, error) {
		n.LockoutTime, n.BadPwdCount = 0, 0
		return nil, nil
	})
	if err == nil {
		d.changed(req, "unlock", o.DN)
	}
	return n, err
}

// ErrInvalidCredentials is a failed password check; Data is AD's sub-code (52e wrong
// password or unknown name, 533 disabled, 775 locked out), which LDAP puts in its
// diagnostic.
type ErrInvalidCredentials struct{ Data string }

func (e *ErrInvalidCredentials) Error() string { return "invalid credentials (data " + e.Data + ")" }

// Authenticate checks a password for a simple bind made over channel ch (an anonymous
// requester) and returns the authenticated requester. name is anything Resolve
// accepts (DN, UPN, NETBIOS\name, sAMAccountName). Wrong passwords count towards the
// domain's lockout policy; failures are audited, aggregated per source.
func (d *Directory) Authenticate(ctx context.Context, ch *Requester, name, password string) (*Requester, error) {
	fail := func(data, why string) (*Requester, error) {
		d.audit.RecordNoisy(ch.Remote, d.now(), audit.Warn, "authentication failed", "name", name, "remote", ch.Remote, "data", data, "reason", why)
		return nil, &ErrInvalidCredentials{Data: data}
	}
	nt := krbkey.NTHash(EncodePassword(password)) // first, so an unknown name costs what a known one does
	o, err := d.Resolve(ctx, name)
	if err != nil || len(o.NTHash) == 0 || o.Class == ClassGroup {
		return fail("52e", "unknown account")
	}
	now := d.nowFT()
	pol := d.domainPolicy(ctx)
	if d.lockedOut(o, pol, now) {
		return fail("775", "account locked out")
	}
	if subtle.ConstantTimeCompare(nt[:], o.NTHash) != 1 {
		d.badPassword(ctx, o, pol, now)
		return fail("52e", "wrong password")
	}
	if !o.Enabled() {
		return fail("533", "account disabled")
	}
	if o.BadPwdCount != 0 || o.LockoutTime != 0 { // a good password starts the count again
		n, err := d.modify(ctx, o.GUID, func(n *Object) ([]store.Op, error) {
			if d.lockedOut(n, pol, now) { // locked meanwhile, perhaps by another server: the stored state decides
				return nil, errLockedOut
			}
			n.BadPwdCount, n.LockoutTime = 0, 0
			return nil, nil
		})
		if errors.Is(err, errLockedOut) {
			return fail("775", "account locked out")
		}
		if err == nil {
			o = n
		}
	}
	tok, err := d.token(ctx, o)
	if err != nil {
		return nil, err
	}
	return &Requester{Token: tok, Auth: AuthSimple, Protection: ch.Protection, Remote: ch.Remote}, nil
}

// errLockedOut stops the reset of a count that a lockout overtook.
var errLockedOut = errors.New("account locked out")

// badPassword counts a failed attempt against o and locks it at the threshold. Without
// a threshold nothing is written, so failures cost no store writes; with one, at most
// threshold writes per observation window.
func (d *Directory) badPassword(ctx context.Context, o *Object, pol DomainPolicy, now ntsec.FileTime) {
	if pol.LockoutThreshold == 0 {
		return
	}
	n, err := d.modify(ctx, o.GUID, func(n *Object) ([]store.Op, error) {
		if d.lockedOut(n, pol, now) {
			return nil, errUnchanged
		}
		if n.BadPasswordTime == 0 || now-n.BadPasswordTime > pol.ObservationWindow || n.LockoutTime != 0 {
			n.BadPwdCount = 0 // the window has passed, or an expired lockout: count again
			n.LockoutTime = 0
		}
		n.BadPwdCount++
		n.BadPasswordTime = now
		if n.BadPwdCount >= pol.LockoutThreshold {
			n.LockoutTime = now
		}
		return nil, nil
	})
	if err == nil && n.LockoutTime != 0 {
		d.audit.Record(d.now(), audit.Warn, "account locked out", "account", n.SAM, "bad_password_count", fmt.Sprint(n.BadPwdCount),
			"until", n.LockoutTime.Time().Add(time.Duration(pol.LockoutDuration)*100).UTC().Format(time.RFC3339))
	}
}
