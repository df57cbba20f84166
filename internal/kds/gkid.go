package kds

import (
	"fmt"

	"gmsa/internal/ntsec"
)

// Time constants of MS-GKDI ([MS-GKDI] 3.1.4.1.2, gmsa-algorithm.md §4), in 100 ns units.
const (
	KeyCycle     = 360_000_000_000 // one L2 step: 10 hours
	MaxClockSkew = 3_000_000_000   // 5 minutes
	L1Span       = 32 * KeyCycle
	L0Span       = 32 * L1Span
)

// GKID is a group key identifier (L0, L1, L2). −1 marks an absent index: (L0, −1, −1)
// names an L0 seed key and (L0, L1, −1) an L1 seed key.
type GKID struct {
	L0, L1, L2 int32
}

// GKIDAt returns the identifier of the key period containing t.
func GKIDAt(t ntsec.FileTime) GKID {
	c := uint64(t) / KeyCycle
	return GKID{L0: int32(c / 1024), L1: int32(c / 32 % 32), L2: int32(c % 32)}
}

// Start returns the first instant of g's key period. g must be a full (L2) identifier.
func (g GKID) Start() ntsec.FileTime {
	return ntsec.FileTime((uint64(g.L0)*1024 + uint64(g.L1)*32 + uint64(g.L2)) * KeyCycle)
}

// Validate checks the ranges and that −1 appears only as a suffix.
func (g GKID) Validate() error {
	if g.L0 < 0 {
		return fmt.Errorf("kds: GKID %v: L0 must be 0 or more", g)
	}
	if g.L1 < -1 || g.L1 > 31 || g.L2 < -1 || g.L2 > 31 {
		return fmt.Errorf("kds: GKID %v: L1 and L2 must be in 0…31 (or −1 for absent)", g)
	}
	if g.L1 == -1 && g.L2 != -1 {
		return fmt.Errorf("kds: GKID %v: an absent L1 requires an absent L2", g)
	}
	return nil
}

// IsL2 reports whether g names a full L2 key (a key period).
func (g GKID) IsL2() bool { return g.L1 >= 0 && g.L2 >= 0 }

// Compare orders identifiers lexicographically: −1, 0, or +1.
func (g GKID) Compare(o GKID) int {
	for _, d := range [3]int32{g.L0 - o.L0, g.L1 - o.L1, g.L2 - o.L2} {
		if d < 0 {
			return -1
		}
		if d > 0 {
			return 1
		}
	}
	return 0
}

func (g GKID) String() string { return fmt.Sprintf("(%d,%d,%d)", g.L0, g.L1, g.L2) }

// CheckNotFuture refuses a key from the future: g must not come after
// GKID(now + MaxClockSkew) ([MS-GKDI] 3.1.4.1).
func CheckNotFuture(g GKID, now ntsec.FileTime) error {
	if lim := GKIDAt(now + MaxClockSkew); g.Compare(lim) > 0 {
		return fmt.Errorf("kds: key %v lies in the future (latest allowed is %v at %s): %w", g, lim, now.Time().Format("2006-01-02T15:04:05Z"), ErrFutureKey)
	}
	return nil
}

// RolloverInterval is the password period of a gMSA whose msDS-ManagedPasswordInterval
// is days: floor(days·24/10) key cycles (gmsa-algorithm.md §8; 1 day → 20 h). It is
// an error for days ≤ 0, for days too short for one cycle, and for days whose interval
// overflows 64 bits.
func RolloverInterval(days int64) (uint64, error) {
	const maxDays = 21350397 // floor(UINT64_MAX / KeyCycle) · 10 / 24, as Samba bounds it
	if days <= 0 || days > maxDays {
		return 0, fmt.Errorf("kds: password interval %d days: want 1 to %d: %w", days, maxDays, ErrBadInterval)
	}
	return uint64(days) * 24 / 10 * KeyCycle, nil
}
