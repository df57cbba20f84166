package managedpw

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"gmsa/internal/vectors"
)

// Samba librpc/tests/test_ndr_gmsa.c: a blob from Windows without a previous password.
func TestWindowsSampleVector(t *testing.T) {
	v := vectors.Public("managedpassword_blob_parse")[0]
	raw := vectors.Hex(v.Inputs, "blob")
	b, err := Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	withNUL := vectors.Hex(v.Expected, "current_password_with_terminator")
	if !bytes.Equal(b.Current, withNUL[:len(withNUL)-2]) || len(b.Current) != 256 {
		t.Fatalf("current password %x", b.Current)
	}
	if b.Previous != nil {
		t.Fatal("previous password where the sample has none")
	}
	var q, u uint64
	vectors.Get(v.Expected, "query_password_interval", &q)
	vectors.Get(v.Expected, "unchanged_password_interval", &u)
	if b.QueryInterval != q || b.UnchangedInterval != u {
		t.Fatalf("intervals %d %d, want %d %d", b.QueryInterval, b.UnchangedInterval, q, u)
	}
	if got := b.Encode(); !bytes.Equal(got, raw) {
		t.Fatalf("re-encoding differs:\n%x\n%x", got, raw)
	}
	le := binary.LittleEndian
	if le.Uint32(raw[4:]) != 290 || le.Uint16(raw[12:]) != 274 || le.Uint16(raw[14:]) != 282 {
		t.Fatal("sample header is not 290/274/282")
	}
}

func TestLayoutWithPrevious(t *testing.T) {
	b := &Blob{Current: bytes.Repeat([]byte{1, 2}, 128), Previous: bytes.Repeat([]byte{3, 4}, 128), QueryInterval: 7, UnchangedInterval: 5}
	raw := b.Encode()
	le := binary.LittleEndian
	got := []int{int(le.Uint32(raw[4:])), int(le.Uint16(raw[8:])), int(le.Uint16(raw[10:])), int(le.Uint16(raw[12:])), int(le.Uint16(raw[14:]))}
	if fmt.Sprint(got) != fmt.Sprint([]int{548, 16, 274, 532, 540}) || len(raw) != 548 {
		t.Fatalf("layout %v (%d bytes), want Windows' 548/16/274/532/540", got, len(raw))
	}
	back, err := Decode(raw)
	if err != nil || !bytes.Equal(back.Current, b.Current) || !bytes.Equal(back.Previous, b.Previous) || back.QueryInterval != 7 || back.UnchangedInterval != 5 {
		t.Fatalf("round trip: %v %v", back, err)
	}
}

// Readers go by offsets: a blob padded to MS-ADTS' 8-byte alignment still decodes.
func TestPaddedBlobDecodes(t *testing.T) {
	cur := bytes.Repeat([]byte{0x41, 0}, 128)
	raw := make([]byte, 16)
	raw = append(append(raw, cur...), 0, 0, 0, 0, 0, 0, 0, 0) // 274 → pad to 280
	q := len(raw)
	raw = binary.LittleEndian.AppendUint64(raw, 99)
	u := len(raw)
	raw = binary.LittleEndian.AppendUint64(raw, 88)
	binary.LittleEndian.PutUint16(raw[0:], 1)
	binary.LittleEndian.PutUint32(raw[4:], uint32(len(raw)))
	binary.LittleEndian.PutUint16(raw[8:], 16)
	binary.LittleEndian.PutUint16(raw[12:], uint16(q))
	binary.LittleEndian.PutUint16(raw[14:], uint16(u))
	b, err := Decode(raw)
	if err != nil || !bytes.Equal(b.Current, cur) || b.QueryInterval != 99 || b.UnchangedInterval != 88 {
		t.Fatalf("%v %v", b, err)
	}
}

func TestMalformed(t *testing.T) {
	good := (&Blob{Current: bytes.Repeat([]byte{7, 9}, 128), QueryInterval: 1, UnchangedInterval: 2}).Encode()
	cases := map[string]func([]byte) []byte{
		"short":           func(b []byte) []byte { return b[:10] },
		"version":         func(b []byte) []byte { b[0] = 2; return b },
		"length":          func(b []byte) []byte { b[4]++; return b },
		"truncated":       func(b []byte) []byte { return b[:len(b)-1] },
		"current in hdr":  func(b []byte) []byte { b[8] = 4; return b },
		"query before pw": func(b []byte) []byte { b[12] = 8; b[13] = 0; return b },
		"unchanged past":  func(b []byte) []byte { b[14] = 0xff; b[15] = 0xff; return b },
		"no terminator":   func(b []byte) []byte { b[16+256] = 1; return b },
		"empty password":  func(b []byte) []byte { b[16], b[17] = 0, 0; return b },
		"prev before cur": func(b []byte) []byte { b[10] = 8; return b },
		"overlap interval": func(b []byte) []byte {
			binary.LittleEndian.PutUint16(b[14:], binary.LittleEndian.Uint16(b[12:])+4)
			return b
		},
	}
	for name, mutate := range cases {
		_, err := Decode(mutate(bytes.Clone(good)))
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestRandomRoundTrip(t *testing.T) {
	for i := range 200 {
		cur := make([]byte, 256)
		rand.Read(cur)
		for j := 0; j < len(cur); j += 2 { // post-processed passwords have no NUL unit
			if cur[j] == 0 && cur[j+1] == 0 {
				cur[j] = 1
			}
		}
		b := &Blob{Current: cur, QueryInterval: uint64(i) * 1e9, UnchangedInterval: uint64(i)}
		if i%2 == 0 {
			b.Previous = bytes.Clone(cur[:254])
		}
		back, err := Decode(b.Encode())
		if err != nil || !bytes.Equal(back.Current, b.Current) || !bytes.Equal(back.Previous, b.Previous) {
			t.Fatalf("round %d: %v", i, err)
		}
	}
}

func TestBlobDoesNotPrintPasswords(t *testing.T) {
	b := &Blob{Current: []byte("SECRETSECRET")}
	for _, s := range []string{fmt.Sprint(b), fmt.Sprintf("%v", b), b.String()} {
		if bytes.Contains([]byte(s), []byte("SECRET")) {
			t.Fatalf("printed %q", s)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(vectors.Hex(vectors.Public("managedpassword_blob_parse")[0].Inputs, "blob"))
	f.Add((&Blob{Current: []byte{1, 2}, Previous: []byte{3, 4}}).Encode())
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := Decode(data)
		if err != nil {
			return
		}
		again, err := Decode(b.Encode())
		if err != nil || !bytes.Equal(again.Current, b.Current) || !bytes.Equal(again.Previous, b.Previous) ||
			again.QueryInterval != b.QueryInterval || again.UnchangedInterval != b.UnchangedInterval {
			t.Fatalf("decode(encode(decode(x))) differs: %v", err)
		}
	})
}
