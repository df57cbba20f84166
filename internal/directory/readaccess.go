package directory

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"

	"gmsa/internal/ntsec"
	"gmsa/internal/store"
)

// Reading follows the security descriptors ([MS-ADTS] 3.1.1.4.3, 5.1.3.3.3): an object
// is in a search's results only when the requester may list its parent's children
// (RIGHT_DS_LIST_CONTENTS), and each attribute is there only when it may read the
// attribute (RIGHT_DS_READ_PROPERTY on it, its property set or the whole object, and
// RIGHT_DS_CONTROL_ACCESS too for a confidential one). An attribute it may not read is
// absent in results and in filters alike. The attributes' own rules still come first:
// stored secrets are never read, and root keys' data only by their administrators.
//
// Decisions are shared by the objects that share everything they depend on — the
// requester's token, the parent, the class, the object's own security descriptor and
// whether the requester is the object (PRINCIPAL_SELF) — so a search over an OU of
// similar accounts decides once per attribute, not once per object.

// searchFlagConfidential marks a confidential attribute ([MS-ADTS] 2.2.9, fCONFIDENTIAL).
const searchFlagConfidential = 0x80

// readKey is what read decisions depend on.
type readKey struct {
	tok    *Token
	parent string
	class  Class
	sd     string
	self   bool
}

// readRights are one readKey's decisions, made on first use.
type readRights struct {
	all    bool // SYSTEM
	listed bool
	sd     *ntsec.SecurityDescriptor // the object's, with what it inherits
	tok    *ntsec.Token
	self   ntsec.SID
	attr   []atomic.Uint32 // by attrDef.idx: 0 undecided, 1 denied, 2 granted
}

var systemReads = &readRights{all: true, listed: true}

// may reports whether the attribute may be read.
func (r *readRights) may(a *attrDef) bool {
	if r.all {
		return true
	}
	if r.sd == nil {
		return false
	}
	switch r.attr[a.idx].Load() {
	case 1:
		return false
	case 2:
		return true
	}
	granted := ntsec.AccessCheckObject(r.sd, r.tok, ntsec.RightDSReadProperty, r.self, a.types).Granted
	if granted && a.confidential {
		granted = ntsec.AccessCheckObject(r.sd, r.tok, ntsec.RightDSControlAccess, r.self, a.types).Granted
	}
	state := uint32(1)
	if granted {
		state = 2
	}
	r.attr[a.idx].Store(state) // two requests deciding at once decide alike
	return granted
}

// readCacheSize bounds the directory's cache of read decisions.
const readCacheSize = 4096

// readCache holds read decisions while the store vouches that nothing was written.
type readCache struct {
	mu      sync.Mutex
	gen     uint64
	entries map[readKey]*readRights
}

// reads returns req's read decisions for o: the search's last ones when o shares their
// key, else the directory's cached ones, else computed.
func (d *Directory) reads(ctx context.Context, b *budget, req *Requester, o *Object) *readRights {
	if req == nil || req.Token == nil {
		return &readRights{}
	}
	if req.Token.User.Equal(ntsec.SIDSystem) {
		return systemReads
	}
	_, parent, _ := strings.Cut(o.DN, ",")
	key := readKey{tok: req.Token, parent: parent, class: o.Class, sd: string(o.SD)}
	if o.SID != "" {
		key.self = req.Token.Has(o.ObjectSID())
	}
	if b != nil && b.reads != nil && b.readsKey == key { // a search's objects come in runs alike
		return b.reads
	}
	r := d.cachedReads(ctx, key, o)
	if b != nil {
		b.readsKey, b.reads = key, r
	}
	return r
}

// cachedReads is the directory-wide layer of reads.
func (d *Directory) cachedReads(ctx context.Context, key readKey, o *Object) *readRights {
	gens, _ := d.st.(store.Generations)
	var gen uint64
	ok := false
	if gens != nil {
		gen, ok = gens.Generation()
	}
	if ok {
		d.readCache.mu.Lock()
		r, hit := d.readCache.entries[key]
		fresh := d.readCache.gen == gen
		d.readCache.mu.Unlock()
		if hit && fresh {
			return r
		}
	}
	r := d.computeReads(ctx, key, o)
	if ok {
		if after, still := gens.Generation(); still && after == gen { // no write overtook the reads
			d.readCache.mu.Lock()
			if d.readCache.entries == nil || d.readCache.gen != gen || len(d.readCache.entries) >= readCacheSize {
				d.readCache.gen, d.readCache.entries = gen, map[readKey]*readRights{}
			}
			d.readCache.entries[key] = r
			d.readCache.mu.Unlock()
		}
	}
	return r
}

// computeReads evaluates the security descriptors for key: LIST_CONTENTS on the parent
// (the naming context's head has none above it here) and the object's own descriptor
// for its attributes. A descriptor that cannot be computed denies everything.
func (d *Directory) computeReads(ctx context.Context, key readKey, o *Object) *readRights {
	r := &readRights{tok: &key.tok.Token, attr: make([]atomic.Uint32, len(attrByIdx))}
	if key.self {
		r.self = o.ObjectSID()
	}
	sd, err := d.effectiveSD(ctx, o)
	if err != nil {
		d.log.Warn("read access: no security descriptor", "dn", o.DN, "err", err)
		return r
	}
	r.sd = sd
	r.listed = true
	if o.Class != ClassDomain && key.parent != "" {
		if p, err := d.byIndex(ctx, dnKey(key.parent)); err == nil {
			psd, err := d.effectiveSD(ctx, p)
			r.listed = err == nil && ntsec.AccessCheckObject(psd, r.tok, ntsec.RightDSListChildren, p.ObjectSID(), nil).Granted
		}
	}
	return r
}
