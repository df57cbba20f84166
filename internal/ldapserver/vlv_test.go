package ldapserver_test

import (
	"fmt"
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"

	"gmsa/internal/directory"
	"gmsa/internal/servertest"
)

func vlvControl(before, after, offset, count int) ldap.Control {
	v := ber.NewSequence("vlv")
	v.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, int64(before), ""))
	v.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, int64(after), ""))
	t := ber.Encode(ber.ClassContext, ber.TypeConstructed, 0, nil, "byOffset")
	t.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, int64(offset), ""))
	t.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, int64(count), ""))
	v.AppendChild(t)
	return ldap.NewControlString("2.16.840.1.113730.3.4.9", true, string(v.Bytes()))
}

// The virtual list view: a window of the sorted results around an offset, with the
// target's position and the count in the response; without the sort control it is
// sortControlMissing.
func TestVirtualListView(t *testing.T) {
	s := setup(t, servertest.Options{})
	for i := range 20 {
		must(s.Dir.NewUser(ctx, directory.LocalSystem(), directory.UserOptions{Name: fmt.Sprintf("vlv%02d", i)}))
	}
	c := dialTLS(t, s)
	if err := c.Bind("Administrator@example.test", s.AdminPassword); err != nil {
		t.Fatal(err)
	}
	sss := ldap.NewControlServerSideSortingWithSortKeys([]*ldap.SortKey{{AttributeType: "sAMAccountName"}})
	req := ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, 0, 0, 0, false, "(sAMAccountName=vlv*)", []string{"sAMAccountName"},
		[]ldap.Control{sss, vlvControl(1, 2, 5, 0)})
	r := must(c.Search(req))
	var got []string
	for _, e := range r.Entries {
		got = append(got, e.GetAttributeValue("sAMAccountName"))
	}
	if fmt.Sprint(got) != "[vlv03 vlv04 vlv05 vlv06]" {
		t.Fatalf("window around offset 5: %v", got)
	}
	var resp *ber.Packet
	for _, ctl := range r.Controls {
		if ctl.GetControlType() == "2.16.840.1.113730.3.4.10" {
			resp = must(ber.DecodePacketErr([]byte(ctl.(*ldap.ControlString).ControlValue)))
		}
	}
	if resp == nil || resp.Children[0].Value.(int64) != 5 || resp.Children[1].Value.(int64) != 20 {
		t.Fatalf("VLV response: %v", resp)
	}
	req.Controls = []ldap.Control{vlvControl(0, 1, 1, 0)}
	if _, err := c.Search(req); code(err) != 60 {
		t.Fatalf("VLV without sort: %v", err)
	}
}
