package kds

import (
	"bytes"
	"testing"

	"gmsa/internal/vectors"
)

func FuzzParsePasswordID(f *testing.F) {
	f.Add(vectors.Hex(vectors.Public("managedpasswordid_blob")[0].Expected, "blob"))
	f.Add((&PasswordID{Version: 1, Flags: 2, GKID: GKID{1, 2, 3}, AdditionalInfo: []byte{1, 2, 3}, DomainName: "a", ForestName: "b"}).Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := ParsePasswordID(b)
		if err != nil {
			return
		}
		again, err := ParsePasswordID(id.Bytes())
		if err != nil || !bytes.Equal(again.Bytes(), id.Bytes()) {
			t.Fatalf("re-parse: %v", err)
		}
	})
}

func FuzzDecodeKDFParam(f *testing.F) {
	f.Add(EncodeKDFParam(SHA512))
	f.Add(EncodeKDFParam(SHA1))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := DecodeKDFParam(b)
		if err != nil || len(b) == 0 {
			return
		}
		if got, err := DecodeKDFParam(EncodeKDFParam(h)); err != nil || got != h {
			t.Fatalf("%v: %v", h, err)
		}
	})
}
