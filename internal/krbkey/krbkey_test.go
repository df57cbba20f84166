package krbkey

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"

	"gmsa/internal/vectors"
)

func h(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// RFC 3962 appendix B / RFC 3961 / RFC 1320 values from the public vector file.
func TestPrimitiveVectors(t *testing.T) {
	v := vectors.Public("primitives")[0]
	pw, salt := []byte(vectors.String(v.Inputs, "password")), vectors.String(v.Inputs, "salt")
	for _, c := range []struct {
		field string
		etype int32
		iter  int
	}{{"aes128_iter1", EtypeAES128CTSHMACSHA, 1}, {"aes256_iter1", EtypeAES256CTSHMACSHA, 1}, {"aes128_iter1200", EtypeAES128CTSHMACSHA, 1200}} {
		k, err := AESKey(c.etype, pw, salt, c.iter)
		if err != nil || !bytes.Equal(k.Value, vectors.Hex(v.Expected, c.field)) {
			t.Errorf("%s: %x %v", c.field, k.Value, err)
		}
	}
	if got := NFold([]byte("kerberos"), 16); !bytes.Equal(got, vectors.Hex(v.Expected, "nfold128_kerberos")) {
		t.Errorf("n-fold(kerberos) = %x", got)
	}
	md := NTHash([]byte("abc")) // MD4 itself
	if !bytes.Equal(md[:], vectors.Hex(v.Expected, "md4_abc")) {
		t.Errorf("MD4(abc) = %x", md)
	}
}

// RFC 3961 A.1 n-fold test vectors.
func TestNFoldRFC3961(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"012345", 8, "be072631276b1955"},
		{"password", 7, "78a07b6caf85fa"},
		{"Rough Consensus, and Running Code", 8, "bb6ed30870b7f0e0"},
		{"password", 21, "59e4a8ca7c0385c3c37b3f6d2000247cb6e6bd5b3e"},
		{"MASSACHVSETTS INSTITVTE OF TECHNOLOGY", 24, "db3b0d8f0b061e603282b308a50841229ad798fab9540c1b"},
		{"Q", 21, "518a54a215a8452a518a54a215a8452a518a54a215"},
		{"ba", 21, "fb25d531ae8974499f52fd92ea9857c4ba24cf297e"},
		{"kerberos", 8, "6b65726265726f73"},
		{"kerberos", 32, "6b65726265726f737b9b5b2b93132b935c9bdcdad95c9899c4cae4dee6d6cae4"},
	} {
		if got := NFold([]byte(c.in), c.n); hex.EncodeToString(got) != c.want {
			t.Errorf("%d-fold(%q) = %x, want %s", c.n*8, c.in, got, c.want)
		}
	}
}

// RFC 3962 appendix B, the remaining string-to-key vectors.
func TestAESStringToKeyRFC3962(t *testing.T) {
	for _, c := range []struct {
		pw, salt string
		iter     int
		a128     string
		a256     string
	}{
		{"password", "ATHENA.MIT.EDUraeburn", 2, "c651bf29e2300ac27fa469d693bdda13", "a2e16d16b36069c135d5e9d2e25f896102685618b95914b467c67622225824ff"},
		{"password", "ATHENA.MIT.EDUraeburn", 1200, "4c01cd46d632d01e6dbe230a01ed642a", "55a6ac740ad17b4846941051e1e8b0a7548d93b0ab30a8bc3ff16280382b8c2a"},
		{"password", string(h("1234567878563412")), 5, "e9b23d52273747dd5c35cb55be619d8e", "97a4e786be20d81a382d5ebc96d5909cabcdadc87ca48f574504159f16c36e31"},
		{string(bytes.Repeat([]byte("X"), 64)), "pass phrase equals block size", 1200, "59d1bb789a828b1aa54ef9c2883f69ed", "89adee3608db8bc71f1bfbfe459486b05618b70cbae22092534e56c553ba4b34"},
		{"\U0001D11E", "EXAMPLE.COMpianist", 50, "f149c1f2e154a73452d43e7fe62a56e5", "4b6d9839f84406df1f09cc166db4b83c571848b784a3d6bdc346589a3e393f9e"},
	} {
		for _, k := range []struct {
			etype int32
			want  string
		}{{EtypeAES128CTSHMACSHA, c.a128}, {EtypeAES256CTSHMACSHA, c.a256}} {
			got, err := AESKey(k.etype, []byte(c.pw), c.salt, c.iter)
			if err != nil || hex.EncodeToString(got.Value) != k.want {
				t.Errorf("%q/%q/%d %s: %x %v", c.pw, c.salt, c.iter, EtypeName(k.etype), got.Value, err)
			}
		}
	}
}

// NT hashes the vector file derived for the Samba end-to-end password and the Windows blob.
func TestNTHashVectors(t *testing.T) {
	e2e := vectors.Public("gmsa_password_end_to_end")[0]
	pw := vectors.Hex(e2e.Expected, "password_256_bytes_utf16le_after_postprocess")
	if got := NTHash(pw); !bytes.Equal(got[:], vectors.Hex(e2e.Derived, "nt_hash")) {
		t.Errorf("NT hash of the Samba vector password = %x", got)
	}
	blob := vectors.Public("managedpassword_blob_parse")[0]
	cur := vectors.Hex(blob.Expected, "current_password_with_terminator")
	if got := NTHash(cur[:256]); !bytes.Equal(got[:], vectors.Hex(blob.Derived, "nt_hash_of_current")) {
		t.Errorf("NT hash of the Windows sample = %x", got)
	}
}

func units(us ...uint16) []byte {
	var b []byte
	for _, u := range us {
		b = append(b, byte(u), byte(u>>8))
	}
	return b
}

// Unpaired surrogates become U+FFFD, each consuming its own unit (gmsa-algorithm.md §10).
func TestUTF16ToUTF8(t *testing.T) {
	for _, c := range []struct {
		in   []byte
		want string
	}{
		{units('a', 'b'), "ab"},
		{units(0xd834, 0xdd1e), "\U0001D11E"},                 // a valid pair
		{units(0xd834, 'x'), "\uFFFDx"},                       // lone high surrogate
		{units('x', 0xdd1e), "x\uFFFD"},                       // lone low surrogate
		{units(0xd834, 0xd834, 0xdd1e), "\uFFFD\U0001D11E"},   // high, then a pair
		{units(0xdd1e, 0xd834), "\uFFFD\uFFFD"},               // reversed pair
		{units(0xd834), "\uFFFD"},                             // high at the end
		{units(0x00e9, 0x4e2d, 0xfffd), "\u00e9\u4e2d\ufffd"}, // BMP characters
		{units(0xdbff, 0xdfff, 0xdc00), "\U0010FFFF\uFFFD"},   // max pair, then lone low
		{units(0x0001, 0xd800, 0xdc00, 0xd800), "\x01\U00010000\uFFFD"},
	} {
		if got := string(UTF16ToUTF8(c.in)); got != c.want {
			t.Errorf("%x → %+q, want %+q", c.in, got, c.want)
		}
	}
}

func TestSalts(t *testing.T) {
	if got := ComputerSalt("contoso.com", "svc_ADFS$", "Contoso.COM"); got != "CONTOSO.COMhostsvc_adfs.contoso.com" {
		t.Errorf("computer salt %q", got)
	}
	if got := ComputerSalt("EXAMPLE.TEST", "gmsa1$", "example.test"); got != "EXAMPLE.TESThostgmsa1.example.test" {
		t.Errorf("gMSA salt %q", got)
	}
	if got := UserSalt("example.test", "Administrator"); got != "EXAMPLE.TESTAdministrator" {
		t.Errorf("user salt %q", got)
	}
}

func TestPrincipal(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"gmsa1$", "gmsa1$@EXAMPLE.TEST"},
		{"http/web.example.test", "http/web.example.test@EXAMPLE.TEST"},
		{"a/b@OTHER", "a/b@OTHER"},
		{`we\/ird@R`, `we\/ird@R`},
	} {
		p, err := ParsePrincipal(c.in, "EXAMPLE.TEST")
		if err != nil || p.String() != c.want {
			t.Errorf("%q → %v %v", c.in, p, err)
		}
	}
	for _, bad := range []string{"", "a//b", "/x", "x@"} {
		if _, err := ParsePrincipal(bad, "R"); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func sampleKeytab() *Keytab {
	p, _ := ParsePrincipal("gmsa1$", "EXAMPLE.TEST")
	s, _ := ParsePrincipal("http/gmsa1.example.test", "EXAMPLE.TEST")
	return &Keytab{Entries: []KeytabEntry{
		{Principal: p, Timestamp: 1700000000, KVNO: 2, Key: Key{Etype: EtypeAES256CTSHMACSHA, Value: bytes.Repeat([]byte{1}, 32)}},
		{Principal: s, Timestamp: 1700000000, KVNO: 300, Key: Key{Etype: EtypeAES128CTSHMACSHA, Value: bytes.Repeat([]byte{2}, 16)}},
		{Principal: p, Timestamp: 1, KVNO: 1, Key: Key{Etype: EtypeRC4HMAC, Value: bytes.Repeat([]byte{3}, 16)}},
	}}
}

func TestKeytabRoundTrip(t *testing.T) {
	kt := sampleKeytab()
	raw, err := kt.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if raw[0] != 5 || raw[1] != 2 {
		t.Fatalf("version bytes %x", raw[:2])
	}
	back, err := ParseKeytab(raw)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(back.Entries) != fmt.Sprint(kt.Entries) {
		t.Fatalf("round trip:\n%v\n%v", back.Entries, kt.Entries)
	}
	if back.Entries[1].KVNO != 300 {
		t.Fatal("32-bit kvno extension lost")
	}
	for i := range kt.Entries {
		if !bytes.Equal(back.Entries[i].Key.Value, kt.Entries[i].Key.Value) {
			t.Fatal("key bytes differ")
		}
	}
}

// Entries written by MIT 1.20 without the kvno extension, and holes left by ktremove.
func TestKeytabHolesAndShortEntries(t *testing.T) {
	kt := sampleKeytab()
	raw, _ := kt.Marshal()
	// Drop the kvno extension of the first entry (an old-style 8-bit kvno record).
	size := int(raw[2])<<24 | int(raw[3])<<16 | int(raw[4])<<8 | int(raw[5])
	short := append([]byte{}, raw[:2]...)
	short = append(short, byte((size-4)>>24), byte((size-4)>>16), byte((size-4)>>8), byte(size-4))
	short = append(short, raw[6:6+size-4]...)
	// A hole of 12 bytes, then the rest.
	short = append(short, 0xff, 0xff, 0xff, 0xf4)
	short = append(short, make([]byte, 12)...)
	short = append(short, raw[6+size:]...)
	back, err := ParseKeytab(short)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Entries) != 3 || back.Entries[0].KVNO != 2 {
		t.Fatalf("%v", back.Entries)
	}
}

func TestKeytabMalformed(t *testing.T) {
	raw, _ := sampleKeytab().Marshal()
	for name, b := range map[string][]byte{
		"empty":     {},
		"version":   {5, 1},
		"size past": append(bytes.Clone(raw[:2]), 0, 0, 1, 0),
		"truncated": raw[:len(raw)-30],
		"hole past": append(bytes.Clone(raw[:2]), 0xff, 0xff, 0xff, 0x00),
	} {
		if _, err := ParseKeytab(b); !errors.Is(err, ErrMalformedKeytab) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestKeyDoesNotPrint(t *testing.T) {
	k := Key{Etype: 18, Value: []byte("SECRETKEY")}
	if s := fmt.Sprint(k); bytes.Contains([]byte(s), []byte("SECRET")) {
		t.Fatal(s)
	}
}

func FuzzParseKeytab(f *testing.F) {
	raw, _ := sampleKeytab().Marshal()
	f.Add(raw)
	f.Add([]byte{5, 2, 0xff, 0xff, 0xff, 0xf0})
	f.Fuzz(func(t *testing.T, data []byte) {
		kt, err := ParseKeytab(data)
		if err != nil {
			return
		}
		again, err := kt.Marshal()
		if err != nil {
			return // e.g. a component longer than the format allows cannot come from a parse
		}
		kt2, err := ParseKeytab(again)
		if err != nil || fmt.Sprint(kt2.Entries) != fmt.Sprint(kt.Entries) {
			t.Fatalf("re-parse differs: %v", err)
		}
	})
}
