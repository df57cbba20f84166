// Package server is the composition root of 'gmsa server': configuration, the data
// directory, the store, the directory and (as they land) the LDAP and Kerberos
// listeners, wired explicitly.
package server

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"gmsa/internal/gss"
)

// Config is the server's configuration: defaults, then the YAML file, then GMSA_*
// environment variables, then flags.
type Config struct {
	Data    string `yaml:"data"`    // data directory
	Dev     bool   `yaml:"dev"`     // provision EXAMPLE.TEST on first start
	Realm   string `yaml:"realm"`   // realm --dev provisions
	NetBIOS string `yaml:"netbios"` // NetBIOS name --dev provisions
	// DevClockOffset runs a --dev server's clock ahead (or behind), to watch gMSA
	// rotations in a lab as Samba under faketime would; refused without --dev.
	DevClockOffset time.Duration `yaml:"dev_clock_offset"`
	// TombstoneLifetime is how long deleted objects stay as tombstones (AD's
	// tombstoneLifetime), default 180 days (4320h).
	TombstoneLifetime time.Duration `yaml:"tombstone_lifetime"`
	Log               struct {
		Level  string `yaml:"level"`  // debug, info, warn, error
		Format string `yaml:"format"` // text or json
	} `yaml:"log"`
	Audit struct {
		Path  string `yaml:"path"`  // the audit trail (JSON lines, 0600); default DATA/audit.log
		Fsync bool   `yaml:"fsync"` // fsync every group commit before acknowledging (power-loss safe); default: written to the OS only
	} `yaml:"audit"`
	LDAP struct {
		Listen               string   `yaml:"listen"`                  // plain LDAP (StartTLS available); default 127.0.0.1:389, with --dev a free port; "off" turns it off
		LDAPSListen          string   `yaml:"ldaps_listen"`            // LDAPS; default 127.0.0.1:636, with --dev a free port; "off" turns it off
		AllowPlainSimpleBind bool     `yaml:"allow_plain_simple_bind"` // simple binds without TLS
		TLSNames             []string `yaml:"tls_names"`               // names in the self-made server certificate
		// An operator-supplied certificate (with its chain) and key in PEM, instead of the
		// self-made CA's: the two files, or a directory holding tls.crt and tls.key.
		// Reloaded without a restart when they change and on SIGHUP.
		TLSCert          string        `yaml:"tls_cert"`
		TLSKey           string        `yaml:"tls_key"`
		TLSDir           string        `yaml:"tls_dir"`
		TLSMinVersion    string        `yaml:"tls_min_version"`    // 1.2 (default) or 1.3
		TLSCiphers       []string      `yaml:"tls_ciphers"`        // TLS 1.2 suites by IANA name; default ECDHE with AES-GCM or ChaCha20
		TLSExpiryWarning time.Duration `yaml:"tls_expiry_warning"` // warn this long before the certificate expires (default 720h)
		// ChannelBinding is AD's LdapEnforceChannelBinding for Kerberos binds over TLS:
		// never, when-supported (default: checked when the client sends bindings) or always.
		ChannelBinding string `yaml:"channel_binding"`
		Limits         Limits `yaml:"limits"`
	} `yaml:"ldap"`
	Store StoreConfig `yaml:"store"`
	KDC   struct {
		Listen string `yaml:"listen"` // UDP and TCP; default 127.0.0.1:88, with --dev a free port; "off" turns it off
		// KpasswdListen serves password changes and sets ([RFC 3244], UDP and TCP);
		// default the KDC's host on port 464, or a free port when the KDC's is; "off".
		KpasswdListen    string        `yaml:"kpasswd_listen"`
		MaxTicketAge     time.Duration `yaml:"max_ticket_age"`     // AD's MaxTicketAge, default 10 h
		MaxRenewAge      time.Duration `yaml:"max_renew_age"`      // AD's MaxRenewAge, default 7 days
		MaxServiceAge    time.Duration `yaml:"max_service_age"`    // AD's MaxServiceAge, default 600 min
		MaxClockSkew     time.Duration `yaml:"max_clock_skew"`     // AD's MaxClockSkew, default 5 min
		NoImplicitDollar bool          `yaml:"no_implicit_dollar"` // "web01" no longer finds "web01$" (Samba's kdc name match implicit dollar)
	} `yaml:"kdc"`
	DNS struct {
		// Listen answers DNS (UDP and TCP) for the domain's DC locator records; off by
		// default, with --dev a free loopback port; "off" turns it off.
		Listen string `yaml:"listen"`
		// Addresses are the DC's A/AAAA records; default the LDAP listener's address
		// (required when LDAP listens on every interface).
		Addresses []string `yaml:"addresses"`
		// QueriesPerSecond bounds each source address (default 200, burst twice that);
		// a site whose hosts reach the DC through one NAT address may need more.
		QueriesPerSecond int `yaml:"queries_per_second"`
	} `yaml:"dns"`
	Memory  MemoryConfig `yaml:"memory"`
	Metrics struct {
		// Listen serves Prometheus metrics (/metrics) and health (/healthz, /readyz) over
		// HTTP; off by default, with --dev a free loopback port; "off" turns it off.
		Listen string `yaml:"listen"`
	} `yaml:"metrics"`
}

// MemoryConfig tunes the Go runtime's collector for the server process.
type MemoryConfig struct {
	// GCPercent is the heap growth over what is live before a collection (GOGC),
	// default 400: a DC's live heap is a few MiB, and at Go's 100 it is collected
	// about fifty times a second under Kerberos load. GOGC in the environment wins.
	GCPercent int `yaml:"gc_percent"`
	// Limit is a soft limit of the process's Go memory in bytes (GOMEMLIMIT): nearing
	// it, collections run more often. Default none. GOMEMLIMIT in the environment wins.
	Limit int64 `yaml:"limit"`
	// ObjectCache bounds the decoded directory objects kept for reuse (about 1 KiB
	// each), default 20 000: searches and binds over more objects than it holds read
	// and decode again (about a microsecond each).
	ObjectCache int `yaml:"object_cache"`
	// ReadCache bounds the raw records the store keeps in memory, in bytes, default
	// 64 MiB: the embedded store's read cache (whole MiB, at least one), or the keys
	// and values of an etcd store's watch-fed cache.
	ReadCache int64 `yaml:"read_cache"`
	// IndexCandidates bounds the objects the query planner reads from one index term
	// before it checks the term per candidate or scans instead, default 20 000.
	IndexCandidates int `yaml:"index_candidates"`
}

// DefaultGCPercent is memory.gc_percent's default.
const DefaultGCPercent = 400

// ApplyMemory sets the collector of this process from m, leaving alone what GOGC and
// GOMEMLIMIT in the environment already set (the runtime read them at start).
func ApplyMemory(m MemoryConfig, getenv func(string) string) {
	if getenv("GOGC") == "" {
		p := m.GCPercent
		if p == 0 {
			p = DefaultGCPercent
		}
		debug.SetGCPercent(p)
	}
	if getenv("GOMEMLIMIT") == "" && m.Limit > 0 {
		debug.SetMemoryLimit(m.Limit)
	}
}

// Limits are the LDAP server's bounds, named after AD's lDAPAdminLimits where AD has
// one (docs/security.md has the table). Zero means the default.
type Limits struct {
	MaxConnections          int           `yaml:"max_connections"`            // MaxConnections (AD 5000), default 1000
	MaxConnectionsPerSource int           `yaml:"max_connections_per_source"` // ours, default 100
	InitRecvTimeout         time.Duration `yaml:"init_recv_timeout"`          // InitRecvTimeout (AD 120 s), default 120 s
	MaxConnIdleTime         time.Duration `yaml:"max_conn_idle_time"`         // MaxConnIdleTime (AD 900 s), default 900 s
	MaxReceiveBuffer        int           `yaml:"max_receive_buffer"`         // MaxReceiveBuffer (AD 10 MiB), default 1 MiB
	MaxUnboundRequest       int           `yaml:"max_unbound_request"`        // ours: before a bind, default 64 KiB
	UnboundMemory           int64         `yaml:"unbound_memory"`             // ours: all unbound requests together, default 32 MiB
	MaxQueryDuration        time.Duration `yaml:"max_query_duration"`         // MaxQueryDuration (AD 120 s), default 120 s
	MaxPageSize             int           `yaml:"max_page_size"`              // MaxPageSize (AD 1000), default 1000
	MaxResultSetsPerConn    int           `yaml:"max_result_sets_per_conn"`   // MaxResultSetsPerConn (AD 10), default 10
	MaxResultSetSize        int64         `yaml:"max_result_set_size"`        // entries held by paged searches (AD: 262144 bytes), default 1 000 000
	PingsPerSecond          int           `yaml:"pings_per_second"`           // ours: CLDAP pings per source address, default 50 (burst twice that)
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	c := Config{Data: "/var/lib/gmsa", Realm: "EXAMPLE.TEST", NetBIOS: "EXAMPLE"}
	c.Log.Level, c.Log.Format = "info", "text"
	return c
}

// LoadFile merges a YAML file into c; unknown keys are errors.
func (c *Config) LoadFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && err.Error() != "EOF" {
		return fmt.Errorf("config: %s: %w", path, err)
	}
	return nil
}

// LoadEnv merges GMSA_DATA, GMSA_DEV, GMSA_REALM, GMSA_NETBIOS, GMSA_LOG_LEVEL,
// GMSA_LOG_FORMAT, GMSA_AUDIT_PATH, GMSA_AUDIT_FSYNC, GMSA_LDAP_LISTEN,
// GMSA_LDAPS_LISTEN, GMSA_KDC_LISTEN, GMSA_METRICS_LISTEN, GMSA_STORE_BACKEND and GMSA_ETCD_* (ENDPOINTS,
// PREFIX, CA_FILE, CERT_FILE, KEY_FILE, USERNAME, PASSWORD_FILE), reporting every bad
// value.
func (c *Config) LoadEnv(getenv func(string) string) error {
	set := map[string]*string{"GMSA_DATA": &c.Data, "GMSA_REALM": &c.Realm, "GMSA_NETBIOS": &c.NetBIOS,
		"GMSA_LOG_LEVEL": &c.Log.Level, "GMSA_LOG_FORMAT": &c.Log.Format,
		"GMSA_AUDIT_PATH": &c.Audit.Path, "GMSA_LDAP_LISTEN": &c.LDAP.Listen, "GMSA_LDAPS_LISTEN": &c.LDAP.LDAPSListen, "GMSA_KDC_LISTEN": &c.KDC.Listen, "GMSA_DNS_LISTEN": &c.DNS.Listen,
		"GMSA_METRICS_LISTEN": &c.Metrics.Listen}
	for k, dst := range set {
		if v := getenv(k); v != "" {
			*dst = v
		}
	}
	var errs []error
	for k, dst := range map[string]*bool{"GMSA_DEV": &c.Dev, "GMSA_AUDIT_FSYNC": &c.Audit.Fsync} {
		if v := getenv(k); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: want true or false", k, v))
				continue
			}
			*dst = b
		}
	}
	c.Store.loadEnv(getenv)
	return errors.Join(errs...)
}

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	if c.Data == "" {
		errs = append(errs, errors.New("data: a data directory is required (--data, GMSA_DATA or data: in the file)"))
	} else if parent := filepath.Dir(filepath.Clean(c.Data)); !isDir(c.Data) && !isDir(parent) {
		errs = append(errs, fmt.Errorf("data: %s does not exist and neither does its parent %s", c.Data, parent))
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level: %q: want debug, info, warn or error", c.Log.Level))
	}
	switch strings.ToLower(c.Log.Format) {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log.format: %q: want text or json", c.Log.Format))
	}
	for name, addr := range map[string]string{"ldap.listen": c.LDAP.Listen, "ldap.ldaps_listen": c.LDAP.LDAPSListen, "kdc.listen": c.KDC.Listen, "dns.listen": c.DNS.Listen, "metrics.listen": c.Metrics.Listen} {
		if addr == "" || addr == "off" {
			continue
		}
		if _, port, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("%s: %q: want host:port such as 127.0.0.1:636", name, addr))
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			errs = append(errs, fmt.Errorf("%s: %q: port must be 0 (any free port) to 65535", name, addr))
		}
	}
	if _, err := c.channelBinding(); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.dnsAddresses(); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.validateTLS()...)
	l := c.LDAP.Limits
	for name, v := range map[string]int64{"max_connections": int64(l.MaxConnections), "max_connections_per_source": int64(l.MaxConnectionsPerSource),
		"max_receive_buffer": int64(l.MaxReceiveBuffer), "max_unbound_request": int64(l.MaxUnboundRequest), "unbound_memory": l.UnboundMemory,
		"max_page_size": int64(l.MaxPageSize), "max_result_sets_per_conn": int64(l.MaxResultSetsPerConn), "max_result_set_size": l.MaxResultSetSize, "pings_per_second": int64(l.PingsPerSecond),
		"init_recv_timeout": int64(l.InitRecvTimeout), "max_conn_idle_time": int64(l.MaxConnIdleTime), "max_query_duration": int64(l.MaxQueryDuration),
		"kdc.max_ticket_age": int64(c.KDC.MaxTicketAge), "kdc.max_renew_age": int64(c.KDC.MaxRenewAge), "kdc.max_service_age": int64(c.KDC.MaxServiceAge),
		"kdc.max_clock_skew": int64(c.KDC.MaxClockSkew), "dns.queries_per_second": int64(c.DNS.QueriesPerSecond),
		"memory.gc_percent": int64(c.Memory.GCPercent), "memory.limit": c.Memory.Limit,
		"memory.object_cache": int64(c.Memory.ObjectCache), "memory.read_cache": c.Memory.ReadCache, "memory.index_candidates": int64(c.Memory.IndexCandidates)} {
		if v < 0 {
			if !strings.Contains(name, ".") {
				name = "ldap.limits." + name
			}
			errs = append(errs, fmt.Errorf("%s: %d is negative; leave it out for the default", name, v))
		}
	}
	if c.TombstoneLifetime < 0 {
		errs = append(errs, fmt.Errorf("tombstone_lifetime: %s is negative; leave it out for the default", c.TombstoneLifetime))
	}
	errs = append(errs, c.Store.validate()...)
	if c.DevClockOffset != 0 && !c.Dev {
		errs = append(errs, fmt.Errorf("dev_clock_offset: %s: a clock offset is for --dev labs only", c.DevClockOffset))
	}
	if c.Dev {
		if !strings.Contains(c.Realm, ".") {
			errs = append(errs, fmt.Errorf("realm: %q: want a DNS name such as EXAMPLE.TEST", c.Realm))
		}
		if c.NetBIOS == "" || len(c.NetBIOS) > 15 {
			errs = append(errs, fmt.Errorf("netbios: %q: want 1 to 15 characters", c.NetBIOS))
		}
	}
	return errors.Join(errs...)
}

// channelBinding reads ldap.channel_binding.
func (c *Config) channelBinding() (gss.ChannelBindingPolicy, error) {
	switch strings.ToLower(c.LDAP.ChannelBinding) {
	case "never":
		return gss.BindingsNever, nil
	case "", "when-supported":
		return gss.BindingsWhenSupported, nil
	case "always":
		return gss.BindingsAlways, nil
	}
	return 0, fmt.Errorf("ldap.channel_binding: %q: want never, when-supported or always", c.LDAP.ChannelBinding)
}

func isDir(p string) bool { st, err := os.Stat(p); return err == nil && st.IsDir() }

// listenAddrs returns the LDAP, LDAPS and KDC addresses in force ("" when off).
func (c *Config) listenAddrs() (ldap, ldaps, kdc string) {
	pick := func(v, def string) string {
		switch {
		case v == "off":
			return ""
		case v != "":
			return v
		case c.Dev:
			return "127.0.0.1:0"
		}
		return def
	}
	return pick(c.LDAP.Listen, "127.0.0.1:389"), pick(c.LDAP.LDAPSListen, "127.0.0.1:636"), pick(c.KDC.Listen, "127.0.0.1:88")
}

// kpasswdAddr is where kpasswd is served ("" when off): kdc.kpasswd_listen, else the
// KDC's host on port 464, or on a free port when the KDC's port is chosen freely.
func (c *Config) kpasswdAddr() string {
	_, _, kdc := c.listenAddrs()
	switch {
	case c.KDC.KpasswdListen == "off" || kdc == "" && c.KDC.KpasswdListen == "":
		return ""
	case c.KDC.KpasswdListen != "":
		return c.KDC.KpasswdListen
	}
	host, port, err := net.SplitHostPort(kdc)
	if err != nil {
		return ""
	}
	if port == "0" {
		return net.JoinHostPort(host, "0")
	}
	return net.JoinHostPort(host, "464")
}

// dnsAddr is where DNS is answered: off unless configured, with --dev a free port.
func (c *Config) dnsAddr() string { return c.optionalAddr(c.DNS.Listen) }

// dnsAddresses are the DC's published addresses: dns.addresses, else the LDAP (or
// LDAPS, or KDC) listener's own address when it is a specific one.
func (c *Config) dnsAddresses() ([]netip.Addr, error) {
	if c.dnsAddr() == "" {
		return nil, nil
	}
	var out []netip.Addr
	for _, a := range c.DNS.Addresses {
		ip, err := netip.ParseAddr(a)
		if err != nil {
			return nil, fmt.Errorf("dns.addresses: %q is not an IP address", a)
		}
		out = append(out, ip)
	}
	if len(out) > 0 {
		return out, nil
	}
	ldapAddr, ldapsAddr, kdcAddr := c.listenAddrs()
	for _, l := range []string{ldapAddr, ldapsAddr, kdcAddr} {
		host, _, err := net.SplitHostPort(l)
		if err != nil {
			continue
		}
		if ip, err := netip.ParseAddr(host); err == nil && !ip.IsUnspecified() {
			return []netip.Addr{ip}, nil
		}
	}
	return nil, errors.New("dns.addresses: the DC's address to publish is needed when the listeners bind every interface or a name")
}

// metricsAddr is where metrics and health are served: off unless configured, with
// --dev a free port.
func (c *Config) metricsAddr() string { return c.optionalAddr(c.Metrics.Listen) }

// optionalAddr is a listener that is off ("") unless configured, and with --dev on a
// free loopback port; "off" turns it off.
func (c *Config) optionalAddr(v string) string {
	switch {
	case v == "off":
		return ""
	case v != "":
		return v
	case c.Dev:
		return "127.0.0.1:0"
	}
	return ""
}
