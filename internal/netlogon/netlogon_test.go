package netlogon

import (
	"bytes"
	"net/netip"
	"reflect"
	"testing"

	"gmsa/internal/ntsec"
)

func sample() *Response {
	return &Response{Opcode: OpSAMLogonResponseEX, Flags: FlagPDC | FlagLDAP | FlagDS | FlagKDC | FlagWritable | FlagDNSController | FlagDNSDomain | FlagDNSForest,
		DomainGUID: ntsec.GUID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		DNSForest:  "example.test", DNSDomain: "example.test", DNSHost: "dc1.example.test", NetBIOSDomain: "EXAMPLE", NetBIOSDC: "DC1",
		User: "HOST1$", DCSite: "Default-First-Site-Name", ClientSite: "Default-First-Site-Name",
		DCAddr: netip.MustParseAddr("127.0.0.9"), NtVersion: NtVersion1 | NtVersion5EX | NtVersion5EXWithIP}
}

func TestRoundTripAndCompression(t *testing.T) {
	r := sample()
	b := r.Marshal()
	// The domain repeats the forest, the host ends in it, the client's site repeats
	// the DC's: each later copy is a two-byte pointer.
	if n := bytes.Count(b, []byte("example")); n != 1 {
		t.Fatalf("example written %d times in %x", n, b)
	}
	if n := bytes.Count(b, []byte("Default-First-Site-Name")); n != 1 {
		t.Fatalf("the site written %d times", n)
	}
	got, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, r)
	}
	// Without the IP bit, no DcSockAddr; with the closest-site bit, one more name.
	r.NtVersion, r.DCAddr, r.NextClosestSite = NtVersion1|NtVersion5EX|NtVersionWithClosest, netip.Addr{}, ""
	if got, err = Parse(r.Marshal()); err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("without the address: %v\n%+v", err, got)
	}
}

// A response as a Windows DC sends it (layout of [MS-ADTS] 6.3.1.9): opcode 23, the
// names with pointers into the forest name, the address, NtVersion 5EX|5EX_WITH_IP|1.
func TestParseHandBuilt(t *testing.T) {
	b := []byte{23, 0, 0, 0, 0xfd, 0xf3, 0x01, 0xe0}
	b = append(b, make([]byte, 16)...)
	b = append(b, 4, 'c', 'o', 'r', 'p', 2, 'a', 'd', 0) // forest at 24
	b = append(b, 0xc0, 24)                              // domain = forest
	b = append(b, 3, 'd', 'c', '1', 0xc0, 24)            // host
	b = append(b, 4, 'C', 'O', 'R', 'P', 0)              // NetBIOS domain
	b = append(b, 3, 'D', 'C', '1', 0)                   // NetBIOS DC
	b = append(b, 0)                                     // user
	b = append(b, 4, 's', 'i', 't', 'e', 0)              // DC site at 53
	b = append(b, 0xc0, 53)                              // client site
	b = append(b, 16, 2, 0, 0, 0, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0)
	b = append(b, 13, 0, 0, 0, 0xff, 0xff, 0xff, 0xff)
	r, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if r.DNSDomain != "corp.ad" || r.DNSHost != "dc1.corp.ad" || r.NetBIOSDC != "DC1" || r.ClientSite != "site" ||
		r.DCAddr != netip.MustParseAddr("10.0.0.1") || r.Flags != 0xe001f3fd {
		t.Fatalf("%+v", r)
	}
}

func TestParseRefusesLoopsAndTruncation(t *testing.T) {
	b := sample().Marshal()
	for n := 0; n < len(b); n++ {
		if _, err := Parse(b[:n]); err == nil {
			t.Fatalf("a response cut to %d of %d bytes parsed", n, len(b))
		}
	}
	loop := append([]byte{23, 0, 0, 0, 0, 0, 0, 0}, make([]byte, 16)...)
	loop = append(loop, 0xc0, 24) // points at itself
	loop = append(loop, 5, 0, 0, 0, 0xff, 0xff, 0xff, 0xff)
	if _, err := Parse(loop); err == nil {
		t.Fatal("a pointer loop parsed")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(sample().Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Parse(b)
		if err != nil {
			return
		}
		again, err := Parse(r.Marshal())
		if err != nil {
			t.Fatalf("a parsed response does not parse once re-encoded: %v", err)
		}
		if again.DNSHost != r.DNSHost || again.User != r.User || again.Flags != r.Flags {
			t.Fatalf("re-encoding changed it: %+v vs %+v", again, r)
		}
	})
}
