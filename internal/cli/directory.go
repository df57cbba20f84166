package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"gmsa/internal/adclient"
	"gmsa/internal/admin"
	"gmsa/internal/atomicfile"
	"gmsa/internal/audit"
	"gmsa/internal/directory"
	"gmsa/internal/krbclient"
	"gmsa/internal/ntsec"
	"gmsa/internal/server"
	"gmsa/internal/store"
)

// dataFlag adds --data, the data directory of the local mode.
func (e *env) dataFlag(c *cobra.Command) {
	def := e.getenv("GMSA_DATA")
	if def == "" {
		def = "/var/lib/gmsa"
	}
	f := c.Flags()
	f.StringVar(&e.data, "data", def, "data directory; $GMSA_DATA sets the default")
	f.StringVar(&e.configFile, "config", "", "the server's YAML configuration (its data directory and store: section)")
	f.StringVar(&e.store.backend, "store", "", "where the directory lives: bolt (the data directory's file, default) or etcd ($GMSA_STORE_BACKEND)")
	f.StringVar(&e.store.endpoints, "etcd-endpoints", "", "etcd endpoints, comma-separated: https://HOST:2379,… ($GMSA_ETCD_ENDPOINTS)")
	f.StringVar(&e.store.prefix, "etcd-prefix", "", "the domain's key prefix in etcd (default gmsa/; $GMSA_ETCD_PREFIX)")
}

// storeFlags are the store settings a command line may override.
type storeFlags struct{ backend, endpoints, prefix string }

// localConfig is the configuration of a command that opens the store itself: the
// defaults, then --config's file, then the environment, then the flags. validate checks
// the whole configuration (the server) rather than the store settings alone.
func (e *env) localConfig(cmd *cobra.Command, validate bool) (server.Config, error) {
	cfg := server.DefaultConfig()
	var problems []error // every problem at once: the file's, the environment's, the values'
	if e.configFile != "" {
		problems = append(problems, cfg.LoadFile(e.configFile))
	}
	problems = append(problems, cfg.LoadEnv(e.getenv))
	f := cmd.Flags()
	if f.Changed("data") || (e.configFile == "" && e.getenv("GMSA_DATA") == "") {
		cfg.Data = e.data
	}
	if e.store.backend != "" {
		cfg.Store.Backend = e.store.backend
	}
	if e.store.endpoints != "" {
		cfg.Store.Etcd.Endpoints = server.SplitList(e.store.endpoints)
	}
	if e.store.prefix != "" {
		cfg.Store.Etcd.Prefix = e.store.prefix
	}
	if validate {
		return cfg, errors.Join(problems...)
	}
	problems = append(problems, cfg.ValidateStore())
	if err := errors.Join(problems...); err != nil {
		return cfg, usagef("configuration:\n  %s", strings.ReplaceAll(err.Error(), "\n", "\n  "))
	}
	return cfg, nil
}

// openStore opens the configured store for a local command.
func (e *env) openStore(cmd *cobra.Command, existing bool) (store.Store, server.Config, func(), error) {
	cfg, err := e.localConfig(cmd, false)
	if err != nil {
		return nil, cfg, nil, err
	}
	st, release, err := server.OpenConfigured(cmd.Context(), cfg, existing, false)
	if errors.Is(err, server.ErrNoDataDir) {
		err = asUsage(err)
	}
	return st, cfg, release, err
}

// serverFlags adds the flags of the LDAP mode: the same command against any DC.
func (e *env) serverFlags(c *cobra.Command) {
	f := c.Flags()
	f.StringVar(&e.remote.URL, "server", e.getenv("GMSA_SERVER"), "run against this DC instead of --data: ldaps://HOST:PORT (or ldap:// with StartTLS or Kerberos); several comma-separated are tried in turn; default $GMSA_SERVER")
	f.StringVar(&e.remote.Domain, "domain-dcs", "", "run against a DC of this domain, found by DNS SRV (_ldap._tcp.dc._msdcs.DOMAIN)")
	f.StringVar(&e.remote.User, "user", e.getenv("GMSA_USER"), "bind as DN, user@realm or NETBIOS\\name (default $GMSA_USER)")
	f.BoolVar(&e.useKerberos, "kerberos", false, "bind with Kerberos (SASL, sealed on ldap://): from --keytab, --ccache ($KRB5CCNAME by default) or --principal with a password")
	f.StringVar(&e.krb.Keytab, "keytab", "", "bind with Kerberos as a keytab's principal (the host's /etc/krb5.keytab: its NAME$ by default)")
	f.StringVar(&e.krb.Principal, "principal", "", "the Kerberos principal (NAME$, user or name@REALM)")
	f.StringVar(&e.krb.CCache, "ccache", "", "bind with Kerberos from this ticket cache (after kinit)")
	f.StringVar(&e.remote.Mechanism, "sasl-mech", adclient.MechGSSAPI, "SASL mechanism of a Kerberos bind: GSSAPI or GSS-SPNEGO")
	f.StringVar(&e.passwordFile, "password-file", "", "read the bind password from FILE (without it: the password itself from $GMSA_PASSWORD)")
	f.StringVar(&e.remote.CAFile, "ca-file", e.getenv("LDAPTLS_CACERT"), "CA certificate to trust (default $LDAPTLS_CACERT)")
	f.BoolVar(&e.remote.Insecure, "insecure-skip-verify", false, "do not verify the DC's certificate (labs only)")
}

// dirError classifies directory errors: what the user named or asked for is wrong
// (exit 2), anything else failed (exit 1).
func dirError(err error) error {
	for _, s := range []error{directory.ErrInvalid, directory.ErrExists, directory.ErrNotFound, directory.ErrNoRootKey, directory.ErrNotProvisioned, directory.ErrAccessDenied} {
		if errors.Is(err, s) {
			return asUsage(err)
		}
	}
	return err
}

// openAdmin opens the data directory for an admin command.
func (e *env) openAdmin(ctx context.Context) (admin.Admin, error) {
	if e.openAdminHook != nil {
		return e.openAdminHook(ctx)
	}
	if e.remote.URL != "" || e.remote.Domain != "" {
		opt, done, err := e.remoteOptions()
		if err != nil {
			return nil, err
		}
		defer done()
		c, err := adclient.Dial(opt)
		if err != nil {
			return nil, err
		}
		return &admin.LDAP{C: c, Now: e.now, Rand: e.rand, User: opt.User}, nil
	}
	st, cfg, release, err := e.openStore(e.cmd, true)
	if err != nil {
		return nil, err
	}
	// The changes a local command makes are in the data directory's audit trail too, as
	// the server's are (a server on etcd may be appending to it meanwhile).
	auditPath := cfg.Audit.Path
	if auditPath == "" {
		auditPath = filepath.Join(cfg.Data, server.AuditFile)
	}
	trail, err := audit.OpenFile(auditPath, audit.Options{Fsync: cfg.Audit.Fsync, Now: e.now, Shared: true})
	if err != nil {
		release()
		return nil, err
	}
	closeAll := func() {
		trail.Close()
		release()
	}
	d, err := directory.Open(ctx, st, directory.Options{Now: e.now, Rand: e.rand, Audit: trail})
	if err != nil {
		closeAll()
		return nil, dirError(err)
	}
	return &admin.Local{Dir: d, Store: st, Release: closeAll, Remote: "local: " + localUser()}, nil
}

// localUser names the operating system account running a local admin command.
func localUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username + " (uid " + u.Uid + ")"
	}
	return "uid " + strconv.Itoa(os.Getuid())
}

// remoteOptions are the LDAP flags' connection options: a simple bind with --user and
// the password, or Kerberos from --keytab, --ccache or --principal with the password.
// done forgets the Kerberos tickets.
func (e *env) remoteOptions() (adclient.Options, func(), error) {
	opt := e.remote
	var err error
	if opt.Password, err = e.bindPassword(); err != nil {
		return opt, nil, err
	}
	if e.useKerberos || e.krb.Keytab != "" || e.krb.CCache != "" {
		ko := e.krb
		if ko.Keytab == "" && ko.CCache == "" && opt.Password != "" {
			ko.Password = opt.Password
			if ko.Principal == "" {
				ko.Principal = opt.User
			}
		}
		kc, err := krbclient.New(ko, e.getenv)
		if err != nil {
			return opt, nil, err
		}
		opt.Kerberos, opt.Rand = kc, e.rand
		opt.User = kc.Name()
		e.remote.User = opt.User
		return opt, kc.Close, nil
	}
	if opt.User == "" || opt.Password == "" {
		return opt, nil, usagef("--server needs --user and a password (--password-file or $GMSA_PASSWORD), or Kerberos (--kerberos, --keytab, --ccache)")
	}
	return opt, func() {}, nil
}

// bindPassword is the password of --password-file, else $GMSA_PASSWORD.
func (e *env) bindPassword() (string, error) {
	if e.passwordFile == "" {
		return e.getenv("GMSA_PASSWORD"), nil
	}
	b, err := readFile(e.passwordFile)
	if err != nil {
		return "", err
	}
	return passwordText(b, "--password-file "+e.passwordFile)
}

// withAdmin runs fn with an open Admin and closes it.
func (e *env) withAdmin(ctx context.Context, fn func(admin.Admin) error) error {
	a, err := e.openAdmin(ctx)
	if err != nil {
		return err
	}
	defer a.Close()
	return dirError(fn(a))
}

func domainCommand(e *env) *cobra.Command {
	var realm, netbios, rootKeyAt string
	c := &cobra.Command{
		Use:   "provision --realm REALM [--netbios NAME]",
		Short: "Create a domain in the data directory (the DC-lite's first step)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if realm == "" {
				return usagef("--realm is required, e.g. --realm EXAMPLE.TEST")
			}
			var rk *ntsec.FileTime
			if rootKeyAt != "" {
				t, err := ntsec.ParseFileTime(rootKeyAt)
				if err != nil {
					return asUsage(err)
				}
				rk = &t
			}
			st, _, release, err := e.openStore(cmd, false)
			if err != nil {
				return err
			}
			defer release()
			p, err := directory.Provision(cmd.Context(), st, directory.ProvisionOptions{Realm: realm, NetBIOS: netbios, RootKey: rk},
				directory.Options{Now: e.now, Rand: e.rand})
			if err != nil {
				return dirError(err)
			}
			pw := filepath.Join(e.data, server.AdminPWFile)
			if err := atomicfile.Write(pw, []byte(p.AdminPassword+"\n"), 0o600); err != nil {
				return err
			}
			dom := p.Directory.Domain()
			if e.output == "json" {
				return e.writeJSON(map[string]any{"realm": dom.Realm, "netbios": dom.NetBIOS, "sid": dom.SID, "base_dn": dom.BaseDN, "admin_password_file": pw})
			}
			fmt.Fprintf(e.stdout, "provisioned %s (%s, %s) in %s\nAdministrator's password is in %s (mode 0600)\n", dom.Realm, dom.NetBIOS, dom.SID, e.data, pw)
			return nil
		},
	}
	c.Flags().StringVar(&realm, "realm", "", "Kerberos realm; the DNS domain is its lower case")
	c.Flags().StringVar(&netbios, "netbios", "", "NetBIOS domain name (default: the realm's first label)")
	c.Flags().StringVar(&rootKeyAt, "root-key-effective-time", "", "also add a KDS root key effective at TIME (a past time back-dates it for a lab)")
	e.dataFlag(c)
	reset := e.adminCmd("reset-krbtgt", "Give krbtgt a new password; TGTs under the previous one stay valid until the next reset (New-KrbtgtKeys.ps1)", cobra.NoArgs,
		func(ctx context.Context, a admin.Admin, _ []string) error {
			en, err := a.KrbtgtReset(ctx)
			if err != nil {
				return err
			}
			if e.output == "json" {
				return e.writeJSON(en)
			}
			fmt.Fprintf(e.stdout, "krbtgt reset: key version %d; TGTs under version %d stay valid until the next reset\n", en.KVNO, en.KVNO-1)
			return nil
		})
	return group("domain", "The domain held in a data directory", c, reset)
}

func backupCommand(e *env) *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "backup --out FILE",
		Short: "Write a consistent snapshot of the data directory, also while the server runs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usagef("--out FILE is required")
			}
			tmp := out + ".partial"
			f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
			if err != nil {
				return err
			}
			cfg, err := e.localConfig(cmd, false)
			var n int
			if err == nil {
				n, err = server.Backup(cmd.Context(), cfg, f)
			}
			if err == nil {
				err = f.Sync() // on disk before the name points at it
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				os.Remove(tmp)
				return err
			}
			if err := os.Rename(tmp, out); err != nil {
				return err
			}
			if d, err := os.Open(filepath.Dir(out)); err == nil { // and the rename too
				d.Sync()
				d.Close()
			}
			fmt.Fprintf(e.stdout, "wrote %s: %d records, checksum verified (mode 0600: it holds every key)\n", out, n)
			return nil
		},
	}
	c.Flags().StringVar(&out, "out", "", "backup file to write")
	e.dataFlag(c)
	return c
}

func restoreCommand(e *env) *cobra.Command {
	var in string
	c := &cobra.Command{
		Use:   "restore --in FILE",
		Short: "Restore a backup into an empty data directory (no server may run on it)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if in == "" {
				return usagef("--in FILE is required")
			}
			f, err := os.Open(in)
			if err != nil {
				return err
			}
			defer f.Close()
			st, cfg, release, err := e.openStore(cmd, false)
			if err != nil {
				return err
			}
			defer release()
			n, err := store.Restore(cmd.Context(), st, f)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "restored %d records into %s\n", n, cfg.Store.Describe(cfg.Data))
			return nil
		},
	}
	c.Flags().StringVar(&in, "in", "", "backup file to read")
	e.dataFlag(c)
	return c
}

func compactCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "compact",
		Short: "Rewrite the embedded store with full pages and no free space, as ntdsutil's offline compaction (no server may run on it)",
		Long: `Rewrite the embedded store with full pages and no free space (no server may run on it).

The store file never shrinks: deleted objects leave free pages in it, and objects added
in bulk leave its pages half full. The copy is written beside the store (it needs that
much free disk space), compared with it key by key, synced and renamed over it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := e.localConfig(cmd, false)
			if err != nil {
				return err
			}
			st, err := server.Compact(cfg)
			if errors.Is(err, server.ErrNoDataDir) {
				return asUsage(err)
			}
			if err != nil {
				return err
			}
			if e.output == "json" {
				return e.writeJSON(map[string]int64{"bytes_before": st.Before, "bytes_after": st.After, "keys": int64(st.Keys)})
			}
			fmt.Fprintf(e.stdout, "compacted %s: %.1f MiB → %.1f MiB, %d keys compared with the original\n",
				filepath.Join(cfg.Data, server.DBFile), float64(st.Before)/(1<<20), float64(st.After)/(1<<20), st.Keys)
			return nil
		},
	}
	e.dataFlag(c)
	return c
}

func serverCommand(e *env) *cobra.Command {
	var check bool
	c := &cobra.Command{
		Use:   "server",
		Short: "Run the DC-lite on the embedded store (--dev: provision EXAMPLE.TEST on first start)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := e.localConfig(cmd, true)
			problems := []error{err}
			f := cmd.Flags()
			if f.Changed("dev") {
				cfg.Dev, _ = f.GetBool("dev")
			}
			if f.Changed("dev-clock-offset") {
				cfg.DevClockOffset, _ = f.GetDuration("dev-clock-offset")
			}
			for flag, dst := range map[string]*string{"log-level": &cfg.Log.Level, "log-format": &cfg.Log.Format, "realm": &cfg.Realm,
				"netbios": &cfg.NetBIOS, "ldap-listen": &cfg.LDAP.Listen, "ldaps-listen": &cfg.LDAP.LDAPSListen, "kdc-listen": &cfg.KDC.Listen,
				"dns-listen": &cfg.DNS.Listen, "metrics-listen": &cfg.Metrics.Listen} {
				if f.Changed(flag) {
					*dst, _ = f.GetString(flag)
				}
			}
			problems = append(problems, cfg.Validate())
			if err := errors.Join(problems...); err != nil {
				return usagef("configuration:\n  %s", strings.ReplaceAll(err.Error(), "\n", "\n  "))
			}
			if check {
				if err := server.CheckStore(cmd.Context(), cfg); err != nil {
					return err
				}
				fmt.Fprintln(e.stdout, "configuration is valid")
				return nil
			}
			server.ApplyMemory(cfg.Memory, e.getenv)
			now := e.now
			if off := cfg.DevClockOffset; off != 0 {
				now = func() time.Time { return e.now().Add(off) }
			}
			return server.Run(cmd.Context(), cfg, server.Deps{Now: now, Rand: e.rand, Stdout: e.stdout, Logger: server.NewLogger(&cfg, e.stderr, e.getenv("JOURNAL_STREAM") != "")})
		},
	}
	f := c.Flags()
	f.BoolVar(&check, "check-config", false, "validate the configuration (and reach the etcd cluster, if configured) and exit")
	f.Bool("dev", false, "provision EXAMPLE.TEST with a usable KDS root key on first start")
	f.Duration("dev-clock-offset", 0, "with --dev: run the server's clock this far ahead (e.g. 25h) to watch gMSA rotations")
	f.String("log-level", "info", "debug, info, warn or error")
	f.String("log-format", "text", "text or json")
	f.String("realm", "EXAMPLE.TEST", "realm --dev provisions")
	f.String("netbios", "EXAMPLE", "NetBIOS name --dev provisions")
	f.String("ldap-listen", "", "LDAP address (default 127.0.0.1:389; with --dev a free port; off to disable)")
	f.String("ldaps-listen", "", "LDAPS address (default 127.0.0.1:636; with --dev a free port; off to disable)")
	f.String("kdc-listen", "", "Kerberos KDC address, UDP and TCP (default 127.0.0.1:88; with --dev a free port; off to disable)")
	f.String("dns-listen", "", "DNS address answering the domain's DC locator records, UDP and TCP (default off; with --dev a free port)")
	f.String("metrics-listen", "", "HTTP address of /metrics, /healthz and /readyz (default off; with --dev a free port)")
	e.dataFlag(c)
	c.AddCommand(serverStatusCommand(e))
	return c
}

// serverStatusCommand reads a running server's readiness: exit 0 ready, 1 not ready or
// not running.
func serverStatusCommand(e *env) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "status",
		Short: "Say whether the server on this data directory runs and is ready (its /readyz)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := e.localConfig(cmd, true)
			if err != nil {
				return usagef("configuration:\n  %s", strings.ReplaceAll(err.Error(), "\n", "\n  "))
			}
			rd, url, err := server.Status(cmd.Context(), cfg.Data)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				enc.Encode(rd)
			} else {
				fmt.Fprintf(e.stdout, "%s: %s\n", url, map[bool]string{true: "ready", false: "NOT READY"}[rd.Ready])
				for _, ch := range rd.Checks {
					line := fmt.Sprintf("  %-9s %s", ch.Name, map[bool]string{true: "ok", false: "FAILED"}[ch.OK])
					if ch.Detail != "" {
						line += ": " + ch.Detail
					}
					fmt.Fprintln(e.stdout, line)
				}
			}
			if !rd.Ready {
				return errors.New("the server is not ready")
			}
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the readiness report as JSON")
	e.dataFlag(c)
	return c
}

// indexCommand checks and rebuilds the directory's indexes on a stopped server's store.
func indexCommand(e *env) *cobra.Command {
	c := &cobra.Command{Use: "index", Short: "Check or rebuild the directory's indexes (no server may run on the store)"}
	for _, repair := range []bool{false, true} {
		use, short := "check", "Compare every index entry with the objects; exit 1 when they differ"
		if repair {
			use, short = "rebuild", "Write the index entries the objects need and remove those none needs"
		}
		sub := &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				st, _, release, err := e.openStore(cmd, false)
				if err != nil {
					return err
				}
				defer release()
				d, err := directory.Open(cmd.Context(), st, directory.Options{Now: e.now, Rand: e.rand})
				if err != nil {
					return dirError(err)
				}
				var r directory.IndexReport
				if repair {
					r, err = d.RebuildIndexes(cmd.Context())
				} else {
					r, err = d.CheckIndexes(cmd.Context())
				}
				if err != nil {
					return err
				}
				if e.output == "json" {
					if err := e.writeJSON(r); err != nil {
						return err
					}
				} else {
					verb := "found"
					if repair {
						verb = "repaired"
					}
					fmt.Fprintf(e.stdout, "objects %d, index entries %d; %s: %d missing or wrong, %d stale; %d unique names claimed twice\n",
						r.Objects, r.Entries, verb, r.Missing, r.Stale, r.Conflicts)
					for _, k := range r.Examples {
						fmt.Fprintf(e.stdout, "  %s\n", k)
					}
				}
				if !r.OK() {
					return errors.New("index: the indexes do not match the objects" + map[bool]string{true: " (names claimed twice need an administrator)", false: ": run 'gmsa index rebuild'"}[repair])
				}
				return nil
			}}
		e.dataFlag(sub)
		c.AddCommand(sub)
	}
	return c
}
