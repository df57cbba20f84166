package directory

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"gmsa/internal/ntsec"
	"gmsa/internal/store"
)

// fullObject has every stored field set, with values a raw filter reads that are not
// ASCII too.
func fullObject() *Object {
	return &Object{GUID: ntsec.MustParseGUID("0b1b0e7e-6e3c-4b0a-9a3f-1d2c3b4a5f60"), Class: ClassGMSA, DN: "CN=web,CN=Managed Service Accounts,DC=example,DC=test",
		Name: "web", SID: "S-1-5-21-1-2-3-1105", SAM: "web$", UPN: "web@example.test", UAC: 0x1000, Description: "Führung",
		Created: 133000000000000000, Changed: 133000000000000001, USNCreated: 42, PrimaryGroupRID: 515,
		NTHash: bytes.Repeat([]byte{1}, 16), NTHistory: [][]byte{bytes.Repeat([]byte{2}, 16), bytes.Repeat([]byte{3}, 16)},
		Keys:         []StoredKey{{Etype: 18, Value: bytes.Repeat([]byte{4}, 32)}, {Etype: 17, Value: bytes.Repeat([]byte{5}, 16)}},
		PreviousKeys: []StoredKey{{Etype: -1, Value: []byte{6}}}, KVNO: 3, PwdLastSet: 133000000000000002,
		BadPwdCount: 2, BadPasswordTime: 133000000000000003, LockoutTime: 133000000000000004,
		Policy: &DomainPolicy{LockoutThreshold: 5, LockoutDuration: 6, ObservationWindow: 7}, DNSHostName: "web.example.test",
		SPNs: []string{"HTTP/web.example.test", "HTTP/web"}, SupportedEnctypes: 24, AllowedToDelegateTo: []string{"cifs/fs.example.test"},
		GroupType: 0x80000002, Members: []string{"a", "b"}, PasswordInterval: 30, PasswordID: []byte{7, 8}, PreviousPasswordID: []byte{9},
		GroupMSAMembership: []byte{1, 0, 4, 0x80}, RootKey: &RootKeyRecord{Data: []byte{10}, Version: 1, KDFAlgorithm: "SP800_108_CTR_HMAC", DomainID: "x"},
		SchemaName: "user", SD: []byte{1, 0, 4, 0x80, 0, 0}, Deleted: true, LastKnownParent: "CN=Users,DC=example,DC=test"}
}

// Every field survives the binary form; a zero object too; decoded values do not share
// the record's memory.
func TestRecordRoundTrip(t *testing.T) {
	for _, o := range []*Object{fullObject(), {GUID: ntsec.MustParseGUID("0b1b0e7e-6e3c-4b0a-9a3f-1d2c3b4a5f61"), Class: ClassUser, DN: "CN=u,DC=x", Name: "u"}} {
		rec := encodeRecord(o)
		if rec[0] != recordBinary {
			t.Fatalf("format byte %#x", rec[0])
		}
		var got Object
		if err := decodeRecord(rec, &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(&got, o) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, *o)
		}
		clear(rec)
		if got.NTHash != nil && got.NTHash[0] != 1 || got.DN != o.DN {
			t.Fatal("the decoded object shares the record's memory")
		}
	}
}

// Records written as JSON before the binary form are read as they were, by decode and
// by the raw filter test; a change rewrites them in the binary form.
func TestJSONRecordsStillRead(t *testing.T) {
	d, _ := lab(t)
	u := must(d.NewUser(ctx, sys, UserOptions{Name: "legacy", Password: "Legacy-Pass-1!", Description: "old format"}))
	cur := must(d.st.Get(ctx, objKey(u.GUID)))
	stored := must(decode(cur))
	j := must(json.Marshal(stored))
	must(d.st.Apply(ctx, store.PutAt(objKey(u.GUID), j, cur.Rev)))
	d.objMu.Lock()
	clear(d.objCache)
	d.objMu.Unlock()

	back := must(d.Resolve(ctx, "legacy"))
	if back.Description != "old format" || back.SID != u.SID || len(back.Keys) == 0 {
		t.Fatalf("a JSON record read back: %+v", back)
	}
	n := 0
	must(0, d.Search(ctx, sys, Query{Base: d.domain.BaseDN, Scope: ScopeSub, Filter: Equal{Attr: "description", Value: []byte("OLD FORMAT")}},
		func(*Match) error { n++; return nil }))
	if n != 1 {
		t.Fatalf("an unindexed search over a JSON record found %d", n)
	}
	must(d.Modify(ctx, sys, u.DN, []Change{{Op: ChangeReplace, Attr: "description", Values: [][]byte{[]byte("new format")}}}))
	if rec := must(d.st.Get(ctx, objKey(u.GUID))).Value; rec[0] != recordBinary {
		t.Fatalf("a changed object is still written as %q…", rec[:1])
	}
}

// The raw filter test reads binary records as it reads JSON ones: never ruling out a
// match, ruling out what cannot match.
func TestRawFilterOnBinaryRecords(t *testing.T) {
	d, _ := lab(t)
	rec := encodeRecord(fullObject())
	for _, c := range []struct {
		f    Filter
		want bool
	}{
		{Equal{Attr: "sAMAccountName", Value: []byte("WEB$")}, true},
		{Equal{Attr: "sAMAccountName", Value: []byte("other$")}, false},
		{Equal{Attr: "servicePrincipalName", Value: []byte("http/web")}, true},
		{Equal{Attr: "servicePrincipalName", Value: []byte("http/none")}, false},
		{Substr{Attr: "dNSHostName", Initial: []byte("web."), Final: []byte(".test")}, true},
		{Present{Attr: "userPrincipalName"}, true},
		{Equal{Attr: "description", Value: []byte("x")}, true}, // a stored value that is not ASCII: decoded and evaluated
		{Equal{Attr: "objectClass", Value: []byte("msDS-GroupManagedServiceAccount")}, true},
		{Equal{Attr: "objectClass", Value: []byte("group")}, false},
	} {
		tst := d.compileRaw(c.f)
		if tst == nil {
			t.Fatalf("%v: no raw test", c.f)
		}
		if got := tst.may(rec); got != c.want {
			t.Errorf("%v: may %v, want %v", c.f, got, c.want)
		}
	}
}

// A damaged binary record is an error, never a panic; one that decodes encodes to a
// record that decodes to the same object.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(encodeRecord(fullObject()))
	f.Add([]byte{recordBinary, tagDN, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{recordBinary, tagSPNs, 3, 5, 'a', 'b'})
	f.Fuzz(func(t *testing.T, rec []byte) {
		var o Object
		if err := decodeRecord(rec, &o); err != nil {
			return
		}
		var again Object
		if err := decodeRecord(encodeRecord(&o), &again); err != nil {
			t.Fatalf("a decoded record re-encodes to a damaged one: %v", err)
		}
		if !reflect.DeepEqual(normalized(&o), normalized(&again)) {
			t.Fatalf("re-encoding changed the object:\n%+v\n%+v", o, again)
		}
	})
}

// normalized maps empty lists to nil, as the binary form leaves them out.
func normalized(o *Object) *Object {
	c := *o
	for _, s := range []*[]string{&c.SPNs, &c.AllowedToDelegateTo, &c.Members} {
		if len(*s) == 0 {
			*s = nil
		}
	}
	for _, b := range []*[]byte{&c.NTHash, &c.PasswordID, &c.PreviousPasswordID, &c.GroupMSAMembership, &c.SD} {
		if len(*b) == 0 {
			*b = nil
		}
	}
	if len(c.NTHistory) == 0 {
		c.NTHistory = nil
	}
	for i := range c.NTHistory {
		if len(c.NTHistory[i]) == 0 {
			c.NTHistory[i] = nil
		}
	}
	for _, ks := range []*[]StoredKey{&c.Keys, &c.PreviousKeys} {
		if len(*ks) == 0 {
			*ks = nil
		}
		for i := range *ks {
			if len((*ks)[i].Value) == 0 {
				(*ks)[i].Value = nil
			}
		}
	}
	return &c
}

// The decode of a user's record: the binary form against the JSON one it replaced.
func BenchmarkDecodeUser(b *testing.B) {
	d, _ := lab(b)
	u := must(d.NewUser(ctx, sys, UserOptions{Name: "sample", Password: "Sample-Pass-123!"}))
	kv := must(d.st.Get(ctx, objKey(u.GUID)))
	asJSON := kv
	asJSON.Value = must(json.Marshal(must(decode(kv))))
	for name, kv := range map[string]store.KV{"binary": kv, "json": asJSON} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := decode(kv); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
