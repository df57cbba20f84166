package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"gmsa/internal/admin"
	"gmsa/internal/atomicfile"
	"gmsa/internal/credspec"
	"gmsa/internal/directory"
)

func credspecCommand(e *env) *cobra.Command {
	var account, pluginGUID, pluginInput, out, dir, format string
	var additional []string
	var pluginJSON, force bool
	newCmd := e.adminCmd("new --account NAME", "Write a gMSA's credential spec, as New-CredentialSpec does, from the directory's values", cobra.NoArgs,
		func(ctx context.Context, a admin.Admin, _ []string) error {
			if account == "" {
				return usagef("--account NAME is required")
			}
			if format != "json" && format != "k8s" {
				return usagef("--format %q: want json or k8s", format)
			}
			en, err := a.Get(ctx, account, directory.ClassGMSA)
			if err != nil {
				return err
			}
			dom, err := a.Domain(ctx)
			if err != nil {
				return err
			}
			var host *credspec.HostAccountConfig
			if pluginGUID != "" {
				in, err := credspec.PluginInput(pluginInput, pluginJSON)
				if err != nil {
					return asUsage(err)
				}
				host = &credspec.HostAccountConfig{PortableCcgVersion: "1", PluginGUID: pluginGUID, PluginInput: in}
			}
			s, err := credspec.New(credspec.Domain{SID: dom.SID, GUID: dom.GUID.String(), DNSName: dom.DNSName, NetBIOS: dom.NetBIOS}, en.SAMAccountName, additional, host)
			if err != nil {
				return asUsage(err)
			}
			for _, p := range s.Lint() {
				fmt.Fprintln(e.stderr, p)
			}
			data := s.JSON()
			name := credspec.FileName(dom.NetBIOS, en.SAMAccountName)
			if format == "k8s" {
				if data, err = s.K8s(strings.TrimSuffix(en.SAMAccountName, "$")); err != nil {
					return err
				}
				name = strings.TrimSuffix(name, ".json") + ".yaml"
			}
			path := out
			if path == "" && dir != "" {
				path = filepath.Join(dir, name)
			}
			if path == "" {
				_, err := e.stdout.Write(data)
				return err
			}
			if dir != "" && out == "" {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					return err
				}
			}
			if _, err := os.Stat(path); err == nil && !force {
				return usagef("%s exists; --force replaces it", path)
			}
			if err := atomicfile.Write(path, data, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "credential spec for %s written to %s\n", en.SAMAccountName, path)
			return nil
		})
	f := newCmd.Flags()
	f.StringVar(&account, "account", "", "the gMSA (name or name$)")
	f.StringArrayVar(&additional, "additional-account", nil, "another gMSA the container may use: NAME (this domain) or NAME@DNSDOMAIN; repeatable")
	f.StringVar(&pluginGUID, "host-account-config", "", "a non-domain-joined host's ccg.exe plug-in CLSID ({…}): adds HostAccountConfig")
	f.StringVar(&pluginInput, "plugin-input", "", "the plug-in's input (a string, or JSON with --plugin-input-json)")
	f.BoolVar(&pluginJSON, "plugin-input-json", false, "the plug-in input is a JSON object (AWS's plug-in takes one)")
	f.StringVar(&out, "out", "", "write to FILE instead of standard output")
	f.StringVar(&dir, "dir", "", "write to DIR under the module's name, NETBIOS_account.json")
	f.BoolVar(&force, "force", false, "replace an existing file")
	f.StringVar(&format, "format", "json", "json, or k8s: windows-gmsa's GMSACredentialSpec resource and the ClusterRole to use it")

	var hostName string
	validate := &cobra.Command{Use: "validate FILE", Short: "Check a credential spec offline, and against the directory with --server or --data", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := readFile(args[0])
			if err != nil {
				return err
			}
			s, problems := credspec.Parse(b)
			if s != nil && (cmd.Flags().Changed("data") || e.remote.URL != "" || e.remote.Domain != "") {
				err := e.withAdmin(cmd.Context(), func(a admin.Admin) error {
					more, err := checkAgainstDirectory(cmd.Context(), a, s, hostName)
					problems = append(problems, more...)
					return err
				})
				if err != nil {
					return err
				}
			}
			return e.reportProblems(args[0], problems)
		}}
	e.dataFlag(validate)
	e.serverFlags(validate)
	validate.Flags().StringVar(&hostName, "host", "", "also check that this host (NAME$) may retrieve each account's password")

	list := &cobra.Command{Use: "list DIR", Short: "List the credential specs of a folder, as Get-CredentialSpec does", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			files, _ := filepath.Glob(filepath.Join(args[0], "*.json"))
			sort.Strings(files)
			type row struct {
				File     string   `json:"file"`
				Accounts []string `json:"accounts"`
				Problems int      `json:"problems"`
			}
			var rows []row
			for _, f := range files {
				b, err := readFile(f)
				if err != nil {
					return err
				}
				s, ps := credspec.Parse(b)
				r := row{File: filepath.Base(f), Problems: len(ps)}
				if s != nil {
					for _, a := range s.ActiveDirectoryConfig.GroupManagedServiceAccounts {
						r.Accounts = append(r.Accounts, a.Scope+"\\"+a.Name)
					}
				}
				rows = append(rows, r)
			}
			if e.output == "json" {
				return e.writeJSON(rows)
			}
			for _, r := range rows {
				fmt.Fprintf(e.stdout, "%s\t%s\t%d problem(s)\n", r.File, strings.Join(r.Accounts, ", "), r.Problems)
			}
			return nil
		}}
	show := &cobra.Command{Use: "show FILE", Short: "Print a credential spec and what is wrong with it", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			b, err := readFile(args[0])
			if err != nil {
				return err
			}
			s, ps := credspec.Parse(b)
			if s == nil {
				return e.reportProblems(args[0], ps)
			}
			if e.output == "json" {
				e.stdout.Write(s.JSON())
			} else {
				j := s.DomainJoinConfig
				fmt.Fprintf(e.stdout, "domain        %s (%s), SID %s, GUID %s, forest %s\naccount       %s\n", j.DnsName, j.NetBiosName, j.Sid, j.Guid, j.DnsTreeName, j.MachineAccountName)
				for _, a := range s.ActiveDirectoryConfig.GroupManagedServiceAccounts {
					fmt.Fprintf(e.stdout, "gMSA          %s in %s\n", a.Name, a.Scope)
				}
				if h := s.ActiveDirectoryConfig.HostAccountConfig; h != nil {
					fmt.Fprintf(e.stdout, "host plug-in  %s (portable ccg %s)\n", h.PluginGUID, h.PortableCcgVersion)
				}
			}
			return e.reportProblems(args[0], ps)
		}}
	return group("credspec", "Credential specs for Windows containers (the CredentialSpec module's cmdlets)", newCmd, validate, list, show)
}

// reportProblems prints problems and fails (exit 1) when any is an error.
func (e *env) reportProblems(file string, ps []credspec.Problem) error {
	fatal := 0
	for _, p := range ps {
		fmt.Fprintln(e.stderr, p)
		if p.Fatal {
			fatal++
		}
	}
	if fatal > 0 {
		return fmt.Errorf("%s: %d error(s)", file, fatal)
	}
	if e.output != "json" {
		fmt.Fprintf(e.stderr, "%s: valid\n", file)
	}
	return nil
}

// adminDirectory shows an Admin (the data directory or a DC) to credspec.Check.
type adminDirectory struct {
	ctx context.Context
	a   admin.Admin
}

func (d adminDirectory) Domain() (credspec.Domain, error) {
	dom, err := d.a.Domain(d.ctx)
	if err != nil {
		return credspec.Domain{}, err
	}
	out := credspec.Domain{SID: dom.SID, DNSName: dom.DNSName, NetBIOS: dom.NetBIOS}
	if !dom.GUID.IsZero() {
		out.GUID = dom.GUID.String()
	}
	return out, nil
}

func (d adminDirectory) Account(name string) (bool, string, bool, error) {
	en, err := d.a.Get(d.ctx, name, "")
	if errors.Is(err, directory.ErrNotFound) {
		return false, "", false, nil
	}
	if err != nil {
		return false, "", false, err
	}
	class := en.Class
	if class == string(directory.ClassGMSA) {
		class = "gmsa"
	}
	return true, class, en.Enabled == nil || *en.Enabled, nil
}

func (d adminDirectory) MayRetrieve(account, host string) (bool, string, error) {
	dec, err := d.a.AccountTest(d.ctx, account, host)
	return dec.Granted, dec.Reason, err
}

// checkAgainstDirectory compares a spec with the directory (credspec.Check).
func checkAgainstDirectory(ctx context.Context, a admin.Admin, s *credspec.Spec, host string) ([]credspec.Problem, error) {
	return credspec.Check(adminDirectory{ctx, a}, s, host)
}
