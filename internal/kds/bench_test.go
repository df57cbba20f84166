package kds

import (
	"crypto/hmac"
	"crypto/sha512"
	"math"
	"sync"
	"testing"
	"time"

	"gmsa/internal/ntsec"
)

// The HMAC unit: one HMAC-SHA512 of a KDF-sized message (4+24+1+28+4 bytes) under a
// fresh 64-byte key, with the standard library, as every seed-key step needs one.
// It is timed once per process, as the best of five 20 000-call rounds.
var hmacUnit = sync.OnceValue(func() float64 {
	best := math.MaxFloat64
	var sum []byte
	for range 5 {
		start := time.Now()
		for range 20000 {
			m := hmac.New(sha512.New, benchKey)
			m.Write(benchMsg)
			sum = m.Sum(sum[:0])
		}
		best = min(best, float64(time.Since(start).Nanoseconds())/20000)
	}
	return best
})

var (
	benchKey = make([]byte, 64)
	benchMsg = make([]byte, 61)
)

func benchHMAC(b *testing.B) {
	b.ReportAllocs()
	var sum []byte
	for b.Loop() {
		m := hmac.New(sha512.New, benchKey)
		m.Write(benchMsg)
		sum = m.Sum(sum[:0])
	}
}

func BenchmarkHMACSHA512(b *testing.B) { benchHMAC(b) }

// reportUnits adds the cost in HMAC units and, when known, per HMAC call the chain needs.
func reportUnits(b *testing.B, calls float64) {
	ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	units := ns / hmacUnit()
	b.ReportMetric(units, "hmac-units/op")
	if calls > 0 {
		b.ReportMetric(units/calls, "units/call")
	}
}

func benchRootKey() *RootKey {
	id, _ := ntsec.ParseGUID("0170e972-a035-af4c-993b-e052d5bd1216")
	return &RootKey{ID: id, Data: benchKey, Version: 1, KDFAlgorithm: KDFAlgorithm, Hash: SHA512, UseStartTime: 1}
}

func BenchmarkKDF64(b *testing.B) {
	hmacUnit()
	b.ReportAllocs()
	for b.Loop() {
		KDF(SHA512, benchKey, labelKDSService, benchMsg[:28], 64)
	}
	reportUnits(b, 1)
}

// chainCalls is the number of HMAC calls a password for g needs from the root key:
// L0, L1[31], L1 31→g.L1, L2[31], L2 31→g.L2, then 4 for the 256-byte password.
func chainCalls(g GKID) float64 { return float64(2+(31-g.L1)+1+(31-g.L2)) + 4 }

func BenchmarkPasswordUncached(b *testing.B) {
	hmacUnit()
	rk, sid := benchRootKey(), ntsec.MustParseSID("S-1-5-21-1-2-3-1000").Bytes()
	g := GKID{362, 0, 23}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DerivePassword(rk, g, sid); err != nil {
			b.Fatal(err)
		}
	}
	reportUnits(b, chainCalls(g))
}

// Worst case: the first period of an L1 index 0 chain, L2 index 0 (64 steps).
func BenchmarkPasswordUncachedLongest(b *testing.B) {
	hmacUnit()
	rk, sid := benchRootKey(), ntsec.MustParseSID("S-1-5-21-1-2-3-1000").Bytes()
	g := GKID{362, 0, 0}
	for b.Loop() {
		DerivePassword(rk, g, sid)
	}
	reportUnits(b, chainCalls(g))
}

// The cached path: same key period, a new SID every time.
func BenchmarkPasswordCached(b *testing.B) {
	hmacUnit()
	rk := benchRootKey()
	g := GKID{362, 0, 23}
	c := NewCache(16)
	sid := ntsec.MustParseSID("S-1-5-21-1-2-3-1000").Bytes()
	c.Password(rk, g, sid)
	b.ReportAllocs()
	var n uint32
	for b.Loop() {
		n++
		sid[24], sid[25], sid[26] = byte(n), byte(n>>8), byte(n>>16) // the RID
		if _, err := c.Password(rk, g, sid); err != nil {
			b.Fatal(err)
		}
	}
	reportUnits(b, 4)
}

func BenchmarkPasswordCachedParallel(b *testing.B) {
	rk := benchRootKey()
	g := GKID{362, 0, 23}
	c := NewCache(16)
	c.Password(rk, g, ntsec.MustParseSID("S-1-5-21-1-2-3-1000").Bytes())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		sid := ntsec.MustParseSID("S-1-5-21-1-2-3-1000").Bytes()
		for i := 0; pb.Next(); i++ {
			sid[24] = byte(i)
			c.Password(rk, g, sid)
		}
	})
}

func TestCachedPasswordAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are asserted by the run without -race")
	}
	rk := benchRootKey()
	g := GKID{362, 0, 23}
	c := NewCache(16)
	sid := ntsec.MustParseSID("S-1-5-21-1-2-3-1000").Bytes()
	if _, err := c.Password(rk, g, sid); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(200, func() { sid[24]++; c.Password(rk, g, sid) }); n != 0 {
		t.Fatalf("%v allocations per cached password, want 0", n)
	}
}

// A neighbouring period continues the cached chain: moving one L2 index down costs one
// step, not a walk from the root key.
func TestCacheContinuesChains(t *testing.T) {
	rk := benchRootKey()
	c := NewCache(16)
	sid := ntsec.MustParseSID("S-1-5-21-1-2-3-1000").Bytes()
	for _, g := range []GKID{{362, 5, 20}, {362, 5, 19}, {362, 5, 25}, {362, 3, 0}, {362, 5, 2}, {361, 31, 31}} {
		got, err := c.Password(rk, g, sid)
		want, _ := DerivePassword(rk, g, sid)
		if err != nil || got != want {
			t.Fatalf("%v: cached %v", g, err)
		}
	}
	if len(c.l2) != 3 || len(c.l1) != 2 {
		t.Fatalf("%d L2 chains and %d L1 chains", len(c.l2), len(c.l1))
	}
	small := NewCache(1)
	for l1 := int32(31); l1 >= 20; l1-- {
		g := GKID{362, l1, 3}
		got, _ := small.Password(rk, g, sid)
		want, _ := DerivePassword(rk, g, sid)
		if got != want || len(small.l2) > 1 {
			t.Fatalf("bounded cache: %v %d chains", g, len(small.l2))
		}
	}
}
