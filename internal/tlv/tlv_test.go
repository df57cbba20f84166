package tlv

import (
	"bytes"
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
)

// Encodings equal the reference library's, and Split walks them back.
func TestAgainstASN1BER(t *testing.T) {
	for _, n := range []int{0, 1, 127, 128, 255, 256, 65535, 65536, 1 << 20} {
		content := bytes.Repeat([]byte{'x'}, n)
		got := Append([]byte{0xee}, 0x04, content)
		want := ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, string(content), "").Bytes()
		if !bytes.Equal(got[1:], want) || Size(n) != len(want) {
			t.Fatalf("%d octets: encoding or size differs", n)
		}
		tag, c, rest, err := Split(append(got[1:], 0xff))
		if err != nil || tag != 0x04 || len(c) != n || !bytes.Equal(rest, []byte{0xff}) {
			t.Fatalf("%d octets: split %x %d %x %v", n, tag, len(c), rest, err)
		}
	}
	for _, v := range []int64{0, 1, 127, 128, 255, 256, -1, -128, -129, 1 << 40, -1 << 62} {
		want := ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, v, "").Bytes()
		if got := AppendInt(nil, 0x02, v); !bytes.Equal(got, want) {
			t.Fatalf("%d: % x, want % x", v, got, want)
		}
	}
}

func TestHeaderRefusesBadInput(t *testing.T) {
	for _, b := range [][]byte{nil, {0x30}, {0x1f, 0x00}, {0x30, 0x80}, {0x30, 0x85, 1, 1, 1, 1, 1}, {0x30, 0x82, 0x01}, {0x04, 0x05, 'a'}} {
		if _, _, _, err := Header(b); err == nil {
			t.Errorf("% x accepted", b)
		}
	}
}

func FuzzSplit(f *testing.F) {
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x05})
	f.Add([]byte{0x04, 0x84, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		tag, c, rest, err := Split(b)
		if err != nil {
			return
		}
		if again := append(Append(nil, tag, c), rest...); len(again) > len(b) {
			t.Fatalf("re-encoding grew: % x → % x", b, again)
		}
	})
}
