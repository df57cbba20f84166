package krbkey

import (
	"bytes"
	"crypto/rand"
	"testing"

	"github.com/jcmturner/aescts/v2"
	"github.com/jcmturner/gokrb5/v8/crypto"
)

// The CBC-CS3 code against the aescts package (itself checked against the RFC 3962
// appendix B vectors) at every length from one block to several.
func TestCTSAgainstAESCTS(t *testing.T) {
	key := make([]byte, 32)
	rand.Read(key)
	u, err := UsageKeyFromDerived(key, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for n := 16; n < 100; n++ {
		plain := make([]byte, n)
		rand.Read(plain)
		_, want, err := aescts.Encrypt(key, make([]byte, 16), plain)
		if err != nil {
			t.Fatal(err)
		}
		got := append([]byte(nil), plain...)
		u.ctsEncrypt(got)
		if !bytes.Equal(got, want) {
			t.Fatalf("length %d: encrypt %x, want %x", n, got, want)
		}
		u.ctsDecrypt(got)
		if !bytes.Equal(got, plain) {
			t.Fatalf("length %d: decrypt %x, want %x", n, got, plain)
		}
	}
}

// Encrypt, Decrypt and Checksum interoperate with gokrb5's RFC 3962 implementation in
// both directions, for both key sizes.
func TestUsageKeyAgainstGokrb5(t *testing.T) {
	for _, etype := range []int32{EtypeAES128CTSHMACSHA, EtypeAES256CTSHMACSHA} {
		et, err := crypto.GetEtype(etype)
		if err != nil {
			t.Fatal(err)
		}
		key := make([]byte, et.GetKeyByteSize())
		rand.Read(key)
		const usage = 24
		u, err := NewUsageKey(key, usage)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{0, 1, 15, 16, 17, 100, 1000} {
			plain := make([]byte, n)
			rand.Read(plain)
			conf := make([]byte, ConfounderSize)
			rand.Read(conf)
			ours := u.Encrypt(nil, conf, plain)
			back, err := et.DecryptMessage(key, ours, usage)
			if err != nil || !bytes.Equal(back, plain) {
				t.Fatalf("etype %d length %d: gokrb5 cannot read ours: %v", etype, n, err)
			}
			_, theirs, err := et.EncryptMessage(key, plain, usage)
			if err != nil {
				t.Fatal(err)
			}
			got, err := u.Decrypt(theirs)
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("etype %d length %d: ours cannot read gokrb5's: %v", etype, n, err)
			}
			theirs[len(theirs)/2] ^= 1
			if _, err := u.Decrypt(theirs); err != ErrIntegrity {
				t.Fatalf("a flipped bit decrypted: %v", err)
			}
			sum, err := et.GetChecksumHash(key, plain, usage)
			if err != nil || !bytes.Equal(u.Checksum(plain[:n/2], plain[n/2:]), sum[:ChecksumSize]) {
				t.Fatalf("etype %d length %d: checksum differs from gokrb5's", etype, n)
			}
		}
		if _, err := u.Decrypt(make([]byte, 27)); err != ErrIntegrity {
			t.Fatalf("a short ciphertext: %v", err)
		}
	}
}
