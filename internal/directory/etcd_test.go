package directory

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"gmsa/internal/kds"
	"gmsa/internal/ntsec"
	"gmsa/internal/store/etcd"
	"gmsa/internal/store/etcd/etcdtest"
)

// servers provisions a domain on a real three-member etcd cluster and opens it as n
// servers would: each directory with its own etcd client (and so its own watch-fed
// cache, RID pool and in-process locks), all on one clock.
func servers(t *testing.T, n int) ([]*Directory, *clock) {
	t.Helper()
	cl := etcdtest.Start(t, 3)
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	var dirs []*Directory
	for i := range n {
		st, err := etcd.Open(ctx, etcd.Options{Endpoints: cl.Clients, Prefix: "example.test/", MaxOps: 512})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		opt := Options{Now: c.now, Rand: seeded(uint64(10 + i))}
		if i == 0 {
			back := c.ft() - ntsec.TicksPerDay
			p, err := Provision(ctx, st, ProvisionOptions{Realm: "example.test", NetBIOS: "EXAMPLE", RootKey: &back}, opt)
			if err != nil {
				t.Fatal(err)
			}
			dirs = append(dirs, p.Directory)
			continue
		}
		dirs = append(dirs, must(Open(ctx, st, opt)))
	}
	return dirs, c
}

// Several servers on one etcd cluster: the first read of a new key period, served by
// all of them at once, persists exactly one rotation and every server hands out the same
// passwords; what one server writes the others serve.
func TestServersShareRotation(t *testing.T) {
	dirs, c := servers(t, 3)
	a, b := dirs[0], dirs[1]
	must(a.NewGroup(ctx, sys, "Web Hosts", ScopeGlobal, ""))
	must(a.NewComputer(ctx, sys, ComputerOptions{Name: "WEB01"}))
	must(a.NewGMSA(ctx, sys, GMSAOptions{Name: "svc", DNSHostName: "svc.example.test", PrincipalsAllowed: []string{"Web Hosts"}, IntervalDays: 1}))
	// Group changes on one server decide password reads on another.
	if dec := must(b.TestAccount(ctx, "svc", "WEB01$")); dec.Granted {
		t.Fatal("granted before joining the group")
	}
	must(a.AddMember(ctx, sys, "Web Hosts", "WEB01$"))
	deadline := time.Now().Add(etcd.DefaultMaxStaleness)
	for !must(b.TestAccount(ctx, "svc", "WEB01$")).Granted {
		if time.Now().After(deadline) {
			t.Fatalf("a group change on one server is not seen by another within %s", etcd.DefaultMaxStaleness)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// So does a root key added on one server.
	keysBefore := len(must(b.rootKeys(ctx)))
	if _, _, err := a.AddRootKey(ctx, sys, RootKeyOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(etcd.DefaultMaxStaleness)
	for {
		// The root keys a directory holds are checked once a keysRecheck: each try
		// moves the clock on by one so that it asks the store again.
		c.add(keysRecheck)
		if len(must(b.rootKeys(ctx))) == keysBefore+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a root key added on one server is not seen by another")
		}
		time.Sleep(5 * time.Millisecond)
	}
	before := must(b.Resolve(ctx, "svc"))

	c.add(25 * time.Hour) // past the 20-hour rollover of a 1-day interval
	var wg sync.WaitGroup
	results := make([]*Passwords, 3*8)
	errs := make([]error, len(results))
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := dirs[i%len(dirs)]
			acct, err := d.Resolve(ctx, "svc")
			if err != nil {
				errs[i] = err
				return
			}
			mp, _ := d.AuthorizePassword(System(), acct)
			results[i], errs[i] = mp.Read(ctx)
		}()
	}
	wg.Wait()
	for i, r := range results {
		if errs[i] != nil {
			t.Fatalf("read %d on server %d: %v", i, i%len(dirs), errs[i])
		}
		if r.Current != results[0].Current || r.Previous == nil || *r.Previous != *results[0].Previous {
			t.Fatalf("server %d handed out other passwords than server 0", i%len(dirs))
		}
	}
	for _, d := range dirs {
		after := must(d.Resolve(ctx, "svc"))
		if after.KVNO != before.KVNO+1 {
			t.Fatalf("kvno %d after one rotation from %d: the rotation was persisted more than once", after.KVNO, before.KVNO)
		}
		id := must(kds.ParsePasswordID(after.PasswordID))
		if id.GKID != results[0].Plan.Current.GKID {
			t.Fatal("the persisted id is not the one handed out")
		}
	}
}

// Creates racing on different servers: names and SPNs stay unique and no SID is given
// twice; lockout counts failures made on any server.
func TestServersKeepUniquenessAndLockout(t *testing.T) {
	dirs, _ := servers(t, 2)
	a, b := dirs[0], dirs[1]
	// The same name, and one SPN on two accounts, on both servers at once: exactly one
	// of each wins.
	race := func(round int, what string, create func(i int, d *Directory) error) {
		var wg sync.WaitGroup
		errs := make([]error, len(dirs))
		for i, d := range dirs {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = create(i, d) }()
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, ErrExists):
				t.Fatalf("round %d, %s: %v", round, what, err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d servers created %s (%v)", round, won, what, errs)
		}
	}
	for round := range 10 {
		race(round, "one name", func(_ int, d *Directory) error {
			_, err := d.NewUser(ctx, sys, UserOptions{Name: fmt.Sprintf("race%d", round)})
			return err
		})
		race(round, "one SPN", func(i int, d *Directory) error {
			_, err := d.NewGMSA(ctx, sys, GMSAOptions{Name: fmt.Sprintf("spn%d%c", round, 'a'+i), DNSHostName: "x.example.test",
				SPNs: []string{fmt.Sprintf("http/shared%d.example.test", round)}})
			return err
		})
	}
	// Many creates on both: every SID distinct.
	var wg sync.WaitGroup
	sids := make(chan string, 200)
	for i, d := range dirs {
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range 15 {
					o, err := d.NewUser(ctx, sys, UserOptions{Name: fmt.Sprintf("u%d-%d-%d", i, g, k)})
					if err != nil {
						t.Error(err)
						return
					}
					sids <- o.SID
				}
			}()
		}
	}
	wg.Wait()
	close(sids)
	seen := map[string]bool{}
	for s := range sids {
		if seen[s] {
			t.Fatalf("SID %s given twice", s)
		}
		seen[s] = true
	}
	if len(seen) != 2*4*15 {
		t.Fatalf("%d users created", len(seen))
	}
	// Lockout: failures on either server count towards one threshold.
	must(a.NewUser(ctx, sys, UserOptions{Name: "victim", Password: "Right-Pass-1!"}))
	pol := DefaultPolicy()
	for i := range pol.LockoutThreshold {
		d := dirs[i%2]
		if _, err := d.Authenticate(ctx, Anonymous(ProtectionTLS, "127.0.0.1"), "victim", "wrong"); err == nil {
			t.Fatal("a wrong password was accepted")
		}
	}
	// Every server enforces the lockout, at the latest once the change reached its cache
	// (the staleness bound; AD replicates a lockout urgently, not at once either).
	for i, d := range dirs {
		deadline := time.Now().Add(etcd.DefaultMaxStaleness)
		for {
			_, err := d.Authenticate(ctx, Anonymous(ProtectionTLS, "127.0.0.1"), "victim", "Right-Pass-1!")
			var ic *ErrInvalidCredentials
			if errors.As(err, &ic) && ic.Data == "775" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("server %d, after %d failures spread over two servers: %v", i, pol.LockoutThreshold, err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if o := must(b.Resolve(ctx, "victim")); o.BadPwdCount != pol.LockoutThreshold {
		t.Fatalf("badPwdCount %d", o.BadPwdCount)
	}
}
