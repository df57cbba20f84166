package ldapserver_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"

	"gmsa/internal/directory"
	"gmsa/internal/ldapserver"
	"gmsa/internal/ntsec"
	"gmsa/internal/servertest"
)

// berValue encodes SEQUENCE { children } as a control value.
func berValue(children ...*ber.Packet) string {
	seq := ber.NewSequence("value")
	for _, c := range children {
		seq.AppendChild(c)
	}
	return string(seq.Bytes())
}

func berInt(n int64) *ber.Packet {
	return ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, n, "")
}

// searchHints is the search hints control ([MS-ADTS] 3.1.1.3.4.1.32) with one hint.
func searchHints(critical bool, id string, value string) ldap.Control {
	hint := ber.NewSequence("hint")
	hint.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, id, "hintId"))
	hint.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, value, "hintValue"))
	return &ldap.ControlString{ControlType: "1.2.840.113556.1.4.2206", Criticality: critical, ControlValue: berValue(hint)}
}

// The search hints: Require Sort Index fails a critical sort by an attribute without an
// ordered index and serves one with it; a non-critical sort ignores it; an unknown hint
// is refused only in a critical control. Soft Size Limit keeps the ties of the last
// entry it keeps and says sizeLimitExceeded when it dropped any, unpaged and paged.
func TestSearchHints(t *testing.T) {
	s := setup(t, servertest.Options{})
	c := dialTLS(t, s)
	must(struct{}{}, c.Bind("Administrator", s.AdminPassword))
	for i, d := range []string{"a", "b", "b", "b", "c"} {
		must(s.Dir.NewUser(ctx, directory.LocalSystem(), directory.UserOptions{Name: fmt.Sprintf("hint%d", i), Password: "Passw0rd!" + d}))
		m := ldap.NewModifyRequest(fmt.Sprintf("CN=hint%d,CN=Users,%s", i, base), nil)
		m.Replace("description", []string{d})
		must(struct{}{}, c.Modify(m))
	}
	sorted := func(attr string, critical bool, ctls ...ldap.Control) (*ldap.SearchResult, error) {
		key := ber.NewSequence("key")
		key.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, attr, "attributeType"))
		sortCtl := &ldap.ControlString{ControlType: "1.2.840.113556.1.4.473", Criticality: critical, ControlValue: berValue(key)}
		return c.Search(ldap.NewSearchRequest("CN=Users,"+base, ldap.ScopeSingleLevel, 0, 0, 0, false, "(sAMAccountName=hint*)",
			[]string{"description", "sAMAccountName"}, append([]ldap.Control{sortCtl}, ctls...)))
	}
	indexOnly := berValue(ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, true, ""))
	requireIndex := searchHints(true, "1.2.840.113556.1.4.2207", indexOnly)
	if _, err := sorted("description", true, requireIndex); code(err) != ldap.LDAPResultUnavailableCriticalExtension {
		t.Fatalf("a critical sort by an unindexed attribute with Require Sort Index: %v", err)
	}
	if r, err := sorted("description", false, requireIndex); err != nil || len(r.Entries) != 5 {
		t.Fatalf("a non-critical sort ignores the hint: %v", err)
	}
	r, err := sorted("sAMAccountName", true, requireIndex)
	if err != nil || len(r.Entries) != 5 || !slices.IsSortedFunc(r.Entries, func(a, b *ldap.Entry) int {
		return strings.Compare(strings.ToLower(a.GetAttributeValue("sAMAccountName")), strings.ToLower(b.GetAttributeValue("sAMAccountName")))
	}) {
		t.Fatalf("a sort by an indexed attribute with Require Sort Index: %v", err)
	}
	if _, err := sorted("sAMAccountName", true, searchHints(true, "1.2.3.4", indexOnly)); code(err) != ldap.LDAPResultUnwillingToPerform {
		t.Fatalf("an unknown hint in a critical control: %v", err)
	}
	if _, err := sorted("sAMAccountName", true, searchHints(false, "1.2.3.4", indexOnly)); err != nil {
		t.Fatalf("an unknown hint in a non-critical control: %v", err)
	}

	soft := searchHints(true, "1.2.840.113556.1.4.2210", berValue(berInt(2)))
	descriptions := func(es []*ldap.Entry) string {
		var out []string
		for _, e := range es {
			out = append(out, e.GetAttributeValue("description"))
		}
		return strings.Join(out, "")
	}
	r, err = sorted("description", true, soft)
	if code(err) != ldap.LDAPResultSizeLimitExceeded || r == nil || descriptions(r.Entries) != "abbb" {
		t.Fatalf("soft size limit 2 over a, b, b, b, c: %v (%v), want abbb and sizeLimitExceeded", r, err)
	}
	soft3 := searchHints(true, "1.2.840.113556.1.4.2210", berValue(berInt(5)))
	if r, err = sorted("description", true, soft3); err != nil || descriptions(r.Entries) != "abbbc" {
		t.Fatalf("soft size limit 5 over five entries: %v (%v)", r, err)
	}
	// Paged: the last page says sizeLimitExceeded.
	sortCtl := ldap.NewControlServerSideSortingWithSortKeys([]*ldap.SortKey{{AttributeType: "description"}})
	req := ldap.NewSearchRequest("CN=Users,"+base, ldap.ScopeSingleLevel, 0, 0, 0, false, "(sAMAccountName=hint*)",
		[]string{"description"}, []ldap.Control{sortCtl, soft})
	r, err = c.SearchWithPaging(req, 1)
	if code(err) != ldap.LDAPResultSizeLimitExceeded || r == nil || descriptions(r.Entries) != "abbb" {
		t.Fatalf("paged with soft size limit 2: %v (%v), want abbb and sizeLimitExceeded", r, err)
	}
}

// Range retrieval past a link attribute's last value: operationsError, and with the
// no-error control the entry without the attribute.
func TestRangeRetrievalNoError(t *testing.T) {
	s := setup(t, servertest.Options{})
	c := dialTLS(t, s)
	must(struct{}{}, c.Bind("Administrator", s.AdminPassword))
	group := "CN=Domain Admins,CN=Users," + base
	read := func(ctls ...ldap.Control) (*ldap.SearchResult, error) {
		return c.Search(ldap.NewSearchRequest(group, ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", []string{"member;range=5-*"}, ctls))
	}
	if _, err := read(); code(err) != ldap.LDAPResultOperationsError {
		t.Fatalf("member;range=5-* of a group with fewer members: %v, want operationsError", err)
	}
	r, err := read(&ldap.ControlString{ControlType: "1.2.840.113556.1.4.1948", Criticality: true})
	if err != nil || len(r.Entries) != 1 || len(r.Entries[0].Attributes) != 0 {
		t.Fatalf("with the no-error control: %v (%v), want the entry without values", r, err)
	}
}

// Tree delete EX: at most countOfObjectsToDelete objects per request (at least 2),
// deepest first; the root stays until the last request, which reports success.
func TestTreeDeleteEx(t *testing.T) {
	s := setup(t, servertest.Options{})
	c := dialTLS(t, s)
	must(struct{}{}, c.Bind("Administrator", s.AdminPassword))
	ou := "OU=Retired," + base
	add := func(dn, class string) {
		t.Helper()
		r := ldap.NewAddRequest(dn, nil)
		r.Attribute("objectClass", []string{class})
		must(struct{}{}, c.Add(r))
	}
	add(ou, "organizationalUnit")
	add("OU=Old,"+ou, "organizationalUnit")
	for i := range 4 {
		add(fmt.Sprintf("CN=box%d,OU=Old,%s", i, ou), "container")
	}
	count := func() int {
		r, err := c.Search(ldap.NewSearchRequest(ou, ldap.ScopeWholeSubtree, 0, 0, 0, false, "(objectClass=*)", []string{"1.1"}, nil))
		if code(err) == ldap.LDAPResultNoSuchObject {
			return 0
		}
		return len(must(r, err).Entries)
	}
	treeEx := func(n int64) error {
		return c.Del(ldap.NewDelRequest(ou, []ldap.Control{&ldap.ControlString{ControlType: "1.2.840.113556.1.4.2204", Criticality: true, ControlValue: berValue(berInt(n))}}))
	}
	// 1 is taken as 2 ([MS-ADTS] 3.1.1.3.4.1.31).
	for _, want := range []int{4, 2} {
		if err := treeEx(1); code(err) != ldap.LDAPResultAdminLimitExceeded || count() != want {
			t.Fatalf("tree delete EX of 2: %v, %d objects left, want adminLimitExceeded and %d", err, count(), want)
		}
	}
	if err := treeEx(2); err != nil || count() != 0 {
		t.Fatalf("the last tree delete EX: %v, %d objects left", err, count())
	}
	if err := c.Del(ldap.NewDelRequest(ou, []ldap.Control{&ldap.ControlString{ControlType: "1.2.840.113556.1.4.2204", Criticality: true, ControlValue: "x"}})); code(err) != ldap.LDAPResultNoSuchObject && code(err) != ldap.LDAPResultProtocolError {
		t.Fatalf("a malformed tree delete EX: %v", err)
	}
}

// DirSync EX reads as DirSync does, names its response with its own OID, and takes
// attribute names with ";dirSyncAlwaysReturn".
func TestDirSyncEx(t *testing.T) {
	s := setup(t, servertest.Options{})
	c := dialTLS(t, s)
	must(struct{}{}, c.Bind("Administrator", s.AdminPassword))
	ctl := &ldap.ControlString{ControlType: "1.2.840.113556.1.4.2090", Criticality: true, ControlValue: berValue(berInt(0), berInt(0),
		ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", ""))}
	r := must(c.Search(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, 0, 0, 0, false, "(sAMAccountName=Administrator)",
		[]string{"description;dirSyncAlwaysReturn", "sAMAccountName"}, []ldap.Control{ctl})))
	if len(r.Entries) != 1 || r.Entries[0].GetAttributeValue("description") == "" {
		t.Fatalf("DirSync EX: %v", r.Entries)
	}
	if len(r.Controls) != 1 || r.Controls[0].GetControlType() != "1.2.840.113556.1.4.2090" {
		t.Fatalf("the DirSync EX response control: %v", r.Controls)
	}
}

// The policy hints control (and its deprecated OID) holds an administrator's unicodePwd
// reset to the password history, as a change is; without it a reset is not.
func TestPolicyHints(t *testing.T) {
	s := setup(t, servertest.Options{})
	must(s.Dir.NewUser(ctx, directory.LocalSystem(), directory.UserOptions{Name: "hinted", Password: "Hinted-Pass-1!"}))
	c := dialTLS(t, s)
	must(struct{}{}, c.Bind("Administrator", s.AdminPassword))
	reset := func(ctls ...ldap.Control) error {
		m := ldap.NewModifyRequest("CN=hinted,CN=Users,"+base, ctls)
		m.Replace("unicodePwd", []string{string(directory.EncodePassword(`"Hinted-Pass-1!"`))})
		return c.Modify(m)
	}
	for _, oid := range []string{"1.2.840.113556.1.4.2239", "1.2.840.113556.1.4.2066"} {
		hints := &ldap.ControlString{ControlType: oid, Criticality: true, ControlValue: berValue(berInt(1))}
		if err := reset(hints); code(err) != ldap.LDAPResultConstraintViolation {
			t.Fatalf("a reset to the current password with policy hints %s: %v", oid, err)
		}
	}
	if err := reset(&ldap.ControlString{ControlType: "1.2.840.113556.1.4.2239", Criticality: true, ControlValue: berValue(berInt(0))}); err != nil {
		t.Fatalf("a reset with policy hints flag 0: %v", err)
	}
	if err := reset(); err != nil {
		t.Fatalf("a reset without policy hints: %v", err)
	}
}

// A connection waiting for change notifications is not idle: it outlives the idle
// timeout and still receives them, while a connection without one is closed.
func TestNotificationOutlivesIdleTimeout(t *testing.T) {
	const idle = 400 * time.Millisecond
	s := setup(t, servertest.Options{Limits: ldapserver.Config{IdleTimeout: idle}})
	c, plain := dialTLS(t, s), dialTLS(t, s)
	must(struct{}{}, c.Bind("Administrator", s.AdminPassword))
	must(struct{}{}, plain.Bind("Administrator", s.AdminPassword))
	r := c.SearchAsync(context.Background(), ldap.NewSearchRequest("CN=Users,"+base, ldap.ScopeSingleLevel, 0, 0, 0, false, "(objectClass=*)",
		[]string{"description"}, []ldap.Control{ldap.NewControlString("1.2.840.113556.1.4.528", true, "")}), 16)
	entries := make(chan *ldap.Entry, 64)
	go func() {
		for r.Next() {
			if e := r.Entry(); e != nil {
				entries <- e
			}
		}
		close(entries)
	}()
	describe := func(text string) {
		w := dialTLS(t, s)
		defer w.Close()
		must(struct{}{}, w.Bind("Administrator", s.AdminPassword))
		m := ldap.NewModifyRequest("CN=Administrator,CN=Users,"+base, nil)
		m.Replace("description", []string{text})
		must(struct{}{}, w.Modify(m))
	}
	wait := func(text string) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			describe(text)
			select {
			case e, ok := <-entries:
				if !ok {
					t.Fatalf("the notification search ended: %v", r.Err())
				}
				if e.GetAttributeValue("description") == text {
					return
				}
			case <-time.After(200 * time.Millisecond):
			case <-deadline:
				t.Fatalf("no notification of %q", text)
			}
		}
	}
	wait("registered")
	time.Sleep(4 * idle)
	wait("after the idle timeout")
	if _, err := plain.Search(ldap.NewSearchRequest(base, ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", []string{"1.1"}, nil)); err == nil {
		t.Fatal("a connection idle for four idle timeouts still answers")
	}
}

// statsOf reads the get stats response: its integer statistics by tag and its strings.
func statsOf(t *testing.T, ctls []ldap.Control) (map[int64]int64, map[int64]string) {
	t.Helper()
	for _, c := range ctls {
		if c.GetControlType() != "1.2.840.113556.1.4.970" {
			continue
		}
		raw, ok := c.(*ldap.ControlString)
		if !ok {
			t.Fatalf("the stats control: %T", c)
		}
		p := must(ber.DecodePacketErr([]byte(raw.ControlValue)))
		ints, strs := map[int64]int64{}, map[int64]string{}
		for i := 0; i+1 < len(p.Children); i += 2 {
			tag := p.Children[i].Value.(int64)
			switch v := p.Children[i+1].Value.(type) {
			case int64:
				ints[tag] = v
			case string:
				strs[tag] = strings.TrimRight(v, "\x00")
			}
		}
		return ints, strs
	}
	return nil, nil
}

// The get stats control: an administrator's search returns its statistics in AD's
// format (entries returned and visited, the filter, the plan); SO_ONLY_OPTIMIZE plans
// without returning entries; a non-administrator is refused when the control is
// critical and gets no statistics otherwise; the extended format is refused.
func TestGetStats(t *testing.T) {
	s := setup(t, servertest.Options{})
	must(s.Dir.NewUser(ctx, directory.LocalSystem(), directory.UserOptions{Name: "plain", Password: "Plain-Pass-1!"}))
	admin, user := dialTLS(t, s), dialTLS(t, s)
	must(struct{}{}, admin.Bind("Administrator", s.AdminPassword))
	must(struct{}{}, user.Bind("plain", "Plain-Pass-1!"))
	search := func(c *ldap.Conn, ctl ldap.Control) (*ldap.SearchResult, error) {
		return c.Search(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, 0, 0, 0, false, "(sAMAccountName=plain)", []string{"1.1"}, []ldap.Control{ctl}))
	}
	stats := func(critical bool, value string) ldap.Control {
		return &ldap.ControlString{ControlType: "1.2.840.113556.1.4.970", Criticality: critical, ControlValue: value}
	}
	r := must(search(admin, stats(true, "")))
	ints, strs := statsOf(t, r.Controls)
	if len(r.Entries) != 1 || ints[5] != 1 || ints[6] != 1 || !strings.Contains(strs[7], "sAMAccountName=plain") || !strings.Contains(strs[8], "sAMAccountName") {
		t.Fatalf("the statistics of an indexed search: %d entries, %v %v", len(r.Entries), ints, strs)
	}
	r = must(search(admin, stats(true, "\x02\x00\x00\x00"))) // SO_ONLY_OPTIMIZE
	if ints, strs = statsOf(t, r.Controls); len(r.Entries) != 0 || ints == nil || ints[5] != 0 || strs[8] == "" {
		t.Fatalf("SO_ONLY_OPTIMIZE: %d entries, %v %v", len(r.Entries), ints, strs)
	}
	if _, err := search(admin, stats(true, "\x04\x00\x00\x00")); code(err) != ldap.LDAPResultUnavailableCriticalExtension {
		t.Fatalf("the extended format: %v", err)
	}
	if _, err := search(user, stats(true, "")); code(err) != ldap.LDAPResultInsufficientAccessRights {
		t.Fatalf("a user's critical stats control: %v", err)
	}
	r = must(search(user, stats(false, "")))
	if ints, _ := statsOf(t, r.Controls); len(r.Entries) != 1 || ints != nil {
		t.Fatalf("a user's non-critical stats control: %d entries, statistics %v", len(r.Entries), ints)
	}
}

// The expected entry count control: a search that returns fewer or more entries than
// asked for fails with constraintViolation; within the bounds it succeeds; a malformed
// value is a protocol error.
func TestExpectedEntryCount(t *testing.T) {
	s := setup(t, servertest.Options{})
	c := dialTLS(t, s)
	must(struct{}{}, c.Bind("Administrator", s.AdminPassword))
	search := func(filter, value string) (*ldap.SearchResult, error) {
		ctl := &ldap.ControlString{ControlType: "1.2.840.113556.1.4.2211", Criticality: true, ControlValue: value}
		return c.Search(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, 0, 0, 0, false, filter, []string{"1.1"}, []ldap.Control{ctl}))
	}
	if r, err := search("(sAMAccountName=Administrator)", berValue(berInt(1), berInt(1))); err != nil || len(r.Entries) != 1 {
		t.Fatalf("one entry, one expected: %v", err)
	}
	if _, err := search("(sAMAccountName=nobody)", berValue(berInt(1), berInt(5))); code(err) != ldap.LDAPResultConstraintViolation {
		t.Fatalf("no entry, at least one expected: %v", err)
	}
	if _, err := search("(objectClass=user)", berValue(berInt(0), berInt(1))); code(err) != ldap.LDAPResultConstraintViolation {
		t.Fatalf("several entries, at most one expected: %v", err)
	}
	ctl := &ldap.ControlString{ControlType: "1.2.840.113556.1.4.2211", Criticality: true, ControlValue: berValue(berInt(1), berInt(1))}
	if r, err := c.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", []string{"dnsHostName"}, []ldap.Control{ctl})); err != nil || len(r.Entries) != 1 {
		t.Fatalf("the RootDSE, one entry expected: %v", err)
	}
	if _, err := search("(objectClass=user)", berValue(berInt(1))); code(err) != ldap.LDAPResultProtocolError {
		t.Fatalf("a value without the maximum: %v", err)
	}
}

// The set owner control on an add: an administrator names the new object's owner,
// which its security descriptor then shows; a value that is no SID is refused; the
// control on a search is an unavailable critical extension.
func TestSetOwnerControl(t *testing.T) {
	s := setup(t, servertest.Options{})
	owner := must(s.Dir.NewUser(ctx, directory.LocalSystem(), directory.UserOptions{Name: "owner", Password: "Owner-Pass-1!"}))
	c := dialTLS(t, s)
	must(struct{}{}, c.Bind("Administrator", s.AdminPassword))
	add := func(cn, sid string) error {
		a := ldap.NewAddRequest("CN="+cn+",CN=Users,"+base, []ldap.Control{&ldap.ControlString{ControlType: "1.2.840.113556.1.4.2255", Criticality: true, ControlValue: sid}})
		a.Attribute("objectClass", []string{"user"})
		a.Attribute("sAMAccountName", []string{cn})
		return c.Add(a)
	}
	if err := add("owned", owner.SID); err != nil {
		t.Fatalf("add with the set owner control: %v", err)
	}
	sdFlags := &ldap.ControlString{ControlType: "1.2.840.113556.1.4.801", Criticality: true, ControlValue: berValue(berInt(1))}
	r := must(c.Search(ldap.NewSearchRequest("CN=owned,CN=Users,"+base, ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)",
		[]string{"nTSecurityDescriptor"}, []ldap.Control{sdFlags})))
	sd := must(ntsec.ParseSecurityDescriptor(r.Entries[0].GetRawAttributeValue("nTSecurityDescriptor")))
	if sd.Owner == nil || sd.Owner.String() != owner.SID {
		t.Fatalf("owner %v, want %s", sd.Owner, owner.SID)
	}
	if err := add("badowner", "owner"); code(err) != ldap.LDAPResultInvalidAttributeSyntax {
		t.Fatalf("a set owner control without a SID: %v", err)
	}
	_, err := c.Search(ldap.NewSearchRequest(base, ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", nil,
		[]ldap.Control{&ldap.ControlString{ControlType: "1.2.840.113556.1.4.2255", Criticality: true, ControlValue: owner.SID}}))
	if code(err) != ldap.LDAPResultUnavailableCriticalExtension {
		t.Fatalf("the set owner control on a search: %v", err)
	}
}

// The update stats control: a response carries the invocation ID of the database and
// the highest USN the operation allocated — a modify's is the object's new uSNChanged,
// a search's 0; a failed modify still gets its answer.
func TestUpdateStats(t *testing.T) {
	s := setup(t, servertest.Options{})
	c := dialTLS(t, s)
	must(struct{}{}, c.Bind("Administrator", s.AdminPassword))
	ctl := &ldap.ControlString{ControlType: "1.2.840.113556.1.4.2205", Criticality: true}
	statsIn := func(ctls []ldap.Control) (ntsec.GUID, int64) {
		t.Helper()
		for _, x := range ctls {
			if x.GetControlType() != "1.2.840.113556.1.4.2205" {
				continue
			}
			p, err := ber.DecodePacketErr([]byte(x.(*ldap.ControlString).ControlValue))
			if err != nil || len(p.Children) != 2 {
				t.Fatalf("update stats response: %v %v", p, err)
			}
			var inv ntsec.GUID
			var usn int64
			for _, st := range p.Children {
				id, v := st.Children[0].Data.String(), st.Children[1].Data.Bytes()
				switch {
				case id == "1.2.840.113556.1.4.2209" && len(v) == 16:
					copy(inv[:], v)
				case id == "1.2.840.113556.1.4.2208" && len(v) == 8:
					for i := 7; i >= 0; i-- {
						usn = usn<<8 | int64(v[i])
					}
				default:
					t.Fatalf("unexpected statistic %s % x", id, v)
				}
			}
			return inv, usn
		}
		t.Fatalf("no update stats response in %v", ctls)
		return ntsec.GUID{}, 0
	}
	dn := "CN=Administrator,CN=Users," + base
	m := ldap.NewModifyRequest(dn, []ldap.Control{ctl})
	m.Replace("description", []string{"counted"})
	res := must(c.ModifyWithResult(m))
	inv, usn := statsIn(res.Controls)
	if inv != s.Dir.InvocationID() || inv == (ntsec.GUID{}) {
		t.Fatalf("invocation ID %v, want %v", inv, s.Dir.InvocationID())
	}
	r := must(c.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", []string{"uSNChanged"}, []ldap.Control{ctl})))
	if changed := r.Entries[0].GetAttributeValue("uSNChanged"); usn <= 0 || fmt.Sprint(usn) != changed {
		t.Fatalf("the modify's highest USN %d, the object's uSNChanged %s", usn, changed)
	}
	if _, searchUSN := statsIn(r.Controls); searchUSN != 0 {
		t.Fatalf("a search allocated USN %d", searchUSN)
	}
	m = ldap.NewModifyRequest("CN=nobody,CN=Users,"+base, []ldap.Control{ctl})
	m.Replace("description", []string{"x"})
	if _, err := c.ModifyWithResult(m); code(err) != ldap.LDAPResultNoSuchObject {
		t.Fatalf("a modify of nothing: %v", err)
	}
}
