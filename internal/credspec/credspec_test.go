package credspec

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

var contoso = Domain{SID: "S-1-5-21-702590844-1001920913-2680819671", GUID: "56d9b66c-d746-4f87-bd26-26760cfdca2e", DNSName: "contoso.com", NetBIOS: "CONTOSO"}

// The container documentation's example (the seeds' "WebApp01" in contoso.com), byte
// for byte: field names, order, types and four-space indentation.
const documented = `{
    "CmsPlugins": [
        "ActiveDirectory"
    ],
    "DomainJoinConfig": {
        "Sid": "S-1-5-21-702590844-1001920913-2680819671",
        "MachineAccountName": "webapp01",
        "Guid": "56d9b66c-d746-4f87-bd26-26760cfdca2e",
        "DnsTreeName": "contoso.com",
        "DnsName": "contoso.com",
        "NetBiosName": "CONTOSO"
    },
    "ActiveDirectoryConfig": {
        "GroupManagedServiceAccounts": [
            {
                "Name": "webapp01",
                "Scope": "contoso.com"
            },
            {
                "Name": "webapp01",
                "Scope": "CONTOSO"
            }
        ]
    }
}
`

func TestNewMatchesTheDocumentation(t *testing.T) {
	s, err := New(contoso, "webapp01$", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(s.JSON()); got != documented {
		t.Fatalf("got\n%s\nwant\n%s", got, documented)
	}
	if ps := s.Lint(); len(ps) != 0 {
		t.Fatalf("the documented spec has problems: %v", ps)
	}
	if FileName("CONTOSO", "WebApp01$") != "CONTOSO_webapp01.json" {
		t.Fatal(FileName("CONTOSO", "WebApp01$"))
	}
}

func TestHostAccountConfigAndAdditionalAccounts(t *testing.T) {
	in, _ := PluginInput(`{"CredentialArn":"arn:aws:secretsmanager:eu-west-1:1:secret:gmsa"}`, true)
	s, err := New(contoso, "webapp01", []string{"sql01$", "app02@fabrikam.com"}, &HostAccountConfig{PortableCcgVersion: "1", PluginGUID: "{859E1386-BDB4-49E8-85C7-3070B13920E1}", PluginInput: in})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(s.JSON(), &m)
	ad := m["ActiveDirectoryConfig"].(map[string]any)
	if accts := ad["GroupManagedServiceAccounts"].([]any); len(accts) != 5 || accts[4].(map[string]any)["Scope"] != "fabrikam.com" {
		t.Fatalf("accounts: %v", accts)
	}
	if _, ok := ad["HostAccountConfig"].(map[string]any)["PluginInput"].(map[string]any); !ok {
		t.Fatal("an object plug-in input became a string")
	}
	if ps := s.Lint(); len(ps) != 0 {
		t.Fatalf("%v", ps)
	}
	text, _ := PluginInput("contoso.com:gmsaccg:<password>", false)
	if string(text) != `"contoso.com:gmsaccg:\u003cpassword\u003e"` && string(text) != `"contoso.com:gmsaccg:<password>"` {
		t.Fatalf("text input %s", text)
	}
	if _, err := PluginInput("{not json", true); err == nil {
		t.Fatal("bad JSON input taken")
	}
}

// Each mistake the troubleshooting guide names is found, with the field it is in.
func TestLintFindsEachMistake(t *testing.T) {
	for name, c := range map[string]struct {
		edit  func(*Spec)
		field string
	}{
		"account SID for the domain's": {func(s *Spec) { s.DomainJoinConfig.Sid = "S-1-5-21-1-2-3-1105" }, "DomainJoinConfig.Sid"},
		"bad GUID":                     {func(s *Spec) { s.DomainJoinConfig.Guid = "webapp01" }, "DomainJoinConfig.Guid"},
		"name with $":                  {func(s *Spec) { s.DomainJoinConfig.MachineAccountName = "webapp01$" }, "DomainJoinConfig.MachineAccountName"},
		"NetBIOS as DNS name":          {func(s *Spec) { s.DomainJoinConfig.DnsName = "CONTOSO" }, "DomainJoinConfig.DnsName"},
		"DNS as NetBIOS name":          {func(s *Spec) { s.DomainJoinConfig.NetBiosName = "contoso.com" }, "DomainJoinConfig.NetBiosName"},
		"one scope missing": {func(s *Spec) {
			s.ActiveDirectoryConfig.GroupManagedServiceAccounts = s.ActiveDirectoryConfig.GroupManagedServiceAccounts[:1]
		}, "ActiveDirectoryConfig.GroupManagedServiceAccounts"},
		"swapped scope": {func(s *Spec) { s.ActiveDirectoryConfig.GroupManagedServiceAccounts[1].Scope = "FABRIKAM" }, "ActiveDirectoryConfig.GroupManagedServiceAccounts[1].Scope"},
		"no plug-in":    {func(s *Spec) { s.CmsPlugins = nil }, "CmsPlugins"},
		"ccg version": {func(s *Spec) {
			s.ActiveDirectoryConfig.HostAccountConfig = &HostAccountConfig{PortableCcgVersion: "2", PluginGUID: "{859E1386-BDB4-49E8-85C7-3070B13920E1}", PluginInput: []byte(`"x"`)}
		}, "ActiveDirectoryConfig.HostAccountConfig.PortableCcgVersion"},
		"input a number": {func(s *Spec) {
			s.ActiveDirectoryConfig.HostAccountConfig = &HostAccountConfig{PortableCcgVersion: "1", PluginGUID: "{859E1386-BDB4-49E8-85C7-3070B13920E1}", PluginInput: []byte(`42`)}
		}, "ActiveDirectoryConfig.HostAccountConfig.PluginInput"},
	} {
		s, _ := New(contoso, "webapp01", nil, nil)
		c.edit(s)
		var found bool
		for _, p := range s.Lint() {
			found = found || p.Field == c.field && p.Fatal
		}
		if !found {
			t.Errorf("%s: not reported at %s: %v", name, c.field, s.Lint())
		}
	}
	if _, ps := Parse([]byte(`{"CmsPlugins":["ActiveDirectory"],"Extra":1}`)); len(ps) != 1 || !strings.Contains(ps[0].Message, "Extra") {
		t.Fatalf("unknown field: %v", ps)
	}
	unknown, _ := New(contoso, "webapp01", nil, &HostAccountConfig{PortableCcgVersion: "1", PluginGUID: "{00000000-0000-0000-0000-000000000001}", PluginInput: []byte(`"x"`)})
	if ps := unknown.Lint(); len(ps) != 1 || ps[0].Fatal {
		t.Fatalf("an unknown plug-in is a warning: %v", ps)
	}
}

// The Kubernetes output: a GMSACredentialSpec with the spec under credspec, and a
// ClusterRole granting "use" on it alone.
func TestK8s(t *testing.T) {
	s, _ := New(contoso, "WebApp01", nil, nil)
	b, err := s.K8s("WebApp01")
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(string(b), "---\n")
	var res struct {
		APIVersion string         `yaml:"apiVersion"`
		Kind       string         `yaml:"kind"`
		Metadata   map[string]any `yaml:"metadata"`
		Credspec   Spec           `yaml:"credspec"`
	}
	if err := yaml.Unmarshal([]byte(docs[0]), &res); err != nil || res.APIVersion != "windows.k8s.io/v1" || res.Kind != "GMSACredentialSpec" ||
		res.Metadata["name"] != "webapp01" || res.Credspec.DomainJoinConfig.Sid != contoso.SID || len(res.Credspec.ActiveDirectoryConfig.GroupManagedServiceAccounts) != 2 {
		t.Fatalf("%+v %v", res, err)
	}
	var role struct {
		Kind  string `yaml:"kind"`
		Rules []struct {
			APIGroups, Resources, Verbs, ResourceNames []string `yaml:",flow"`
		} `yaml:"rules"`
	}
	if err := yaml.Unmarshal([]byte(docs[1]), &role); err != nil || role.Kind != "ClusterRole" || role.Rules[0].Verbs[0] != "use" {
		t.Fatalf("%+v %v", role, err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(documented))
	f.Add([]byte(`{"ActiveDirectoryConfig":{"HostAccountConfig":{"PluginInput":{}}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, _ := Parse(b); s != nil {
			s.Lint()
			s.JSON()
		}
	})
}

// schema is the part of an OpenAPI v3 schema a CRD's structural schema uses.
type schema struct {
	Type       string             `yaml:"type"`
	Properties map[string]*schema `yaml:"properties"`
	Items      *schema            `yaml:"items"`
}

// validate checks v against s as `kubectl apply --validate=strict` would: each value of
// its type, no field the schema does not declare.
func (s *schema) validate(path string, v any) []string {
	var errs []string
	switch s.Type {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: %T, want an object", path, v)}
		}
		for k, val := range m {
			sub, ok := s.Properties[k]
			if !ok {
				errs = append(errs, fmt.Sprintf("%s.%s: unknown field", path, k))
				continue
			}
			errs = append(errs, sub.validate(path+"."+k, val)...)
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: %T, want an array", path, v)}
		}
		for i, val := range a {
			errs = append(errs, s.Items.validate(fmt.Sprintf("%s[%d]", path, i), val)...)
		}
	case "string":
		if _, ok := v.(string); !ok {
			errs = append(errs, fmt.Sprintf("%s: %T, want a string", path, v))
		}
	}
	return errs
}

// The GMSACredentialSpec resource passes the CRD's schema, with and without a host
// plug-in whose input is an object; a resource that breaks it is caught.
func TestK8sMatchesTheCRDSchema(t *testing.T) {
	b, err := os.ReadFile("testdata/gmsacredentialspec-v1.schema.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var crd schema
	if err := yaml.Unmarshal(b, &crd); err != nil {
		t.Fatal(err)
	}
	in, _ := PluginInput(`{"credentialArn":"arn:aws:secretsmanager:us-west-2:123:secret:gmsa"}`, true)
	host := &HostAccountConfig{PortableCcgVersion: "1", PluginGUID: "{859E1386-BDB4-49E8-85C7-3070B13920E1}", PluginInput: in}
	for _, h := range []*HostAccountConfig{nil, host} {
		s, err := New(contoso, "WebApp01", []string{"Other@contoso.com"}, h)
		if err != nil {
			t.Fatal(err)
		}
		out, err := s.K8s("WebApp01")
		if err != nil {
			t.Fatal(err)
		}
		var res map[string]any
		if err := yaml.Unmarshal([]byte(strings.Split(string(out), "---\n")[0]), &res); err != nil {
			t.Fatal(err)
		}
		if errs := crd.validate("", res); len(errs) > 0 {
			t.Errorf("with host config %v: %v\n%s", h != nil, errs, out)
		}
		if h != nil && !strings.Contains(string(out), `PluginInput: '{"credentialArn":`) {
			t.Errorf("PluginInput is not carried as JSON text:\n%s", out)
		}
	}
	bad := map[string]any{"credspec": map[string]any{"CmsPlugins": "ActiveDirectory", "Extra": 1}}
	if errs := crd.validate("", bad); len(errs) != 2 {
		t.Errorf("a broken resource: %v", errs)
	}
}
