package directory

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"gmsa/internal/ntsec"
	"gmsa/internal/store"
)

// Access rights by their GUIDs ([MS-ADTS] 5.1.3.2.1 control access rights).
var (
	rightResetPassword  = ntsec.MustParseGUID("00299570-246d-11d0-a768-00aa006e0529") // User-Force-Change-Password
	rightSetOwner       = ntsec.MustParseGUID("4125c71f-7fac-4ff0-bcb7-f09a41325286") // DS-Set-Owner
	rightChangePassword = ntsec.MustParseGUID("ab721a53-1e2f-11d0-9819-00aa0040529b") // User-Change-Password
)

// classGUID is a class's schemaIDGUID.
func classGUID(c Class) ntsec.GUID {
	if f, ok := classFacts[strings.ToLower(string(c))]; ok {
		return ntsec.MustParseGUID(f.GUID)
	}
	return ntsec.GUID{}
}

// attributeTypes are the object types an access check on an attribute names: the
// attribute's schemaIDGUID and its property set's.
func attributeTypes(attr string) []ntsec.GUID {
	f, ok := attributeFacts[strings.ToLower(attr)]
	if !ok {
		return nil
	}
	out := []ntsec.GUID{ntsec.MustParseGUID(f.GUID)}
	if f.PropertySet != "" {
		out = append(out, ntsec.MustParseGUID(f.PropertySet))
	}
	return out
}

// defaultSDs are the classes' default security descriptors, parsed once per domain.
type defaultSDs struct {
	once    sync.Once
	byClass map[Class]*ntsec.SecurityDescriptor
	err     error
}

// classDefaultSD is class c's defaultSecurityDescriptor for this domain.
func (d *Directory) classDefaultSD(c Class) (*ntsec.SecurityDescriptor, error) {
	d.defaults.once.Do(func() {
		d.defaults.byClass = map[Class]*ntsec.SecurityDescriptor{}
		for _, cl := range []Class{ClassDomain, ClassContainer, ClassOU, ClassUser, ClassComputer, ClassGroup, ClassGMSA, ClassRootKey} {
			f := classFacts[strings.ToLower(string(cl))]
			sd, err := ntsec.ParseSDDL(f.DefaultSD, d.sid)
			if err != nil {
				d.defaults.err = fmt.Errorf("directory: the default security descriptor of %s: %w", cl, err)
				return
			}
			d.defaults.byClass[cl] = sd
		}
	})
	if d.defaults.err != nil {
		return nil, d.defaults.err
	}
	sd, ok := d.defaults.byClass[c]
	if !ok { // the schema's own entries: as containers
		sd = d.defaults.byClass[ClassContainer]
	}
	return sd, nil
}

// newSD is the security descriptor a new object of class c gets ([MS-ADTS]
// 6.1.3, CreatePrivateObjectSecurity): its class's default ACEs, CREATOR OWNER and
// CREATOR GROUP standing for the owner and group; the owner is Domain Admins when an
// administrator (or the system) creates it, else the creator.
func (d *Directory) newSD(c Class, creator *Requester) ([]byte, error) {
	owner := d.sid.Child(ntsec.RIDDomainAdmins)
	if creator != nil && creator.Token != nil && !d.isAdmin(creator) {
		owner = creator.Token.User
	}
	return d.newSDOwnedBy(c, owner)
}

// newSDOwnedBy is newSD with the owner given.
func (d *Directory) newSDOwnedBy(c Class, owner ntsec.SID) ([]byte, error) {
	def, err := d.classDefaultSD(c)
	if err != nil {
		return nil, err
	}
	group := d.sid.Child(ntsec.RIDDomainAdmins)
	sd := &ntsec.SecurityDescriptor{Control: ntsec.ControlSelfRelative | ntsec.ControlDACLPresent, Owner: &owner, Group: &group,
		DACL: &ntsec.ACL{Revision: 4}}
	for _, a := range def.DACL.ACEs {
		switch {
		case a.Flags&ntsec.ACEFlagInheritOnly != 0: // CREATOR OWNER/GROUP pass on as they are
		case a.SID.Equal(ntsec.SIDCreatorOwner):
			a.SID = owner
		case a.SID.Equal(ntsec.SIDCreatorGroup):
			a.SID = group
		}
		sd.DACL.ACEs = append(sd.DACL.ACEs, a)
	}
	return sd.Bytes(), nil
}

// protectedContainers are the containers whose own descriptor AD sets apart from their
// class's default, protected from what their parents pass on: the KDS root keys (only
// SYSTEM, Domain Admins and Enterprise Admins see them at all) and the deleted objects
// (only SYSTEM and Administrators list them).
func (d *Directory) protectedContainerSD(o *Object) string {
	switch normDN(o.DN) {
	case normDN(d.domain.RootKeysDN()):
		return "O:SYG:SYD:P(A;CI;GA;;;SY)(A;CI;GA;;;DA)(A;CI;GA;;;EA)"
	case normDN("CN=Deleted Objects," + d.domain.BaseDN):
		return "O:SYG:SYD:P(A;;RPWPCCDCLCSWRCWDWOSD;;;SY)(A;;RPLC;;;BA)"
	}
	return ""
}

// explicitSD is o's own security descriptor (stored, else a protected container's, else
// its class's default).
func (d *Directory) explicitSD(o *Object) (*ntsec.SecurityDescriptor, error) {
	if len(o.SD) > 0 {
		return ntsec.ParseSecurityDescriptor(o.SD)
	}
	if o.Class == ClassContainer {
		if sddl := d.protectedContainerSD(o); sddl != "" {
			return ntsec.ParseSDDL(sddl, d.sid)
		}
	}
	b, err := d.newSD(o.Class, nil)
	if err != nil {
		return nil, err
	}
	return ntsec.ParseSecurityDescriptor(b)
}

// effectiveSD is o's security descriptor with the ACEs it inherits from its parents
// ([MS-DTYP] 2.5.3.4, as AD's SD propagator computes them): computed from the root down
// at every use, so a changed parent is in force for every object below at once.
func (d *Directory) effectiveSD(ctx context.Context, o *Object) (*ntsec.SecurityDescriptor, error) {
	chain := []*Object{o}
	for cur := o; ; {
		_, parent, ok := strings.Cut(cur.DN, ",")
		if !ok || cur.Class == ClassDomain {
			break
		}
		p, err := d.byIndex(ctx, dnKey(parent))
		if err != nil {
			break // the naming context's root has no parent here
		}
		chain = append(chain, p)
		cur = p
	}
	var parentACEs []ntsec.ACE // the DACL of the object above the one being computed
	var sd *ntsec.SecurityDescriptor
	for i := len(chain) - 1; i >= 0; i-- {
		obj := chain[i]
		own, err := d.explicitSD(obj)
		if err != nil {
			return nil, fmt.Errorf("directory: the security descriptor of %s: %w", obj.DN, err)
		}
		eff := *own
		dacl := &ntsec.ACL{Revision: 4}
		if own.DACL != nil {
			for _, a := range own.DACL.ACEs {
				if a.Flags&ntsec.ACEFlagInherited == 0 {
					dacl.ACEs = append(dacl.ACEs, a)
				}
			}
		}
		if own.Control&ntsec.ControlDACLProtected == 0 && i < len(chain)-1 {
			dacl.ACEs = append(dacl.ACEs, inheritable(parentACEs, classGUID(obj.Class), owner(own))...)
			eff.Control |= ntsec.ControlDACLAutoInherited
		}
		eff.DACL = dacl
		sd = &eff
		parentACEs = dacl.ACEs
	}
	return sd, nil
}

func owner(sd *ntsec.SecurityDescriptor) ntsec.SID {
	if sd.Owner != nil {
		return *sd.Owner
	}
	return ntsec.SID{}
}

// inheritable is what a child of class child inherits of a parent's ACEs ([MS-DTYP]
// 2.5.3.4.1): container-inherit ACEs, marked inherited; effective on the child when they
// name no class or its class, else inherit-only so they pass further down; a
// no-propagate ACE stops at the child.
func inheritable(parent []ntsec.ACE, child ntsec.GUID, childOwner ntsec.SID) []ntsec.ACE {
	var out []ntsec.ACE
	for _, a := range parent {
		if a.Flags&ntsec.ACEFlagContainerInherit == 0 {
			continue
		}
		c := a
		c.Flags |= ntsec.ACEFlagInherited
		applies := c.InheritedObjectType == nil || *c.InheritedObjectType == child
		switch {
		case c.Flags&ntsec.ACEFlagNoPropagate != 0:
			if !applies {
				continue
			}
			c.Flags &^= ntsec.ACEFlagContainerInherit | ntsec.ACEFlagObjectInherit | ntsec.ACEFlagNoPropagate | ntsec.ACEFlagInheritOnly
		case applies && c.SID.Equal(ntsec.SIDCreatorOwner) && !childOwner.IsZero():
			// CREATOR OWNER takes effect as the child's owner, and passes on as itself.
			eff := c
			eff.SID = childOwner
			eff.Flags &^= ntsec.ACEFlagContainerInherit | ntsec.ACEFlagObjectInherit | ntsec.ACEFlagInheritOnly
			out = append(out, eff)
			c.Flags |= ntsec.ACEFlagInheritOnly
		case applies:
			c.Flags &^= ntsec.ACEFlagInheritOnly
		default:
			c.Flags |= ntsec.ACEFlagInheritOnly
		}
		out = append(out, c)
	}
	return out
}

// checkAccess decides whether req holds rights on o (on something of it named by
// types: a child class, an attribute and its property set, a control access right),
// by o's security descriptor with what it inherits. SYSTEM holds every right.
func (d *Directory) checkAccess(ctx context.Context, req *Requester, o *Object, rights uint32, what string, types ...ntsec.GUID) error {
	if req == nil || req.Token == nil {
		return fmt.Errorf("directory: %w", ErrNeedBind)
	}
	if req.Token.User.Equal(ntsec.SIDSystem) {
		return nil
	}
	sd, err := d.effectiveSD(ctx, o)
	if err != nil {
		return err
	}
	dec := ntsec.AccessCheckObject(sd, &req.Token.Token, rights, o.ObjectSID(), types)
	if !dec.Granted {
		return fmt.Errorf("directory: 00000005: %s may not %s on %s (%s): %w", req.Name(), what, o.DN, dec.Reason(), ErrAccessDenied)
	}
	return nil
}

// authorizeCreate checks the right to create an object of class c below parentDN.
func (d *Directory) authorizeCreate(ctx context.Context, req *Requester, parentDN string, c Class) error {
	if req == nil || req.Token == nil {
		return fmt.Errorf("directory: %w", ErrNeedBind)
	}
	p, err := d.byIndex(ctx, dnKey(parentDN))
	if err != nil || p.Deleted {
		if err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, store.ErrNotFound) {
			err = ErrNoSuchBase
		}
		return fmt.Errorf("directory: parent %q: %w", parentDN, err)
	}
	return d.checkAccess(ctx, req, p, ntsec.RightDSCreateChild, "create a "+string(c), classGUID(c))
}

// authorizeWrite checks the right to write each attribute of o.
func (d *Directory) authorizeWrite(ctx context.Context, req *Requester, o *Object, attrs ...string) error {
	for _, a := range attrs {
		if err := d.checkAccess(ctx, req, o, ntsec.RightDSWriteProperty, "write "+a, attributeTypes(a)...); err != nil {
			return err
		}
	}
	return nil
}

// authorizeDelete checks the right to delete o: DELETE on it, or DELETE_CHILD on its
// parent ([MS-ADTS] 3.1.1.5.5.3).
func (d *Directory) authorizeDelete(ctx context.Context, req *Requester, o *Object) error {
	err := d.checkAccess(ctx, req, o, ntsec.RightDelete, "delete")
	if err == nil || !errors.Is(err, ErrAccessDenied) {
		return err
	}
	_, parentDN, _ := strings.Cut(o.DN, ",")
	if p, perr := d.byIndex(ctx, dnKey(parentDN)); perr == nil {
		if d.checkAccess(ctx, req, p, ntsec.RightDSDeleteChild, "delete a child", classGUID(o.Class)) == nil {
			return nil
		}
	}
	return err
}

// creatorKey carries the creation an exported constructor makes, so that create can
// give the new object its security descriptor.
type creatorKey struct{}

// creation is who creates an object and what the add asked of its security
// descriptor: the set owner control's owner, and the nTSecurityDescriptor given with the
// add (the parts sdFlags names), both already authorized.
type creation struct {
	req     *Requester
	owner   *ntsec.SID
	sd      []byte
	sdFlags uint32
}

func withCreator(ctx context.Context, req *Requester) context.Context {
	return context.WithValue(ctx, creatorKey{}, &creation{req: req})
}

// creatorSD is the security descriptor create stores for a new object: nil (the class
// default with Domain Admins as owner) when an administrator or the system creates it
// as it is, else one the creator — or the owner the add named — owns, with the parts of
// a descriptor given with the add in place of the default's.
func (d *Directory) creatorSD(ctx context.Context, c Class) ([]byte, error) {
	cr, _ := ctx.Value(creatorKey{}).(*creation)
	if cr == nil || cr.req == nil || cr.req.Token == nil || d.isAdmin(cr.req) && cr.owner == nil && cr.sd == nil {
		return nil, nil
	}
	sd, err := d.newSD(c, cr.req)
	if cr.owner != nil {
		sd, err = d.newSDOwnedBy(c, *cr.owner)
	}
	if err != nil || cr.sd == nil {
		return sd, err
	}
	o := &Object{Class: c, SD: sd}
	if err := d.writeSD(o, cr.sd, cr.sdFlags); err != nil {
		return nil, err
	}
	if cr.owner != nil { // the control's owner stands over the descriptor's
		return o.SD, d.writeSD(o, (&ntsec.SecurityDescriptor{Control: ntsec.ControlSelfRelative, Owner: cr.owner}).Bytes(), sdOwner)
	}
	return o.SD, nil
}

// mayAssignOwner applies Windows' rule for an owner set in a security descriptor: one
// may take ownership, not give it — the new owner is the requester or a group in its
// token — unless one restores objects (SeRestorePrivilege, which a DC's administrators
// hold).
func (d *Directory) mayAssignOwner(req *Requester, owner ntsec.SID) error {
	if d.isAdmin(req) || req.Token.Has(owner) {
		return nil
	}
	return fmt.Errorf("directory: 0000051B: %s may not make %s the owner: an owner is the requester or one of its groups (ERROR_INVALID_OWNER): %w",
		req.Name(), owner, ErrConstraint)
}

// authorizeNewSD checks what an add asks of the new object's security descriptor: a
// SACL needs an administrator, an owner in the descriptor the owner rule, and the set
// owner control ([MS-ADTS] 3.1.1.3.4.1.37) the DS-Set-Owner right on the domain, which
// lets a requester name any owner.
func (d *Directory) authorizeNewSD(ctx context.Context, req *Requester, cr *creation) error {
	if cr.sd != nil {
		in, err := ntsec.ParseSecurityDescriptor(cr.sd)
		if err != nil {
			return fmt.Errorf("directory: nTSecurityDescriptor: %v: %w", err, ErrInvalidSyntax)
		}
		parts := cmp.Or(cr.sdFlags, sdAll)
		if parts&sdSACL != 0 && in.SACL != nil && !d.isAdmin(req) {
			return fmt.Errorf("directory: 00000005: %s may not set a SACL (ACCESS_SYSTEM_SECURITY): %w", req.Name(), ErrAccessDenied)
		}
		if parts&sdOwner != 0 && in.Owner != nil && cr.owner == nil {
			if err := d.mayAssignOwner(req, *in.Owner); err != nil {
				return err
			}
		}
	}
	if cr.owner == nil || d.isAdmin(req) {
		return nil
	}
	dom, err := d.byIndex(ctx, dnKey(normDN(d.domain.BaseDN)))
	if err != nil {
		return err
	}
	return d.checkAccess(ctx, req, dom, ntsec.RightDSControlAccess, "set the owner of a new object", rightSetOwner)
}

// SD flags parts ([MS-ADTS] 3.1.1.3.4.1.11).
const (
	sdOwner = 1
	sdGroup = 2
	sdDACL  = 4
	sdSACL  = 8
	sdAll   = sdOwner | sdGroup | sdDACL | sdSACL
)

// readSD is o's nTSecurityDescriptor as req may read it: nothing without READ_CONTROL;
// the parts flags asks for (all by default), the SACL only for administrators
// (ACCESS_SYSTEM_SECURITY), the DACL with its inherited ACEs.
func (d *Directory) readSD(ctx context.Context, req *Requester, o *Object, flags uint32) ([]byte, error) {
	if flags == 0 {
		flags = sdAll
	}
	if err := d.checkAccess(ctx, req, o, ntsec.RightReadControl, "read the security descriptor"); err != nil {
		if errors.Is(err, ErrAccessDenied) {
			return nil, nil // absent, as an attribute one may not read
		}
		return nil, err
	}
	sd, err := d.effectiveSD(ctx, o)
	if err != nil {
		return nil, err
	}
	out := ntsec.SecurityDescriptor{Control: ntsec.ControlSelfRelative}
	if flags&sdOwner != 0 {
		out.Owner = sd.Owner
	}
	if flags&sdGroup != 0 {
		out.Group = sd.Group
	}
	if flags&sdDACL != 0 && sd.DACL != nil {
		out.DACL = sd.DACL
		out.Control |= ntsec.ControlDACLPresent | sd.Control&(ntsec.ControlDACLProtected|ntsec.ControlDACLAutoInherited)
	}
	if flags&sdSACL != 0 && sd.SACL != nil && d.isAdmin(req) {
		out.SACL = sd.SACL
		out.Control |= ntsec.ControlSACLPresent
	}
	return out.Bytes(), nil
}

// writeSD replaces the parts flags names (all by default) of n's own security
// descriptor with value's; inherited ACEs in value are dropped (they come from the
// parents), and an absent part stays as it was.
func (d *Directory) writeSD(n *Object, value []byte, flags uint32) error {
	if flags == 0 {
		flags = sdAll
	}
	in, err := ntsec.ParseSecurityDescriptor(value)
	if err != nil {
		return fmt.Errorf("directory: nTSecurityDescriptor: %v: %w", err, ErrInvalidSyntax)
	}
	cur, err := d.explicitSD(n)
	if err != nil {
		return err
	}
	if flags&sdOwner != 0 && in.Owner != nil {
		cur.Owner = in.Owner
	}
	if flags&sdGroup != 0 && in.Group != nil {
		cur.Group = in.Group
	}
	if flags&sdDACL != 0 && in.DACL != nil {
		dacl := &ntsec.ACL{Revision: 4}
		for _, a := range in.DACL.ACEs {
			if a.Flags&ntsec.ACEFlagInherited == 0 {
				dacl.ACEs = append(dacl.ACEs, a)
			}
		}
		cur.DACL = dacl
		cur.Control = cur.Control&^ntsec.ControlDACLProtected | in.Control&ntsec.ControlDACLProtected | ntsec.ControlDACLPresent
	}
	if flags&sdSACL != 0 && in.SACL != nil {
		cur.SACL = in.SACL
		cur.Control |= ntsec.ControlSACLPresent
	}
	cur.Control |= ntsec.ControlSelfRelative
	n.SD = cur.Bytes()
	return nil
}
