package directory

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gmsa/internal/kds"
	"gmsa/internal/ntsec"
	"gmsa/internal/store"
	"gmsa/internal/store/bolt"
)

// benchLab provisions a domain in a bolt file (the embedded default) with a usable key.
func benchLab(b *testing.B, path string) (*Directory, *clock) {
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	st, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	back := c.ft() - ntsec.TicksPerDay
	p, err := Provision(ctx, st, ProvisionOptions{Realm: "example.test", RootKey: &back}, Options{Now: c.now, Rand: seeded(7)})
	if err != nil {
		b.Fatal(err)
	}
	return p.Directory, c
}

// createGMSAs creates n gMSAs from 32 concurrent writers (their commits share fsyncs).
func createGMSAs(b *testing.B, d *Directory, n int) {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				name := fmt.Sprintf("s%06d", i)
				if _, err := d.NewGMSA(ctx, sys, GMSAOptions{Name: name, DNSHostName: name + ".example.test"}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// go test -run '^$' -bench CreateGMSAs -benchtime 100000x ./internal/directory
func BenchmarkCreateGMSAs(b *testing.B) {
	d, _ := benchLab(b, filepath.Join(b.TempDir(), "gmsa.db"))
	b.ResetTimer()
	createGMSAs(b, d, b.N)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "gMSAs/s")
}

// Opening a store of 100k gMSAs: bbolt maps the file; the directory reads the domain.
func BenchmarkOpen100k(b *testing.B) {
	path := filepath.Join(b.TempDir(), "gmsa.db")
	d, _ := benchLab(b, path)
	createGMSAs(b, d, 100_000)
	d.st.Close()
	b.ResetTimer()
	for b.Loop() {
		st, err := bolt.Open(path, bolt.Options{})
		if err != nil {
			b.Fatal(err)
		}
		dd, err := Open(ctx, st, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := dd.Resolve(ctx, "s099999$"); err != nil {
			b.Fatal(err)
		}
		st.Close()
	}
}

// A token for a host in 10-deep nested groups.
func BenchmarkTokenNested10(b *testing.B) {
	d, _ := benchLab(b, filepath.Join(b.TempDir(), "gmsa.db"))
	if _, err := d.NewComputer(ctx, sys, ComputerOptions{Name: "H1"}); err != nil {
		b.Fatal(err)
	}
	prev := "H1$"
	for i := range 10 {
		g := fmt.Sprintf("G%02d", i)
		if _, err := d.NewGroup(ctx, sys, g, ScopeUniversal, ""); err != nil {
			b.Fatal(err)
		}
		if _, err := d.AddMember(ctx, sys, g, prev); err != nil {
			b.Fatal(err)
		}
		prev = g
	}
	b.ResetTimer()
	for b.Loop() {
		t, err := d.TokenFor(ctx, "H1$")
		if err != nil || len(t.Groups) != 13 { // 10 nested + Domain Computers + Everyone + AU
			b.Fatalf("%d groups, %v", len(t.Groups), err)
		}
	}
}

// engineCached times the engine's cached password (same period, new SID) in this
// process: the yardstick for the directory's warm reads.
func engineCached(keys []kds.RootKey, g kds.GKID) float64 {
	c := kds.NewCache(16)
	sid := ntsec.MustParseSID("S-1-5-21-1-2-3-1000").Bytes()
	c.Password(&keys[0], g, sid)
	best := math.MaxFloat64
	for range 5 {
		start := time.Now()
		for i := range 20000 {
			sid[24], sid[25] = byte(i), byte(i>>8)
			c.Password(&keys[0], g, sid)
		}
		best = min(best, float64(time.Since(start).Nanoseconds())/20000)
	}
	return best
}

// passwordBench reads msDS-ManagedPassword (the blob) for many gMSAs of one key period,
// with the objects in hand as a search would have them.
// passwordBench reads passwords of 2000 gMSAs of one key period. cold: every read walks
// the seed-key chain from the root key; warm: the chain is cached but each account's
// password is derived (the first read of each account in a period); repeat: the
// password of the period is kept too.
func passwordBench(b *testing.B, mode string) {
	d, c := benchLab(b, filepath.Join(b.TempDir(), "gmsa.db"))
	const n = 2000
	createGMSAs(b, d, n)
	accts, err := d.List(ctx, ClassGMSA)
	if err != nil || len(accts) != n {
		b.Fatal(err)
	}
	keys, _ := d.rootKeys(ctx)
	id, _ := kds.ParsePasswordID(accts[0].PasswordID)
	unit := engineCached(keys, id.GKID)
	now := c.ft()
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		switch mode {
		case "cold":
			d.cache = kds.NewCache(1024) // every read walks the chain from the root key
			clear(d.pwCache)
		case "warm":
			clear(d.pwCache)
		}
		p, err := d.passwords(ctx, accts[i%n], now)
		if err != nil {
			b.Fatal(err)
		}
		p.Blob()
		i++
	}
	ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(ns/unit, "x-engine-cached")
}

// go test -run '^$' -bench 'Passwords' ./internal/directory
func BenchmarkPasswordsWarm(b *testing.B)   { passwordBench(b, "warm") }
func BenchmarkPasswordsCold(b *testing.B)   { passwordBench(b, "cold") }
func BenchmarkPasswordsRepeat(b *testing.B) { passwordBench(b, "repeat") }

// A filter of 2000 in-chain terms over a domain of 500 groups: the cost of each term
// once its target is resolved (a map lookup; no allocation per term and object).
func BenchmarkInChainFilter(b *testing.B) {
	d, _ := benchLab(b, filepath.Join(b.TempDir(), "d.db"))
	for i := range 500 {
		if _, err := d.NewGroup(ctx, sys, fmt.Sprintf("G%d", i), ScopeGlobal, ""); err != nil {
			b.Fatal(err)
		}
	}
	var terms Or
	for i := range 2000 {
		terms = append(terms, Extensible{RuleInChain, "memberOf", []byte(fmt.Sprintf("CN=G%d,CN=Users,%s", i, d.Domain().BaseDN))})
	}
	q := Query{Base: d.Domain().BaseDN, Scope: ScopeSub, Filter: terms}
	b.ReportAllocs()
	for b.Loop() {
		if err := d.Search(ctx, sys, q, func(*Match) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}

// bulkUsers adds n users named user<i> (description "team <i%100>") in large atomic
// batches, as an offline import would.
func bulkUsers(b *testing.B, d *Directory, n int) {
	var ops []store.Op
	for i := range n {
		name := fmt.Sprintf("user%d", i)
		o := &Object{GUID: d.newGUID(), Class: ClassUser, Name: name, DN: "CN=" + name + "," + d.domain.UsersDN(), SAM: name,
			UPN: name + "@" + d.domain.DNSName, UAC: UACNormalAccount | UACAccountDisable, Description: fmt.Sprintf("team %d", i%100),
			PrimaryGroupRID: ntsec.RIDDomainUsers, Created: d.nowFT(), Changed: d.nowFT()}
		rid, err := d.allocateRID(ctx)
		if err != nil {
			b.Fatal(err)
		}
		o.SID = d.sid.Child(rid).String()
		ops = append(ops, createOps(o)...)
	}
	if err := store.ApplyInBatches(ctx, d.st, ops); err != nil {
		b.Fatal(err)
	}
}

// Searches among 100 000 users on the embedded store: an indexed equality, an AND of
// two indexed terms, an unindexed equality over the whole domain (no object matches),
// and a paged enumeration of every user (1000 per page).
func BenchmarkSearch100k(b *testing.B) {
	d, _ := benchLab(b, filepath.Join(b.TempDir(), "gmsa.db"))
	bulkUsers(b, d, 100_000)
	// As an LDAP client binds: a domain administrator, whose reads the security
	// descriptors decide.
	req := &Requester{Token: must(d.TokenFor(ctx, "Administrator")), Auth: AuthKerberos, Protection: ProtectionTLS, Remote: "bench"}
	count := func(q Query) int {
		n := 0
		if err := d.Search(ctx, req, q, func(*Match) error { n++; return nil }); err != nil {
			b.Fatal(err)
		}
		return n
	}
	base := d.domain.BaseDN
	i := 0
	b.Run("indexed", func(b *testing.B) {
		for b.Loop() {
			i++
			if count(Query{Base: base, Scope: ScopeSub, Filter: Equal{Attr: "sAMAccountName", Value: fmt.Appendf(nil, "user%d", i%100_000)}}) != 1 {
				b.Fatal("not found")
			}
		}
	})
	b.Run("and-indexed", func(b *testing.B) {
		for b.Loop() {
			i++
			f := And{Equal{Attr: "objectCategory", Value: []byte("person")}, Equal{Attr: "cn", Value: fmt.Appendf(nil, "user%d", i%100_000)}}
			if count(Query{Base: base, Scope: ScopeSub, Filter: f}) != 1 {
				b.Fatal("not found")
			}
		}
	})
	b.Run("unindexed", func(b *testing.B) {
		for b.Loop() {
			if count(Query{Base: base, Scope: ScopeSub, Filter: Equal{Attr: "description", Value: []byte("x")}}) != 0 {
				b.Fatal("found")
			}
		}
	})
	b.Run("enumerate-paged", func(b *testing.B) {
		for b.Loop() {
			q := Query{Base: base, Scope: ScopeSub, Filter: Equal{Attr: "objectClass", Value: []byte("user")}}
			total := 0
			for {
				n := 0
				err := d.Search(ctx, req, q, func(m *Match) error {
					if n == 1000 {
						return errPage
					}
					n++
					q.After = m.GUID().String()
					return nil
				})
				total += n
				if err == nil {
					break
				}
				if err != errPage {
					b.Fatal(err)
				}
			}
			if total < 100_000 {
				b.Fatalf("%d users", total)
			}
		}
	})
}

var errPage = errors.New("page full")

// Random indexed searches in a store file made outside the test, such as the million
// users bench0… of scripts/bench-scale.sh kept with GMSA_BENCH_KEEP=1 (docs/benchmarks.md,
// "The directory at scale"), opened read-only; it reports the store reads per search
// the read cache answered and those that went to the file:
//
//	GMSA_BENCH_STORE=DIR/ours/gmsa.db GMSA_BENCH_USERS=1000000 go test -run '^$' -bench IndexedSearchOfAStore ./internal/directory
func BenchmarkIndexedSearchOfAStore(b *testing.B) {
	path := os.Getenv("GMSA_BENCH_STORE")
	users, _ := strconv.Atoi(os.Getenv("GMSA_BENCH_USERS"))
	if path == "" || users <= 0 {
		b.Skip("set GMSA_BENCH_STORE to a store file and GMSA_BENCH_USERS to the count of its users bench0…")
	}
	st, err := bolt.Open(path, bolt.Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	d, err := Open(ctx, st, Options{})
	if err != nil {
		b.Fatal(err)
	}
	req := &Requester{Token: must(d.TokenFor(ctx, "Administrator")), Auth: AuthKerberos, Protection: ProtectionTLS, Remote: "bench"}
	r := rand.New(rand.NewPCG(1, 2))
	search := func() {
		n := 0
		q := Query{Base: d.domain.BaseDN, Scope: ScopeSub, Filter: Equal{Attr: "sAMAccountName", Value: fmt.Appendf(nil, "bench%d", r.IntN(users))}}
		if err := d.Search(ctx, req, q, func(*Match) error { n++; return nil }); err != nil || n != 1 {
			b.Fatalf("%d found: %v", n, err)
		}
	}
	for range min(users, 200_000) { // the caches as a server's after a while
		search()
	}
	hits, misses := st.CacheStats()
	for b.Loop() {
		search()
	}
	h, m := st.CacheStats()
	b.ReportMetric(float64(h-hits)/float64(b.N), "cached-reads/op")
	b.ReportMetric(float64(m-misses)/float64(b.N), "file-reads/op")
}

// The first page of 1 000 of every user sorted by sAMAccountName: read in the order of
// the index (what a sorted paged LDAP search does now) against collecting every match's
// value and sorting them first (what it does for an attribute without an ordered
// index), and the whole sorted enumeration page by page.
func BenchmarkSortedPages100k(b *testing.B) {
	d, _ := benchLab(b, filepath.Join(b.TempDir(), "gmsa.db"))
	bulkUsers(b, d, 100_000)
	req := &Requester{Token: must(d.TokenFor(ctx, "Administrator")), Auth: AuthKerberos, Protection: ProtectionTLS, Remote: "bench"}
	q := Query{Base: d.domain.BaseDN, Scope: ScopeSub, Filter: Equal{Attr: "objectClass", Value: []byte("user")}, Select: Selection{Names: []string{"sAMAccountName"}}}
	page := func(q Query) (string, int) {
		n, last := 0, ""
		err := d.Search(ctx, req, q, func(m *Match) error {
			if n == 1000 {
				return errPage
			}
			n++
			last = m.Cursor()
			return nil
		})
		if err != nil && err != errPage {
			b.Fatal(err)
		}
		return last, n
	}
	b.Run("first-page-ordered", func(b *testing.B) {
		for b.Loop() {
			o := q
			o.OrderBy = "sAMAccountName"
			if _, n := page(o); n != 1000 {
				b.Fatal(n)
			}
		}
	})
	b.Run("first-page-collected", func(b *testing.B) {
		for b.Loop() {
			type keyed struct {
				guid  ntsec.GUID
				value string
			}
			var all []keyed
			if err := d.Search(ctx, req, q, func(m *Match) error {
				attrs, err := m.Attributes(nil)
				if err != nil || len(attrs) == 0 {
					return err
				}
				all = append(all, keyed{m.GUID(), strings.ToLower(string(attrs[0].Values[0]))})
				return nil
			}); err != nil {
				b.Fatal(err)
			}
			slices.SortFunc(all, func(x, y keyed) int { return strings.Compare(x.value, y.value) })
			for _, k := range all[:1000] {
				if _, err := d.Lookup(ctx, req, k.guid, q.Select); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("enumerate-ordered", func(b *testing.B) {
		for b.Loop() {
			o := q
			o.OrderBy = "sAMAccountName"
			total := 0
			for {
				last, n := page(o)
				total += n
				if n < 1000 {
					break
				}
				o.After = last
			}
			if total < 100_000 {
				b.Fatalf("%d users", total)
			}
		}
	})
}
