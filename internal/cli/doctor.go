package cli

import (
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"gmsa/internal/doctor"
	"gmsa/internal/krbclient"
	"gmsa/internal/krbkey"
)

func doctorCommand(e *env) *cobra.Command {
	var opt doctor.Options
	var credspecFile, idKeytab, idCCache, idPrincipal, idUser, idPasswordFile, enctypes string
	c := &cobra.Command{
		Use:   "doctor --account NAME [--host NAME$ | --identity-keytab FILE | --identity-user NAME] [--credspec FILE] [--server URL | --domain DNS]",
		Short: "Walk everything a gMSA needs on a host — DNS, ports, clock, root key, account, access, channel, password, tickets, credential spec — and say what to fix",
		Long: `Checks, in order: the DC locator records (with --domain), the DC's ports (53, 88, 389, 636;
139, 3268 and 464 reported), the clock against the KDC's, the account (a gMSA, enabled,
WORKSTATION_TRUST_ACCOUNT, DNS host name, SPNs unique, no namesake without $, enctypes),
the KDS root key, whether the host may retrieve the password (through which entry and
groups, or why not), an encrypted channel, the password read as the identity, whether
the identity's ticket predates the membership that allows it, a TGT for the gMSA with
that password, a service ticket for each SPN opened with the gMSA's key, and the
credential spec against the directory. Each step passes, warns or fails with its
evidence and the fix. Exit status 1 when any step fails.

The directory is read with --server and its bind flags (an administrator sees the
root keys; any user sees the rest). The identity reads the password as the host does:
--identity-keytab (the host's /etc/krb5.keytab: a sealed Kerberos bind),
--identity-ccache (the host's current ticket: also checks it is not stale) or
--identity-user with --identity-password-file (a simple bind over TLS).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opt.Account == "" {
				return usagef("--account NAME is required")
			}
			done, err := e.doctorOptions(&opt, credspecFile, idKeytab, idCCache, idPrincipal, idUser, idPasswordFile, enctypes)
			if err != nil {
				return err
			}
			defer done()
			return e.printReport(doctor.Run(cmd.Context(), opt))
		}}
	f := c.Flags()
	f.StringVar(&opt.Account, "account", "", "the gMSA (NAME or NAME$)")
	f.StringVar(&opt.Domain, "domain", "", "the domain's DNS name: checks its DC locator records (default: the credential spec's)")
	f.StringVar(&opt.DNSServer, "dns-server", "", "the DNS server to ask (HOST[:PORT]; default /etc/resolv.conf's)")
	f.StringVar(&opt.Host, "host", "", "the computer (NAME$) whose right to the password is checked (default: the identity)")
	f.StringVar(&credspecFile, "credspec", "", "a credential spec to check against the directory")
	f.StringVar(&idKeytab, "identity-keytab", "", "read the password with this keytab's machine account (sealed Kerberos bind), as the host does")
	f.StringVar(&idCCache, "identity-ccache", "", "read the password with this ticket cache (the host's current ticket)")
	f.StringVar(&idPrincipal, "identity-principal", "", "the keytab's principal to use (default its NAME$)")
	f.StringVar(&idUser, "identity-user", "", "read the password as this user (simple bind over TLS)")
	f.StringVar(&idPasswordFile, "identity-password-file", "", "the --identity-user's password file")
	f.StringVar(&enctypes, "enctypes", "aes256,aes128", "the enctypes this host uses")
	e.serverFlags(c)

	var hosts string
	fleet := &cobra.Command{
		Use:   "fleet --account NAME --hosts H1,H2,...",
		Short: "Which of these hosts can retrieve the gMSA's password today, and for each that cannot, why and the command that fixes it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opt.Account == "" || hosts == "" {
				return usagef("--account NAME and --hosts H1,H2,... are required")
			}
			done, err := e.doctorOptions(&opt, "", "", "", "", "", "", "aes256,aes128")
			if err != nil {
				return err
			}
			defer done()
			return e.printReport(doctor.RunFleet(cmd.Context(), opt, strings.Split(hosts, ",")))
		}}
	fleet.Flags().StringVar(&opt.Account, "account", "", "the gMSA (NAME or NAME$)")
	fleet.Flags().StringVar(&hosts, "hosts", "", "computer names (NAME or NAME$), comma-separated")
	fleet.Flags().StringVar(&opt.Domain, "domain", "", "find the DC through this domain's locator records")
	fleet.Flags().StringVar(&opt.DNSServer, "dns-server", "", "the DNS server to ask (HOST[:PORT]; default /etc/resolv.conf's)")
	e.serverFlags(fleet)
	c.AddCommand(fleet)
	return c
}

// report is a doctor run's result: printed for people or as JSON, exit 1 on a failure.
type report interface {
	Print(io.Writer)
	Failed() bool
}

func (e *env) printReport(r report) error {
	if e.output == "json" {
		if err := e.writeJSON(r); err != nil {
			return err
		}
	} else {
		r.Print(e.stdout)
	}
	if r.Failed() {
		return silentExit(1)
	}
	return nil
}

// doctorOptions completes the options from the flags: the directory connection, the
// identity, the credential spec and the enctypes.
// done forgets the directory connection's Kerberos tickets.
func (e *env) doctorOptions(opt *doctor.Options, credspecFile, idKeytab, idCCache, idPrincipal, idUser, idPasswordFile, enctypes string) (done func(), err error) {
	if e.remote.URL == "" && e.remote.Domain == "" {
		if opt.Domain == "" {
			return nil, usagef("give the DC (--server ldaps://HOST) or the domain (--domain DNS) to find it")
		}
		e.remote.Domain = opt.Domain
	}
	ldapOpt, done, err := e.remoteOptions()
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			done()
		}
	}()
	opt.LDAP = ldapOpt
	opt.Now, opt.Getenv, opt.Rand = e.now, e.getenv, e.rand
	for _, s := range strings.Split(enctypes, ",") {
		et, err := krbkey.ParseEtype(s)
		if err != nil {
			return nil, asUsage(err)
		}
		opt.Enctypes = append(opt.Enctypes, et)
	}
	switch {
	case idKeytab != "" || idCCache != "":
		opt.Identity = &doctor.Identity{Kerberos: &krbclient.Options{Keytab: idKeytab, CCache: idCCache, Principal: idPrincipal}}
	case idUser != "":
		if idPasswordFile == "" {
			return nil, usagef("--identity-user needs --identity-password-file")
		}
		b, err := readFile(idPasswordFile)
		if err != nil {
			return nil, err
		}
		pw, err := passwordText(b, "--identity-password-file "+idPasswordFile)
		if err != nil {
			return nil, err
		}
		opt.Identity = &doctor.Identity{User: idUser, Password: pw}
	}
	if credspecFile != "" {
		b, err := readFile(credspecFile)
		if err != nil {
			return nil, err
		}
		opt.Credspec, opt.CredspecName = b, filepath.Base(credspecFile)
	}
	return done, nil
}
