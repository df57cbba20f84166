//go:build interop

package interop

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gmsa/internal/ldif"
	"gmsa/internal/ntsec"
)

// AD's alternative DN forms as search bases, sent by ldapsearch to Samba 4.22 and to
// ours: <WKGUID=…> for the well-known containers, <SID=…> (text and hex) and <GUID=…>
// (text and hex) for Administrator; both DCs name the same entries, and both refuse a
// form that names nothing.
func TestAlternativeDNFormsLikeSamba(t *testing.T) {
	wellKnown := map[string][]string{}
	for _, d := range sambaAndOurs(t) {
		search := func(base string, attrs ...string) ([]*ldif.Entry, string, int) {
			args := append([]string{"-LLL", "-o", "ldif-wrap=no", "-x", "-H", d.url, "-D", "Administrator@example.test", "-w", d.pw,
				"-b", base, "-s", "base", "(objectClass=*)"}, attrs...)
			out, errOut, code := run(d.env, "", "ldapsearch", args...)
			es, _ := ldif.Parse([]byte(out))
			return es, errOut, code
		}
		es, errOut, code := search("CN=Administrator,CN=Users,"+baseDN, "objectSid", "objectGUID")
		if code != 0 || len(es) != 1 {
			t.Fatalf("%s: Administrator: exit %d %s", d.name, code, errOut)
		}
		sidRaw, guidRaw := es[0].Get("objectSid")[0], es[0].Get("objectGUID")[0]
		sid, err := ntsec.SIDFromBytes(sidRaw)
		if err != nil {
			t.Fatal(err)
		}
		guid, _ := ntsec.GUIDFromBytes(guidRaw)
		for form, want := range map[string]string{
			"<WKGUID=a9d1ca15768811d1aded00c04fd8d5cd," + baseDN + ">": "CN=Users," + baseDN,
			"<WKGUID=aa312825768811d1aded00c04fd8d5cd," + baseDN + ">": "CN=Computers," + baseDN,
			"<WKGUID=a361b2ffffd211d1aa4b00c04fd7d83a," + baseDN + ">": "OU=Domain Controllers," + baseDN,
			"<WKGUID=1eb93889e40c45df9f0c64d23bbb6237," + baseDN + ">": "CN=Managed Service Accounts," + baseDN,
			"<SID=" + sid.String() + ">":                               "CN=Administrator,CN=Users," + baseDN,
			"<SID=" + hex.EncodeToString(sidRaw) + ">":                 "CN=Administrator,CN=Users," + baseDN,
			"<GUID=" + guid.String() + ">":                             "CN=Administrator,CN=Users," + baseDN,
			"<GUID=" + hex.EncodeToString(guidRaw) + ">":               "CN=Administrator,CN=Users," + baseDN,
		} {
			es, errOut, code := search(form, "1.1")
			if code != 0 || len(es) != 1 || !strings.EqualFold(es[0].DN, want) {
				t.Errorf("%s: base %s: exit %d, %v (want %s) %s", d.name, form, code, es, want, errOut)
			}
		}
		// The domain object's well-known containers: ours are among Samba's, spelled alike.
		es, _, _ = search(baseDN, "wellKnownObjects", "otherWellKnownObjects")
		if len(es) == 1 {
			var vals []string
			for _, a := range []string{"wellKnownObjects", "otherWellKnownObjects"} {
				for _, v := range es[0].Get(a) {
					vals = append(vals, a+" "+strings.ToUpper(string(v)))
				}
			}
			wellKnown[d.name] = vals
		}
		if _, _, code := search("<SID=" + sid.String() + "9>"); code != 32 {
			t.Errorf("%s: a SID that names nothing: exit %d, want 32 (noSuchObject)", d.name, code)
		}
	}
	if len(wellKnown["ours"]) != 4 {
		t.Fatalf("our well-known objects: %v", wellKnown["ours"])
	}
	for _, v := range wellKnown["ours"] {
		if !slices.Contains(wellKnown["Samba"], v) {
			t.Errorf("ours lists %s, Samba does not (Samba: %v)", v, wellKnown["Samba"])
		}
	}
}

// ldapPeer is a DC that OpenLDAP's tools and our admin commands reach as Administrator
// over LDAPS.
type ldapPeer struct {
	name, url, pw string
	env           []string // for ldapsearch and ldapmodify
	admin         target   // for gmsa's admin commands
}

// sambaAndOurs provisions and starts Samba 4.22 and our server, side by side for the
// same requests; the test's end stops both.
func sambaAndOurs(t *testing.T) []ldapPeer {
	peers(t, "samba-provision")
	peers(t, "samba-start")
	t.Cleanup(func() { peers(t, "samba-stop") })
	data, ep := ourServer(t)
	b, _ := os.ReadFile(filepath.Join(data, "admin-password"))
	pw := strings.TrimSpace(string(b))
	return []ldapPeer{
		{"Samba", "ldaps://127.0.0.1", adminPass, []string{"LDAPTLS_REQCERT=never"},
			target{"samba", "ldaps://dc1.example.test:636", "Administrator@example.test", adminPass, []string{"--insecure-skip-verify"}}},
		{"ours", ep["ldaps"], pw, []string{"LDAPTLS_CACERT=" + ep["ca"]},
			target{"ours", ep["ldaps"], "Administrator@example.test", pw, []string{"--ca-file", ep["ca"]}}},
	}
}
