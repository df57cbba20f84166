package ldapserver_test

import (
	"encoding/binary"
	"net"
	"strings"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"

	"gmsa/internal/netlogon"
	"gmsa/internal/servertest"
)

func ntVer(v uint32) string {
	return ldap.EscapeFilter(string(binary.LittleEndian.AppendUint32(nil, v)))
}

// pingRequest is a CLDAP search of the root DSE for Netlogon with filter f.
func pingRequest(id int64, f string) []byte {
	msg := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAPMessage")
	msg.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, "id"))
	req := ldap.NewSearchRequest("", ldap.ScopeBaseObject, 0, 0, 0, false, f, []string{"Netlogon"}, nil)
	search := ber.Encode(ber.ClassApplication, ber.TypeConstructed, 3, nil, "SearchRequest")
	search.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", "base"))
	search.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, 0, "scope"))
	search.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, 0, "deref"))
	search.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 0, "size"))
	search.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 0, "time"))
	search.AppendChild(ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, false, "typesOnly"))
	search.AppendChild(must(ldap.CompileFilter(req.Filter)))
	attrs := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "attributes")
	attrs.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "Netlogon", "attribute"))
	search.AppendChild(attrs)
	msg.AppendChild(search)
	return msg.Bytes()
}

// LDAP pings over UDP (one datagram: the entry and SearchResultDone) and over TCP, as
// adcli and Windows send them; a ping for another domain gets no entry, a user that
// does not exist LOGON_SAM_USER_UNKNOWN_EX, and other connectionless searches an error.
func TestLDAPPing(t *testing.T) {
	s := setup(t, servertest.Options{})
	pc := must(net.ListenPacket("udp", "127.0.0.1:0"))
	go s.Server.ServeCLDAP(pc, 1000)
	c := must(net.Dial("udp", pc.LocalAddr().String()))
	defer c.Close()
	ask := func(f string) []*ber.Packet {
		t.Helper()
		must(c.Write(pingRequest(7, f)))
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 4096)
		n := must(c.Read(buf))
		var msgs []*ber.Packet
		for b := buf[:n]; len(b) > 0; {
			p, err := ber.DecodePacketErr(b)
			if err != nil {
				t.Fatalf("reply: %v", err)
			}
			msgs = append(msgs, p)
			b = b[len(p.Bytes()):]
		}
		return msgs
	}
	parse := func(msgs []*ber.Packet) *netlogon.Response {
		t.Helper()
		if len(msgs) != 2 || msgs[0].Children[1].Tag != 4 || msgs[1].Children[1].Tag != 5 {
			t.Fatalf("want an entry and SearchResultDone in one datagram, got %d messages", len(msgs))
		}
		v := msgs[0].Children[1].Children[1].Children[0].Children[1].Children[0].Data.Bytes()
		return must(netlogon.Parse(v))
	}
	r := parse(ask("(&(DnsDomain=example.test)(NtVer=" + ntVer(netlogon.NtVersion5|netlogon.NtVersion5EX|netlogon.NtVersion5EXWithIP) + "))"))
	if r.Opcode != netlogon.OpSAMLogonResponseEX || r.DNSHost != "dc1.example.test" || r.NetBIOSDomain != "EXAMPLE" ||
		r.Flags&(netlogon.FlagLDAP|netlogon.FlagKDC|netlogon.FlagWritable) != netlogon.FlagLDAP|netlogon.FlagKDC|netlogon.FlagWritable ||
		r.DCAddr.String() != "127.0.0.1" || r.DomainGUID.IsZero() {
		t.Fatalf("ping: %+v", r)
	}
	if r := parse(ask("(&(DnsDomain=example.test)(User=nobody)(NtVer=" + ntVer(netlogon.NtVersion5EX) + "))")); r.Opcode != netlogon.OpSAMUserUnknownEX || r.User != "nobody" {
		t.Fatalf("ping for an unknown user: %+v", r)
	}
	if r := parse(ask("(&(DnsDomain=example.test)(User=websvc)(NtVer=" + ntVer(netlogon.NtVersion5EX) + "))")); r.Opcode != netlogon.OpSAMLogonResponseEX {
		t.Fatalf("ping for a user: %+v", r)
	}
	if msgs := ask("(&(DnsDomain=other.test)(NtVer=" + ntVer(netlogon.NtVersion5EX) + "))"); len(msgs) != 1 || msgs[0].Children[1].Tag != 5 {
		t.Fatalf("a ping for another domain got %d messages", len(msgs))
	}
	if msgs := ask("(objectClass=*)"); len(msgs) != 1 || msgs[0].Children[1].Children[0].Value.(int64) != ldap.LDAPResultUnwillingToPerform {
		t.Fatal("a connectionless search that is not a ping was answered")
	}

	// Over TCP, without a bind.
	conn := dialPlain(t, s)
	res := must(conn.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, 0, 0, 0, false,
		"(&(DnsDomain=example.test)(NtVer="+ntVer(netlogon.NtVersion5EX)+"))", []string{"Netlogon"}, nil)))
	if len(res.Entries) != 1 {
		t.Fatalf("LDAP ping over TCP: %d entries", len(res.Entries))
	}
	tr := must(netlogon.Parse(res.Entries[0].GetRawAttributeValue("Netlogon")))
	if tr.DNSDomain != "example.test" || !strings.EqualFold(tr.NetBIOSDC, "DC1") {
		t.Fatalf("LDAP ping over TCP: %+v", tr)
	}
}
