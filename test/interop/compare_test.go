//go:build interop

package interop

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"gmsa/internal/ldif"
)

// attributeAllowList are the intended differences between the attributes Samba 4.22 and
// ours return with "*" for each kind of object, with why (docs/cli.md, "Compared with
// Samba"). Anything else that differs fails the test.
var attributeAllowList = map[string]map[string]string{
	"domain": {
		"auditingPolicy":                   "no audit policy store: the audit trail is this DC's own",
		"creationTime":                     "NT4 replication counters (no NT4 BDCs)",
		"modifiedCount":                    "NT4 replication counters (no NT4 BDCs)",
		"modifiedCountAtLastProm":          "NT4 replication counters (no NT4 BDCs)",
		"serverState":                      "NT4 compatibility state (no NT4 BDCs)",
		"uASCompat":                        "NT4 compatibility (no NT4 BDCs)",
		"nextRid":                          "RIDs are allocated by this DC alone, from its own counter, not a RID manager",
		"rIDManagerReference":              "no RID Manager$ object: RIDs are allocated by this DC alone",
		"gPLink":                           "no Group Policy objects are served",
		"oEMInformation":                   "Samba's provisioning banner",
		"msDS-NcType":                      "one naming context of each kind; no application partitions",
		"msDS-AllUsersTrustQuota":          "no forest trusts",
		"msDS-PerUserTrustQuota":           "no forest trusts",
		"msDS-PerUserTrustTombstonesQuota": "no forest trusts",
		"msDS-ExpirePasswordsOnSmartCardOnlyAccounts": "no smart card logon (PKINIT)",
	},
	"OU": {"gPLink": "no Group Policy objects are served"},
	"*": { // every kind
		"msDS-Approx-Immed-Subordinates": "constructed by AD ([MS-ADTS] 3.1.1.4.5.16); Samba 4.22 does not construct it",
		"msDS-PrincipalName":             "constructed by AD for security principals ([MS-ADTS] 3.1.1.4.5.29); Samba 4.22 does not construct it",
	},
}

// valuesCompared are attributes whose values must agree, not only their presence.
var valuesCompared = []string{"objectClass", "sAMAccountType", "userAccountControl", "groupType", "instanceType",
	"msDS-ManagedPasswordInterval", "isDeleted", "dNSHostName", "msKds-KDFAlgorithmID", "msKds-Version",
	"structuralObjectClass", "subSchemaSubEntry", "msDS-PrincipalName", "sDRightsEffective"}

// constructedCompared are the constructed attributes asked for by name besides "*".
var constructedCompared = []string{"createTimeStamp", "modifyTimeStamp", "structuralObjectClass", "subSchemaSubEntry", "msDS-PrincipalName",
	"msDS-Approx-Immed-Subordinates", "sDRightsEffective", "canonicalName", "primaryGroupToken", "allowedAttributes"}

// The same objects made on Samba 4.22 and on ours with the same admin commands, read
// back with the same searches ("*" and constructedCompared): every attribute one returns and the other does not, and
// every value of valuesCompared that differs, is reported unless the allow-list names it.
func TestAttributesLikeSamba(t *testing.T) {
	type entryKind struct{ kind, base, filter string }
	got := map[string]map[string]map[string][]string{} // peer → kind → attribute → values
	for _, d := range sambaAndOurs(t) {
		tg := d.admin
		as := func(stdin string, args ...string) {
			t.Helper()
			if out, errOut, code := tg.gm(t, tg.admin, tg.adminPW, stdin, args...); code != 0 {
				t.Fatalf("%s: gmsa %v: %s%s", d.name, args, out, errOut)
			}
		}
		as("", "kds", "add", "--effective-time", time.Now().Add(-48*time.Hour).UTC().Format(time.RFC3339))
		as("", "group", "new", "Cmp Group")
		as("Cmp-Pass-123!\n", "user", "new", "cmpuser", "--password-stdin")
		as("", "computer", "new", "CMPHOST")
		as("", "account", "new", "cmpsvc", "--dns-host-name", "cmpsvc.example.test", "--principals-allowed", "Cmp Group", "--interval-days", "30")
		bind := []string{"-x", "-H", d.url, "-D", "Administrator@example.test", "-w", d.pw}
		got[d.name] = map[string]map[string][]string{}
		for _, k := range []entryKind{
			{"user", baseDN, "(sAMAccountName=cmpuser)"},
			{"group", baseDN, "(sAMAccountName=Cmp Group)"},
			{"computer", baseDN, "(sAMAccountName=CMPHOST$)"},
			{"gMSA", baseDN, "(sAMAccountName=cmpsvc$)"},
			{"root key", "CN=Master Root Keys,CN=Group Key Distribution Service,CN=Services,CN=Configuration," + baseDN, "(objectClass=msKds-ProvRootKey)"},
			{"domain", baseDN, "(objectClass=domainDNS)"},
			{"OU", baseDN, "(ou=Domain Controllers)"},
		} {
			scope := "sub"
			if k.kind == "domain" {
				scope = "base"
			}
			args := append(append([]string{"-LLL", "-o", "ldif-wrap=no"}, bind...), "-b", k.base, "-s", scope, k.filter, "*")
			out, errOut, code := run(d.env, "", "ldapsearch", append(args, constructedCompared...)...)
			es, _ := ldif.Parse([]byte(out))
			if code != 0 || len(es) == 0 {
				t.Fatalf("%s: %s: exit %d %s", d.name, k.kind, code, errOut)
			}
			attrs := map[string][]string{}
			for lower, vals := range es[0].Attrs {
				name := es[0].Names[lower]
				for _, v := range vals {
					attrs[name] = append(attrs[name], string(v))
				}
			}
			got[d.name][k.kind] = attrs
		}
	}
	var report []string
	for kind, samba := range got["Samba"] {
		ours := got["ours"][kind]
		allowed := map[string]string{}
		for _, k := range []string{kind, "*"} {
			for name, why := range attributeAllowList[k] {
				allowed[name] = why
			}
		}
		for name := range union(samba, ours) {
			_, inS := lookupFold(samba, name)
			_, inO := lookupFold(ours, name)
			if _, ok := lookupFold(allowedAsValues(allowed), name); ok {
				continue
			}
			switch {
			case inS && !inO:
				sv, _ := lookupFold(samba, name)
				report = append(report, fmt.Sprintf("%s: %s only from Samba (%q)", kind, name, sv))
			case inO && !inS:
				ov, _ := lookupFold(ours, name)
				report = append(report, fmt.Sprintf("%s: %s only from ours (%q)", kind, name, ov))
			case slices.ContainsFunc(valuesCompared, func(v string) bool { return strings.EqualFold(v, name) }):
				sv, _ := lookupFold(samba, name)
				ov, _ := lookupFold(ours, name)
				if !sameValues(sv, ov) {
					report = append(report, fmt.Sprintf("%s: %s is %q on Samba, %q on ours", kind, name, sv, ov))
				}
			}
		}
	}
	sort.Strings(report)
	if len(report) > 0 {
		t.Errorf("%d differences not in the allow-list:\n%s", len(report), strings.Join(report, "\n"))
	}
}

func union(a, b map[string][]string) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[strings.ToLower(k)] = true
	}
	for k := range b {
		out[strings.ToLower(k)] = true
	}
	return out
}

func lookupFold(m map[string][]string, name string) ([]string, bool) {
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return nil, false
}

func allowedAsValues(m map[string]string) map[string][]string {
	out := map[string][]string{}
	for k, v := range m {
		out[k] = []string{v}
	}
	return out
}

func sameValues(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	for i := range x {
		x[i] = strings.ToLower(x[i])
	}
	for i := range y {
		y[i] = strings.ToLower(y[i])
	}
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}
