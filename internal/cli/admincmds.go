package cli

import (
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"gmsa/internal/admin"
	"gmsa/internal/atomicfile"
	"gmsa/internal/directory"
	"gmsa/internal/kds"
	"gmsa/internal/krbkey"
	"gmsa/internal/managedpw"
	"gmsa/internal/ntsec"
)

// adminCmd builds a command that opens the data directory and runs fn.
func (e *env) adminCmd(use, short string, args cobra.PositionalArgs, fn func(ctx context.Context, a admin.Admin, args []string) error) *cobra.Command {
	c := &cobra.Command{Use: use, Short: short, Args: args,
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withAdmin(cmd.Context(), func(a admin.Admin) error { return fn(cmd.Context(), a, args) })
		}}
	e.dataFlag(c)
	e.serverFlags(c)
	return c
}

func (e *env) printEntry(en admin.Entry) error {
	if e.output == "json" {
		return e.writeJSON(en)
	}
	yn := func(b *bool) string {
		if b == nil {
			return ""
		}
		return map[bool]string{true: "yes", false: "no"}[*b]
	}
	num := func(v int64) string {
		if v == 0 {
			return ""
		}
		return strconv.FormatInt(v, 10)
	}
	rows := [][2]string{
		{"DN", en.DN}, {"class", en.Class}, {"sAMAccountName", en.SAMAccountName}, {"SID", en.SID}, {"GUID", en.GUID},
		{"enabled", yn(en.Enabled)}, {"description", en.Description}, {"DNS host name", en.DNSHostName},
		{"SPNs", strings.Join(en.SPNs, ", ")}, {"encryption types", enctypeNames(en.SupportedEnctypes)},
		{"group scope", en.GroupScope}, {"members", strings.Join(en.Members, ", ")}, {"member of", strings.Join(en.MemberOf, ", ")},
		{"password interval", plural(en.PasswordIntervalDays, "day")},
		{"principals allowed", strings.Join(en.PrincipalsAllowed, ", ")}, {"msDS-GroupMSAMembership", en.MembershipSDDL},
		{"password period", en.PasswordPeriod}, {"password root key", en.PasswordRootKey},
		{"KDF hash", en.KDFHash}, {"created (key)", en.CreateTime}, {"effective", en.EffectiveTime}, {"usable for new gMSAs", en.UsableForNew},
		{"key version", num(int64(en.KVNO))}, {"pwdLastSet", en.PwdLastSet},
		{"whenCreated", en.Created}, {"whenChanged", en.Changed}, {"uSNCreated", num(en.USNCreated)}, {"uSNChanged", num(en.USNChanged)},
	}
	e.table(rows)
	return nil
}

func plural(n int64, unit string) string {
	switch n {
	case 0:
		return ""
	case 1:
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

func enctypeNames(m uint32) string {
	var n []string
	for _, x := range []struct {
		bit  uint32
		name string
	}{{directory.EnctypeRC4, "RC4"}, {directory.EnctypeAES128, "AES128"}, {directory.EnctypeAES256, "AES256"}} {
		if m&x.bit != 0 {
			n = append(n, x.name)
		}
	}
	return strings.Join(n, ", ")
}

func (e *env) printList(entries []admin.Entry, cols ...string) error {
	if e.output == "json" {
		if entries == nil {
			entries = []admin.Entry{}
		}
		return e.writeJSON(entries)
	}
	get := map[string]func(admin.Entry) string{
		"NAME": func(x admin.Entry) string { return x.Name }, "SAM": func(x admin.Entry) string { return x.SAMAccountName },
		"SID": func(x admin.Entry) string { return x.SID }, "DNS HOST NAME": func(x admin.Entry) string { return x.DNSHostName },
		"ENABLED": func(x admin.Entry) string {
			if x.Enabled == nil {
				return ""
			}
			return strconv.FormatBool(*x.Enabled)
		},
		"EFFECTIVE": func(x admin.Entry) string { return x.EffectiveTime }, "USABLE FOR NEW": func(x admin.Entry) string { return x.UsableForNew },
		"HASH": func(x admin.Entry) string { return x.KDFHash }, "SCOPE": func(x admin.Entry) string { return x.GroupScope },
		"INTERVAL": func(x admin.Entry) string { return plural(x.PasswordIntervalDays, "day") }, "DN": func(x admin.Entry) string { return x.DN },
	}
	width := make([]int, len(cols))
	cells := [][]string{cols}
	for _, en := range entries {
		row := make([]string, len(cols))
		for i, c := range cols {
			row[i] = get[c](en)
		}
		cells = append(cells, row)
	}
	for _, r := range cells {
		for i, v := range r {
			width[i] = max(width[i], len(v))
		}
	}
	for _, r := range cells {
		var b strings.Builder
		for i, v := range r {
			fmt.Fprintf(&b, "%-*s  ", width[i], v)
		}
		fmt.Fprintln(e.stdout, strings.TrimRight(b.String(), " "))
	}
	return nil
}

func (e *env) adminKDSCommands() []*cobra.Command {
	var effective string
	var immediately bool
	add := e.adminCmd("add", "Add a KDS root key (Add-KdsRootKey): effective in 10 days unless told otherwise", cobra.NoArgs,
		func(ctx context.Context, a admin.Admin, _ []string) error {
			opt := directory.RootKeyOptions{Immediately: immediately}
			if effective != "" {
				t, err := ntsec.ParseFileTime(effective)
				if err != nil {
					return asUsage(err)
				}
				opt.EffectiveTime = &t
			}
			en, warn, err := a.KDSAdd(ctx, opt)
			if err != nil {
				return err
			}
			for _, w := range warn {
				fmt.Fprintln(e.stderr, "warning:", w)
			}
			return e.printEntry(en)
		})
	add.Flags().StringVar(&effective, "effective-time", "", "when the key becomes effective (a past time back-dates it for a lab)")
	add.Flags().BoolVar(&immediately, "effective-immediately", false, "effective now (new gMSAs still wait 10 h, as on Windows)")
	list := e.adminCmd("list", "List KDS root keys (Get-KdsRootKey)", cobra.NoArgs, func(ctx context.Context, a admin.Admin, _ []string) error {
		l, err := a.KDSList(ctx)
		if err != nil {
			return err
		}
		return e.printList(l, "NAME", "HASH", "EFFECTIVE", "USABLE FOR NEW")
	})
	get := e.adminCmd("get GUID", "Show a KDS root key (never its secret data)", cobra.ExactArgs(1), func(ctx context.Context, a admin.Admin, args []string) error {
		en, err := a.KDSGet(ctx, args[0])
		if err != nil {
			return err
		}
		return e.printEntry(en)
	})
	remove := e.adminCmd("remove GUID", "Remove a KDS root key: passwords whose id names it can no longer be derived", cobra.ExactArgs(1),
		func(ctx context.Context, a admin.Admin, args []string) error {
			if err := a.KDSRemove(ctx, args[0]); err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, "removed root key", args[0])
			return nil
		})
	test := e.adminCmd("test GUID", "Check a KDS root key (Test-KdsRootKey)", cobra.ExactArgs(1), func(ctx context.Context, a admin.Admin, args []string) error {
		err := a.KDSTest(ctx, args[0])
		if e.output == "json" {
			msg := ""
			if err != nil {
				msg = err.Error()
			}
			if jerr := e.writeJSON(map[string]any{"valid": err == nil, "reason": msg}); jerr != nil {
				return jerr
			}
			return err // a missing or unusable key exits non-zero in JSON too
		}
		if err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, "valid: the key can derive gMSA passwords")
		return nil
	})
	var out string
	export := e.adminCmd("export GUID --out FILE", "Write a root key with its secret data to a 0600 JSON file (for kds compute; anyone holding it can derive every gMSA password)", cobra.ExactArgs(1),
		func(ctx context.Context, a admin.Admin, args []string) error {
			if out == "" {
				return usagef("--out FILE is required")
			}
			k, err := a.KDSExport(ctx, args[0])
			if err != nil {
				return err
			}
			b, err := jsonIndent(map[string]any{"cn": k.ID.String(), "msKds-RootKeyData": hex.EncodeToString(k.Data),
				"msKds-KDFParam": hex.EncodeToString(kds.EncodeKDFParam(k.Hash)), "msKds-KDFAlgorithmID": k.KDFAlgorithm,
				"msKds-Version": k.Version, "msKds-CreateTime": uint64(k.CreateTime), "msKds-UseStartTime": uint64(k.UseStartTime)})
			if err != nil {
				return err
			}
			if err := atomicfile.Write(out, b, 0o600); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "wrote root key %s to %s (mode 0600)\n", k.ID, out)
			return nil
		})
	export.Flags().StringVar(&out, "out", "", "file to write")
	return []*cobra.Command{add, list, get, remove, test, export}
}

// splitList gathers a repeated, comma-separated flag.
func splitList(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func accountCommand(e *env) *cobra.Command {
	var opt directory.GMSAOptions
	var principals, spns []string
	var enctypes string
	newCmd := e.adminCmd("new NAME", "Create a gMSA (New-ADServiceAccount)", cobra.ExactArgs(1), func(ctx context.Context, a admin.Admin, args []string) error {
		opt.Name, opt.PrincipalsAllowed, opt.SPNs = args[0], splitList(principals), splitList(spns)
		if enctypes != "" {
			m, err := directory.ParseEnctypes(enctypes)
			if err != nil {
				return err
			}
			opt.Enctypes = m
		}
		en, err := a.AccountNew(ctx, opt)
		if err != nil {
			return err
		}
		return e.printEntry(en)
	})
	f := newCmd.Flags()
	f.StringVar(&opt.DNSHostName, "dns-host-name", "", "DNS host name (required), e.g. svc.example.test")
	f.StringArrayVar(&spns, "spn", nil, "service principal name (repeatable or comma-separated)")
	f.StringArrayVar(&principals, "principals-allowed", nil, "PrincipalsAllowedToRetrieveManagedPassword: names, name$, SIDs, DNs, groups (repeatable or comma-separated)")
	f.Int64Var(&opt.IntervalDays, "interval-days", 30, "ManagedPasswordIntervalInDays (only at creation)")
	f.StringVar(&enctypes, "enctypes", "", "KerberosEncryptionType: aes128,aes256[,rc4] (default RC4, AES128, AES256)")
	f.BoolVar(&opt.Disabled, "disabled", false, "create the account disabled")
	f.StringVar(&opt.Description, "description", "", "description")

	var setHost, setDesc, setEnctypes string
	var setSPNs, addSPNs, removeSPNs, setPrincipals, setDelegate []string
	var enable, disable, trustedToAuth bool
	var setInterval int64
	var setCmd *cobra.Command
	setCmd = e.adminCmd("set NAME", "Change a gMSA (Set-ADServiceAccount)", cobra.ExactArgs(1), func(ctx context.Context, a admin.Admin, args []string) error {
		var ch directory.GMSAChanges
		cmdFlags := setCmd.Flags().Changed
		if cmdFlags("dns-host-name") {
			ch.DNSHostName = &setHost
		}
		if cmdFlags("description") {
			ch.Description = &setDesc
		}
		if cmdFlags("enctypes") {
			m, err := directory.ParseEnctypes(setEnctypes)
			if err != nil {
				return err
			}
			ch.Enctypes = &m
		}
		if cmdFlags("spn") {
			l := splitList(setSPNs)
			ch.SPNs = &l
		}
		ch.AddSPNs, ch.RemoveSPNs = splitList(addSPNs), splitList(removeSPNs)
		if cmdFlags("principals-allowed") {
			l := splitList(setPrincipals)
			ch.PrincipalsAllowed = &l
		}
		if cmdFlags("interval-days") {
			ch.IntervalDays = &setInterval
		}
		if enable && disable {
			return usagef("--enable and --disable exclude each other")
		}
		if enable || disable {
			ch.Enabled = &enable
		}
		if cmdFlags("allowed-to-delegate-to") {
			l := splitList(setDelegate)
			ch.AllowedToDelegateTo = &l
		}
		if cmdFlags("trusted-to-auth-for-delegation") {
			ch.TrustedToAuth = &trustedToAuth
		}
		en, err := a.AccountSet(ctx, args[0], ch)
		if err != nil {
			return err
		}
		return e.printEntry(en)
	})
	sf := setCmd.Flags()
	sf.StringVar(&setHost, "dns-host-name", "", "new DNS host name")
	sf.StringVar(&setDesc, "description", "", "new description")
	sf.StringVar(&setEnctypes, "enctypes", "", "new KerberosEncryptionType")
	sf.StringArrayVar(&setSPNs, "spn", nil, "replace the SPNs")
	sf.StringArrayVar(&addSPNs, "add-spn", nil, "add an SPN")
	sf.StringArrayVar(&removeSPNs, "remove-spn", nil, "remove an SPN")
	sf.StringArrayVar(&setPrincipals, "principals-allowed", nil, "replace PrincipalsAllowedToRetrieveManagedPassword")
	sf.BoolVar(&enable, "enable", false, "enable the account")
	sf.BoolVar(&disable, "disable", false, "disable the account")
	sf.Int64Var(&setInterval, "interval-days", 0, "refused: the interval is fixed at creation")
	sf.StringArrayVar(&setDelegate, "allowed-to-delegate-to", nil, "replace msDS-AllowedToDelegateTo: the SPNs the gMSA may get tickets to on a user's behalf (S4U2Proxy); \"\" clears")
	sf.BoolVar(&trustedToAuth, "trusted-to-auth-for-delegation", false, "protocol transition: the gMSA's S4U2Self tickets are forwardable (=false to clear)")

	var as string
	testCmd := e.adminCmd("test NAME --as PRINCIPAL", "May PRINCIPAL retrieve the gMSA's password, and why (Test-ADServiceAccount); exit 1 when not", cobra.ExactArgs(1),
		func(ctx context.Context, a admin.Admin, args []string) error {
			if as == "" {
				return usagef("--as PRINCIPAL is required: the host or user that would retrieve the password")
			}
			dec, err := a.AccountTest(ctx, args[0], as)
			if err != nil {
				return err
			}
			if e.output == "json" {
				if err := e.writeJSON(map[string]any{"account": args[0], "principal": as, "granted": dec.Granted, "reason": dec.Reason}); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(e.stdout, "%s: %s\n", map[bool]string{true: "yes", false: "no"}[dec.Granted], dec.Reason)
			}
			if !dec.Granted {
				return silentExit(ExitFailure)
			}
			return nil
		})
	testCmd.Flags().StringVar(&as, "as", "", "the principal (name$, user, SID or DN)")

	var pwAs string
	var pwAcct accountFlags
	pwCmd := e.adminCmd("password NAME --as PRINCIPAL", "Read msDS-ManagedPassword as PRINCIPAL would, as a DC serves it (rotating when due)", cobra.ExactArgs(1),
		func(ctx context.Context, a admin.Admin, args []string) error {
			if pwAs == "" && (e.remote.URL != "" || e.remote.Domain != "") {
				pwAs = e.remote.User // over LDAP: the bound identity, as a host reads its own
			}
			if pwAs == "" {
				return usagef("--as PRINCIPAL is required: the password is read with that principal's rights")
			}
			blob, dec, err := a.AccountPassword(ctx, args[0], pwAs)
			if err != nil {
				return err
			}
			if blob == nil {
				return fmt.Errorf("%s may not retrieve the password of %s: %s: %w", pwAs, args[0], dec.Reason, directory.ErrAccessDenied)
			}
			en, err := a.Get(ctx, args[0], directory.ClassGMSA)
			if err != nil {
				return err
			}
			dom, _ := a.Domain(ctx)
			pwAcct.account, pwAcct.domain, pwAcct.realm = en.SAMAccountName, dom.DNSName, dom.Realm
			b, err := managedpw.Decode(blob)
			if err != nil {
				return err
			}
			if e.output != "json" {
				fmt.Fprintf(e.stdout, "msDS-ManagedPassword of %s (%d bytes): %s\n", en.SAMAccountName, len(blob), base64.StdEncoding.EncodeToString(blob))
			}
			return e.printBlob(b, &pwAcct)
		})
	pwCmd.Flags().StringVar(&pwAs, "as", "", "the principal whose rights the read uses (name$, user, SID, DN or SYSTEM); over LDAP, the bound identity by default")

	return group("account", "Group Managed Service Accounts (the *-ADServiceAccount cmdlets)",
		newCmd, e.getCmd(directory.ClassGMSA), e.listCmd(directory.ClassGMSA, "NAME", "SID", "DNS HOST NAME", "INTERVAL", "ENABLED"),
		setCmd, e.removeCmd(directory.ClassGMSA), testCmd, pwCmd)
}

func (e *env) getCmd(class directory.Class) *cobra.Command {
	return e.adminCmd("get NAME", "Show one "+classWord(class), cobra.ExactArgs(1), func(ctx context.Context, a admin.Admin, args []string) error {
		en, err := a.Get(ctx, args[0], class)
		if err != nil {
			return err
		}
		return e.printEntry(en)
	})
}

func (e *env) listCmd(class directory.Class, cols ...string) *cobra.Command {
	return e.adminCmd("list", "List every "+classWord(class), cobra.NoArgs, func(ctx context.Context, a admin.Admin, _ []string) error {
		l, err := a.List(ctx, class)
		if err != nil {
			return err
		}
		return e.printList(l, cols...)
	})
}

func (e *env) removeCmd(class directory.Class) *cobra.Command {
	return e.adminCmd("remove NAME", "Remove a "+classWord(class), cobra.ExactArgs(1), func(ctx context.Context, a admin.Admin, args []string) error {
		if err := a.Remove(ctx, args[0], class); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "removed %s %s\n", classWord(class), args[0])
		return nil
	})
}

func classWord(c directory.Class) string {
	return map[directory.Class]string{directory.ClassGMSA: "gMSA", directory.ClassGroup: "group", directory.ClassComputer: "computer", directory.ClassUser: "user",
		directory.ClassOU: "organizational unit"}[c]
}

func groupCommand(e *env) *cobra.Command {
	var scope, desc string
	newCmd := e.adminCmd("new NAME", "Create a security group (New-ADGroup)", cobra.ExactArgs(1), func(ctx context.Context, a admin.Admin, args []string) error {
		s, err := directory.ParseScope(scope)
		if err != nil {
			return err
		}
		en, err := a.GroupNew(ctx, args[0], s, desc)
		if err != nil {
			return err
		}
		return e.printEntry(en)
	})
	newCmd.Flags().StringVar(&scope, "scope", "global", "global, universal or domainlocal")
	newCmd.Flags().StringVar(&desc, "description", "", "description")
	member := func(use, short string, fn func(admin.Admin, context.Context, string, string) (admin.Entry, error)) *cobra.Command {
		return e.adminCmd(use+" GROUP MEMBER...", short, cobra.MinimumNArgs(2), func(ctx context.Context, a admin.Admin, args []string) error {
			var en admin.Entry
			for _, m := range args[1:] {
				var err error
				if en, err = fn(a, ctx, args[0], m); err != nil {
					return err
				}
			}
			return e.printEntry(en)
		})
	}
	return group("group", "Security groups (the *-ADGroup cmdlets)", newCmd, e.getCmd(directory.ClassGroup),
		e.listCmd(directory.ClassGroup, "NAME", "SID", "SCOPE"),
		member("add-member", "Add members (Add-ADGroupMember)", admin.Admin.GroupAddMember),
		member("remove-member", "Remove members (Remove-ADGroupMember)", admin.Admin.GroupRemoveMember),
		e.removeCmd(directory.ClassGroup))
}

func ouCommand(e *env) *cobra.Command {
	var parent, desc string
	var recursive bool
	newCmd := e.adminCmd("new NAME", "Create an organizational unit (New-ADOrganizationalUnit, samba-tool ou create)", cobra.ExactArgs(1),
		func(ctx context.Context, a admin.Admin, args []string) error {
			en, err := a.OUNew(ctx, args[0], parent, desc)
			if err != nil {
				return err
			}
			return e.printEntry(en)
		})
	newCmd.Flags().StringVar(&parent, "path", "", "the parent's DN (default the domain)")
	newCmd.Flags().StringVar(&desc, "description", "", "description")
	removeCmd := e.adminCmd("remove DN", "Remove an organizational unit (Remove-ADOrganizationalUnit); --recursive removes what is below it too",
		cobra.ExactArgs(1), func(ctx context.Context, a admin.Admin, args []string) error {
			var err error
			if recursive {
				err = a.RemoveTree(ctx, args[0])
			} else {
				err = a.Remove(ctx, args[0], directory.ClassOU)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "removed organizational unit %s\n", args[0])
			return nil
		})
	removeCmd.Flags().BoolVar(&recursive, "recursive", false, "remove the objects below it too (the tree delete control)")
	return group("ou", "Organizational units (the *-ADOrganizationalUnit cmdlets)", newCmd, e.getCmd(directory.ClassOU),
		e.listCmd(directory.ClassOU, "NAME", "DN"), removeCmd)
}

func computerCommand(e *env) *cobra.Command {
	var opt directory.ComputerOptions
	var keytab, etypes string
	var spns []string
	newCmd := e.adminCmd("new HOST", "Create a computer account with a random password, as 'adcli join' does; --write-keytab writes its keys", cobra.ExactArgs(1),
		func(ctx context.Context, a admin.Admin, args []string) error {
			opt.Name, opt.SPNs = args[0], splitList(spns)
			want := map[int32]bool{}
			for _, s := range strings.Split(etypes, ",") {
				et, err := krbkey.ParseEtype(s)
				if err != nil {
					return asUsage(err)
				}
				want[et] = true
			}
			en, keys, err := a.ComputerNew(ctx, opt)
			if err != nil {
				return err
			}
			if keytab != "" {
				dom, _ := a.Domain(ctx)
				principals := []string{en.SAMAccountName}
				principals = append(principals, en.SPNs...)
				kt := &krbkey.Keytab{}
				for _, ps := range principals {
					p, err := krbkey.ParsePrincipal(ps, dom.Realm)
					if err != nil {
						return err
					}
					for _, k := range keys {
						if want[k.Etype] {
							kt.Entries = append(kt.Entries, krbkey.KeytabEntry{Principal: p, Timestamp: uint32(e.now().Unix()), KVNO: en.KVNO, Key: k})
						}
					}
				}
				data, err := kt.Marshal()
				if err != nil {
					return err
				}
				if err := atomicfile.Write(keytab, data, 0o600); err != nil {
					return err
				}
				fmt.Fprintf(e.stderr, "wrote %s: %d keys (mode 0600)\n", keytab, len(kt.Entries))
			}
			return e.printEntry(en)
		})
	newCmd.Flags().StringVar(&opt.DNSHostName, "dns-host-name", "", "DNS host name (default HOST.domain)")
	newCmd.Flags().StringVar(&opt.Container, "path", "", "the container's or OU's DN (default CN=Computers)")
	newCmd.Flags().StringArrayVar(&spns, "spn", nil, "extra service principal names")
	newCmd.Flags().StringVar(&keytab, "write-keytab", "", "write the account's keys to this keytab (mode 0600), as adcli join does")
	newCmd.Flags().StringVar(&etypes, "enctypes", "aes256,aes128", "keytab encryption types: aes256, aes128, rc4")
	return group("computer", "Computer accounts (hosts that retrieve gMSA passwords)", newCmd, e.getCmd(directory.ClassComputer),
		e.listCmd(directory.ClassComputer, "NAME", "SID", "DNS HOST NAME", "ENABLED"), e.removeCmd(directory.ClassComputer))
}

func userCommand(e *env) *cobra.Command {
	var opt directory.UserOptions
	var pwFile string
	var pwStdin bool
	readPassword := func() (string, error) {
		switch {
		case pwFile != "" && pwStdin:
			return "", usagef("give --new-password-file or --password-stdin, not both")
		case pwFile != "":
			b, err := readFile(pwFile)
			if err != nil {
				return "", err
			}
			return passwordText(b, "--new-password-file "+pwFile)
		case pwStdin:
			b, err := io.ReadAll(io.LimitReader(e.stdin, maxPasswordInput+1))
			if err != nil {
				return "", fmt.Errorf("reading the password from standard input: %w", err)
			}
			return passwordText(b, "standard input")
		}
		return "", usagef("the password comes from --new-password-file FILE or --password-stdin (never from the command line)")
	}
	newCmd := e.adminCmd("new NAME", "Create a user (New-ADUser)", cobra.ExactArgs(1), func(ctx context.Context, a admin.Admin, args []string) error {
		pw, err := readPassword()
		if err != nil {
			return err
		}
		opt.Name, opt.Password = args[0], pw
		en, err := a.UserNew(ctx, opt)
		if err != nil {
			return err
		}
		return e.printEntry(en)
	})
	setPw := e.adminCmd("set-password NAME", "Set a user's password (Set-ADAccountPassword)", cobra.ExactArgs(1), func(ctx context.Context, a admin.Admin, args []string) error {
		pw, err := readPassword()
		if err != nil {
			return err
		}
		en, err := a.UserSetPassword(ctx, args[0], pw)
		if err != nil {
			return err
		}
		return e.printEntry(en)
	})
	unlock := e.adminCmd("unlock NAME", "Clear an account's lockout after failed passwords (Unlock-ADAccount)", cobra.ExactArgs(1), func(ctx context.Context, a admin.Admin, args []string) error {
		en, err := a.Unlock(ctx, args[0])
		if err != nil {
			return err
		}
		return e.printEntry(en)
	})
	for _, c := range []*cobra.Command{newCmd, setPw} {
		c.Flags().StringVar(&pwFile, "new-password-file", "", "read the user's password from FILE")
		c.Flags().BoolVar(&pwStdin, "password-stdin", false, "read the user's password from standard input")
	}
	newCmd.Flags().StringVar(&opt.Description, "description", "", "description")
	newCmd.Flags().StringVar(&opt.Container, "path", "", "the container's or OU's DN (default CN=Users)")
	newCmd.Flags().BoolVar(&opt.Disabled, "disabled", false, "create the user disabled")
	importCmd := e.adminCmd("import CSV-FILE", "Create the users a CSV file lists (Import-Csv | New-ADUser)", cobra.ExactArgs(1), func(ctx context.Context, a admin.Admin, args []string) error {
		f, err := os.Open(args[0])
		if err != nil {
			return usagef("%v", err)
		}
		defer f.Close()
		n, err := importUsers(ctx, a, f, args[0])
		fmt.Fprintf(e.stdout, "imported %d users\n", n)
		return err
	})
	return group("user", "Users (the *-ADUser cmdlets)", newCmd, importCmd, setPw, unlock, e.getCmd(directory.ClassUser),
		e.listCmd(directory.ClassUser, "NAME", "SID", "ENABLED"), e.removeCmd(directory.ClassUser))
}

// maxPasswordInput bounds a password read from a file or standard input (AD's limit
// is 256 characters; this leaves room for any encoding of them).
const maxPasswordInput = 4096

// passwordText is a password as given in full: one final line ending is dropped,
// anything else (inner newlines included) is the password; empty is refused.
func passwordText(b []byte, from string) (string, error) {
	if len(b) > maxPasswordInput {
		return "", usagef("the password from %s is longer than %d bytes", from, maxPasswordInput)
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if s == "" {
		return "", usagef("the password from %s is empty", from)
	}
	return s, nil
}

// importColumns are the CSV columns user import reads, by lower-case header, as
// New-ADUser's parameters name them; SamAccountName is required.
var importColumns = map[string]func(*directory.UserOptions, string){
	"samaccountname": func(o *directory.UserOptions, v string) { o.Name = v },
	"name":           func(o *directory.UserOptions, v string) { o.CN = v },
	"description":    func(o *directory.UserOptions, v string) { o.Description = v },
	"path":           func(o *directory.UserOptions, v string) { o.Container = v },
	"password":       func(o *directory.UserOptions, v string) { o.Password = v },
}

// importBatch is how many users one call of UserImport adds.
const importBatch = 20_000

// importUsers reads a CSV with a header row and adds its users a batch at a time, so
// that a file of millions is never held whole.
func importUsers(ctx context.Context, a admin.Admin, r io.Reader, name string) (int, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return 0, usagef("%s: no header row: %v", name, err)
	}
	set := make([]func(*directory.UserOptions, string), len(header))
	hasSAM := false
	for i, h := range header {
		key := strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if set[i] = importColumns[key]; set[i] == nil {
			return 0, usagef("%s: column %q: the columns are SamAccountName (required), Name, Description, Path and Password", name, h)
		}
		hasSAM = hasSAM || key == "samaccountname"
	}
	if !hasSAM {
		return 0, usagef("%s: a SamAccountName column is required", name)
	}
	added := 0
	var batch []directory.UserOptions
	flush := func() error {
		n, err := a.UserImport(ctx, batch)
		added += n
		batch = batch[:0]
		return err
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return added, usagef("%s: %v", name, err)
		}
		var o directory.UserOptions
		for i, v := range rec {
			set[i](&o, v)
		}
		if batch = append(batch, o); len(batch) == importBatch {
			if err := flush(); err != nil {
				return added, err
			}
		}
	}
	return added, flush()
}
