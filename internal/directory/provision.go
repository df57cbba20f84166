package directory

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"gmsa/internal/ntsec"
	"gmsa/internal/store"
)

// ProvisionOptions describe a new domain.
type ProvisionOptions struct {
	Realm   string // EXAMPLE.TEST; the DNS name is its lower case
	NetBIOS string // EXAMPLE
	DCName  string // default DC1
	// RootKey, when set, adds a first KDS root key effective at that time (a past
	// time back-dates it for a lab).
	RootKey *ntsec.FileTime
}

// Provisioned is what provisioning hands back once: the Administrator password.
type Provisioned struct {
	Directory     *Directory
	AdminPassword string
}

// Provision creates a domain in an empty store: the naming contexts, the usual
// containers, the well-known principals, the DC's computer account and, optionally,
// a first KDS root key — in one atomic batch.
func Provision(ctx context.Context, st store.Store, popt ProvisionOptions, opt Options) (*Provisioned, error) {
	opt.defaults()
	realm := strings.ToUpper(strings.TrimSpace(popt.Realm))
	netbios := strings.ToUpper(strings.TrimSpace(popt.NetBIOS))
	if !strings.Contains(realm, ".") || strings.ContainsAny(realm, " ,=/\\") {
		return nil, fmt.Errorf("directory: realm %q: want a DNS name such as EXAMPLE.TEST: %w", popt.Realm, ErrInvalid)
	}
	if netbios == "" {
		netbios = realm[:strings.IndexByte(realm, '.')]
	}
	if err := checkName("NetBIOS domain", netbios, 15); err != nil {
		return nil, err
	}
	if popt.DCName == "" {
		popt.DCName = "DC1"
	}
	if existing, err := st.List(ctx, ""); err != nil {
		return nil, err
	} else if len(existing) > 0 {
		return nil, fmt.Errorf("directory: the store already holds data (%d keys); provision needs an empty one: %w", len(existing), ErrExists)
	}
	var sub [12]byte
	if _, err := io.ReadFull(opt.Rand, sub[:]); err != nil {
		return nil, err
	}
	domSID := ntsec.SID{Authority: 5, Sub: []uint32{21, binary.LittleEndian.Uint32(sub[0:]), binary.LittleEndian.Uint32(sub[4:]), binary.LittleEndian.Uint32(sub[8:])}}
	dns := strings.ToLower(realm)
	base := "DC=" + strings.ReplaceAll(dns, ".", ",DC=")
	d := newDirectory(st, opt)
	d.sid = domSID
	now := d.nowFT()
	d.domain = Domain{DNSName: dns, Realm: realm, NetBIOS: netbios, SID: domSID.String(), GUID: d.newGUID(),
		BaseDN: base, ConfigDN: "CN=Configuration," + base, DCName: strings.ToUpper(popt.DCName), Created: now}
	dom := &d.domain

	var objs []*Object
	add := func(o *Object) *Object {
		if o.GUID.IsZero() {
			o.GUID = d.newGUID()
		}
		o.Created, o.Changed = now, now
		objs = append(objs, o)
		return o
	}
	container := func(name, parent string) *Object {
		return add(&Object{Class: ClassContainer, Name: name, DN: "CN=" + name + "," + parent})
	}
	add(&Object{GUID: dom.GUID, Class: ClassDomain, Name: strings.Split(dns, ".")[0], DN: base, SID: dom.SID})
	for _, c := range []string{"Users", "Computers", "Managed Service Accounts", "Builtin", "System"} {
		container(c, base)
	}
	add(&Object{Class: ClassOU, Name: "Domain Controllers", DN: dom.DCsDN(), Description: "Default container for domain controllers"})
	add(&Object{Class: ClassContainer, Name: "Configuration", DN: dom.ConfigDN})
	services := container("Services", dom.ConfigDN).DN
	gkds := container("Group Key Distribution Service", services).DN
	container("Master Root Keys", gkds)
	container("Server Configuration", gkds)

	rid := func(r uint32) string { return domSID.Child(r).String() }
	group := func(name, sid string, gt uint32, parent string) *Object {
		return add(&Object{Class: ClassGroup, Name: name, DN: "CN=" + name + "," + parent, SAM: name, SID: sid, GroupType: gt | GroupSecurity})
	}
	admins := group("Domain Admins", rid(ntsec.RIDDomainAdmins), GroupGlobal, dom.UsersDN())
	group("Domain Users", rid(ntsec.RIDDomainUsers), GroupGlobal, dom.UsersDN())
	group("Domain Computers", rid(ntsec.RIDDomainComputers), GroupGlobal, dom.UsersDN())
	group("Domain Controllers", rid(ntsec.RIDDomainControllers), GroupGlobal, dom.UsersDN())
	schema := group("Schema Admins", rid(ntsec.RIDSchemaAdmins), GroupUniversal, dom.UsersDN())
	enterprise := group("Enterprise Admins", rid(ntsec.RIDEnterpriseAdmins), GroupUniversal, dom.UsersDN())
	builtinAdmins := group("Administrators", ntsec.SIDBuiltinAdmins.String(), GroupBuiltinLocal|GroupDomainLocal, dom.BuiltinDN())

	password, err := randomPassword(opt.Rand, 24)
	if err != nil {
		return nil, err
	}
	admin := add(&Object{Class: ClassUser, Name: "Administrator", DN: "CN=Administrator," + dom.UsersDN(), SAM: "Administrator",
		UPN: "Administrator@" + dns, SID: rid(ntsec.RIDAdministrator), UAC: UACNormalAccount | UACDontExpirePassword,
		PrimaryGroupRID: ntsec.RIDDomainUsers, Description: "Built-in account for administering the domain"})
	if err := d.setKeys(admin, EncodePassword(password)); err != nil {
		return nil, err
	}
	krbtgt := add(&Object{Class: ClassUser, Name: "krbtgt", DN: "CN=krbtgt," + dom.UsersDN(), SAM: "krbtgt", SID: rid(ntsec.RIDKrbtgt),
		UAC: UACNormalAccount | UACAccountDisable, PrimaryGroupRID: ntsec.RIDDomainUsers, Description: "Key Distribution Center Service Account"})
	if pw, err := randomMachinePassword(opt.Rand); err != nil {
		return nil, err
	} else if err := d.setKeys(krbtgt, pw); err != nil {
		return nil, err
	}
	for _, g := range []*Object{admins, enterprise, schema} {
		g.Members = []string{admin.GUID.String()}
	}
	builtinAdmins.Members = []string{admin.GUID.String(), admins.GUID.String(), enterprise.GUID.String()}

	dcShort := strings.ToLower(dom.DCName)
	dcHost := dcShort + "." + dns
	dc := add(&Object{Class: ClassComputer, Name: dom.DCName, DN: "CN=" + dom.DCName + "," + dom.DCsDN(), SAM: dom.DCName + "$",
		SID: rid(1000), UAC: UACServerTrust, DNSHostName: dcHost, PrimaryGroupRID: ntsec.RIDDomainControllers,
		SupportedEnctypes: EnctypeAES128 | EnctypeAES256 | EnctypeRC4,
		SPNs:              []string{"HOST/" + dcShort, "HOST/" + dcHost, "ldap/" + dcShort, "ldap/" + dcHost, "ldap/" + dcHost + "/" + dns, "GC/" + dcHost + "/" + dns}})
	if pw, err := randomMachinePassword(opt.Rand); err != nil {
		return nil, err
	} else if err := d.setKeys(dc, pw); err != nil {
		return nil, err
	}

	domainRec, _ := json.Marshal(dom)
	ops := []store.Op{store.Create(keyNextRID, []byte("1001"))}
	if popt.RootKey != nil {
		rk, err := d.newRootKey(*popt.RootKey)
		if err != nil {
			return nil, err
		}
		add(rk)
		ops = append(ops, store.Put(keyRootKeyVersion, []byte(rk.GUID.String())))
	}
	for _, o := range objs {
		ops = append(ops, createOps(o)...)
	}
	// The domain record goes last: a store cut short before it holds no domain (and
	// says what to remove); on bolt it is all one batch.
	ops = append(ops, store.Put(keyIndexVersion, []byte(indexVersion)), store.Create(keyDomain, domainRec))
	if err := store.ApplyInBatches(ctx, st, ops); err != nil {
		return nil, fmt.Errorf("directory: provisioning: %w (a store it was cut short in is not empty: clear it before provisioning again)", err)
	}
	if err := d.ensureSchema(ctx); err != nil {
		return nil, err
	}
	d.log.Info("domain provisioned", "realm", realm, "sid", dom.SID, "objects", len(objs))
	return &Provisioned{Directory: d, AdminPassword: password}, nil
}
