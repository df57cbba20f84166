package directory

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"gmsa/internal/ntsec"
)

// DirSync ([MS-ADTS] 3.1.1.3.4.1.3, the LDAP_SERVER_DIRSYNC_OID control): a client
// reads the objects of the domain that changed since its cookie — all of them the first
// time —, deleted ones as tombstones, a batch at a time, and keeps the cookie for the
// next read. Our cookie is opaque to the client:
//
//	"gmsa-dirsync/1/" + watermark + "/" + phase + "/" + position
//
// The first read notes the store revision of the newest object (the watermark) and
// then hands out every object in GUID order (phase "all", position: the last GUID
// handed out); after it, changes are the objects written after the watermark, in
// revision order (phase "changes", position: the last revision and GUID handed out).
// An object changed during the first read comes again in the changes: a sync client
// applies the same object twice, never misses one. Every change of an object counts,
// not attribute by attribute: the entries carry every attribute asked for.

// rightGetChanges is DS-Replication-Get-Changes, which a DirSync read needs on the
// domain unless it asks to be checked object by object.
var rightGetChanges = ntsec.MustParseGUID("1131f6aa-9c07-11d1-f79f-00c04fc2dcd2")

// DirSyncObjectSecurity is the flag (LDAP_DIRSYNC_OBJECT_SECURITY) that makes a
// DirSync read need only the read rights each object grants.
const DirSyncObjectSecurity = 0x1

// ErrBadCookie refuses a DirSync cookie this directory did not issue.
var ErrBadCookie = errors.New("the DirSync cookie is not one this directory issued (read again without a cookie to start over)")

type dirSyncCookie struct {
	watermark int64
	changes   bool   // past the first read
	rev       int64  // changes: the last revision handed out
	guid      string // the last GUID handed out (in the first read, or at rev)
}

func (c dirSyncCookie) String() string {
	phase, pos := "all", c.guid
	if c.changes {
		phase, pos = "changes", strconv.FormatInt(c.rev, 10)+":"+c.guid
	}
	return "gmsa-dirsync/1/" + strconv.FormatInt(c.watermark, 10) + "/" + phase + "/" + pos
}

func parseDirSyncCookie(b []byte) (dirSyncCookie, error) {
	var c dirSyncCookie
	if len(b) == 0 {
		return c, nil
	}
	parts := strings.Split(string(b), "/")
	if len(parts) != 5 || parts[0] != "gmsa-dirsync" || parts[1] != "1" {
		return c, ErrBadCookie
	}
	var err error
	if c.watermark, err = strconv.ParseInt(parts[2], 10, 64); err != nil || c.watermark < 0 {
		return c, ErrBadCookie
	}
	switch parts[3] {
	case "all":
		c.guid = parts[4]
	case "changes":
		rev, guid, ok := strings.Cut(parts[4], ":")
		if c.rev, err = strconv.ParseInt(rev, 10, 64); !ok || err != nil || c.rev < c.watermark {
			return c, ErrBadCookie
		}
		c.changes, c.guid = true, guid
	default:
		return c, ErrBadCookie
	}
	if c.guid != "" {
		if _, err := ntsec.ParseGUID(c.guid); err != nil {
			return c, ErrBadCookie
		}
	}
	return c, nil
}

// DirSync hands fn up to limit objects of q (its base must be the domain, its scope the
// subtree) changed since cookie, tombstones included, and returns the cookie to read on
// with and whether more changes wait already.
func (d *Directory) DirSync(ctx context.Context, req *Requester, q Query, flags int64, cookie []byte, limit int, fn func(*Match) error) ([]byte, bool, error) {
	if req == nil || req.Token == nil {
		return nil, false, fmt.Errorf("directory: %w", ErrNeedBind)
	}
	base, err := d.ResolveDN(ctx, q.Base)
	if err != nil {
		return nil, false, err
	}
	if normDN(base) != normDN(d.domain.BaseDN) || q.Scope != ScopeSub {
		return nil, false, fmt.Errorf("directory: 00002080: a DirSync read covers the whole domain: base %s, subtree scope: %w", d.domain.BaseDN, ErrInvalid)
	}
	if flags&DirSyncObjectSecurity == 0 {
		domain, err := d.byIndex(ctx, dnKey(d.domain.BaseDN))
		if err != nil {
			return nil, false, err
		}
		if err := d.checkAccess(ctx, req, domain, ntsec.RightDSControlAccess, "read the domain's changes (DS-Replication-Get-Changes)", rightGetChanges); err != nil {
			return nil, false, err
		}
	}
	c, err := parseDirSyncCookie(cookie)
	if err != nil {
		return nil, false, fmt.Errorf("directory: %w: %w", err, ErrInvalid)
	}
	// Reading every object's revision is charged as a search's scan is: it holds a
	// heavy-search slot past its first units and ends at the deadline.
	b := &budget{d: d, ctx: ctx, deadline: q.Deadline}
	defer b.finish()
	if c.watermark == 0 && !c.changes && c.guid == "" { // the first read: note the newest revision
		err := d.eachRevision(ctx, b, func(_ string, rev int64) { c.watermark = max(c.watermark, rev) })
		if err != nil {
			return nil, false, err
		}
	}
	q.ShowDeleted = true
	sent := 0
	if !c.changes {
		// The first read: every object, in GUID order, a batch at a time.
		q.After = c.guid
		err := d.Search(ctx, req, q, func(m *Match) error {
			if sent == limit {
				return errBatchFull
			}
			sent++
			c.guid = m.o.GUID.String()
			return fn(m)
		})
		switch {
		case errors.Is(err, errBatchFull):
			return []byte(c.String()), true, nil
		case err != nil:
			return nil, false, err
		}
		c = dirSyncCookie{watermark: c.watermark, changes: true, rev: c.watermark}
		return []byte(c.String()), false, nil
	}
	// The changes: the objects written after the cookie's place, in revision order.
	type changed struct {
		rev  int64
		guid string
	}
	var todo []changed
	err = d.eachRevision(ctx, b, func(g string, rev int64) {
		if rev > c.rev || c.guid != "" && rev == c.rev && g > c.guid { // no GUID: all of c.rev was handed out
			todo = append(todo, changed{rev, g})
		}
	})
	if err != nil {
		return nil, false, err
	}
	slices.SortFunc(todo, func(a, b changed) int {
		return cmp.Or(cmp.Compare(a.rev, b.rev), strings.Compare(a.guid, b.guid))
	})
	for i, ch := range todo {
		if sent == limit {
			return []byte(c.String()), i < len(todo), nil
		}
		c.rev, c.guid = ch.rev, ch.guid
		o, err := d.byGUID(ctx, ch.guid)
		if errors.Is(err, ErrNotFound) {
			continue // removed for good since
		}
		if err != nil {
			return nil, false, err
		}
		if o.USNChanged != ch.rev {
			continue // changed again: it comes at its newer revision
		}
		bq := q
		bq.Base, bq.Scope, bq.After = o.DN, ScopeBase, ""
		if err := d.Search(ctx, req, bq, func(m *Match) error { sent++; return fn(m) }); err != nil && !errors.Is(err, ErrNoSuchBase) {
			return nil, false, err
		}
	}
	return []byte(c.String()), false, nil
}

// errBatchFull ends a DirSync batch.
var errBatchFull = errors.New("batch full")

// eachRevision calls fn with every object's GUID and revision, a batch per read view,
// each batch charged to b.
func (d *Directory) eachRevision(ctx context.Context, b *budget, fn func(guid string, rev int64)) error {
	pos := ""
	for {
		seen := 0
		err := d.st.Scan(ctx, "obj/", pos, func(k, _ []byte, rev int64) bool {
			seen++
			pos = string(k)
			fn(pos[len("obj/"):], rev)
			return seen < scanBatch
		})
		if err != nil {
			return err
		}
		if seen < scanBatch {
			return nil
		}
		if !b.spend(seen) {
			return b.err
		}
	}
}
