package kds

import (
	"bytes"
	"encoding/hex"
	"testing"

	"gmsa/internal/ldif"
	"gmsa/internal/managedpw"
	"gmsa/internal/ntsec"
	"gmsa/internal/vectors"
)

type ldifAttributes struct{ e *ldif.Entry }

func (l ldifAttributes) Text(n string) (string, bool) { v := l.e.First(n); return string(v), v != nil }
func (l ldifAttributes) Binary(n string) ([]byte, bool, error) {
	v := l.e.First(n)
	return v, v != nil, nil
}

// Known answers exported from a live Samba 4.22 DC (test/interop -export-vectors): 24
// gMSAs with intervals of 1 to 30 days, right after creation and 45 days later. Each
// blob must come out of (1) the stored ids and (2) the schedule alone.
func TestSamba422Vectors(t *testing.T) {
	exp := vectors.Samba()
	entries, err := ldif.Parse([]byte(exp.RootKeysLDIF))
	if err != nil {
		t.Fatal(err)
	}
	var keys []RootKey
	for _, e := range entries {
		if e.First("msKds-RootKeyData") == nil {
			continue
		}
		k, err := RootKeyFromAttributes(ldifAttributes{e})
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	if len(keys) != 2 || len(exp.Snapshots) != 2 {
		t.Fatalf("export has %d root keys and %d snapshots", len(keys), len(exp.Snapshots))
	}
	cache := NewCache(64)
	checked, previous := 0, 0
	for _, snap := range exp.Snapshots {
		for _, a := range snap.Accounts {
			sid := ntsec.MustParseSID(a.SID)
			raw, _ := hex.DecodeString(a.Blob)
			blob, err := managedpw.Decode(raw)
			if err != nil {
				t.Fatal(err)
			}
			idRaw, _ := hex.DecodeString(a.PasswordID)
			id, err := ParsePasswordID(idRaw)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(id.Bytes(), idRaw) {
				t.Errorf("%s: msDS-ManagedPasswordId does not re-encode byte for byte", a.Name)
			}
			rk, err := FindRootKey(keys, id.RootKeyID)
			if err != nil {
				t.Fatal(err)
			}
			pw, err := cache.Password(rk, id.GKID, sid.Bytes())
			if err != nil || !bytes.Equal(pw[:], blob.Current) {
				t.Errorf("%s (%s): password from the id differs (%v)", a.Name, snap.Phase, err)
			}
			if blob.Previous != nil {
				prevRaw, _ := hex.DecodeString(a.PreviousID)
				pid, err := ParsePasswordID(prevRaw)
				if err != nil {
					t.Fatal(err)
				}
				prk, _ := FindRootKey(keys, pid.RootKeyID)
				ppw, err := DerivePassword(prk, pid.GKID, sid.Bytes())
				if err != nil || !bytes.Equal(ppw[:], blob.Previous) {
					t.Errorf("%s (%s): previous password from the previous id differs", a.Name, snap.Phase)
				}
				previous++
			}

			// The schedule alone, from whenCreated, the interval and the time of the read.
			created, _ := ntsec.ParseFileTime(a.WhenCreated)
			at, _ := ntsec.ParseFileTime(a.ReadAt)
			plan, err := PlanPasswords(Account{Created: created, IntervalDays: a.IntervalDays}, keys, at)
			if err != nil {
				t.Fatal(err)
			}
			if plan.Current.GKID != id.GKID || plan.Current.RootKey.ID != id.RootKeyID {
				t.Errorf("%s (%s): schedule gives %v with %s, Samba stored %v with %s", a.Name, snap.Phase,
					plan.Current.GKID, plan.Current.RootKey.ID, id.GKID, id.RootKeyID)
			}
			if (plan.Previous != nil) != (blob.Previous != nil) {
				t.Errorf("%s (%s): schedule previous %v, Samba's blob has previous %v", a.Name, snap.Phase, plan.Previous != nil, blob.Previous != nil)
			} else if plan.Previous != nil {
				ppw, _ := DerivePassword(plan.Previous.RootKey, plan.Previous.GKID, sid.Bytes())
				if !bytes.Equal(ppw[:], blob.Previous) {
					t.Errorf("%s (%s): schedule previous password differs", a.Name, snap.Phase)
				}
			}
			// read_at is taken just before the search, so our interval is a little longer.
			if d := int64(plan.Query) - int64(blob.QueryInterval); d < 0 || d > 60*ntsec.TicksPerSecond {
				t.Errorf("%s (%s): query interval ours %d, Samba's %d", a.Name, snap.Phase, plan.Query, blob.QueryInterval)
			}
			if blob.QueryInterval-blob.UnchangedInterval != MaxClockSkew || plan.Query-plan.Unchanged != MaxClockSkew {
				t.Errorf("%s: unchanged interval is not query − 5 min", a.Name)
			}
			checked++
		}
	}
	if checked != 48 || previous != 24 {
		t.Fatalf("checked %d blobs and %d previous passwords, want 48 and 24", checked, previous)
	}
}
