package krbclient

import (
	"testing"
	"time"
)

// FuzzParseProbeReply: whatever a KDC (or something on its port) answers, the probe
// returns a result or an error, never a panic.
func FuzzParseProbeReply(f *testing.F) {
	f.Add([]byte{0x7e, 0x03, 0x02, 0x01, 0x00})
	f.Add([]byte{0x6b, 0x00})
	f.Add([]byte{})
	now := func() time.Time { return time.Unix(1e9, 0) }
	f.Fuzz(func(t *testing.T, b []byte) {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("panic on %x: %v", b, r)
			}
		}()
		ParseProbeReply(b, now)
	})
}
