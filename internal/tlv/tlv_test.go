package tlv

import (
	"bufio"
	"bytes"
	"errors"
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

func TestReadMessage(t *testing.T) {
	msg := Append(nil, 0x30, AppendInt(nil, 0x02, 7))
	in := bufio.NewReader(bytes.NewReader(append(append([]byte{}, msg...), msg...)))
	room := make([]byte, 0, 64)
	got, err := ReadMessage(in, room, 100, nil)
	if err != nil || !bytes.Equal(got, msg) || &got[0] != &room[:1][0] {
		t.Fatalf("first: % x %v (buffer reused: %v)", got, err, err == nil && &got[0] == &room[:1][0])
	}
	if got, err := ReadMessage(in, nil, 100, nil); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("second: % x %v", got, err)
	}
	// The length is refused before any of the contents is read.
	huge := bufio.NewReader(bytes.NewReader([]byte{0x30, 0x84, 0x7f, 0xff, 0xff, 0xff}))
	if _, err := ReadMessage(huge, nil, 1<<20, nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized: %v", err)
	}
	for _, bad := range [][]byte{{0x04, 0x00}, {0x30, 0x80}, {0x30, 0x85}, {0x30, 0x05, 0x02}} {
		if _, err := ReadMessage(bufio.NewReader(bytes.NewReader(bad)), nil, 100, nil); err == nil {
			t.Errorf("% x accepted", bad)
		}
	}
}
