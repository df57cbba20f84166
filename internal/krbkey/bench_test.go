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
