package kds

import (
	"fmt"

	"gmsa/internal/ntsec"
)

// Account is what the password schedule needs to know about one gMSA.
type Account struct {
	Created      ntsec.FileTime // whenCreated
	IntervalDays int64          // msDS-ManagedPasswordInterval
	CurrentID    *PasswordID    // msDS-ManagedPasswordId, nil when absent
	PreviousID   *PasswordID    // msDS-ManagedPasswordPreviousId, nil when absent
}

// KeyRef names the key period and root key one password derives from.
type KeyRef struct {
	GKID    GKID
	RootKey *RootKey
}

// Plan says which passwords an msDS-ManagedPassword read returns at one instant and
// what a DC must persist.
type Plan struct {
	Current   KeyRef
	Previous  *KeyRef        // nil when the blob carries no previous password
	Query     uint64         // QueryPasswordInterval, 100 ns units
	Unchanged uint64         // UnchangedPasswordInterval, 100 ns units
	Expiry    ntsec.FileTime // when the stored current password period ends (K)
	// LookAhead is set within MaxClockSkew before K: Current is then already the next
	// period's password and Previous the one still in use, which a KDC keeps using
	// until K.
	LookAhead bool

	// Rotated is set when the stored id was missing or expired: a DC then stores
	// NewCurrent as msDS-ManagedPasswordId and NewPrevious (when not nil) as
	// msDS-ManagedPasswordPreviousId, and bumps the key version and pwdLastSet.
	Rotated     bool
	NewCurrent  KeyRef
	NewPrevious *KeyRef
}

// PlanPasswords applies a DC's password schedule at now ([MS-ADTS] 3.1.1.4.5.39 as Samba's
// gmsa_recalculate_managed_pwd computes it; gmsa-algorithm.md §8). keys are the forest's
// root keys: ids name theirs, new periods take the newest usable one.
func PlanPasswords(acct Account, keys []RootKey, now ntsec.FileTime) (Plan, error) {
	var plan Plan
	R, err := RolloverInterval(acct.IntervalDays)
	if err != nil {
		return plan, err
	}
	if now < acct.Created {
		return plan, fmt.Errorf("kds: time %s is before the account was created (%s)", fmtTime(now), fmtTime(acct.Created))
	}
	age := uint64(now - acct.Created)
	byID := func(id *PasswordID) (KeyRef, error) {
		rk, err := FindRootKey(keys, id.RootKeyID)
		if err != nil {
			return KeyRef{}, fmt.Errorf("kds: password period %v: %w", id.GKID, err)
		}
		return KeyRef{GKID: id.GKID, RootKey: rk}, nil
	}
	newest := func(t ntsec.FileTime) (KeyRef, error) {
		rk, err := SelectRootKey(keys, t)
		if err != nil {
			return KeyRef{}, err
		}
		return KeyRef{GKID: GKIDAt(t), RootKey: rk}, nil
	}

	// 1. The start S and end E of the stored period.
	var E ntsec.FileTime
	if acct.CurrentID != nil {
		E = acct.CurrentID.GKID.Start() + ntsec.FileTime(R)
	} else {
		E = acct.Created / KeyCycle * KeyCycle
	}
	var K ntsec.FileTime
	if acct.CurrentID != nil && now < E {
		// 2. The stored key is still valid.
		if plan.Current, err = byID(acct.CurrentID); err != nil {
			return plan, err
		}
		if age >= R {
			var prev KeyRef
			if acct.PreviousID != nil {
				prev, err = byID(acct.PreviousID)
			} else if S := acct.CurrentID.GKID.Start(); uint64(S) >= R {
				prev, err = newest(S - ntsec.FileTime(R))
			} else {
				err = fmt.Errorf("kds: no previous period before %s", fmtTime(S))
			}
			if err != nil {
				return plan, fmt.Errorf("kds: previous password: %w", err)
			}
			plan.Previous = &prev
		}
		K = E
	} else {
		// 3. The id is missing or expired: move to the last grid point E + k·R ≤ now.
		N := E
		if now > E {
			N = E + (now-E)/ntsec.FileTime(R)*ntsec.FileTime(R)
		}
		if plan.Current, err = newest(N); err != nil {
			return plan, err
		}
		plan.Rotated, plan.NewCurrent = true, plan.Current
		var prev *KeyRef
		if N == E && acct.CurrentID != nil {
			p, err := byID(acct.CurrentID) // the new period directly follows the old one
			if err != nil {
				return plan, err
			}
			prev = &p
		} else if uint64(N) >= R {
			if p, err := newest(N - ntsec.FileTime(R)); err == nil {
				prev = &p
			}
		}
		plan.NewPrevious = prev
		if age >= R {
			if prev == nil {
				return plan, fmt.Errorf("kds: previous password for the period before %s: no usable root key", fmtTime(N))
			}
			plan.Previous = prev
		}
		K = N + ntsec.FileTime(R)
	}
	plan.Expiry = K

	// 4–6. Intervals, and the 5-minute look-ahead to the next password.
	if K > now {
		plan.Query = uint64(K - now)
	}
	unchanged := plan.Query
	if plan.Query <= MaxClockSkew {
		next, err := newest(K)
		if err != nil {
			return plan, fmt.Errorf("kds: next password (look-ahead): %w", err)
		}
		cur := plan.Current
		plan.Previous, plan.Current = &cur, next
		plan.LookAhead = true
		unchanged = plan.Query + R
	}
	plan.Unchanged = unchanged - min(MaxClockSkew, unchanged)
	return plan, nil
}

func fmtTime(t ntsec.FileTime) string { return t.Time().Format("2006-01-02T15:04:05Z") }
