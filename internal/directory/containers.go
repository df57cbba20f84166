package directory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"gmsa/internal/audit"
	"gmsa/internal/ntsec"
	"gmsa/internal/store"
)

// ErrNotLeaf refuses to delete or move an object that still has objects below it
// ([RFC 4511] notAllowedOnNonLeaf).
var ErrNotLeaf = errors.New("the object has objects below it")

// NewContainer creates an organizational unit (OU=name) or a container (CN=name) under
// parent (default the domain), where AD's schema allows it ([MS-ADSC]
// organizationalUnit's possible superiors are the domain and other OUs; a container
// may live under a container too).
func (d *Directory) NewContainer(ctx context.Context, req *Requester, class Class, name, parent, description string) (*Object, error) {
	ctx, done := d.created(ctx, req, parent, d.domain.BaseDN, class)
	return done(d.newContainer(ctx, class, name, parent, description))
}

func (d *Directory) newContainer(ctx context.Context, class Class, name, parent, description string) (*Object, error) {
	rdn := map[Class]string{ClassOU: "OU", ClassContainer: "CN"}[class]
	if rdn == "" {
		return nil, fmt.Errorf("directory: 0000207F: %s is not a container class (organizationalUnit, container): %w", class, ErrObjectClass)
	}
	if name == "" || strings.ContainsAny(name, ",+\"<>;=\\") || strings.TrimSpace(name) != name || strings.HasPrefix(name, "#") || len(name) > 64 {
		return nil, fmt.Errorf("directory: 00002099: %q is not a name this directory takes for a container (1–64 characters, none that need escaping in a DN): %w", name, ErrNamingViolation)
	}
	if parent == "" {
		parent = d.domain.BaseDN
	}
	p, err := d.byIndex(ctx, dnKey(parent))
	if err != nil {
		return nil, fmt.Errorf("directory: parent %q does not exist: %w", parent, ErrNoSuchBase)
	}
	allowed := p.Class == ClassDomain || p.Class == ClassOU || class == ClassContainer && p.Class == ClassContainer
	if !allowed {
		return nil, fmt.Errorf("directory: 00002099: a %s cannot be created under the %s %s: %w", class, p.Class, p.DN, ErrNamingViolation)
	}
	o := &Object{GUID: d.newGUID(), Class: class, Name: name, DN: rdn + "=" + name + "," + p.DN, Description: description}
	if err := d.create(ctx, o, false); err != nil {
		return nil, err
	}
	return o, nil
}

// systemObject reports whether o is part of the domain's provisioned layout, which is
// never deleted or moved (AD's FLAG_DISALLOW_DELETE): the domain, its well-known
// containers, Builtin, System, the Domain Controllers OU and the configuration.
func (d *Directory) systemObject(o *Object) bool {
	if o.Class == ClassDomain {
		return true
	}
	ndn := normDN(o.DN)
	if ndn == normDN(d.domain.ConfigDN) || strings.HasSuffix(ndn, ","+normDN(d.domain.ConfigDN)) {
		return true
	}
	for _, dn := range []string{d.domain.UsersDN(), d.domain.ComputersDN(), d.domain.MSADN(), d.domain.DCsDN(), d.domain.BuiltinDN(),
		"CN=System," + d.domain.BaseDN, "CN=Deleted Objects," + d.domain.BaseDN} {
		if ndn == normDN(dn) {
			return true
		}
	}
	for _, dnOf := range wellKnownObjects {
		if ndn == normDN(dnOf(d.domain)) {
			return true
		}
	}
	return false
}

// children lists up to max GUIDs of the objects directly below ndn (max 0: all).
func (d *Directory) children(ctx context.Context, ndn string, max int) ([]string, error) {
	var out []string
	err := d.st.Scan(ctx, treeParent(ndn)+"\x00", "", func(_, v []byte, _ int64) bool {
		out = append(out, string(v))
		return max == 0 || len(out) < max
	})
	return out, err
}

// removeContainer deletes an OU or container the administrators created; it must be
// empty.
func (d *Directory) removeContainer(ctx context.Context, o *Object) error {
	if d.systemObject(o) {
		return fmt.Errorf("directory: %s is a container of the domain's layout and cannot be removed: %w", o.DN, ErrInvalid)
	}
	kids, err := d.children(ctx, normDN(o.DN), 1)
	if err != nil {
		return err
	}
	if len(kids) > 0 {
		return fmt.Errorf("directory: 0000208C: %s: %w (delete them first, or use the tree delete control)", o.DN, ErrNotLeaf)
	}
	return d.tombstone(ctx, o)
}

// DeleteTree removes the object at dn and everything below it (the tree delete
// control, [MS-ADTS] 3.1.1.5.5.7.2), deepest objects first, each one atomically, so
// the tree is whole at every moment; nothing is deleted when the subtree holds a
// built-in principal, the domain controller or a part of the domain's layout. A
// deadline reached midway leaves the rest for a repeated request, as AD's does.
//
// limit, when not 0, is the tree delete EX control's countOfObjectsToDelete ([MS-ADTS]
// 3.1.1.3.4.1.31): at most that many objects (2 to 16 384) go in this request, and
// when that is not the whole tree the root stays and the answer is ErrAdminLimit.
func (d *Directory) DeleteTree(ctx context.Context, req *Requester, dn string, limit int) (int, error) {
	root, err := d.Resolve(ctx, dn)
	if err != nil {
		return 0, err
	}
	if err := d.checkAccess(ctx, req, root, ntsec.RightDSDeleteTree, "delete the subtree"); err != nil {
		return 0, err
	}
	all, err := d.below(ctx, root.DN)
	if err != nil {
		return 0, err
	}
	all = append(all, root)
	for _, o := range all {
		if err := d.removable(o); err != nil {
			return 0, err
		}
	}
	// Deepest first: more RDNs, later in the DN tree.
	slices.SortStableFunc(all, func(a, b *Object) int { return strings.Count(b.DN, ",") - strings.Count(a.DN, ",") })
	if limit != 0 {
		limit = min(max(limit, minTreeDeleteCount), maxTreeDeleteCount)
	}
	deleted := 0
	for _, o := range all {
		if limit != 0 && deleted == limit {
			d.changed(req, fmt.Sprintf("tree delete (%d objects, unfinished)", deleted), root.DN)
			return deleted, fmt.Errorf("directory: %w: 000020CD: %d of %d objects below %s deleted (ERROR_DS_TREE_DELETE_NOT_FINISHED); repeat the request for the rest",
				ErrAdminLimit, deleted, len(all), root.DN)
		}
		if err := ctx.Err(); err != nil {
			return deleted, fmt.Errorf("directory: %w: %d of %d objects below %s deleted; repeat the request for the rest", ErrAdminLimit, deleted, len(all), root.DN)
		}
		if err := d.tombstone(ctx, o); err != nil && !errors.Is(err, ErrNotFound) {
			return deleted, err
		}
		deleted++
	}
	d.changed(req, fmt.Sprintf("tree delete (%d objects)", deleted), root.DN)
	return deleted, nil
}

// The tree delete EX control's bounds on countOfObjectsToDelete ([MS-ADTS] 3.1.1.3.4.1.31).
const (
	minTreeDeleteCount = 2
	maxTreeDeleteCount = 16384
)

// below lists every object under the DN root, at any depth.
func (d *Directory) below(ctx context.Context, root string) ([]*Object, error) {
	var all []*Object
	rootN := normDN(root)
	for _, prefix := range []string{treeParent(rootN) + "\x00", treeParent(rootN) + ","} {
		err := d.st.Scan(ctx, prefix, "", func(_, v []byte, _ int64) bool {
			o, gerr := d.byGUID(ctx, string(v))
			if gerr == nil {
				all = append(all, o)
			}
			return ctx.Err() == nil
		})
		if err != nil {
			return nil, err
		}
	}
	return all, ctx.Err()
}

// maxMoveOps bounds the store operations of one subtree move: the whole move is one
// transaction (a store may take fewer, see MaxBatch).
const maxMoveOps = 200_000

// moveBelow is what renaming or moving a container from oldDN to newDN does to the
// objects below it, in the same transaction: each gets its new DN and index entries,
// on the condition that it has not changed since it was read.
func (d *Directory) moveBelow(ctx context.Context, oldDN, newDN string) ([]store.Op, []ntsec.GUID, error) {
	kids, err := d.below(ctx, oldDN)
	if err != nil {
		return nil, nil, err
	}
	limit := maxMoveOps
	if b, ok := d.st.(interface{ MaxBatch() int }); ok {
		limit = min(limit, b.MaxBatch())
	}
	var ops []store.Op
	for _, k := range kids {
		if len(k.DN) <= len(oldDN) || normDN(k.DN[len(k.DN)-len(oldDN):]) != normDN(oldDN) {
			return nil, nil, fmt.Errorf("directory: %s is listed below %s but is not: %w", k.DN, oldDN, ErrInvalid)
		}
		moved := *k
		moved.DN = k.DN[:len(k.DN)-len(oldDN)] + newDN
		moved.parsed()
		ops = append(ops, store.PutAt(objKey(k.GUID), moved.encode(), k.USNChanged))
		ops = append(ops, reindex(indexOps(k), indexOps(&moved))...)
		if len(ops) >= limit {
			return nil, nil, fmt.Errorf("directory: %s has more objects below it (%d) than this store moves in one transaction: move its OUs one by one: %w",
				oldDN, len(kids), ErrAdminLimit)
		}
	}
	guids := make([]ntsec.GUID, len(kids))
	for i, k := range kids {
		guids[i] = k.GUID
	}
	return ops, guids, nil
}

// removable says why o may not be deleted, if it may not.
func (d *Directory) removable(o *Object) error {
	switch {
	case o.Deleted:
		return fmt.Errorf("directory: %s is already deleted: %w", o.DN, ErrNotFound)
	case d.systemObject(o):
		return fmt.Errorf("directory: %s is a container of the domain's layout and cannot be removed: %w", o.DN, ErrInvalid)
	case o.IsPrincipal() && o.Class != ClassDomain && (o.ObjectSID().RID() < 1000 || o.UAC&UACServerTrust != 0):
		return fmt.Errorf("directory: %s is a built-in principal and cannot be removed: %w", o.DN, ErrInvalid)
	}
	return nil
}

// DefaultTombstoneLifetime is how long a deleted object's tombstone stays (AD's
// tombstoneLifetime for forests created since Windows Server 2003 SP1).
const DefaultTombstoneLifetime = 180 * 24 * time.Hour

// deletedObjectsDN is the domain's CN=Deleted Objects, created (itself deleted, so it
// shows only with the show deleted control) when the first object is deleted.
func (d *Directory) deletedObjectsDN(ctx context.Context) (string, error) {
	dn := "CN=Deleted Objects," + d.domain.BaseDN
	if _, err := d.st.Get(ctx, dnKey(dn)); err == nil {
		return dn, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	o := &Object{GUID: d.newGUID(), Class: ClassContainer, Name: "Deleted Objects", DN: dn, Deleted: true}
	if err := d.create(ctx, o, false); err != nil && !errors.Is(err, ErrExists) {
		return "", err
	}
	return dn, nil
}

// tombstone deletes o as AD does ([MS-ADTS] 3.1.1.5.5.1.1): it moves under CN=Deleted
// Objects as "name\nDEL:guid", keeps its GUID, SID, sAMAccountName and class and what
// AD preserves for a reanimation (userAccountControl, groupType, dNSHostName,
// nTSecurityDescriptor), loses every other attribute (keys and passwords first), its
// names stop answering (another account may take them), and it leaves its groups;
// lastKnownParent says where it was.
func (d *Directory) tombstone(ctx context.Context, o *Object) error {
	deleted, err := d.deletedObjectsDN(ctx)
	if err != nil {
		return err
	}
	rdnType, _, _ := strings.Cut(o.DN, "=")
	_, parent, _ := strings.Cut(o.DN, ",")
	if _, err := d.modify(ctx, o.GUID, func(n *Object) ([]store.Op, error) {
		g := n.GUID.String()
		*n = Object{GUID: n.GUID, Class: n.Class, SID: n.SID, SAM: n.SAM, Created: n.Created, USNCreated: n.USNCreated,
			UAC: n.UAC, GroupType: n.GroupType, DNSHostName: n.DNSHostName, SD: n.SD, // preserved for a reanimation
			Name: n.Name + "\nDEL:" + g, DN: rdnType + "=" + n.Name + "\\0ADEL:" + g + "," + deleted,
			Deleted: true, LastKnownParent: parent}
		return nil, nil
	}); err != nil {
		return err
	}
	return d.leaveGroups(ctx, o)
}

// rightReanimateTombstones is the Reanimate-Tombstones control access right.
var rightReanimateTombstones = ntsec.MustParseGUID("45ec5156-db7e-47bb-b53f-dbeb2d03c40f")

// Reanimate brings the tombstone at dn back to life at newDN (an LDAP modify with the
// show deleted control that removes isDeleted and replaces distinguishedName, [MS-ADTS]
// 3.1.1.5.3.7): it needs the Reanimate-Tombstones right on the domain and the right to
// create its class in the new parent. It returns with its GUID, SID, sAMAccountName and
// what the tombstone preserved; what the deletion dropped stays dropped — a user or
// computer comes back disabled and without a password (set one, then enable it), a
// group without members, a gMSA with the default password interval and nobody allowed
// to read its password, which is again the one the root key derives for its SID.
func (d *Directory) Reanimate(ctx context.Context, req *Requester, dn, newDN string) (*Object, error) {
	if req == nil || req.Token == nil {
		return nil, fmt.Errorf("directory: %w", ErrNeedBind)
	}
	o, err := d.byIndex(ctx, dnKey(normDN(dn)))
	if err != nil || !o.Deleted {
		return nil, fmt.Errorf("directory: %s is no deleted object: %w", dn, ErrNotFound)
	}
	domain, err := d.byIndex(ctx, dnKey(d.domain.BaseDN))
	if err != nil {
		return nil, err
	}
	if err := d.checkAccess(ctx, req, domain, ntsec.RightDSControlAccess, "reanimate tombstones", rightReanimateTombstones); err != nil {
		return nil, err
	}
	rdnType, name, parentDN, err := splitDN(newDN)
	if err != nil {
		return nil, err
	}
	wantRDN := "CN"
	if o.Class == ClassOU {
		wantRDN = "OU"
	}
	if !strings.EqualFold(rdnType, wantRDN) {
		return nil, fmt.Errorf("directory: 00002099: a %s is named %s=: %w", o.Class, wantRDN, ErrNamingViolation)
	}
	if parentDN, err = d.ResolveDN(ctx, parentDN); err != nil {
		return nil, err
	}
	if parentDN, err = d.container(ctx, parentDN, ""); err != nil {
		return nil, err
	}
	if err := d.authorizeCreate(ctx, req, normDN(parentDN), o.Class); err != nil {
		return nil, err
	}
	n, err := d.modify(ctx, o.GUID, func(n *Object) ([]store.Op, error) {
		if !n.Deleted {
			return nil, fmt.Errorf("directory: %s was reanimated meanwhile: %w", dn, ErrExists)
		}
		n.Deleted, n.LastKnownParent = false, ""
		n.Name, n.DN = name, wantRDN+"="+name+","+parentDN
		switch n.Class {
		case ClassUser:
			n.PrimaryGroupRID, n.UAC = ntsec.RIDDomainUsers, n.UAC|UACAccountDisable
		case ClassComputer:
			n.PrimaryGroupRID, n.UAC = ntsec.RIDDomainComputers, n.UAC|UACAccountDisable
		case ClassGMSA:
			n.PrimaryGroupRID, n.PasswordInterval = ntsec.RIDDomainComputers, 30
		}
		return nil, nil
	})
	if err != nil {
		return nil, err
	}
	d.changed(req, "reanimate", dn+" → "+n.DN)
	return n, nil
}

// ReanimationTarget recognises the changes of a reanimation: isDeleted removed and
// distinguishedName replaced by the new DN, and nothing else.
func ReanimationTarget(changes []Change) (string, bool) {
	var newDN string
	removed := false
	for _, ch := range changes {
		switch {
		case strings.EqualFold(ch.Attr, "isDeleted") && ch.Op == ChangeDelete:
			removed = true
		case strings.EqualFold(ch.Attr, "distinguishedName") && ch.Op == ChangeReplace && len(ch.Values) == 1:
			newDN = string(ch.Values[0])
		default:
			return "", false
		}
	}
	return newDN, removed && newDN != ""
}

// CollectTombstones removes for good the tombstones older than the tombstone lifetime
// (AD's garbage collection, every garbageCollPeriod), and returns how many it removed.
func (d *Directory) CollectTombstones(ctx context.Context) (int, error) {
	deleted := normDN("CN=Deleted Objects," + d.domain.BaseDN)
	cutoff := ntsec.FileTimeFromTime(d.now().Add(-d.tombstoneLifetime))
	var expired []*Object
	err := d.st.Scan(ctx, treeParent(deleted)+"\x00", "", func(_, v []byte, _ int64) bool {
		if o, err := d.byGUID(ctx, string(v)); err == nil && o.Deleted && o.Changed < cutoff {
			expired = append(expired, o)
		}
		return ctx.Err() == nil
	})
	if err != nil {
		return 0, err
	}
	for i, o := range expired {
		if err := d.remove(ctx, o); err != nil && !errors.Is(err, store.ErrNotFound) {
			return i, err
		}
	}
	if len(expired) > 0 {
		d.audit.Record(d.now(), audit.Info, "tombstones collected", "count", strconv.Itoa(len(expired)))
	}
	return len(expired), nil
}
