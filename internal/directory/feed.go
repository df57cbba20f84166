package directory

import (
	"sync"

	"gmsa/internal/ntsec"
)

// The change feed tells subscribers (the LDAP notification control, [MS-ADTS]
// 3.1.1.3.4.1.9) which objects this directory has just written: created, changed,
// moved, deleted (a tombstone is a change). It carries GUIDs only; a subscriber reads
// the object as its requester may. A subscriber that falls behind by more than its
// buffer is dropped — its channel closes — rather than ever slowing a write. Writes that
// other servers make to a shared store (etcd) are not in this server's feed.

type feed struct {
	mu   sync.Mutex
	subs map[chan ntsec.GUID]struct{}
}

// Subscribe returns a channel of the GUIDs of the objects written from now on, and the
// function that ends the subscription. The channel closes when the subscriber falls
// more than buffer writes behind, or when the subscription ends.
func (d *Directory) Subscribe(buffer int) (<-chan ntsec.GUID, func()) {
	ch := make(chan ntsec.GUID, max(buffer, 1))
	d.feed.mu.Lock()
	if d.feed.subs == nil {
		d.feed.subs = map[chan ntsec.GUID]struct{}{}
	}
	d.feed.subs[ch] = struct{}{}
	d.feed.mu.Unlock()
	return ch, func() {
		d.feed.mu.Lock()
		defer d.feed.mu.Unlock()
		if _, ok := d.feed.subs[ch]; ok {
			delete(d.feed.subs, ch)
			close(ch)
		}
	}
}

// published tells the subscribers that the objects gs were written.
func (d *Directory) published(gs ...ntsec.GUID) {
	d.feed.mu.Lock()
	defer d.feed.mu.Unlock()
	for ch := range d.feed.subs {
		for _, g := range gs {
			select {
			case ch <- g:
			default: // behind: dropped, its reader learns it from the closed channel
				delete(d.feed.subs, ch)
				close(ch)
			}
			if _, still := d.feed.subs[ch]; !still {
				break
			}
		}
	}
}
