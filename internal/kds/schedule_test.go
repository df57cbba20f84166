package kds

import (
	"bytes"
	"errors"
	"testing"

	"gmsa/internal/ntsec"
)

func testKeys() []RootKey {
	mk := func(b byte, start ntsec.FileTime) RootKey {
		return RootKey{ID: ntsec.GUID{b}, Data: bytes.Repeat([]byte{b}, 64), Version: 1, KDFAlgorithm: KDFAlgorithm,
			Hash: SHA512, CreateTime: start, UseStartTime: start}
	}
	return []RootKey{mk(1, 100*KeyCycle), mk(2, 200*KeyCycle)}
}

func TestScheduleCreationAndFirstPeriod(t *testing.T) {
	keys := testKeys()
	created := ntsec.FileTime(150*KeyCycle + 3*ntsec.TicksPerHour) // 3 h into a cycle
	p, err := PlanPasswords(Account{Created: created, IntervalDays: 30}, keys, created+ntsec.TicksPerMinute)
	if err != nil {
		t.Fatal(err)
	}
	if p.Current.GKID != GKIDAt(created) || p.Current.RootKey.ID[0] != 1 || p.Previous != nil || !p.Rotated {
		t.Fatalf("%+v", p)
	}
	// The period runs from the 10-hour boundary below creation for 72 cycles.
	if want := uint64(150*KeyCycle+72*KeyCycle) - uint64(created+ntsec.TicksPerMinute); p.Query != want || p.Unchanged != want-MaxClockSkew {
		t.Fatalf("query %d unchanged %d, want %d", p.Query, p.Unchanged, want)
	}
}

// With a stored id the DC keeps its period and root key until it ends; then it moves
// on by whole intervals and the old id becomes the previous one.
func TestScheduleWithIDs(t *testing.T) {
	keys := testKeys()
	created := ntsec.FileTime(150 * KeyCycle)
	id := NewPasswordID(&keys[0], GKIDAt(created), "example.test", "example.test")
	acct := Account{Created: created, IntervalDays: 1, CurrentID: id} // R = 2 cycles
	p, err := PlanPasswords(acct, keys, created+KeyCycle)
	if err != nil || p.Rotated || p.Current.GKID != id.GKID || p.Previous != nil {
		t.Fatalf("within the first period: %+v %v", p, err)
	}
	// Exactly at the end: a new period E, directly following; previous = old id.
	p, err = PlanPasswords(acct, keys, created+2*KeyCycle)
	if err != nil || !p.Rotated || p.Current.GKID != GKIDAt(created+2*KeyCycle) || p.Previous == nil || p.Previous.GKID != id.GKID ||
		p.NewPrevious == nil || p.NewPrevious.GKID != id.GKID {
		t.Fatalf("at the boundary: %+v %v", p, err)
	}
	// Long after, past the second key's start: the grid point ≤ now, the newest key.
	now := ntsec.FileTime(251*KeyCycle + 5*ntsec.TicksPerHour)
	p, err = PlanPasswords(acct, keys, now)
	if err != nil {
		t.Fatal(err)
	}
	N := created + (now-created)/(2*KeyCycle)*(2*KeyCycle)
	if p.Current.GKID != GKIDAt(N) || p.Current.RootKey.ID[0] != 2 || p.Previous.GKID != GKIDAt(N-2*KeyCycle) || p.Expiry != N+2*KeyCycle {
		t.Fatalf("later: %+v", p)
	}
	// A current id with a previous id: both kept while valid.
	prevID := NewPasswordID(&keys[0], GKIDAt(created), "d", "d")
	curID := NewPasswordID(&keys[1], GKIDAt(N), "d", "d")
	p, err = PlanPasswords(Account{Created: created, IntervalDays: 1, CurrentID: curID, PreviousID: prevID}, keys, now)
	if err != nil || p.Rotated || p.Previous.GKID != prevID.GKID || p.Previous.RootKey.ID[0] != 1 {
		t.Fatalf("stored ids: %+v %v", p, err)
	}
	// Without a previous id the period before the current one is used.
	p, err = PlanPasswords(Account{Created: created, IntervalDays: 1, CurrentID: curID}, keys, now)
	if err != nil || p.Previous.GKID != GKIDAt(N-2*KeyCycle) {
		t.Fatalf("no previous id: %+v %v", p, err)
	}
}

// Within 5 minutes of the end the DC already hands out the next password.
func TestScheduleLookAhead(t *testing.T) {
	keys := testKeys()
	created := ntsec.FileTime(150 * KeyCycle)
	id := NewPasswordID(&keys[0], GKIDAt(created), "d", "d")
	end := created + 2*KeyCycle
	for _, c := range []struct {
		before    ntsec.FileTime
		lookahead bool
	}{{MaxClockSkew + 1, false}, {MaxClockSkew, true}, {1, true}} {
		p, err := PlanPasswords(Account{Created: created, IntervalDays: 1, CurrentID: id}, keys, end-c.before)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Current.GKID == GKIDAt(end); got != c.lookahead {
			t.Fatalf("%d before the end: look-ahead %v, want %v", c.before, got, c.lookahead)
		}
		if c.lookahead {
			if p.Previous.GKID != id.GKID || p.Query != uint64(c.before) || p.Unchanged != uint64(c.before)+2*KeyCycle-MaxClockSkew {
				t.Fatalf("look-ahead plan %+v", p)
			}
		} else if p.Unchanged != 1 {
			t.Fatalf("unchanged %d just before the window", p.Unchanged)
		}
	}
}

func TestScheduleErrors(t *testing.T) {
	keys := testKeys()
	created := ntsec.FileTime(150 * KeyCycle)
	if _, err := PlanPasswords(Account{Created: created, IntervalDays: 0}, keys, created); !errors.Is(err, ErrBadInterval) {
		t.Errorf("interval 0: %v", err)
	}
	if _, err := PlanPasswords(Account{Created: created, IntervalDays: 30}, keys, created-1); err == nil {
		t.Error("a time before creation accepted")
	}
	if _, err := PlanPasswords(Account{Created: 50 * KeyCycle, IntervalDays: 30}, keys, 60*KeyCycle); !errors.Is(err, ErrNoRootKey) {
		t.Errorf("before every root key: %v", err)
	}
	gone := NewPasswordID(&RootKey{ID: ntsec.GUID{9}, Version: 1}, GKIDAt(created), "d", "d")
	if _, err := PlanPasswords(Account{Created: created, IntervalDays: 30, CurrentID: gone}, keys, created+1); !errors.Is(err, ErrRootKeyMissing) {
		t.Errorf("deleted root key: %v", err)
	}
}

// Intervals that are not multiples of 5 days: R is floor(days·24/10) cycles.
func TestScheduleOddIntervals(t *testing.T) {
	keys := testKeys()
	created := ntsec.FileTime(150 * KeyCycle)
	for days, cycles := range map[int64]uint64{1: 2, 2: 4, 3: 7, 4: 9, 7: 16, 11: 26} {
		at := created + ntsec.FileTime(cycles*KeyCycle) // the first rotation
		p, err := PlanPasswords(Account{Created: created, IntervalDays: days}, keys, at)
		if err != nil || p.Current.GKID != GKIDAt(at) || p.Previous == nil || p.Previous.GKID != GKIDAt(created) {
			t.Errorf("%d days: %+v %v", days, p, err)
		}
		p, _ = PlanPasswords(Account{Created: created, IntervalDays: days}, keys, at-MaxClockSkew-1) // before the look-ahead window
		if p.Current.GKID != GKIDAt(created) {
			t.Errorf("%d days: rotated early", days)
		}
	}
}
