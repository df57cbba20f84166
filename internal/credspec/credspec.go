// Package credspec makes and checks the credential specs that hand a gMSA to Windows
// containers: the JSON New-CredentialSpec writes (field names, order and types as the
// CredentialSpec PowerShell module and the container documentation show them), and the
// GMSACredentialSpec resource of kubernetes-sigs/windows-gmsa.
package credspec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"gmsa/internal/ntsec"
)

// Spec is a credential spec.
type Spec struct {
	CmsPlugins            []string              `json:"CmsPlugins" yaml:"CmsPlugins"`
	DomainJoinConfig      DomainJoinConfig      `json:"DomainJoinConfig" yaml:"DomainJoinConfig"`
	ActiveDirectoryConfig ActiveDirectoryConfig `json:"ActiveDirectoryConfig" yaml:"ActiveDirectoryConfig"`
}

// DomainJoinConfig names the domain and the gMSA the container runs as.
type DomainJoinConfig struct {
	Sid                string `json:"Sid" yaml:"Sid"` // the domain's SID
	MachineAccountName string `json:"MachineAccountName" yaml:"MachineAccountName"`
	Guid               string `json:"Guid" yaml:"Guid"` // the domain's objectGUID
	DnsTreeName        string `json:"DnsTreeName" yaml:"DnsTreeName"`
	DnsName            string `json:"DnsName" yaml:"DnsName"`
	NetBiosName        string `json:"NetBiosName" yaml:"NetBiosName"`
}

// ActiveDirectoryConfig lists the gMSAs and, for non-domain-joined hosts, the ccg.exe
// plug-in that fetches a portable identity.
type ActiveDirectoryConfig struct {
	GroupManagedServiceAccounts []Account          `json:"GroupManagedServiceAccounts" yaml:"GroupManagedServiceAccounts"`
	HostAccountConfig           *HostAccountConfig `json:"HostAccountConfig,omitempty" yaml:"HostAccountConfig,omitempty"`
}

// Account is a gMSA in one scope: the domain's DNS name or its NetBIOS name.
type Account struct {
	Name  string `json:"Name" yaml:"Name"`
	Scope string `json:"Scope" yaml:"Scope"`
}

// HostAccountConfig is the non-domain-joined host's plug-in ([portable ccg] version 1).
// PluginInput is a JSON string, or an object as AWS's plug-in expects.
type HostAccountConfig struct {
	PortableCcgVersion string          `json:"PortableCcgVersion" yaml:"PortableCcgVersion"`
	PluginGUID         string          `json:"PluginGUID" yaml:"PluginGUID"`
	PluginInput        json.RawMessage `json:"PluginInput" yaml:"-"`
}

// Domain is what the directory says of the domain.
type Domain struct {
	SID, GUID, DNSName, TreeName, NetBIOS string
}

// New builds the spec for account (with or without the trailing $), listing it in
// both scopes, then the additional accounts: NAME in both scopes of this domain,
// NAME@DNSDOMAIN in that domain's scope.
func New(d Domain, account string, additional []string, host *HostAccountConfig) (*Spec, error) {
	name := strings.TrimSuffix(account, "$")
	if name == "" {
		return nil, fmt.Errorf("credspec: an account name is required")
	}
	tree := d.TreeName
	if tree == "" {
		tree = d.DNSName
	}
	s := &Spec{CmsPlugins: []string{"ActiveDirectory"},
		DomainJoinConfig:      DomainJoinConfig{Sid: d.SID, MachineAccountName: name, Guid: d.GUID, DnsTreeName: tree, DnsName: d.DNSName, NetBiosName: d.NetBIOS},
		ActiveDirectoryConfig: ActiveDirectoryConfig{GroupManagedServiceAccounts: []Account{{name, d.DNSName}, {name, d.NetBIOS}}, HostAccountConfig: host}}
	for _, a := range additional {
		n, dom, ok := strings.Cut(a, "@")
		n = strings.TrimSuffix(n, "$")
		if n == "" {
			return nil, fmt.Errorf("credspec: additional account %q has no name", a)
		}
		if ok && !strings.EqualFold(dom, d.DNSName) {
			s.ActiveDirectoryConfig.GroupManagedServiceAccounts = append(s.ActiveDirectoryConfig.GroupManagedServiceAccounts, Account{n, strings.ToLower(dom)})
			continue
		}
		s.ActiveDirectoryConfig.GroupManagedServiceAccounts = append(s.ActiveDirectoryConfig.GroupManagedServiceAccounts, Account{n, d.DNSName}, Account{n, d.NetBIOS})
	}
	return s, nil
}

// PluginInput encodes a plug-in input: text as a JSON string, or JSON as given.
func PluginInput(text string, asJSON bool) (json.RawMessage, error) {
	if !asJSON {
		b, _ := json.Marshal(text)
		return b, nil
	}
	var v any
	if err := json.Unmarshal([]byte(text), &v); err != nil {
		return nil, fmt.Errorf("credspec: the plug-in input is not JSON: %w", err)
	}
	return json.RawMessage(text), nil
}

// JSON is the spec as the module writes it: four-space indentation, a final newline.
func (s *Spec) JSON() []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "    ")
	enc.Encode(s)
	return b.Bytes()
}

// FileName is the module's default file name, NETBIOS_account.json.
func FileName(netbios, account string) string {
	return netbios + "_" + strings.ToLower(strings.TrimSuffix(account, "$")) + ".json"
}

// Problem is one finding of Lint.
type Problem struct {
	Field   string `json:"field"`
	Message string `json:"message"`
	Fatal   bool   `json:"fatal"` // the runtime would refuse the spec, or use the wrong account
}

func (p Problem) String() string {
	sev := "warning"
	if p.Fatal {
		sev = "error"
	}
	return fmt.Sprintf("%s: %s: %s", sev, p.Field, p.Message)
}

// Parse reads a spec strictly: unknown fields are problems, as are malformed ones.
func Parse(b []byte) (*Spec, []Problem) {
	var s Spec
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, []Problem{{Field: "(file)", Message: "not a credential spec: " + err.Error(), Fatal: true}}
	}
	return &s, s.Lint()
}

// Known ccg.exe plug-ins by CLSID (upper case), as their documentation gives them.
var knownPlugins = map[string]string{
	"{859E1386-BDB4-49E8-85C7-3070B13920E1}": "AWS (Secrets Manager, ECS and EKS)",
	"{F919DE1A-EFC4-4902-B7E5-56A314A87262}": "Azure Key Vault (AKS)",
}

var (
	netbiosRe = regexp.MustCompile(`^[A-Za-z0-9!@#$%^&'()._{}~-]{1,15}$`)
	dnsRe     = regexp.MustCompile(`^(?i)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$`)
	clsidRe   = regexp.MustCompile(`^\{[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}$`)
)

// Lint checks the spec offline: required fields, SID and GUID syntax, both scopes of the
// domain account present and consistent, NetBIOS and DNS names in their places,
// duplicates, the plug-in block.
func (s *Spec) Lint() []Problem {
	var ps []Problem
	bad := func(field, format string, a ...any) { ps = append(ps, Problem{field, fmt.Sprintf(format, a...), true}) }
	warn := func(field, format string, a ...any) {
		ps = append(ps, Problem{field, fmt.Sprintf(format, a...), false})
	}
	if len(s.CmsPlugins) != 1 || s.CmsPlugins[0] != "ActiveDirectory" {
		bad("CmsPlugins", `must be ["ActiveDirectory"], is %q`, s.CmsPlugins)
	}
	j := s.DomainJoinConfig
	if sid, err := ntsec.ParseSID(j.Sid); err != nil || !strings.HasPrefix(sid.String(), "S-1-5-21-") || strings.Count(sid.String(), "-") != 6 {
		bad("DomainJoinConfig.Sid", "%q is not a domain SID (S-1-5-21-a-b-c); an account's SID here is a common mistake", j.Sid)
	}
	if g, err := ntsec.ParseGUID(j.Guid); err != nil || g.IsZero() {
		bad("DomainJoinConfig.Guid", "%q is not the domain's objectGUID", j.Guid)
	}
	if j.MachineAccountName == "" {
		bad("DomainJoinConfig.MachineAccountName", "missing: the gMSA's name, without $")
	} else if strings.HasSuffix(j.MachineAccountName, "$") {
		bad("DomainJoinConfig.MachineAccountName", "%q ends with $: the name goes without it", j.MachineAccountName)
	}
	if !dnsRe.MatchString(j.DnsName) {
		bad("DomainJoinConfig.DnsName", "%q is not a DNS domain name (a NetBIOS name here is a common mix-up)", j.DnsName)
	}
	if !dnsRe.MatchString(j.DnsTreeName) {
		bad("DomainJoinConfig.DnsTreeName", "%q is not a DNS name (the forest root's)", j.DnsTreeName)
	} else if dnsRe.MatchString(j.DnsName) && !strings.HasSuffix(strings.ToLower("."+j.DnsName), "."+strings.ToLower(j.DnsTreeName)) {
		warn("DomainJoinConfig.DnsTreeName", "%q is not a parent of %q: is it the forest root?", j.DnsTreeName, j.DnsName)
	}
	if !netbiosRe.MatchString(j.NetBiosName) || strings.Contains(j.NetBiosName, ".") {
		bad("DomainJoinConfig.NetBiosName", "%q is not a NetBIOS name (1 to 15 characters, no dots: a DNS name here is a common mix-up)", j.NetBiosName)
	}
	accts := s.ActiveDirectoryConfig.GroupManagedServiceAccounts
	if len(accts) == 0 {
		bad("ActiveDirectoryConfig.GroupManagedServiceAccounts", "empty: list the gMSA with both scopes")
	}
	seen := map[string]bool{}
	var dnsScope, nbScope bool
	for i, a := range accts {
		f := fmt.Sprintf("ActiveDirectoryConfig.GroupManagedServiceAccounts[%d]", i)
		key := strings.ToLower(a.Name + "|" + a.Scope)
		if seen[key] {
			warn(f, "%s in scope %s is listed twice", a.Name, a.Scope)
		}
		seen[key] = true
		if strings.HasSuffix(a.Name, "$") {
			bad(f+".Name", "%q ends with $: the name goes without it", a.Name)
		}
		if a.Scope == "" {
			bad(f+".Scope", "missing")
		}
		if strings.EqualFold(a.Name, j.MachineAccountName) {
			switch {
			case strings.EqualFold(a.Scope, j.DnsName):
				dnsScope = true
			case strings.EqualFold(a.Scope, j.NetBiosName):
				nbScope = true
			default:
				bad(f+".Scope", "%q is neither the domain's DNS name %q nor its NetBIOS name %q", a.Scope, j.DnsName, j.NetBiosName)
			}
		}
	}
	if j.MachineAccountName != "" && (!dnsScope || !nbScope) {
		bad("ActiveDirectoryConfig.GroupManagedServiceAccounts", "%s must be listed in both scopes, %s and %s", j.MachineAccountName, j.DnsName, j.NetBiosName)
	}
	if h := s.ActiveDirectoryConfig.HostAccountConfig; h != nil {
		if h.PortableCcgVersion != "1" {
			bad("ActiveDirectoryConfig.HostAccountConfig.PortableCcgVersion", `must be "1", is %q`, h.PortableCcgVersion)
		}
		if !clsidRe.MatchString(h.PluginGUID) {
			bad("ActiveDirectoryConfig.HostAccountConfig.PluginGUID", "%q is not a CLSID {xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}", h.PluginGUID)
		} else if _, ok := knownPlugins[strings.ToUpper(h.PluginGUID)]; !ok {
			warn("ActiveDirectoryConfig.HostAccountConfig.PluginGUID", "%s is not a plug-in this tool knows; check that it is installed on the host", h.PluginGUID)
		}
		in := bytes.TrimSpace(h.PluginInput)
		if len(in) == 0 || in[0] != '"' && in[0] != '{' {
			bad("ActiveDirectoryConfig.HostAccountConfig.PluginInput", "must be a string, or an object for plug-ins that take one")
		}
	}
	return ps
}

// K8s is the GMSACredentialSpec resource of kubernetes-sigs/windows-gmsa (cluster
// scoped, windows.k8s.io/v1, the spec under "credspec") and the ClusterRole whose
// "use" verb lets a pod's service account name it.
func (s *Spec) K8s(name string) ([]byte, error) {
	name = strings.ToLower(name)
	var cred map[string]any
	if err := json.Unmarshal(s.JSON(), &cred); err != nil {
		return nil, err
	}
	// The CRD types PluginInput as a string: an object (AWS's plug-in input) travels as
	// its JSON text.
	if ad, ok := cred["ActiveDirectoryConfig"].(map[string]any); ok {
		if h, ok := ad["HostAccountConfig"].(map[string]any); ok {
			if in, ok := h["PluginInput"]; ok {
				if _, isString := in.(string); !isString {
					text, err := json.Marshal(in)
					if err != nil {
						return nil, err
					}
					h["PluginInput"] = string(text)
				}
			}
		}
	}
	docs := []any{
		map[string]any{"apiVersion": "windows.k8s.io/v1", "kind": "GMSACredentialSpec", "metadata": map[string]any{"name": name}, "credspec": cred},
		map[string]any{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": map[string]any{"name": name + "-credspec-use"},
			"rules": []any{map[string]any{"apiGroups": []string{"windows.k8s.io"}, "resources": []string{"gmsacredentialspecs"}, "verbs": []string{"use"}, "resourceNames": []string{name}}}},
	}
	var b bytes.Buffer
	for i, d := range docs {
		if i > 0 {
			b.WriteString("---\n")
		}
		enc := yaml.NewEncoder(&b)
		enc.SetIndent(2)
		if err := enc.Encode(d); err != nil {
			return nil, err
		}
		enc.Close()
	}
	return b.Bytes(), nil
}

// Directory is what Check needs to know of a DC's directory.
type Directory interface {
	Domain() (Domain, error)
	// Account describes sAMAccountName name: found, its class ("gmsa" for a gMSA) and
	// whether it is enabled.
	Account(name string) (found bool, class string, enabled bool, err error)
	// MayRetrieve says whether host may read the gMSA's password, and why.
	MayRetrieve(account, host string) (granted bool, reason string, err error)
}

// Check compares a spec with the directory: the domain's SID, GUID and names, each
// account of this domain a gMSA that exists and is enabled, and whether host (when
// given) may retrieve each one's password.
func Check(dir Directory, s *Spec, host string) ([]Problem, error) {
	var ps []Problem
	bad := func(field, format string, args ...any) {
		ps = append(ps, Problem{Field: field, Message: fmt.Sprintf(format, args...), Fatal: true})
	}
	dom, err := dir.Domain()
	if err != nil {
		return nil, err
	}
	j := s.DomainJoinConfig
	if !strings.EqualFold(j.Sid, dom.SID) {
		bad("DomainJoinConfig.Sid", "%s is not this domain's SID %s", j.Sid, dom.SID)
	}
	if dom.GUID != "" && !strings.EqualFold(j.Guid, dom.GUID) {
		bad("DomainJoinConfig.Guid", "%s is not this domain's objectGUID %s", j.Guid, dom.GUID)
	}
	if !strings.EqualFold(j.DnsName, dom.DNSName) || !strings.EqualFold(j.NetBiosName, dom.NetBIOS) {
		bad("DomainJoinConfig", "the domain is %s (%s), not %s (%s)", dom.DNSName, dom.NetBIOS, j.DnsName, j.NetBiosName)
	}
	seen := map[string]bool{}
	for i, acct := range s.ActiveDirectoryConfig.GroupManagedServiceAccounts {
		field := fmt.Sprintf("ActiveDirectoryConfig.GroupManagedServiceAccounts[%d]", i)
		if !strings.EqualFold(acct.Scope, dom.DNSName) && !strings.EqualFold(acct.Scope, dom.NetBIOS) || seen[strings.ToLower(acct.Name)] {
			continue // another domain's, or checked already
		}
		seen[strings.ToLower(acct.Name)] = true
		sam := acct.Name + "$"
		found, class, enabled, err := dir.Account(sam)
		switch {
		case err != nil:
			return nil, err
		case !found:
			bad(field, "%s does not exist in %s", sam, dom.DNSName)
			continue
		case class != "gmsa":
			bad(field, "%s is a %s, not a gMSA", sam, class)
			continue
		case !enabled:
			bad(field, "%s is disabled: gmsa account set %s --enable", sam, acct.Name)
		}
		if host != "" {
			granted, reason, err := dir.MayRetrieve(sam, host)
			if err != nil {
				return nil, err
			}
			if !granted {
				bad(field, "%s may not retrieve the password of %s: %s", host, sam, reason)
			}
		}
	}
	return ps, nil
}
