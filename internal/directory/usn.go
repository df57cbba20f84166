package directory

import (
	"context"
	"crypto/sha256"
	"sync/atomic"

	"gmsa/internal/ntsec"
	"gmsa/internal/store"
)

// USNRecord collects the highest update sequence number — the store revision — that
// the writes of one operation committed, for the update stats control ([MS-ADTS]
// 3.1.1.3.4.1.30: "Highest USN Allocated", 0 when the operation wrote nothing).
type USNRecord struct{ highest atomic.Int64 }

type usnKey struct{}

// RecordUSNs returns a context whose writes are recorded in the returned record.
func RecordUSNs(ctx context.Context) (context.Context, *USNRecord) {
	r := &USNRecord{}
	return context.WithValue(ctx, usnKey{}, r), r
}

// Highest is the highest revision recorded, 0 when none was.
func (r *USNRecord) Highest() int64 { return r.highest.Load() }

func noteUSN(ctx context.Context, rev int64) {
	r, _ := ctx.Value(usnKey{}).(*USNRecord)
	if r == nil {
		return
	}
	for cur := r.highest.Load(); rev > cur && !r.highest.CompareAndSwap(cur, rev); cur = r.highest.Load() {
	}
}

// commit applies ops in one transaction, recording its revision.
func (d *Directory) commit(ctx context.Context, ops ...store.Op) (int64, error) {
	rev, err := d.st.Apply(ctx, ops...)
	if err == nil {
		noteUSN(ctx, rev)
	}
	return rev, err
}

// update is store.Update, recording the revision it committed.
func (d *Directory) update(ctx context.Context, key string, fn func(old store.KV, exists bool) ([]byte, []store.Op, error)) (int64, error) {
	rev, err := store.Update(ctx, d.st, key, fn)
	if err == nil {
		noteUSN(ctx, rev)
	}
	return rev, err
}

// InvocationID identifies this directory's database ([MS-ADTS] 3.1.1.1.9
// dc.invocationId) — the store every server of the domain shares: derived from the
// domain's GUID, so that it is the same on each server and across restarts.
func (d *Directory) InvocationID() ntsec.GUID {
	sum := sha256.Sum256(append([]byte("invocationId\x00"), d.domain.GUID[:]...))
	var g ntsec.GUID
	copy(g[:], sum[:16])
	g[7] = g[7]&0x0f | 0x40 // version 4 and the variant, as the GUIDs this directory makes
	g[8] = g[8]&0x3f | 0x80
	return g
}
