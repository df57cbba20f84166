package directory

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gmsa/internal/audit"
	"gmsa/internal/kds"
	"gmsa/internal/ntsec"
	"gmsa/internal/store"
)

// Domain errors, checked with errors.Is. Transports map them to protocol codes.
var (
	ErrNotFound       = errors.New("no such object")
	ErrExists         = errors.New("already exists")
	ErrInvalid        = errors.New("not allowed")
	ErrNoRootKey      = errors.New("no usable KDS root key")
	ErrNotProvisioned = errors.New("no domain provisioned")
	// ErrUnavailable is the store's: it cannot answer now (etcd without a quorum).
	ErrUnavailable  = store.ErrUnavailable
	ErrAccessDenied = errors.New("access denied")
)

// Options wires a Directory. Now and Rand default to the clock and crypto/rand.
type Options struct {
	Now    func() time.Time
	Rand   io.Reader
	Logger *slog.Logger
	// PasswordCache bounds the engine's seed-key cache (chains; default 1024).
	PasswordCache int
	// Audit receives password and root-key reads, changes and failed authentications;
	// default: none.
	Audit *audit.Log
	// HeavySearches is how many searches past their first units of work may run at
	// once (default: half the processors, at least one).
	HeavySearches int
	// ObjectCache bounds the decoded objects kept for reuse (default 20 000; a
	// negative value keeps none). Each takes about 1 KiB of heap.
	ObjectCache int
	// MaxIndexCandidates bounds the candidates the planner reads from one index term
	// (default 20 000); a term with more is checked per candidate or left to a scan.
	MaxIndexCandidates int
	// TombstoneLifetime is how long deleted objects stay as tombstones before
	// CollectTombstones removes them (default DefaultTombstoneLifetime).
	TombstoneLifetime time.Duration
}

// Directory is the domain over a store.
type Directory struct {
	st        store.Store
	now       func() time.Time
	rand      io.Reader
	log       *slog.Logger
	cache     *kds.Cache
	audit     *audit.Log
	heavy     chan struct{} // slots of heavy searches
	lightDone atomic.Int64  // when a light search last finished (Unix ns; see spend)
	domain    Domain
	sid       ntsec.SID // domain.SID, parsed once

	ridMu           sync.Mutex
	ridNext, ridEnd uint32 // this process's RID pool

	pwMu     sync.Mutex
	pwCache  map[pwKey]kds.Password    // see password
	keyCache map[keysKey][]KerberosKey // see derivedKeys

	objMu        sync.RWMutex
	objCache     map[string]cachedObject // obj/<guid> → decoded record
	objCacheSize int                     // Options.ObjectCache
	decodes      atomic.Uint64           // candidates a search decoded (for tests of the planner)

	maxCandidates     int           // Options.MaxIndexCandidates
	tombstoneLifetime time.Duration // Options.TombstoneLifetime

	classIndexOnce                   sync.Once // see classesMatching
	classesByName, classesByCategory map[string][]Class

	tokMu    sync.Mutex
	tokCache map[ntsec.GUID]cachedToken // see token

	readCache readCache // read decisions, see reads
	feed      feed      // the objects written, for subscribers

	defaults defaultSDs // the classes' default security descriptors, parsed once

	mu          sync.Mutex
	keysRev     int64     // revision of keyRootKeyVersion the cached keys belong to
	keysChecked time.Time // when that revision was last confirmed
	cachedKeys  []kds.RootKey
}

// Domain describes the provisioned domain (forest = domain).
type Domain struct {
	DNSName  string         `json:"dns_name"` // example.test
	Realm    string         `json:"realm"`    // EXAMPLE.TEST
	NetBIOS  string         `json:"netbios"`  // EXAMPLE
	SID      string         `json:"sid"`
	GUID     ntsec.GUID     `json:"guid"`
	BaseDN   string         `json:"base_dn"`   // DC=example,DC=test
	ConfigDN string         `json:"config_dn"` // CN=Configuration,DC=example,DC=test
	DCName   string         `json:"dc_name"`   // DC1
	Created  ntsec.FileTime `json:"created"`
}

// Well-known DNs.
func (d Domain) UsersDN() string     { return "CN=Users," + d.BaseDN }
func (d Domain) ComputersDN() string { return "CN=Computers," + d.BaseDN }
func (d Domain) MSADN() string       { return "CN=Managed Service Accounts," + d.BaseDN }
func (d Domain) DCsDN() string       { return "OU=Domain Controllers," + d.BaseDN }
func (d Domain) BuiltinDN() string   { return "CN=Builtin," + d.BaseDN }
func (d Domain) RootKeysDN() string {
	return "CN=Master Root Keys,CN=Group Key Distribution Service,CN=Services," + d.ConfigDN
}

// lockedReader makes an injected randomness source safe for concurrent use.
type lockedReader struct {
	mu sync.Mutex
	r  io.Reader
}

func (l *lockedReader) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return io.ReadFull(l.r, p)
}

func (o *Options) defaults() {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if _, ok := o.Rand.(*lockedReader); !ok {
		o.Rand = &lockedReader{r: o.Rand}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.PasswordCache == 0 {
		o.PasswordCache = 1024
	}
	if o.Audit == nil {
		o.Audit = audit.Discard()
	}
	if o.HeavySearches <= 0 {
		o.HeavySearches = max(1, runtime.GOMAXPROCS(0)/2)
	}
	if o.ObjectCache == 0 {
		o.ObjectCache = 20_000
	}
	if o.MaxIndexCandidates <= 0 {
		o.MaxIndexCandidates = 20_000
	}
	if o.TombstoneLifetime <= 0 {
		o.TombstoneLifetime = DefaultTombstoneLifetime
	}
}

// newDirectory wires a Directory from its options.
func newDirectory(st store.Store, opt Options) *Directory {
	return &Directory{st: st, now: opt.Now, rand: opt.Rand, log: opt.Logger, cache: kds.NewCache(opt.PasswordCache),
		audit: opt.Audit, heavy: make(chan struct{}, opt.HeavySearches), objCacheSize: opt.ObjectCache, maxCandidates: opt.MaxIndexCandidates,
		tombstoneLifetime: opt.TombstoneLifetime}
}

// Open returns the directory over st, which must hold a provisioned domain.
func Open(ctx context.Context, st store.Store, opt Options) (*Directory, error) {
	opt.defaults()
	kv, err := st.Get(ctx, keyDomain)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("directory: %w: run 'gmsa domain provision' first", ErrNotProvisioned)
	}
	if err != nil {
		return nil, fmt.Errorf("directory: %w", err)
	}
	d := newDirectory(st, opt)
	if err := json.Unmarshal(kv.Value, &d.domain); err != nil {
		return nil, fmt.Errorf("directory: the domain record is damaged: %w", err)
	}
	if d.sid, err = ntsec.ParseSID(d.domain.SID); err != nil {
		return nil, fmt.Errorf("directory: the domain record is damaged: %w", err)
	}
	if err := d.upgradeIndexes(ctx); err != nil {
		return nil, err
	}
	if err := d.ensureSchema(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

// Domain returns the domain's description.
func (d *Directory) Domain() Domain { return d.domain }

func (d *Directory) nowFT() ntsec.FileTime { return ntsec.FileTimeFromTime(d.now()) }

func (d *Directory) newGUID() ntsec.GUID {
	var g ntsec.GUID
	io.ReadFull(d.rand, g[:])
	g[7] = g[7]&0x0f | 0x40
	g[8] = g[8]&0x3f | 0x80
	return g
}

// decode reads an object record.
func decode(kv store.KV) (*Object, error) {
	o := &Object{}
	var err error
	if len(kv.Value) > 0 && kv.Value[0] == recordBinary {
		err = decodeRecord(kv.Value, o)
	} else {
		err = json.Unmarshal(kv.Value, o) // written before the binary form
	}
	if err != nil {
		return nil, fmt.Errorf("directory: object %s is damaged: %w", kv.Key, err)
	}
	o.USNChanged = kv.Rev
	o.parsed()
	if o.USNCreated == 0 {
		o.USNCreated = kv.Rev // never modified: created at this revision
	}
	return o, nil
}

// cachedObject is a decoded record and the revision it was decoded from.
type cachedObject struct {
	rev int64
	o   *Object
}

// decodeCached decodes kv, reusing the object decoded from the same revision. Objects
// the directory returns are shared: callers read them and never modify them (changes go
// through modify, which decodes its own copy).
func (d *Directory) decodeCached(kv store.KV) (*Object, error) { return d.decodeKept(kv, true) }

// decodeKept is decodeCached; evict false keeps the object only while the cache has
// room, so that a scan of the whole directory does not push out the objects in use.
func (d *Directory) decodeKept(kv store.KV, evict bool) (*Object, error) {
	d.objMu.RLock()
	c, ok := d.objCache[kv.Key]
	d.objMu.RUnlock()
	if ok && c.rev == kv.Rev {
		return c.o, nil
	}
	o, err := decode(kv)
	if err != nil {
		return nil, err
	}
	if d.objCacheSize <= 0 {
		return o, nil
	}
	d.objMu.Lock()
	if d.objCache == nil {
		d.objCache = map[string]cachedObject{}
	}
	if len(d.objCache) >= d.objCacheSize && !evict {
		d.objMu.Unlock()
		return o, nil
	}
	if len(d.objCache) >= d.objCacheSize {
		for k := range d.objCache { // random eviction: map order
			delete(d.objCache, k)
			if len(d.objCache) < d.objCacheSize*9/10 {
				break
			}
		}
	}
	d.objCache[kv.Key] = cachedObject{kv.Rev, o}
	d.objMu.Unlock()
	return o, nil
}

// cachedObject is the object decoded from key at revision rev, when the cache has it.
func (d *Directory) cachedObject(key []byte, rev int64) *Object {
	d.objMu.RLock()
	c, ok := d.objCache[string(key)]
	d.objMu.RUnlock()
	if ok && c.rev == rev {
		return c.o
	}
	return nil
}

// candidate decodes a record a search considers, counting it when it is not cached.
// Objects a scan reads are kept only while the cache has room.
func (d *Directory) candidate(kv store.KV, scanned bool) (*Object, error) {
	if o := d.cachedObject([]byte(kv.Key), kv.Rev); o != nil {
		return o, nil
	}
	d.decodes.Add(1)
	return d.decodeKept(kv, !scanned)
}

// byGUID reads an object.
func (d *Directory) byGUID(ctx context.Context, g string) (*Object, error) {
	kv, err := d.st.Get(ctx, "obj/"+g)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("directory: object %s: %w", g, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return d.decodeCached(kv)
}

func (d *Directory) byIndex(ctx context.Context, key string) (*Object, error) {
	kv, err := d.st.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	return d.byGUID(ctx, string(kv.Value))
}

// Resolve finds an object by SID (S-1-…), DN (AD's <SID=…>, <GUID=…> and <WKGUID=…>
// forms too), GUID, sAMAccountName (with or without the trailing $), NETBIOS\name or UPN.
func (d *Directory) Resolve(ctx context.Context, ref string) (*Object, error) {
	ref = strings.TrimSpace(ref)
	if strings.HasPrefix(ref, "<") {
		dn, err := d.ResolveDN(ctx, ref)
		if err != nil {
			return nil, err
		}
		ref = dn
	}
	var keys []string
	switch {
	case ref == "":
		return nil, fmt.Errorf("directory: empty name: %w", ErrNotFound)
	case strings.HasPrefix(strings.ToUpper(ref), "S-1-"):
		keys = []string{sidKey(strings.ToUpper(ref[:1]) + ref[1:])}
	case strings.Contains(ref, "=") && strings.Contains(ref, ","):
		keys = []string{dnKey(ref)}
	case len(ref) == 36 && strings.Count(ref, "-") == 4:
		if o, err := d.byGUID(ctx, strings.ToLower(ref)); err == nil && !o.Deleted {
			return o, nil
		}
	default:
		name := ref
		if i := strings.IndexByte(name, '\\'); i >= 0 {
			if !strings.EqualFold(name[:i], d.domain.NetBIOS) {
				return nil, fmt.Errorf("directory: %q: domain %q is not %s: %w", ref, name[:i], d.domain.NetBIOS, ErrNotFound)
			}
			name = name[i+1:]
		}
		if i := strings.IndexByte(name, '@'); i >= 0 {
			if !strings.EqualFold(name[i+1:], d.domain.DNSName) && !strings.EqualFold(name[i+1:], d.domain.Realm) {
				return nil, fmt.Errorf("directory: %q: realm %q is not %s: %w", ref, name[i+1:], d.domain.Realm, ErrNotFound)
			}
			name = name[:i]
		}
		keys = []string{samKey(name)}
		if !strings.HasSuffix(name, "$") {
			keys = append(keys, samKey(name+"$"))
		}
	}
	for _, k := range keys {
		o, err := d.byIndex(ctx, k)
		if err == nil && !o.Deleted { // a tombstone is found only by a search that shows deleted objects
			return o, nil
		}
		if err == nil {
			continue
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("directory: %q: %w", ref, ErrNotFound)
}

// List returns every object of a class.
func (d *Directory) List(ctx context.Context, c Class) ([]*Object, error) {
	kvs, err := d.st.List(ctx, "class/"+string(c)+"/")
	if err != nil {
		return nil, err
	}
	out := make([]*Object, 0, len(kvs))
	for _, kv := range kvs {
		o, err := d.byGUID(ctx, kv.Key[strings.LastIndexByte(kv.Key, '/')+1:])
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

// uniqueIndex reports whether an index key must be unique.
func uniqueIndex(k string) bool {
	return strings.HasPrefix(k, "dn/") || strings.HasPrefix(k, "sam/") || strings.HasPrefix(k, "sid/") || strings.HasPrefix(k, "spn/")
}

// createOps are the ops that add o with its indexes.
func createOps(o *Object) []store.Op {
	ops := []store.Op{store.Create(objKey(o.GUID), o.encode())}
	for k, v := range indexOps(o) {
		if uniqueIndex(k) {
			ops = append(ops, store.Create(k, v))
		} else {
			ops = append(ops, store.Put(k, v))
		}
	}
	return ops
}

// conflictError turns a failed uniqueness condition into a message naming the holder.
func (d *Directory) conflictError(ctx context.Context, err error) error {
	var oe *store.OpError
	if !errors.As(err, &oe) || !errors.Is(err, store.ErrExists) {
		return err
	}
	what, value, _ := strings.Cut(oe.Key, "/")
	holder := "another object"
	if o, herr := d.byIndex(ctx, oe.Key); herr == nil {
		holder = o.DN
	}
	names := map[string]string{"sam": "sAMAccountName", "spn": "servicePrincipalName", "dn": "distinguished name", "sid": "objectSid"}
	return fmt.Errorf("directory: %s %q is already used by %s: %w", names[what], value, holder, ErrExists)
}

// ridPoolSize is how many RIDs one counter update reserves, as a DC takes a RID pool
// from the RID master; RIDs of a pool not used before a restart are skipped, never reused.
const ridPoolSize = 100

// allocateRID hands out the next RID of this process's pool, reserving a new pool
// from the store's counter when it runs out.
func (d *Directory) allocateRID(ctx context.Context) (uint32, error) {
	d.ridMu.Lock()
	defer d.ridMu.Unlock()
	if d.ridNext == d.ridEnd {
		var start uint64
		_, err := d.update(ctx, keyNextRID, func(old store.KV, exists bool) ([]byte, []store.Op, error) {
			start = 1000
			if exists {
				var err error
				if start, err = strconv.ParseUint(string(old.Value), 10, 32); err != nil {
					return nil, nil, fmt.Errorf("directory: RID counter is damaged: %q", old.Value)
				}
			}
			if start+ridPoolSize >= 1<<30 {
				return nil, nil, fmt.Errorf("directory: the domain has used all 2^30 RIDs: %w", ErrInvalid)
			}
			return []byte(strconv.FormatUint(start+ridPoolSize, 10)), nil, nil
		})
		if err != nil {
			return 0, err
		}
		d.ridNext, d.ridEnd = uint32(start), uint32(start+ridPoolSize)
	}
	d.ridNext++
	return d.ridNext - 1, nil
}

// create adds o. With allocateSID, o gets the domain SID plus a fresh RID.
func (d *Directory) create(ctx context.Context, o *Object, allocateSID bool) error {
	now := d.nowFT()
	o.Created, o.Changed = now, now
	if o.SD == nil {
		sd, err := d.creatorSD(ctx, o.Class)
		if err != nil {
			return err
		}
		o.SD = sd
	}
	if allocateSID {
		rid, err := d.allocateRID(ctx)
		if err != nil {
			return err
		}
		o.SID = d.sid.Child(rid).String()
	}
	_, err := d.commit(ctx, createOps(o)...)
	if err == nil {
		d.published(o.GUID)
	}
	return d.conflictError(ctx, err)
}

// modify changes the object with the given GUID through fn under compare-and-swap,
// keeping its indexes in step; extra ops join the batch.
func (d *Directory) modify(ctx context.Context, g ntsec.GUID, fn func(o *Object) ([]store.Op, error)) (*Object, error) {
	var result *Object
	_, err := d.update(ctx, objKey(g), func(old store.KV, exists bool) ([]byte, []store.Op, error) {
		if !exists {
			return nil, nil, fmt.Errorf("directory: object %s: %w", g, ErrNotFound)
		}
		cur, err := decode(old)
		if err != nil {
			return nil, nil, err
		}
		before := indexOps(cur)
		next, _ := decode(old) // a deep copy for fn to change; keeps USNCreated
		extra, err := fn(next)
		if err != nil {
			return nil, nil, err
		}
		next.parsed() // fn may have changed what was parsed from the old value
		next.Changed = d.nowFT()
		result = next
		return next.encode(), append(reindex(before, indexOps(next)), extra...), nil
	})
	if err != nil {
		return nil, d.conflictError(ctx, err)
	}
	d.published(result.GUID)
	return result, nil
}

// reindex is what turns an object's index entries before into those after.
func reindex(before, after map[string][]byte) []store.Op {
	var ops []store.Op
	for k := range before {
		if _, keep := after[k]; !keep {
			ops = append(ops, store.Delete(k))
		}
	}
	for k, v := range after {
		old, had := before[k]
		switch {
		case !had && uniqueIndex(k):
			ops = append(ops, store.Create(k, v))
		case !had || !bytes.Equal(old, v): // a moved object's index entries carry its new DN
			ops = append(ops, store.Put(k, v))
		}
	}
	return ops
}

// remove deletes o and its indexes for good; groups lose it as a member.
func (d *Directory) remove(ctx context.Context, o *Object) error {
	ops := []store.Op{store.DeleteAt(objKey(o.GUID), o.USNChanged)}
	for k := range indexOps(o) {
		ops = append(ops, store.Delete(k))
	}
	_, err := d.commit(ctx, ops...)
	if errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("directory: %s changed while being removed; try again: %w", o.DN, err)
	}
	if err != nil {
		return err
	}
	return d.leaveGroups(ctx, o)
}

// leaveGroups takes o out of every group that lists it.
func (d *Directory) leaveGroups(ctx context.Context, o *Object) error {
	groups, err := d.st.List(ctx, "memberof/"+o.GUID.String()+"/")
	if err != nil {
		return err
	}
	for _, kv := range groups {
		gg := kv.Key[strings.LastIndexByte(kv.Key, '/')+1:]
		g, err := ntsec.ParseGUID(gg)
		if err != nil {
			continue
		}
		if _, err := d.modify(ctx, g, func(grp *Object) ([]store.Op, error) {
			grp.Members = without(grp.Members, o.GUID.String())
			return nil, nil
		}); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	return nil
}

func without(list []string, v string) []string {
	out := list[:0:0]
	for _, x := range list {
		if !strings.EqualFold(x, v) {
			out = append(out, x)
		}
	}
	return out
}
