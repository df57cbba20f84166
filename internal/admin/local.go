package admin

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"gmsa/internal/directory"
	"gmsa/internal/kds"
	"gmsa/internal/krbkey"
	"gmsa/internal/ntsec"
	"gmsa/internal/store"
)

// Local serves Admin from a directory in this process, as the local system: whoever
// can open the data directory administers the domain.
type Local struct {
	Dir     *directory.Directory
	Store   store.Store
	Release func() // closes Store and what came with it (a data directory's lock); default Store.Close
	Remote  string // who runs the command, for the audit trail ("local" by default)
}

func (l *Local) requester() *directory.Requester {
	r := directory.LocalSystem()
	if l.Remote != "" {
		r.Remote = l.Remote
	}
	return r
}

func (l *Local) Close() error {
	if l.Release != nil {
		l.Release()
		return nil
	}
	return l.Store.Close()
}

func (l *Local) Domain(context.Context) (directory.Domain, error) { return l.Dir.Domain(), nil }

// entry builds the view of o; names of members and groups are looked up.
func (l *Local) entry(ctx context.Context, o *directory.Object) Entry {
	e := Entry{DN: o.DN, Class: string(o.Class), Name: o.Name, SAMAccountName: o.SAM, SID: o.SID, GUID: o.GUID.String(),
		Description: o.Description, DNSHostName: o.DNSHostName, SPNs: o.SPNs, SupportedEnctypes: o.SupportedEnctypes,
		AllowedToDelegateTo: o.AllowedToDelegateTo, TrustedToAuth: o.UAC&directory.UACTrustedToAuthForDelegation != 0,
		KVNO: o.KVNO, PwdLastSet: fmtTime(o.PwdLastSet), Created: fmtTime(o.Created), Changed: fmtTime(o.Changed),
		USNCreated: o.USNCreated, USNChanged: o.USNChanged, UAC: o.UAC, PasswordIntervalDays: o.PasswordInterval}
	switch o.Class {
	case directory.ClassUser, directory.ClassComputer, directory.ClassGMSA:
		en := o.Enabled()
		e.Enabled = &en
	case directory.ClassGroup:
		e.GroupScope = string(o.Scope())
		for _, m := range o.Members {
			if mo, err := l.Dir.Resolve(ctx, m); err == nil {
				e.Members = append(e.Members, nameOf(mo))
			}
		}
	case directory.ClassRootKey:
		if k, err := o.KDSRootKey(); err == nil {
			e.KDFHash = k.Hash.String()
		}
		e.CreateTime, e.EffectiveTime = fmtTime(o.RootKey.CreateTime), fmtTime(o.RootKey.UseStartTime)
		e.UsableForNew = fmtTime(o.RootKey.UseStartTime + kds.CreationLag)
	}
	if o.Class == directory.ClassGMSA {
		if len(o.GroupMSAMembership) > 0 {
			if sd, err := ntsec.ParseSecurityDescriptor(o.GroupMSAMembership); err == nil {
				e.MembershipSDDL = sd.SDDL()
				if sd.DACL != nil {
					for _, ace := range sd.DACL.ACEs {
						name := ace.SID.String()
						if p, err := l.Dir.Resolve(ctx, name); err == nil {
							name = nameOf(p)
						}
						if ace.Type == ntsec.ACETypeAccessDenied {
							name = "deny " + name
						}
						e.PrincipalsAllowed = append(e.PrincipalsAllowed, name)
					}
				}
			}
		}
		if id, err := kds.ParsePasswordID(o.PasswordID); err == nil {
			e.PasswordPeriod = fmt.Sprintf("%v from %s", id.GKID, fmtTime(id.GKID.Start()))
			e.PasswordRootKey = id.RootKeyID.String()
		}
	}
	if o.IsPrincipal() && o.Class != directory.ClassDomain {
		e.MemberOf = l.memberOf(ctx, o)
	}
	return e
}

func nameOf(o *directory.Object) string {
	if o.SAM != "" {
		return o.SAM
	}
	return o.Name
}

// memberOf lists the groups o is a direct member of.
func (l *Local) memberOf(ctx context.Context, o *directory.Object) []string {
	groups, err := l.Dir.MemberOf(ctx, o)
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(groups))
	for _, g := range groups {
		out = append(out, nameOf(g))
	}
	sort.Strings(out)
	return out
}

func (l *Local) KDSAdd(ctx context.Context, opt directory.RootKeyOptions) (Entry, []string, error) {
	o, warn, err := l.Dir.AddRootKey(ctx, l.requester(), opt)
	if err != nil {
		return Entry{}, nil, err
	}
	return l.entry(ctx, o), warn, nil
}

func (l *Local) KDSList(ctx context.Context) ([]Entry, error) {
	return l.List(ctx, directory.ClassRootKey)
}

func (l *Local) KDSGet(ctx context.Context, id string) (Entry, error) {
	o, err := l.Dir.RootKey(ctx, id)
	if err != nil {
		return Entry{}, err
	}
	return l.entry(ctx, o), nil
}

func (l *Local) KDSRemove(ctx context.Context, id string) error {
	return l.Dir.RemoveRootKey(ctx, l.requester(), id)
}
func (l *Local) KDSTest(ctx context.Context, id string) error { return l.Dir.TestRootKey(ctx, id) }

func (l *Local) AccountNew(ctx context.Context, opt directory.GMSAOptions) (Entry, error) {
	return l.wrap(ctx)(l.Dir.NewGMSA(ctx, l.requester(), opt))
}

func (l *Local) AccountSet(ctx context.Context, ref string, ch directory.GMSAChanges) (Entry, error) {
	return l.wrap(ctx)(l.Dir.SetGMSA(ctx, l.requester(), ref, ch))
}

func (l *Local) AccountTest(ctx context.Context, ref, principal string) (directory.Decision, error) {
	return l.Dir.TestAccount(ctx, ref, principal)
}

// AccountPassword reads the password as principal would, with the directory's access
// check and audit record.
func (l *Local) AccountPassword(ctx context.Context, ref, principal string) ([]byte, directory.Decision, error) {
	tok, err := l.Dir.TokenFor(ctx, principal)
	if err != nil {
		return nil, directory.Decision{}, err
	}
	return l.Dir.ReadPassword(ctx, &directory.Requester{Token: tok, Auth: directory.AuthLocal, Protection: directory.ProtectionLocal, Remote: "local"}, ref)
}

func (l *Local) KDSExport(ctx context.Context, id string) (kds.RootKey, error) {
	o, err := l.Dir.RootKey(ctx, id)
	if err != nil {
		return kds.RootKey{}, err
	}
	return o.KDSRootKey()
}

func (l *Local) GroupNew(ctx context.Context, name string, scope directory.GroupScope, desc string) (Entry, error) {
	return l.wrap(ctx)(l.Dir.NewGroup(ctx, l.requester(), name, scope, desc))
}

func (l *Local) GroupAddMember(ctx context.Context, group, member string) (Entry, error) {
	return l.wrap(ctx)(l.Dir.AddMember(ctx, l.requester(), group, member))
}

func (l *Local) GroupRemoveMember(ctx context.Context, group, member string) (Entry, error) {
	return l.wrap(ctx)(l.Dir.RemoveMember(ctx, l.requester(), group, member))
}

func (l *Local) ComputerNew(ctx context.Context, opt directory.ComputerOptions) (Entry, []krbkey.Key, error) {
	o, err := l.Dir.NewComputer(ctx, l.requester(), opt)
	if err != nil {
		return Entry{}, nil, err
	}
	keys := make([]krbkey.Key, 0, len(o.Keys))
	for _, k := range o.Keys {
		keys = append(keys, krbkey.Key{Etype: k.Etype, Value: k.Value})
	}
	return l.entry(ctx, o), keys, nil
}

func (l *Local) UserNew(ctx context.Context, opt directory.UserOptions) (Entry, error) {
	return l.wrap(ctx)(l.Dir.NewUser(ctx, l.requester(), opt))
}

func (l *Local) UserImport(ctx context.Context, users []directory.UserOptions) (int, error) {
	return l.Dir.ImportUsers(ctx, l.requester(), users)
}

func (l *Local) UserSetPassword(ctx context.Context, ref, password string) (Entry, error) {
	return l.wrap(ctx)(l.Dir.SetPassword(ctx, l.requester(), ref, password))
}

func (l *Local) KrbtgtReset(ctx context.Context) (Entry, error) {
	return l.wrap(ctx)(l.Dir.RotateKrbtgt(ctx, l.requester()))
}

func (l *Local) Unlock(ctx context.Context, ref string) (Entry, error) {
	return l.wrap(ctx)(l.Dir.Unlock(ctx, l.requester(), ref))
}

func (l *Local) Get(ctx context.Context, ref string, class directory.Class) (Entry, error) {
	o, err := l.Dir.Resolve(ctx, ref)
	if err != nil {
		return Entry{}, err
	}
	if class != "" && o.Class != class {
		return Entry{}, fmt.Errorf("%s is a %s, not a %s: %w", o.DN, o.Class, class, directory.ErrNotFound)
	}
	return l.entry(ctx, o), nil
}

func (l *Local) List(ctx context.Context, class directory.Class) ([]Entry, error) {
	objs, err := l.Dir.List(ctx, class)
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(objs))
	for _, o := range objs {
		out = append(out, l.entry(ctx, o))
	}
	sort.Slice(out, func(i, j int) bool { return strings.ToLower(out[i].Name) < strings.ToLower(out[j].Name) })
	return out, nil
}

func (l *Local) OUNew(ctx context.Context, name, parent, desc string) (Entry, error) {
	return l.wrap(ctx)(l.Dir.NewContainer(ctx, l.requester(), directory.ClassOU, name, parent, desc))
}

func (l *Local) RemoveTree(ctx context.Context, ref string) error {
	_, err := l.Dir.DeleteTree(ctx, l.requester(), ref, 0)
	return err
}

func (l *Local) Remove(ctx context.Context, ref string, class directory.Class) error {
	return l.Dir.Remove(ctx, l.requester(), ref, class)
}

func (l *Local) wrap(ctx context.Context) func(*directory.Object, error) (Entry, error) {
	return func(o *directory.Object, err error) (Entry, error) {
		if err != nil {
			return Entry{}, err
		}
		return l.entry(ctx, o), nil
	}
}
