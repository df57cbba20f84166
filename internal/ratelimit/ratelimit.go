// Package ratelimit bounds what one source address may ask of a datagram service (DNS,
// CLDAP): a spoofed flood must not turn the server into an amplifier.
package ratelimit

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// PerSource is a token bucket per source address; the table is cleared when it holds
// MaxSources, so a flood from spoofed addresses costs memory only up to that bound.
type PerSource struct {
	mu          sync.Mutex
	rate, burst float64
	now         func() time.Time
	buckets     map[netip.Addr]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

// MaxSources bounds the sources a PerSource remembers.
const MaxSources = 16384

// New allows each source perSecond requests a second, in bursts of twice that.
func New(perSecond int, now func() time.Time) *PerSource {
	if now == nil {
		now = time.Now
	}
	return &PerSource{rate: float64(perSecond), burst: 2 * float64(perSecond), now: now, buckets: map[netip.Addr]*bucket{}}
}

// Allow takes one token of a's bucket, and reports whether there was one.
func (l *PerSource) Allow(a netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.buckets[a]
	if b == nil {
		if len(l.buckets) >= MaxSources {
			clear(l.buckets)
		}
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[a] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.at).Seconds()*l.rate)
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// Source is the address of a UDP or TCP peer, IPv4 unmapped.
func Source(a net.Addr) netip.Addr {
	switch v := a.(type) {
	case *net.UDPAddr:
		ip, _ := netip.AddrFromSlice(v.IP)
		return ip.Unmap()
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(v.IP)
		return ip.Unmap()
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
