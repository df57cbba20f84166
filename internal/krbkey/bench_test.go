package krbkey

import (
	"bytes"
	"testing"
)

var benchPassword = bytes.Repeat([]byte{0x3d, 0xd8, 0x41, 0x00}, 64) // 256 bytes with unpaired surrogates

func BenchmarkNTHash(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		NTHash(benchPassword)
	}
}

// Both AES keys of a gMSA: two PBKDF2-HMAC-SHA1 runs of 4096 iterations.
func BenchmarkAESKeys(b *testing.B) {
	salt := ComputerSalt("EXAMPLE.TEST", "svc$", "example.test")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := AccountKeys(benchPassword, salt, []int32{EtypeAES256CTSHMACSHA, EtypeAES128CTSHMACSHA}); err != nil {
			b.Fatal(err)
		}
	}
}

// A KDC's work per message under a long-term key: a ticket-sized part sealed and
// opened, and a PAC-sized checksum.
func BenchmarkUsageKey(b *testing.B) {
	u, err := NewUsageKey(bytes.Repeat([]byte{7}, 32), 2)
	if err != nil {
		b.Fatal(err)
	}
	confounder, plain, pac := make([]byte, ConfounderSize), make([]byte, 1200), make([]byte, 900)
	b.Run("encrypt", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			u.Encrypt(nil, confounder, plain)
		}
	})
	sealed := u.Encrypt(nil, confounder, plain)
	b.Run("decrypt", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := u.Decrypt(sealed); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("checksum", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			u.Checksum(pac)
		}
	})
}
