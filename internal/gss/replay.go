package gss

import (
	"crypto/sha256"
	"sync"
	"time"
)

// ReplayCache remembers the authenticators accepted within the clock skew, so an
// AP-REQ captured on the wire cannot be presented again ([RFC 4120] 3.2.3). It holds
// at most Max entries: when full, entries older than the skew go first, then the
// cache refuses nothing it cannot remember (it starts again) rather than grow.
type ReplayCache struct {
	Skew time.Duration
	Max  int
	mu   sync.Mutex
	seen map[[32]byte]time.Time
}

// Fresh records an authenticator (by its ciphertext) and reports whether it is new.
func (r *ReplayCache) Fresh(authenticator []byte, ctime, now time.Time) bool {
	id := sha256.Sum256(authenticator)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = map[[32]byte]time.Time{}
	}
	if _, ok := r.seen[id]; ok {
		return false
	}
	if len(r.seen) >= r.Max {
		for k, t := range r.seen {
			if now.Sub(t) > 2*r.Skew {
				delete(r.seen, k)
			}
		}
		if len(r.seen) >= r.Max {
			clear(r.seen)
		}
	}
	r.seen[id] = ctime
	return true
}
