package directory

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"gmsa/internal/kds"
	"gmsa/internal/krbkey"
	"gmsa/internal/managedpw"
	"gmsa/internal/ntsec"
	"gmsa/internal/store"
	"gmsa/internal/store/memory"
)

var ctx = context.Background()

// sys is the requester of the tests' own changes: the local system.
var sys = LocalSystem()

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time        { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration)   { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func (c *clock) ft() ntsec.FileTime    { return ntsec.FileTimeFromTime(c.now()) }
func seeded(seed uint64) *rand.ChaCha8 { var s [32]byte; s[0] = byte(seed); return rand.NewChaCha8(s) }

// lab provisions EXAMPLE.TEST with a root key back-dated a day, so gMSAs can be created.
func lab(t testing.TB) (*Directory, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	back := c.ft() - ntsec.TicksPerDay
	p, err := Provision(ctx, memory.New(), ProvisionOptions{Realm: "example.test", NetBIOS: "EXAMPLE", RootKey: &back},
		Options{Now: c.now, Rand: seeded(1)})
	if err != nil {
		t.Fatal(err)
	}
	return p.Directory, c
}

// must returns v, failing the test (by panic) on an error.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestProvision(t *testing.T) {
	d, _ := lab(t)
	dom := d.Domain()
	sid := ntsec.MustParseSID(dom.SID)
	if len(sid.Sub) != 4 || sid.Sub[0] != 21 || dom.BaseDN != "DC=example,DC=test" || dom.NetBIOS != "EXAMPLE" || dom.Realm != "EXAMPLE.TEST" {
		t.Fatalf("%+v", dom)
	}
	for _, dn := range []string{"CN=Users,DC=example,DC=test", "CN=Computers,DC=example,DC=test", "CN=Managed Service Accounts,DC=example,DC=test",
		"OU=Domain Controllers,DC=example,DC=test", "CN=Master Root Keys,CN=Group Key Distribution Service,CN=Services,CN=Configuration,DC=example,DC=test"} {
		if _, err := d.Resolve(ctx, dn); err != nil {
			t.Errorf("%s: %v", dn, err)
		}
	}
	for ref, rid := range map[string]uint32{"Administrator": 500, "krbtgt": 502, "Domain Admins": 512, "Domain Users": 513,
		"Domain Computers": 515, "Domain Controllers": 516, "Enterprise Admins": 519, "DC1$": 1000} {
		o, err := d.Resolve(ctx, ref)
		if err != nil || o.ObjectSID().RID() != rid || !o.ObjectSID().Domain().Equal(sid) {
			t.Errorf("%s: %v %v", ref, o, err)
		}
	}
	ba := must(d.Resolve(ctx, "S-1-5-32-544"))
	if ba.Name != "Administrators" {
		t.Fatal(ba.Name)
	}
	tok := must(d.TokenFor(ctx, "EXAMPLE\\Administrator"))
	for _, g := range []string{"Domain Admins", "Enterprise Admins", "Administrators", "Domain Users", "Everyone"} {
		if !strings.Contains(strings.Join(tok.GroupNames(), ","), g) {
			t.Errorf("Administrator's token lacks %s: %v", g, tok.GroupNames())
		}
	}
	admin := must(d.Resolve(ctx, "administrator@example.test"))
	if len(admin.Keys) != 3 || len(admin.NTHash) != 16 || admin.KVNO != 1 {
		t.Fatal("Administrator has no keys")
	}
	dc := must(d.TokenFor(ctx, "DC1$"))
	if !dc.Has(ntsec.SIDEnterpriseDCs) {
		t.Fatal("the DC's token lacks Enterprise Domain Controllers")
	}
	if keys, _ := d.List(ctx, ClassRootKey); len(keys) != 1 {
		t.Fatalf("%d root keys", len(keys))
	}
	if _, err := Provision(ctx, d.st, ProvisionOptions{Realm: "other.test"}, Options{}); !errors.Is(err, ErrExists) {
		t.Fatalf("second provision: %v", err)
	}
	for _, bad := range []string{"", "nodot", "a b.test"} {
		if _, err := Provision(ctx, memory.New(), ProvisionOptions{Realm: bad}, Options{}); !errors.Is(err, ErrInvalid) {
			t.Errorf("realm %q: %v", bad, err)
		}
	}
	d2 := must(Open(ctx, d.st, Options{}))
	if d2.Domain().SID != dom.SID {
		t.Fatal("reopen lost the domain")
	}
	if _, err := Open(ctx, memory.New(), Options{}); !errors.Is(err, ErrNotProvisioned) {
		t.Fatal(err)
	}
}

func TestRIDsAreNotReused(t *testing.T) {
	d, _ := lab(t)
	a := must(d.NewUser(ctx, sys, UserOptions{Name: "alice", Password: "Pw-1234567!"}))
	b := must(d.NewUser(ctx, sys, UserOptions{Name: "bob", Password: "Pw-1234567!"}))
	if a.ObjectSID().RID() != 1001 || b.ObjectSID().RID() != 1002 {
		t.Fatalf("RIDs %d %d", a.ObjectSID().RID(), b.ObjectSID().RID())
	}
	must(struct{}{}, d.Remove(ctx, sys, "bob", ClassUser))
	c := must(d.NewUser(ctx, sys, UserOptions{Name: "bob", Password: "Pw-1234567!"}))
	if c.ObjectSID().RID() != 1003 {
		t.Fatalf("RID after removal %d", c.ObjectSID().RID())
	}
	// Another process (a restart) takes a new pool: the rest of this one is skipped.
	d2 := must(Open(ctx, d.st, Options{Now: d.now, Rand: seeded(9)}))
	x := must(d2.NewUser(ctx, sys, UserOptions{Name: "carol", Password: "Pw-1234567!"}))
	if x.ObjectSID().RID() != 1101 {
		t.Fatalf("RID from a second pool %d", x.ObjectSID().RID())
	}
	if y := must(d.NewUser(ctx, sys, UserOptions{Name: "dave", Password: "Pw-1234567!"})); y.ObjectSID().RID() != 1004 {
		t.Fatalf("first pool continues at %d", y.ObjectSID().RID())
	}
	if _, err := d.Resolve(ctx, b.SID); !errors.Is(err, ErrNotFound) {
		t.Fatal("removed SID still resolves")
	}
}

func TestNamingRules(t *testing.T) {
	d, _ := lab(t)
	must(d.NewComputer(ctx, sys, ComputerOptions{Name: "WEB01"}))
	cases := []struct {
		opt  GMSAOptions
		want error
		msg  string
	}{
		{GMSAOptions{Name: "abcdefghijklmnop", DNSHostName: "x.example.test"}, ErrInvalid, "at most 15"},
		{GMSAOptions{Name: "bad/name", DNSHostName: "x.example.test"}, ErrInvalid, "does not allow"},
		{GMSAOptions{Name: "svc"}, ErrInvalid, "DNS host name"},
		{GMSAOptions{Name: "web01", DNSHostName: "web01.example.test"}, ErrExists, "CN=WEB01,CN=Computers"},
		{GMSAOptions{Name: "svc", DNSHostName: "svc.example.test", SPNs: []string{"HOST/web01"}}, ErrExists, "servicePrincipalName"},
		{GMSAOptions{Name: "svc", DNSHostName: "svc.example.test", SPNs: []string{"nohost"}}, ErrInvalid, "service/host"},
		{GMSAOptions{Name: "svc", DNSHostName: "svc.example.test", IntervalDays: -1}, ErrInvalid, "interval"},
		{GMSAOptions{Name: "svc", DNSHostName: "svc.example.test", PrincipalsAllowed: []string{"nobody"}}, ErrNotFound, "nobody"},
		{GMSAOptions{Name: "svc", DNSHostName: "svc.example.test", PrincipalsAllowed: []string{"CN=Users,DC=example,DC=test"}}, ErrInvalid, "no SID"},
	}
	for _, c := range cases {
		_, err := d.NewGMSA(ctx, sys, c.opt)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%+v: %v (want %v mentioning %q)", c.opt, err, c.want, c.msg)
		}
	}
	g := must(d.NewGMSA(ctx, sys, GMSAOptions{Name: "svc$", DNSHostName: "svc.example.test", SPNs: []string{"http/svc.example.test"}}))
	if g.SAM != "svc$" || g.UAC != UACWorkstationTrust || g.PasswordInterval != 30 || g.SupportedEnctypes != DefaultGMSAEnctypes || len(g.PasswordID) == 0 {
		t.Fatalf("%+v", g)
	}
	// Unique case-insensitively, against users and computers too.
	if _, err := d.NewGMSA(ctx, sys, GMSAOptions{Name: "SVC", DNSHostName: "x"}); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate gMSA: %v", err)
	}
	if _, err := d.NewComputer(ctx, sys, ComputerOptions{Name: "Svc"}); !errors.Is(err, ErrExists) {
		t.Fatalf("computer with a gMSA's name: %v", err)
	}
	if _, err := d.NewGMSA(ctx, sys, GMSAOptions{Name: "svc2", DNSHostName: "x", SPNs: []string{"HTTP/SVC.example.test"}}); !errors.Is(err, ErrExists) {
		t.Fatalf("SPN differing in case: %v", err)
	}
}

func TestGMSASettings(t *testing.T) {
	d, _ := lab(t)
	must(d.NewGroup(ctx, sys, "Web Hosts", ScopeGlobal, ""))
	must(d.NewComputer(ctx, sys, ComputerOptions{Name: "WEB01"}))
	web := must(d.Resolve(ctx, "WEB01$"))
	g := must(d.NewGMSA(ctx, sys, GMSAOptions{Name: "svc", DNSHostName: "svc.example.test", IntervalDays: 7,
		PrincipalsAllowed: []string{"Web Hosts", "WEB01$", web.SID, web.DN}, Enctypes: EnctypeAES128 | EnctypeAES256}))
	sd := must(ntsec.ParseSecurityDescriptor(g.GroupMSAMembership))
	hosts := must(d.Resolve(ctx, "Web Hosts"))
	if want := "O:BAD:(A;;CCDCLCSWRPWPDTLOCRSDRCWDWO;;;" + hosts.SID + ")(A;;CCDCLCSWRPWPDTLOCRSDRCWDWO;;;" + web.SID + ")"; sd.SDDL() != want {
		t.Fatalf("SD %s, want %s", sd.SDDL(), want)
	}
	if g.SupportedEnctypes != 24 {
		t.Fatal(g.SupportedEnctypes)
	}
	seven, eight := int64(7), int64(8)
	if _, err := d.SetGMSA(ctx, sys, "svc", GMSAChanges{IntervalDays: &eight}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "only be set when the account is created") {
		t.Fatalf("interval change: %v", err)
	}
	off, host := false, "svc2.example.test"
	n := must(d.SetGMSA(ctx, sys, "svc$", GMSAChanges{IntervalDays: &seven, Enabled: &off, DNSHostName: &host, AddSPNs: []string{"http/a.example.test"}}))
	if n.Enabled() || n.DNSHostName != host || len(n.SPNs) != 1 || n.USNChanged <= g.USNCreated || n.USNCreated != must(d.Resolve(ctx, "svc$")).USNCreated {
		t.Fatalf("%+v", n)
	}
	if _, err := d.Resolve(ctx, "svc"); err != nil {
		t.Fatal(err)
	}
	// The SPN index follows: another account cannot take it, and after removal it is free.
	if _, err := d.NewGMSA(ctx, sys, GMSAOptions{Name: "other", DNSHostName: "o", SPNs: []string{"http/a.example.test"}}); !errors.Is(err, ErrExists) {
		t.Fatal(err)
	}
	must(d.SetGMSA(ctx, sys, "svc", GMSAChanges{RemoveSPNs: []string{"HTTP/a.example.test"}}))
	must(d.NewGMSA(ctx, sys, GMSAOptions{Name: "other", DNSHostName: "o", SPNs: []string{"http/a.example.test"}}))
	if e, err := ParseEnctypes("aes128, AES256,rc4"); err != nil || e != 0x1c {
		t.Fatal(e, err)
	}
	if _, err := ParseEnctypes("des"); err == nil {
		t.Fatal("des accepted")
	}
}

func TestRootKeyRules(t *testing.T) {
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	p := must(Provision(ctx, memory.New(), ProvisionOptions{Realm: "example.test"}, Options{Now: c.now, Rand: seeded(2)}))
	d := p.Directory
	_, err := d.NewGMSA(ctx, sys, GMSAOptions{Name: "svc", DNSHostName: "svc.example.test"})
	if !errors.Is(err, ErrNoRootKey) || !strings.Contains(err.Error(), "gmsa kds add") || !strings.Contains(err.Error(), "--effective-time") {
		t.Fatalf("no key: %v", err)
	}
	k, warn, err := d.AddRootKey(ctx, sys, RootKeyOptions{Immediately: true})
	if err != nil || len(warn) != 1 || !strings.Contains(warn[0], "10 h") {
		t.Fatalf("%v %v", warn, err)
	}
	_, err = d.NewGMSA(ctx, sys, GMSAOptions{Name: "svc", DNSHostName: "svc.example.test"})
	if !errors.Is(err, ErrNoRootKey) || !strings.Contains(err.Error(), k.GUID.String()) || !strings.Contains(err.Error(), "2026-03-01T22:05:00Z") {
		t.Fatalf("key not yet usable: %v", err)
	}
	def, _, _ := d.AddRootKey(ctx, sys, RootKeyOptions{})
	if def.RootKey.UseStartTime != c.ft()+10*ntsec.TicksPerDay {
		t.Fatal("Add-KdsRootKey's default is 10 days from now")
	}
	back := c.ft() - kds.CreationLag
	bk, warn, _ := d.AddRootKey(ctx, sys, RootKeyOptions{EffectiveTime: &back})
	if len(warn) != 1 || !strings.Contains(warn[0], "other root key") {
		t.Fatalf("warnings %v", warn)
	}
	g := must(d.NewGMSA(ctx, sys, GMSAOptions{Name: "svc", DNSHostName: "svc.example.test"}))
	id := must(kds.ParsePasswordID(g.PasswordID))
	if id.RootKeyID != bk.GUID || id.GKID != kds.GKIDAt(c.ft()) || id.DomainName != "example.test" {
		t.Fatalf("%+v", id)
	}
	if err := d.TestRootKey(ctx, bk.GUID.String()); err != nil {
		t.Fatal(err)
	}
	if len(bk.RootKey.SecretAgreementParam) != 524 || !bytes.HasPrefix(bk.RootKey.SecretAgreementParam, []byte{0x0c, 0x02, 0, 0, 'D', 'H', 'P', 'M'}) {
		t.Fatal("DH parameters")
	}
	if err := d.RemoveRootKey(ctx, sys, k.GUID.String()); err != nil {
		t.Fatal(err)
	}
	if keys, _ := d.rootKeys(ctx); len(keys) != 2 {
		t.Fatalf("%d keys after removal (cache not refreshed?)", len(keys))
	}
	if _, _, err := d.AddRootKey(ctx, sys, RootKeyOptions{Immediately: true, EffectiveTime: &back}); !errors.Is(err, ErrInvalid) {
		t.Fatal(err)
	}
}

func TestGroupsAndTokens(t *testing.T) {
	d, _ := lab(t)
	for _, g := range []struct {
		name  string
		scope GroupScope
	}{{"L1", ScopeGlobal}, {"L2", ScopeGlobal}, {"U1", ScopeUniversal}, {"U2", ScopeUniversal}, {"DL", ScopeDomainLocal}} {
		must(d.NewGroup(ctx, sys, g.name, g.scope, ""))
	}
	must(d.NewComputer(ctx, sys, ComputerOptions{Name: "H1"}))
	must(d.AddMember(ctx, sys, "L1", "H1$"))
	must(d.AddMember(ctx, sys, "L2", "L1"))
	must(d.AddMember(ctx, sys, "U1", "L2"))
	must(d.AddMember(ctx, sys, "U2", "U1"))
	must(d.AddMember(ctx, sys, "U1", "U2")) // a cycle
	must(d.AddMember(ctx, sys, "DL", "U2"))
	for _, bad := range [][2]string{{"L1", "U1"}, {"L1", "DL"}, {"U1", "DL"}} {
		if _, err := d.AddMember(ctx, sys, bad[0], bad[1]); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s in %s: %v", bad[1], bad[0], err)
		}
	}
	if _, err := d.AddMember(ctx, sys, "L1", "H1$"); !errors.Is(err, ErrExists) {
		t.Fatal(err)
	}
	if _, err := d.AddMember(ctx, sys, "H1$", "L1"); !errors.Is(err, ErrInvalid) {
		t.Fatal("a computer accepted members")
	}
	tok := must(d.TokenFor(ctx, "H1"))
	names := strings.Join(tok.GroupNames(), ",")
	for _, g := range []string{"L1", "L2", "U1", "U2", "DL", "Domain Computers", "Everyone", "Authenticated Users"} {
		if !strings.Contains(names, g) {
			t.Errorf("token lacks %s: %s", g, names)
		}
	}
	dl := must(d.Resolve(ctx, "DL"))
	if p := tok.path(dl.SID); p != "H1$ → L1 → L2 → U1 → U2 → DL" {
		t.Fatalf("path %q", p)
	}
	must(d.RemoveMember(ctx, sys, "L2", "L1"))
	tok = must(d.TokenFor(ctx, "H1$"))
	if strings.Contains(strings.Join(tok.GroupNames(), ","), "U1") {
		t.Fatal("membership survived RemoveMember")
	}
	if _, err := d.RemoveMember(ctx, sys, "L2", "L1"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	// Removing an account drops it from its groups.
	must(struct{}{}, d.Remove(ctx, sys, "H1$", ClassComputer))
	if l1 := must(d.Resolve(ctx, "L1")); len(l1.Members) != 0 {
		t.Fatal("removed computer is still a member")
	}
	if err := d.Remove(ctx, sys, "Domain Admins", ""); !errors.Is(err, ErrInvalid) {
		t.Fatal("removed a built-in group")
	}
	if err := d.Remove(ctx, sys, "DC1$", ""); !errors.Is(err, ErrInvalid) {
		t.Fatal("removed the DC")
	}
}

// Test-ADServiceAccount: yes for a member of the allowed group, no for a non-member,
// yes once it joins; deny entries and SYSTEM.
func TestPasswordAccess(t *testing.T) {
	d, _ := lab(t)
	must(d.NewGroup(ctx, sys, "Web Hosts", ScopeGlobal, ""))
	must(d.NewComputer(ctx, sys, ComputerOptions{Name: "WEB01"}))
	must(d.NewComputer(ctx, sys, ComputerOptions{Name: "WEB02"}))
	must(d.AddMember(ctx, sys, "Web Hosts", "WEB01$"))
	must(d.NewGMSA(ctx, sys, GMSAOptions{Name: "svc", DNSHostName: "svc.example.test", PrincipalsAllowed: []string{"Web Hosts"}}))
	yes := must(d.TestAccount(ctx, "svc", "WEB01$"))
	if !yes.Granted || !strings.Contains(yes.Reason, "WEB01$ → Web Hosts") {
		t.Fatalf("%+v", yes)
	}
	no := must(d.TestAccount(ctx, "svc", "WEB02$"))
	if no.Granted || !strings.Contains(no.Reason, "WEB02$") || !strings.Contains(no.Reason, "Domain Computers") {
		t.Fatalf("%+v", no)
	}
	must(d.AddMember(ctx, sys, "Web Hosts", "WEB02"))
	if dec := must(d.TestAccount(ctx, "svc", "WEB02$")); !dec.Granted {
		t.Fatalf("after joining: %+v", dec)
	}
	if dec := must(d.TestAccount(ctx, "svc", "SYSTEM")); !dec.Granted {
		t.Fatal("SYSTEM denied")
	}
	// A deny entry before the allow.
	acct := must(d.Resolve(ctx, "svc$"))
	web := must(d.Resolve(ctx, "Web Hosts"))
	sd := must(ntsec.ParseSDDL("O:BAD:(D;;RP;;;"+must(d.Resolve(ctx, "WEB02$")).SID+")(A;;0xf01ff;;;"+web.SID+")", ntsec.SID{}))
	must(d.modify(ctx, acct.GUID, func(o *Object) ([]store.Op, error) { o.GroupMSAMembership = sd.Bytes(); return nil, nil }))
	if dec := must(d.TestAccount(ctx, "svc", "WEB02$")); dec.Granted || !strings.Contains(dec.Reason, "denied by entry 0") {
		t.Fatalf("deny: %+v", dec)
	}
	if dec := must(d.TestAccount(ctx, "svc", "WEB01$")); !dec.Granted {
		t.Fatalf("deny of another: %+v", dec)
	}
	// No PrincipalsAllowed at all, and a disabled account.
	empty := []string{}
	must(d.SetGMSA(ctx, sys, "svc", GMSAChanges{PrincipalsAllowed: &empty}))
	if dec := must(d.TestAccount(ctx, "svc", "WEB01$")); dec.Granted || !strings.Contains(dec.Reason, "nobody") {
		t.Fatalf("empty: %+v", dec)
	}
	all, off := []string{"Web Hosts"}, false
	must(d.SetGMSA(ctx, sys, "svc", GMSAChanges{PrincipalsAllowed: &all, Enabled: &off}))
	if dec := must(d.TestAccount(ctx, "svc", "WEB01$")); dec.Granted || !strings.Contains(dec.Reason, "disabled") {
		t.Fatalf("disabled: %+v", dec)
	}
	tok := must(d.TokenFor(ctx, "WEB01$"))
	if mp, dec := d.AuthorizePassword(tok, must(d.Resolve(ctx, "svc"))); mp == nil || !dec.Granted {
		t.Fatal("the capability is about retrieval, which a disabled account still allows")
	}
	tok2 := must(d.TokenFor(ctx, "Administrator"))
	if mp, _ := d.AuthorizePassword(tok2, must(d.Resolve(ctx, "svc"))); mp != nil {
		t.Fatal("Administrator is not in PrincipalsAllowed and got the capability")
	}
}

// Passwords across a rotation with an injected clock equal the engine's, previous
// included; the rotation is persisted once even under concurrent reads.
func TestPasswordRotation(t *testing.T) {
	d, c := lab(t)
	created := c.ft()
	acct := must(d.NewGMSA(ctx, sys, GMSAOptions{Name: "svc", DNSHostName: "svc.example.test", IntervalDays: 1}))
	keys := must(d.rootKeys(ctx))
	sid := acct.ObjectSID().Bytes()
	mp, _ := d.AuthorizePassword(System(), acct)
	p := must(mp.Read(ctx))
	want := must(kds.DerivePassword(&keys[0], kds.GKIDAt(created), sid))
	if p.Current != want || p.Previous != nil || p.Plan.Rotated {
		t.Fatalf("first read: rotated %v previous %v", p.Plan.Rotated, p.Previous != nil)
	}
	blob := must(managedpw.Decode(p.Blob()))
	if !bytes.Equal(blob.Current, want[:]) || blob.QueryInterval != uint64(kds.GKIDAt(created).Start()+2*kds.KeyCycle-c.ft()) {
		t.Fatal("blob")
	}
	c.add(25 * time.Hour) // past the 20-hour rollover of a 1-day interval
	var wg sync.WaitGroup
	results := make([]*Passwords, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			acct, _ := d.Resolve(ctx, "svc")
			mp, _ := d.AuthorizePassword(System(), acct)
			results[i], _ = mp.Read(ctx)
		}()
	}
	wg.Wait()
	start := kds.GKIDAt(created).Start() + 2*kds.KeyCycle
	cur := must(kds.DerivePassword(&keys[0], kds.GKIDAt(start), sid))
	for _, r := range results {
		if r == nil || r.Current != cur || r.Previous == nil || *r.Previous != want {
			t.Fatal("a concurrent read after the rotation returned other passwords")
		}
	}
	after := must(d.Resolve(ctx, "svc"))
	id := must(kds.ParsePasswordID(after.PasswordID))
	prev := must(kds.ParsePasswordID(after.PreviousPasswordID))
	if id.GKID != kds.GKIDAt(start) || prev.GKID != kds.GKIDAt(created) || after.KVNO != 2 || after.PwdLastSet != start {
		t.Fatalf("persisted id %v prev %v kvno %d pwdLastSet %v", id.GKID, prev.GKID, after.KVNO, after.PwdLastSet)
	}
	// The schedule alone (no ids) agrees with what the directory persisted.
	plan := must(kds.PlanPasswords(kds.Account{Created: after.Created, IntervalDays: 1}, keys, c.ft()))
	if plan.Current.GKID != id.GKID || plan.Previous.GKID != prev.GKID {
		t.Fatal("directory and schedule disagree")
	}
}

// In the five minutes before a rollover a read of msDS-ManagedPassword already hands out
// the next password, but the KDC keeps the keys of the one in use, at the same kvno,
// until the rollover; then it switches to the next password at kvno+1.
func TestKDCKeysInTheLookAheadWindow(t *testing.T) {
	d, c := lab(t)
	acct := must(d.NewGMSA(ctx, sys, GMSAOptions{Name: "svc", DNSHostName: "svc.example.test", IntervalDays: 1}))
	mp, _ := d.AuthorizePassword(System(), acct)
	first := must(mp.Read(ctx))
	c.add(time.Duration(first.Plan.Query)*100 - 2*time.Minute)
	mp, _ = d.AuthorizePassword(System(), must(d.Resolve(ctx, "svc")))
	early := must(mp.Read(ctx))
	if !early.Plan.LookAhead || early.Previous == nil || *early.Previous != first.Current || early.Current == first.Current {
		t.Fatal("the blob does not hand out the next password early")
	}
	keyOf := func(pw kds.Password) []byte {
		ks, err := krbkey.AccountKeys(pw[:], d.salt(acct), []int32{krbkey.EtypeAES256CTSHMACSHA})
		if err != nil {
			t.Fatal(err)
		}
		return ks[0].Value
	}
	aes := func(p *KerberosPrincipal) ([]byte, uint32) {
		for _, k := range p.Keys {
			if k.Etype == krbkey.EtypeAES256CTSHMACSHA {
				return k.Value, k.KVNO
			}
		}
		t.Fatal("no AES256 key")
		return nil, 0
	}
	k, kvno := aes(must(d.KerberosClient(ctx, "svc$", false, true)))
	if !bytes.Equal(k, keyOf(first.Current)) || kvno != 1 {
		t.Fatalf("before the rollover the KDC's key is another password's (kvno %d)", kvno)
	}
	c.add(3 * time.Minute)
	k, kvno = aes(must(d.KerberosClient(ctx, "svc$", false, true)))
	if !bytes.Equal(k, keyOf(early.Current)) || kvno != 2 {
		t.Fatalf("after the rollover: kvno %d, the next password's key %v", kvno, bytes.Equal(k, keyOf(early.Current)))
	}
}

// A token is computed once while nothing is written, and again after any write,
// including one that changes a group of a group without touching the account's record.
func TestTokenCache(t *testing.T) {
	d, _ := lab(t)
	must(d.NewGroup(ctx, sys, "Inner", ScopeGlobal, ""))
	must(d.NewGroup(ctx, sys, "Outer", ScopeUniversal, ""))
	must(d.NewComputer(ctx, sys, ComputerOptions{Name: "H1"}))
	must(d.AddMember(ctx, sys, "Inner", "H1$"))
	first := must(d.TokenFor(ctx, "H1$"))
	if again := must(d.TokenFor(ctx, "h1$")); again != first {
		t.Fatal("token computed again with nothing written")
	}
	must(d.AddMember(ctx, sys, "Outer", "Inner"))
	tok := must(d.TokenFor(ctx, "H1$"))
	if tok == first || !strings.Contains(strings.Join(tok.GroupNames(), ","), "Outer") {
		t.Fatalf("nested membership not in the token: %v", tok.GroupNames())
	}
	if strings.Contains(strings.Join(first.GroupNames(), ","), "Outer") {
		t.Fatal("a cached token was modified")
	}
}
