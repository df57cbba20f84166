package ntsec

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"gmsa/internal/vectors"
)

// gmsa-algorithm.md §1 examples.
func TestGUIDPacketForm(t *testing.T) {
	g, err := ParseGUID("7dc95c96-fa85-183a-dff5-f70696bf0b11")
	if err != nil || hex.EncodeToString(g[:]) != "965cc97d85fa3a18dff5f70696bf0b11" {
		t.Fatalf("%x %v", g[:], err)
	}
	if g.String() != "7dc95c96-fa85-183a-dff5-f70696bf0b11" {
		t.Fatal(g.String())
	}
	if b, _ := ParseGUID("{7DC95C96-FA85-183A-DFF5-F70696BF0B11}"); b != g {
		t.Fatal("braces/upper case not accepted")
	}
	for _, bad := range []string{"", "7dc95c96fa85183adff5f70696bf0b11", "7dc95c96-fa85-183a-dff5-f70696bf0b1g"} {
		if _, err := ParseGUID(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestSID(t *testing.T) {
	s, err := ParseSID("S-1-5-21-4119591868-3001629103-3445594911-48026")
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(s.Bytes()) != "010500000000000515000000bcfb8bf5af39e9b21f9b5fcd9abb0000" {
		t.Fatalf("%x", s.Bytes())
	}
	back, err := SIDFromBytes(s.Bytes())
	if err != nil || !back.Equal(s) || back.String() != s.String() {
		t.Fatal(back, err)
	}
	if s.RID() != 48026 || s.Domain().String() != "S-1-5-21-4119591868-3001629103-3445594911" || !s.Domain().Child(48026).Equal(s) {
		t.Fatal("RID/Domain/Child")
	}
	if x := MustParseSID("S-1-0x123456789ABC-1"); x.String() != "S-1-0x123456789ABC-1" {
		t.Fatal(x.String())
	}
	for _, bad := range []string{"", "S-1", "S-2-5-1", "S-1-5-x", "S-1-5-4294967296", "X-1-5", "S-1-5" + strings.Repeat("-1", 16)} {
		if _, err := ParseSID(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	for _, bad := range [][]byte{{}, {2, 0, 0, 0, 0, 0, 0, 0}, {1, 2, 0, 0, 0, 0, 0, 5, 1, 0, 0, 0}, append(s.Bytes(), 0)} {
		if _, err := SIDFromBytes(bad); err == nil {
			t.Errorf("%x accepted", bad)
		}
	}
}

func TestFileTime(t *testing.T) {
	tm := time.Date(2024, 2, 15, 10, 0, 0, 123456700, time.UTC)
	ft := FileTimeFromTime(tm)
	if !ft.Time().Equal(tm) {
		t.Fatal(ft.Time())
	}
	if ft2, err := ParseFileTime("2024-02-15T10:00:00.1234567Z"); err != nil || ft2 != ft {
		t.Fatal(ft2, err)
	}
	if ft3, _ := ParseFileTime("133387453261266352"); ft3 != 133387453261266352 {
		t.Fatal(ft3)
	}
	if _, err := ParseFileTime("yesterday"); err == nil {
		t.Fatal("accepted")
	}
	if FileTimeFromTime(time.Unix(0, 0)) != 116444736000000000 {
		t.Fatal("Unix epoch")
	}
	if s := FormatTicks(25763432939433); s != "29d 19h 39m 3.2939433s" {
		t.Fatal(s)
	}
}

// The gMSA seed-key SD is identical in MS-ADTS, Samba, DSInternals and GoldenGMSA.
func TestGMSASecurityDescriptor(t *testing.T) {
	c := struct{ sd, sddl string }{}
	for _, v := range vectors.Public("gkdi_seed_key")[:1] {
		c.sd = hex.EncodeToString(vectors.Hex(v.Inputs, "security_descriptor"))
	}
	c.sddl = "O:SYD:(A;;FRFW;;;S-1-5-9)"
	raw, _ := hex.DecodeString(c.sd)
	sd, err := ParseSecurityDescriptor(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sd.Bytes(), raw) {
		t.Fatalf("re-encoding %x", sd.Bytes())
	}
	parsed, err := ParseSDDL(c.sddl, SID{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(parsed.Bytes(), raw) {
		t.Fatalf("SDDL %s encodes to %x, want %x", c.sddl, parsed.Bytes(), raw)
	}
	if got := sd.SDDL(); got != "O:SYD:(A;;0x12019f;;;ED)" {
		t.Fatalf("SDDL() = %s", got)
	}
}

var domain = MustParseSID("S-1-5-21-1-2-3")

func TestSDDLRoundTrip(t *testing.T) {
	for _, s := range []string{
		"O:S-1-5-32-544D:(A;;0xf01ff;;;S-1-5-21-1-2-3-1105)",
		"O:BAD:(A;;CCDCLCSWRPWPDTLOCRSDRCWDWO;;;S-1-5-21-1-2-3-1105)(A;;RP;;;S-1-5-21-1-2-3-515)",
		"O:SYD:(D;;RP;;;WD)",
		"O:DAG:DAD:PAI(OA;CIIO;RP;4c164200-20c0-11d0-a768-00aa006e0529;bf967aba-0de6-11d0-a285-00aa003049e2;RU)(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;SY)S:AI(AU;SA;WP;;;WD)",
		"D:NO_ACCESS_CONTROL",
		"O:BAG:SYD:",
	} {
		sd, err := ParseSDDL(s, domain)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		raw := sd.Bytes()
		back, err := ParseSecurityDescriptor(raw)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if !bytes.Equal(back.Bytes(), raw) {
			t.Fatalf("%s: binary round trip differs", s)
		}
		again, err := ParseSDDL(back.SDDL(), domain)
		if err != nil || !bytes.Equal(again.Bytes(), raw) {
			t.Fatalf("%s → %s: %v", s, back.SDDL(), err)
		}
	}
	sd, _ := ParseSDDL("O:DAD:(A;;GA;;;EA)", domain)
	if sd.Owner.String() != "S-1-5-21-1-2-3-512" || sd.DACL.ACEs[0].SID.String() != "S-1-5-21-1-2-3-519" {
		t.Fatal("domain-relative aliases")
	}
}

func TestSDDLErrors(t *testing.T) {
	for _, s := range []string{
		"O:XXD:", "D:(A;;RP;;;WD", "D:(Z;;RP;;;WD)", "D:(A;;QQ;;;WD)", "D:(A;ZZ;RP;;;WD)", "D:(A;;RP;;WD)",
		"D:(A;;RP;4c164200-20c0-11d0-a768-00aa006e0529;;WD)", "Q:BA", "O:BAO:BA", "D:X(A;;RP;;;WD)",
	} {
		if _, err := ParseSDDL(s, domain); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
	if _, err := ParseSDDL("O:DA", SID{}); err == nil || !strings.Contains(err.Error(), "domain-relative") {
		t.Errorf("DA without a domain: %v", err)
	}
}

func TestAccessCheck(t *testing.T) {
	user := domain.Child(1105)
	hosts := domain.Child(1200)
	gmsa := domain.Child(1300)
	tokUser := &Token{User: user, Groups: []SID{domain.Child(513), SIDEveryone, SIDAuthenticatedUsers}}
	tokHost := &Token{User: domain.Child(1106), Groups: []SID{hosts, SIDEveryone}}
	tokGMSA := &Token{User: gmsa, Groups: []SID{SIDEveryone}}
	cases := []struct {
		sddl  string
		tok   *Token
		want  bool
		ace   int
		about string
	}{
		{"O:BAD:(A;;0xf01ff;;;S-1-5-21-1-2-3-1105)", tokUser, true, 0, "user listed"},
		{"O:BAD:(A;;0xf01ff;;;S-1-5-21-1-2-3-1105)", tokHost, false, -1, "user not listed"},
		{"O:BAD:(A;;RP;;;S-1-5-21-1-2-3-1200)", tokHost, true, 0, "group listed"},
		{"O:SYD:(D;;RP;;;WD)", tokUser, false, 0, "deny everyone"},
		{"O:SYD:(D;;RP;;;WD)(A;;RP;;;S-1-5-21-1-2-3-1105)", tokUser, false, 0, "deny first wins"},
		{"O:BAD:(D;;WP;;;WD)(A;;RP;;;S-1-5-21-1-2-3-1105)", tokUser, true, 1, "deny of another right"},
		{"O:BAD:(A;;RP;;;PS)", tokGMSA, true, 0, "PRINCIPAL_SELF"},
		{"O:BAD:(A;;RP;;;PS)", tokUser, false, -1, "PRINCIPAL_SELF is not the user"},
		{"O:BAD:(A;IO;RP;;;WD)", tokUser, false, -1, "inherit-only skipped"},
		{"O:BAD:(A;;GR;;;AU)", tokUser, true, 0, "generic read maps to RP"},
		{"O:BAD:(OA;;RP;4c164200-20c0-11d0-a768-00aa006e0529;;WD)", tokUser, false, -1, "object ACE with a type"},
		{"O:BAD:(OA;;RP;;;WD)", tokUser, true, 0, "object ACE without a type"},
		{"O:BAD:", tokUser, false, -1, "empty DACL"},
		{"O:BA", tokUser, true, -1, "no DACL"},
	}
	for _, c := range cases {
		sd, err := ParseSDDL(c.sddl, domain)
		if err != nil {
			t.Fatal(err)
		}
		d := AccessCheck(sd, c.tok, RightDSReadProperty, gmsa)
		if d.Granted != c.want || d.ACE != c.ace || d.Reason() == "" {
			t.Errorf("%s (%s): %+v", c.about, c.sddl, d)
		}
	}
	// The owner holds READ_CONTROL implicitly.
	sd, _ := ParseSDDL("O:S-1-5-21-1-2-3-1105D:", domain)
	if !AccessCheck(sd, tokUser, RightReadControl, SID{}).Granted {
		t.Error("owner lacks READ_CONTROL")
	}
}

func TestSecurityDescriptorMalformed(t *testing.T) {
	good, _ := ParseSDDL("O:BAD:(A;;RP;;;WD)", domain)
	raw := good.Bytes()
	for name, mut := range map[string]func([]byte) []byte{
		"short":        func(b []byte) []byte { return b[:10] },
		"revision":     func(b []byte) []byte { b[0] = 2; return b },
		"not relative": func(b []byte) []byte { b[3] = 0; return b },
		"owner past":   func(b []byte) []byte { b[4] = 0xff; return b },
		"dacl past":    func(b []byte) []byte { b[16] = 0xfe; return b },
		"acl size":     func(b []byte) []byte { b[20+2] = 0xff; return b },
		"ace size":     func(b []byte) []byte { b[28+2] = 3; return b },
		"acl rev":      func(b []byte) []byte { b[20] = 9; return b },
	} {
		if _, err := ParseSecurityDescriptor(mut(bytes.Clone(raw))); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

func FuzzParseSID(f *testing.F) {
	f.Add("S-1-5-21-1-2-3-500")
	f.Add("S-1-0x123456789ABC-1")
	f.Fuzz(func(t *testing.T, s string) {
		sid, err := ParseSID(s)
		if err != nil {
			return
		}
		back, err := SIDFromBytes(sid.Bytes())
		if err != nil || !back.Equal(sid) {
			t.Fatalf("%q: %v", s, err)
		}
		if again, err := ParseSID(sid.String()); err != nil || !again.Equal(sid) {
			t.Fatalf("%q → %q: %v", s, sid.String(), err)
		}
	})
}

func FuzzSIDFromBytes(f *testing.F) {
	f.Add(MustParseSID("S-1-5-21-1-2-3-500").Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		sid, err := SIDFromBytes(b)
		if err == nil && !bytes.Equal(sid.Bytes(), b) {
			t.Fatalf("%x re-encodes to %x", b, sid.Bytes())
		}
	})
}

func FuzzParseSecurityDescriptor(f *testing.F) {
	for _, s := range []string{"O:SYD:(A;;FRFW;;;S-1-5-9)", "O:DAG:DAD:PAI(OA;CIIO;RP;4c164200-20c0-11d0-a768-00aa006e0529;;RU)S:(AU;SA;WP;;;WD)"} {
		sd, _ := ParseSDDL(s, domain)
		f.Add(sd.Bytes())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		sd, err := ParseSecurityDescriptor(b)
		if err != nil {
			return
		}
		again, err := ParseSecurityDescriptor(sd.Bytes())
		if err != nil || !bytes.Equal(again.Bytes(), sd.Bytes()) {
			t.Fatalf("re-parse: %v", err)
		}
		AccessCheck(sd, &Token{User: domain.Child(1), Groups: []SID{SIDEveryone}}, RightDSReadProperty, domain.Child(2))
	})
}

func FuzzParseSDDL(f *testing.F) {
	f.Add("O:S-1-5-32-544D:(A;;0xf01ff;;;S-1-5-21-1-2-3-1105)")
	f.Add("O:DAG:DAD:PAI(OA;CIIO;RP;4c164200-20c0-11d0-a768-00aa006e0529;;RU)S:AI(AU;SA;WP;;;WD)")
	f.Add("D:NO_ACCESS_CONTROL")
	f.Fuzz(func(t *testing.T, s string) {
		sd, err := ParseSDDL(s, domain)
		if err != nil {
			return
		}
		raw := sd.Bytes()
		back, err := ParseSecurityDescriptor(raw)
		if err != nil {
			t.Fatalf("%q encodes to an unparsable descriptor: %v", s, err)
		}
		if again, err := ParseSDDL(back.SDDL(), domain); err != nil || !bytes.Equal(again.Bytes(), raw) {
			t.Fatalf("%q → %q: %v", s, back.SDDL(), err)
		}
	})
}
