// Package agent keeps gMSA credentials fresh on a host: for each configured account it
// reads msDS-ManagedPassword from the domain's DCs as the host's identity and writes
// keytabs, ticket caches and key material owned as configured, replaced atomically,
// never by something worse, ahead of every rotation. It is a client of LDAP, Kerberos
// and DNS only, so it serves ours, Samba and Windows DCs alike.
package agent

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"

	"gmsa/internal/krbkey"
)

// Config is the agent's YAML configuration (docs/agent.md lists every key).
type Config struct {
	Domain    string    `yaml:"domain"`     // the domain's DNS name; its upper case is the realm
	Servers   []string  `yaml:"servers"`    // ldap:// or ldaps:// URLs tried in order; default the DNS SRV records
	DNSServer string    `yaml:"dns_server"` // ask this DNS server (host[:port]) for the locator records; default resolv.conf's
	KDCs      []string  `yaml:"kdcs"`       // host:port; default _kerberos._tcp SRV records
	CAFile    string    `yaml:"ca_file"`    // PEM CA for the DCs' certificates; default the system's
	Insecure  bool      `yaml:"insecure_skip_verify"`
	Timeout   Duration  `yaml:"timeout"`   // per DC request (default 15 s)
	StateDir  string    `yaml:"state_dir"` // status.json (default /var/lib/gmsa-agent)
	Identity  Identity  `yaml:"identity"`  // who reads the passwords, unless an account says otherwise
	Accounts  []Account `yaml:"accounts"`
	Refresh   Refresh   `yaml:"refresh"`
	Metrics   Listener  `yaml:"metrics"`
	LeaseAPI  LeaseAPI  `yaml:"lease_api"`
}

// Identity is the principal that reads passwords: the host's machine account from a
// keytab (a sealed Kerberos bind), a user with a password file (a simple bind over TLS,
// or a sealed bind with bind: kerberos), or a ticket cache.
type Identity struct {
	Keytab       string `yaml:"keytab"`
	Principal    string `yaml:"principal"` // default the keytab's NAME$
	User         string `yaml:"user"`
	PasswordFile string `yaml:"password_file"`
	CCache       string `yaml:"ccache"`
	Bind         string `yaml:"bind"` // simple (default for users) or kerberos

	password string // held in memory only: a lease's user (the lease API)
}

// Account is one gMSA and what to keep fresh for it.
type Account struct {
	Name     string        `yaml:"name"`     // sAMAccountName, with or without the $
	Identity *Identity     `yaml:"identity"` // default the top-level identity
	Enctypes []string      `yaml:"enctypes"` // wanted: aes256, aes128, rc4 (default aes256, aes128)
	Keytab   *KeytabOutput `yaml:"keytab"`
	CCache   *CCacheOutput `yaml:"ccache"`
	Keys     *Output       `yaml:"keys"`
	Hooks    []Hook        `yaml:"hooks"`

	lease string // the lease API's lease id, for its accounts
}

// Output is a file the agent owns: its owner, group and mode (default root, root, 0600).
type Output struct {
	Path  string `yaml:"path"`
	Owner string `yaml:"owner"` // user name or uid
	Group string `yaml:"group"` // group name or gid
	Mode  string `yaml:"mode"`  // octal, e.g. "0640"

	uid, gid int
	mode     os.FileMode
}

// KeytabOutput is a keytab of the account's principal (NAME$), its SPNs and optionally
// its UPN.
type KeytabOutput struct {
	Output `yaml:",inline"`
	UPN    bool `yaml:"upn"` // add the account's userPrincipalName
}

// CCacheOutput is a ticket cache holding the account's TGT, with per-user copies
// krb5cc_<uid> beside it for the users listed.
type CCacheOutput struct {
	Output `yaml:",inline"`
	Users  []string `yaml:"users"`
}

// Hook runs after an account's outputs changed: a command, a signal to the process of a
// pid file, or a systemd unit reload.
type Hook struct {
	Command    []string `yaml:"command"`
	Signal     string   `yaml:"signal"` // HUP, USR1 … with pid_file
	PIDFile    string   `yaml:"pid_file"`
	ReloadUnit string   `yaml:"reload_unit"` // systemctl reload-or-restart UNIT
	Timeout    Duration `yaml:"timeout"`     // default 30 s
}

// Refresh shapes the schedule.
type Refresh struct {
	MaxInterval Duration `yaml:"max_interval"` // read at least this often (default 1 h)
	Jitter      Duration `yaml:"jitter"`       // spread added after each planned time (default 30 s)
	RetryMin    Duration `yaml:"retry_min"`    // first retry after a failure (default 10 s)
	RetryMax    Duration `yaml:"retry_max"`    // cap of the exponential backoff (default 10 min)
	Settle      Duration `yaml:"settle"`       // wait after a DC's planned change before reading (default 10 s)
}

// Listener is an optional HTTP listener ("" is off).
type Listener struct {
	Listen string `yaml:"listen"`
}

// LeaseAPI is the credentials-fetcher compatible gRPC service on a Unix socket.
type LeaseAPI struct {
	Socket    string           `yaml:"socket"`    // "" is off
	Directory string           `yaml:"directory"` // where leases' ticket caches go (default /var/credentials-fetcher/krbdir)
	Output    `yaml:",inline"` // owner, group and mode of the caches (path unused)
}

// Duration is a time.Duration written as "90s", "10m", "1h".
type Duration time.Duration

// UnmarshalYAML reads a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (e.g. 30s, 10m, 1h)", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

func (d Duration) or(def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return time.Duration(d)
}

// LoadConfig reads a YAML file (unknown keys are errors) and validates it, reporting
// every problem at once.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	return ParseConfig(b, path)
}

// DecodeConfig reads YAML strictly (unknown keys are errors) without validating it.
func DecodeConfig(b []byte, name string) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("agent: %s: %w", name, err)
	}
	return &c, nil
}

// ParseConfig reads YAML and validates it.
func ParseConfig(b []byte, name string) (*Config, error) {
	c, err := DecodeConfig(b, name)
	if err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("agent: %s:\n%w", name, err)
	}
	return c, nil
}

// Validate checks the configuration and resolves owners and modes; each problem is one
// line naming its key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Domain == "" {
		bad("domain: required (the domain's DNS name, e.g. example.test)")
	} else if strings.ContainsAny(c.Domain, " /@") || !strings.Contains(c.Domain, ".") {
		bad("domain: %q is not a DNS domain name", c.Domain)
	}
	for i, s := range c.Servers {
		if !strings.HasPrefix(s, "ldap://") && !strings.HasPrefix(s, "ldaps://") && (s == "" || strings.ContainsAny(s, ":/ @")) {
			bad("servers[%d]: %q: want a DC's name (dc1.example.test), ldap://HOST[:PORT] or ldaps://HOST[:PORT]", i, s)
		}
	}
	for i, k := range c.KDCs {
		if _, _, err := splitHostPort(k); err != nil {
			bad("kdcs[%d]: %q: want HOST:PORT", i, k)
		}
	}
	if c.CAFile != "" {
		if _, err := os.Stat(c.CAFile); err != nil {
			bad("ca_file: %v", err)
		}
	}
	if c.StateDir == "" {
		c.StateDir = "/var/lib/gmsa-agent"
	}
	if c.Identity != (Identity{}) {
		errs = append(errs, c.Identity.validate("identity")...)
	}
	if len(c.Accounts) == 0 {
		bad("accounts: none configured")
	}
	seen := map[string]bool{}
	paths := map[string]string{}
	claim := func(key, path string) {
		if path == "" {
			return
		}
		if other, ok := paths[filepath.Clean(path)]; ok {
			bad("%s: %s is also %s", key, path, other)
		}
		paths[filepath.Clean(path)] = key
	}
	for i := range c.Accounts {
		a := &c.Accounts[i]
		key := fmt.Sprintf("accounts[%d]", i)
		if a.Name == "" {
			bad("%s.name: required (the gMSA's sAMAccountName)", key)
		} else {
			key = fmt.Sprintf("accounts[%d] (%s)", i, a.Name)
			if seen[strings.ToLower(SAMName(a.Name))] {
				bad("%s: configured twice", key)
			}
			seen[strings.ToLower(SAMName(a.Name))] = true
		}
		switch {
		case a.Identity != nil:
			errs = append(errs, a.Identity.validate(key+".identity")...)
		case c.Identity == (Identity{}):
			bad("%s: no identity: give identity: at the top or for the account", key)
		}
		if a.Keytab == nil && a.CCache == nil && a.Keys == nil {
			bad("%s: nothing to write: give keytab:, ccache: or keys:", key)
		}
		for _, e := range a.Enctypes {
			if _, err := krbkey.ParseEtype(e); err != nil {
				bad("%s.enctypes: %v", key, err)
			}
		}
		if a.Keytab != nil {
			errs = append(errs, a.Keytab.resolve(key+".keytab")...)
			claim(key+".keytab", a.Keytab.Path)
		}
		if a.CCache != nil {
			errs = append(errs, a.CCache.resolve(key+".ccache")...)
			claim(key+".ccache", a.CCache.Path)
			for j, u := range a.CCache.Users {
				uid, err := lookupUser(u)
				if err != nil {
					bad("%s.ccache.users[%d]: %v", key, j, err)
					continue
				}
				claim(fmt.Sprintf("%s.ccache.users[%d]", key, j), a.CCache.userPath(uid))
			}
		}
		if a.Keys != nil {
			errs = append(errs, a.Keys.resolve(key+".keys")...)
			claim(key+".keys", a.Keys.Path)
		}
		for j, h := range a.Hooks {
			errs = append(errs, h.validate(fmt.Sprintf("%s.hooks[%d]", key, j))...)
		}
	}
	r := &c.Refresh
	if r.RetryMax > 0 && r.RetryMin > r.RetryMax {
		bad("refresh: retry_min %s is above retry_max %s", time.Duration(r.RetryMin), time.Duration(r.RetryMax))
	}
	if c.Metrics.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Metrics.Listen); err != nil {
			bad("metrics.listen: %q: want HOST:PORT", c.Metrics.Listen)
		}
	}
	if c.LeaseAPI.Socket != "" {
		if c.LeaseAPI.Directory == "" {
			c.LeaseAPI.Directory = "/var/credentials-fetcher/krbdir"
		}
		c.LeaseAPI.Path = c.LeaseAPI.Directory
		errs = append(errs, c.LeaseAPI.Output.resolve("lease_api")...)
		if c.Identity == (Identity{}) {
			bad("lease_api: leases of domain-joined hosts read with the top-level identity: give identity:")
		}
	}
	return errors.Join(errs...)
}

func (id *Identity) validate(key string) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	n := 0
	for _, s := range []string{id.Keytab, id.User, id.CCache} {
		if s != "" {
			n++
		}
	}
	switch {
	case n == 0:
		bad("%s: give keytab: (the host's), user: with password_file:, or ccache:", key)
	case n > 1:
		bad("%s: give one of keytab:, user:, ccache:", key)
	}
	if id.User != "" && id.PasswordFile == "" {
		bad("%s.password_file: required with user:", key)
	}
	for _, f := range []struct{ k, v string }{{"keytab", id.Keytab}, {"password_file", id.PasswordFile}} {
		if f.v == "" {
			continue
		}
		if _, err := os.Stat(f.v); err != nil {
			bad("%s.%s: %v", key, f.k, err)
		}
	}
	switch id.Bind {
	case "", "simple", "kerberos":
		if id.Bind == "kerberos" && id.User == "" {
			bad("%s.bind: kerberos is for user: identities (keytabs and caches always bind with Kerberos)", key)
		}
	default:
		bad("%s.bind: %q: want simple or kerberos", key, id.Bind)
	}
	return errs
}

// kerberos says whether the identity binds with Kerberos (a sealed bind on ldap://).
func (id *Identity) kerberos() bool { return id.User == "" || id.Bind == "kerberos" }

// urls are the servers as the identity reaches them: a DC named without a scheme on
// ldap:// for Kerberos (sealed), on ldaps:// for a simple bind.
func (id *Identity) urls(servers []string) string {
	out := make([]string, 0, len(servers))
	for _, s := range servers {
		switch {
		case strings.Contains(s, "://"):
		case id.kerberos():
			s = "ldap://" + s
		default:
			s = "ldaps://" + s
		}
		out = append(out, s)
	}
	return strings.Join(out, ",")
}

func (id *Identity) key() string {
	return strings.Join([]string{id.Keytab, id.Principal, id.User, id.PasswordFile, id.CCache, id.Bind, id.password}, "\x00")
}

// secret is the user's password: from memory, else its file.
func (id *Identity) secret() (string, error) {
	if id.password != "" {
		return id.password, nil
	}
	return readPassword(id.PasswordFile)
}

func (id *Identity) String() string {
	switch {
	case id.Keytab != "":
		if id.Principal != "" {
			return id.Principal + " (keytab " + id.Keytab + ")"
		}
		return "the machine account of " + id.Keytab
	case id.User != "":
		return id.User
	}
	return "the ticket cache " + id.CCache
}

func (o *Output) resolve(key string) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if o.Path == "" {
		bad("%s.path: required", key)
	} else if !filepath.IsAbs(o.Path) {
		bad("%s.path: %q: want an absolute path", key, o.Path)
	} else if st, err := os.Stat(filepath.Dir(o.Path)); err != nil || !st.IsDir() {
		bad("%s.path: the directory %s does not exist", key, filepath.Dir(o.Path))
	}
	o.uid, o.gid, o.mode = os.Getuid(), os.Getgid(), 0o600
	if o.Owner != "" {
		uid, err := lookupUser(o.Owner)
		if err != nil {
			bad("%s.owner: %v", key, err)
		}
		o.uid = uid
		if o.Group == "" {
			if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
				if g, err := strconv.Atoi(u.Gid); err == nil {
					o.gid = g
				}
			}
		}
	}
	if o.Group != "" {
		gid, err := lookupGroup(o.Group)
		if err != nil {
			bad("%s.group: %v", key, err)
		}
		o.gid = gid
	}
	if o.Mode != "" {
		m, err := strconv.ParseUint(o.Mode, 8, 32)
		switch {
		case err != nil || m > 0o777:
			bad("%s.mode: %q: want octal permissions such as 0600", key, o.Mode)
		case m&0o007 != 0:
			bad("%s.mode: %s lets every user read a secret: at most 0660 (give the group instead)", key, o.Mode)
		default:
			o.mode = os.FileMode(m)
		}
	}
	return errs
}

func (h *Hook) validate(key string) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	n := 0
	if len(h.Command) > 0 {
		n++
		if !filepath.IsAbs(h.Command[0]) {
			bad("%s.command: %q: give the program's absolute path", key, h.Command[0])
		}
	}
	if h.Signal != "" || h.PIDFile != "" {
		n++
		if _, ok := signals[strings.TrimPrefix(strings.ToUpper(h.Signal), "SIG")]; !ok {
			bad("%s.signal: %q: want HUP, USR1, USR2, INT or TERM", key, h.Signal)
		}
		if h.PIDFile == "" {
			bad("%s.pid_file: required with signal:", key)
		}
	}
	if h.ReloadUnit != "" {
		n++
	}
	if n != 1 {
		bad("%s: give one of command:, signal: with pid_file:, reload_unit:", key)
	}
	return errs
}

var signals = map[string]syscall.Signal{"HUP": syscall.SIGHUP, "USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2, "INT": syscall.SIGINT, "TERM": syscall.SIGTERM}

func lookupUser(s string) (int, error) {
	if n, err := strconv.Atoi(s); err == nil && n >= 0 {
		return n, nil
	}
	u, err := user.Lookup(s)
	if err != nil {
		return 0, fmt.Errorf("no user %q", s)
	}
	return strconv.Atoi(u.Uid)
}

func lookupGroup(s string) (int, error) {
	if n, err := strconv.Atoi(s); err == nil && n >= 0 {
		return n, nil
	}
	g, err := user.LookupGroup(s)
	if err != nil {
		return 0, fmt.Errorf("no group %q", s)
	}
	return strconv.Atoi(g.Gid)
}

func (c *CCacheOutput) userPath(uid int) string {
	return filepath.Join(filepath.Dir(c.Path), "krb5cc_"+strconv.Itoa(uid))
}

// SAMName is an account name with its trailing $.
func SAMName(name string) string {
	if strings.HasSuffix(name, "$") {
		return name
	}
	return name + "$"
}

// Realm is the domain's Kerberos realm.
func (c *Config) Realm() string { return strings.ToUpper(c.Domain) }

func splitHostPort(s string) (string, int, error) {
	i := strings.LastIndexByte(s, ':')
	if i <= 0 {
		return "", 0, errors.New("no port")
	}
	p, err := strconv.Atoi(s[i+1:])
	if err != nil || p <= 0 || p > 65535 {
		return "", 0, errors.New("bad port")
	}
	return s[:i], p, nil
}

// StatusKey names a configured account's status (its sAMAccountName, lower case).
func StatusKey(name string) string { return strings.ToLower(SAMName(name)) }
