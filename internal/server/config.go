// Package server is the composition root of 'gmsa server': configuration, the data
// directory, the store, the directory and (as they land) the LDAP and Kerberos
// listeners, wired explicitly.
package server

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Config is the server's configuration: defaults, then the YAML file, then GMSA_*
// environment variables, then flags.
type Config struct {
	Data    string `yaml:"data"`    // data directory
	Dev     bool   `yaml:"dev"`     // provision EXAMPLE.TEST on first start
	Realm   string `yaml:"realm"`   // realm --dev provisions
	NetBIOS string `yaml:"netbios"` // NetBIOS name --dev provisions
	Log     struct {
		Level  string `yaml:"level"`  // debug, info, warn, error
		Format string `yaml:"format"` // text or json
	} `yaml:"log"`
	Audit struct {
		Path string `yaml:"path"` // the audit trail (JSON lines, 0600); default DATA/audit.log
	} `yaml:"audit"`
	LDAP struct {
		Listen               string   `yaml:"listen"`                  // plain LDAP (StartTLS available); default 127.0.0.1:389, with --dev a free port; "off" turns it off
		LDAPSListen          string   `yaml:"ldaps_listen"`            // LDAPS; default 127.0.0.1:636, with --dev a free port; "off" turns it off
		AllowPlainSimpleBind bool     `yaml:"allow_plain_simple_bind"` // simple binds without TLS
		TLSNames             []string `yaml:"tls_names"`               // names in the server certificate
	} `yaml:"ldap"`
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
// GMSA_LOG_FORMAT, GMSA_AUDIT_PATH, GMSA_LDAP_LISTEN and GMSA_LDAPS_LISTEN.
func (c *Config) LoadEnv(getenv func(string) string) error {
	set := map[string]*string{"GMSA_DATA": &c.Data, "GMSA_REALM": &c.Realm, "GMSA_NETBIOS": &c.NetBIOS,
		"GMSA_LOG_LEVEL": &c.Log.Level, "GMSA_LOG_FORMAT": &c.Log.Format,
		"GMSA_AUDIT_PATH": &c.Audit.Path, "GMSA_LDAP_LISTEN": &c.LDAP.Listen, "GMSA_LDAPS_LISTEN": &c.LDAP.LDAPSListen}
	for k, dst := range set {
		if v := getenv(k); v != "" {
			*dst = v
		}
	}
	if v := getenv("GMSA_DEV"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("config: GMSA_DEV=%q: want true or false", v)
		}
		c.Dev = b
	}
	return nil
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
	for name, addr := range map[string]string{"ldap.listen": c.LDAP.Listen, "ldap.ldaps_listen": c.LDAP.LDAPSListen} {
		if addr == "" || addr == "off" {
			continue
		}
		if _, port, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("%s: %q: want host:port such as 127.0.0.1:636", name, addr))
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			errs = append(errs, fmt.Errorf("%s: %q: port must be 0 (any free port) to 65535", name, addr))
		}
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

func isDir(p string) bool { st, err := os.Stat(p); return err == nil && st.IsDir() }

// listenAddrs returns the LDAP and LDAPS addresses in force ("" when off).
func (c *Config) listenAddrs() (ldap, ldaps string) {
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
	return pick(c.LDAP.Listen, "127.0.0.1:389"), pick(c.LDAP.LDAPSListen, "127.0.0.1:636")
}
