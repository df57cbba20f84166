package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"gmsa/internal/store"
	"gmsa/internal/store/bolt"
	"gmsa/internal/store/etcd"
)

// StoreConfig chooses where the directory lives: the embedded bolt file in the data
// directory (the default), or an etcd cluster that several servers share.
type StoreConfig struct {
	Backend string     `yaml:"backend"` // bolt (default) or etcd
	Etcd    EtcdConfig `yaml:"etcd"`
}

// EtcdConfig reaches an etcd cluster (docs/operations.md).
type EtcdConfig struct {
	Endpoints    []string      `yaml:"endpoints"`     // https://host:2379 (or http:// on loopback labs); several for failover
	Prefix       string        `yaml:"prefix"`        // the domain's keys live under it (default "gmsa/"): one per domain on a shared cluster
	CAFile       string        `yaml:"ca_file"`       // CA of the members' certificates
	CertFile     string        `yaml:"cert_file"`     // client certificate (etcd --client-cert-auth)
	KeyFile      string        `yaml:"key_file"`      // its key
	Username     string        `yaml:"username"`      // etcd's own authentication, if enabled
	PasswordFile string        `yaml:"password_file"` // its password, in a file
	DialTimeout  time.Duration `yaml:"dial_timeout"`  // default 5 s
	MaxTxnOps    int           `yaml:"max_txn_ops"`   // the cluster's --max-txn-ops (default 128)
	MaxStaleness time.Duration `yaml:"max_staleness"` // how old a cached read may be (default 2 s; -1s: no cache)
}

// backend is the configured backend's name.
func (c *StoreConfig) backend() string {
	if c.Backend == "" {
		return "bolt"
	}
	return strings.ToLower(c.Backend)
}

// loadStoreEnv merges GMSA_STORE_BACKEND and GMSA_ETCD_* variables.
func (c *StoreConfig) loadEnv(getenv func(string) string) {
	for k, dst := range map[string]*string{"GMSA_STORE_BACKEND": &c.Backend, "GMSA_ETCD_PREFIX": &c.Etcd.Prefix,
		"GMSA_ETCD_CA_FILE": &c.Etcd.CAFile, "GMSA_ETCD_CERT_FILE": &c.Etcd.CertFile, "GMSA_ETCD_KEY_FILE": &c.Etcd.KeyFile,
		"GMSA_ETCD_USERNAME": &c.Etcd.Username, "GMSA_ETCD_PASSWORD_FILE": &c.Etcd.PasswordFile} {
		if v := getenv(k); v != "" {
			*dst = v
		}
	}
	if v := getenv("GMSA_ETCD_ENDPOINTS"); v != "" {
		c.Etcd.Endpoints = SplitList(v)
	}
}

// SplitList splits a comma-separated list, dropping blanks.
func SplitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// validate reports every problem of the store settings.
func (c *StoreConfig) validate() []error {
	var errs []error
	switch c.backend() {
	case "bolt":
		return nil
	case "etcd":
	default:
		return []error{fmt.Errorf("store.backend: %q: want bolt or etcd", c.Backend)}
	}
	e := &c.Etcd
	if len(e.Endpoints) == 0 {
		errs = append(errs, errors.New("store.etcd.endpoints: the etcd backend needs at least one endpoint (https://HOST:2379)"))
	}
	for _, ep := range e.Endpoints {
		if err := checkEndpoint(ep); err != nil {
			errs = append(errs, fmt.Errorf("store.etcd.endpoints: %q: %v", ep, err))
		}
	}
	if e.Prefix != "" && !strings.HasSuffix(e.Prefix, "/") {
		errs = append(errs, fmt.Errorf("store.etcd.prefix: %q: end it with / so that one domain's prefix is never the start of another's", e.Prefix))
	}
	if (e.CertFile == "") != (e.KeyFile == "") {
		errs = append(errs, errors.New("store.etcd.cert_file and key_file: give both or neither"))
	}
	if e.Username != "" && e.PasswordFile == "" {
		errs = append(errs, errors.New("store.etcd.password_file: username is set; its password must come from a file"))
	}
	if _, err := e.tlsConfig(); err != nil {
		errs = append(errs, err)
	}
	if e.PasswordFile != "" {
		if _, err := os.ReadFile(e.PasswordFile); err != nil {
			errs = append(errs, fmt.Errorf("store.etcd.password_file: %v", err))
		}
	}
	if e.DialTimeout < 0 || e.MaxTxnOps < 0 {
		errs = append(errs, errors.New("store.etcd.dial_timeout and max_txn_ops: negative; leave them out for the defaults"))
	}
	return errs
}

func checkEndpoint(ep string) error {
	if !strings.Contains(ep, "://") {
		return errors.New("want a URL such as https://10.0.0.1:2379")
	}
	u, err := url.Parse(ep)
	if err != nil {
		return err
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return fmt.Errorf("scheme %q: want https (or http for a loopback lab)", u.Scheme)
	}
	if u.Port() == "" {
		return errors.New("no port: etcd clients use 2379")
	}
	return nil
}

// tlsConfig builds the client TLS settings, or nil when none are configured and no
// endpoint is https.
func (e *EtcdConfig) tlsConfig() (*tls.Config, error) {
	https := false
	for _, ep := range e.Endpoints {
		https = https || strings.HasPrefix(ep, "https://")
	}
	if !https && e.CAFile == "" && e.CertFile == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if e.CAFile != "" {
		pemData, err := os.ReadFile(e.CAFile)
		if err != nil {
			return nil, fmt.Errorf("store.etcd.ca_file: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemData) {
			return nil, fmt.Errorf("store.etcd.ca_file: %s holds no PEM certificate", e.CAFile)
		}
		cfg.RootCAs = pool
	}
	if e.CertFile != "" && e.KeyFile != "" {
		pair, err := tls.LoadX509KeyPair(e.CertFile, e.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("store.etcd.cert_file/key_file: %v", err)
		}
		if leaf, err := x509.ParseCertificate(pair.Certificate[0]); err == nil && time.Now().After(leaf.NotAfter) {
			return nil, fmt.Errorf("store.etcd.cert_file: %s expired on %s", e.CertFile, leaf.NotAfter.Format(time.DateOnly))
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// LockFile is what a server on etcd locks in its data directory (the bolt file is its
// own lock).
const LockFile = "gmsa.lock"

// OpenConfigured opens the configured store. With bolt it is the data directory's file;
// with etcd the cluster, and the data directory (TLS, audit, pid) is locked by a file
// when lockData is set, as the bolt file locks it. existing refuses a bolt data
// directory that holds no store yet. The returned function releases both.
func OpenConfigured(ctx context.Context, cfg Config, existing, lockData bool) (store.Store, func(), error) {
	if cfg.Store.backend() != "etcd" {
		open := OpenStore
		if existing {
			open = OpenExisting
		}
		st, err := open(cfg.Data, bolt.Options{ReadCache: cfg.Memory.ReadCache})
		if err != nil {
			return nil, nil, err
		}
		return st, func() { st.Close() }, nil
	}
	unlock := func() {}
	if !existing { // what a new domain writes beside the store (the Administrator's password) goes here
		if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
			return nil, nil, fmt.Errorf("data directory: %w", err)
		}
	}
	if lockData {
		var err error
		if unlock, err = lockDataDir(cfg.Data); err != nil {
			return nil, nil, err
		}
	}
	st, err := OpenEtcd(ctx, cfg.Store.Etcd, cfg.Memory.ReadCache)
	if err != nil {
		unlock()
		return nil, nil, err
	}
	return st, func() { st.Close(); unlock() }, nil
}

// OpenEtcd connects to the cluster the settings name, its cache holding up to
// cacheBytes of the domain's keys and values (0: etcd.DefaultCacheBytes).
func OpenEtcd(ctx context.Context, e EtcdConfig, cacheBytes int64) (*etcd.Store, error) {
	tlsCfg, err := e.tlsConfig()
	if err != nil {
		return nil, err
	}
	opt := etcd.Options{Endpoints: e.Endpoints, Prefix: e.Prefix, DialTimeout: e.DialTimeout, MaxOps: e.MaxTxnOps, MaxStaleness: e.MaxStaleness,
		CacheBytes: int(cacheBytes), Config: clientv3.Config{TLS: tlsCfg, Username: e.Username}}
	if e.PasswordFile != "" {
		b, err := os.ReadFile(e.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("store.etcd.password_file: %v", err)
		}
		opt.Config.Password = strings.TrimRight(string(b), "\r\n")
	}
	st, err := etcd.Open(ctx, opt)
	if err != nil {
		if tlsCfg != nil && errors.Is(err, etcd.ErrNoQuorum) {
			if terr := probeTLS(e.Endpoints, tlsCfg, opt.DialTimeout); terr != nil {
				return nil, terr // the reason no member answered, which gRPC does not pass on
			}
		}
		return nil, fmt.Errorf("store: etcd at %s: %w", strings.Join(e.Endpoints, ","), err)
	}
	return st, nil
}

// probeTLS shakes hands with each https endpoint and reads once, so that a refused or
// untrusted certificate is named (TLS 1.3 servers refuse a client's certificate after
// the handshake, in an alert the first read returns).
func probeTLS(endpoints []string, cfg *tls.Config, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	for _, ep := range endpoints {
		u, err := url.Parse(ep)
		if err != nil || u.Scheme != "https" {
			continue
		}
		c := cfg.Clone()
		c.ServerName, c.NextProtos = u.Hostname(), []string{"h2"}
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: timeout}, "tcp", u.Host, c)
		if err == nil {
			conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			_, err = conn.Read(make([]byte, 1))
			conn.Close()
			var ne net.Error
			if err == nil || errors.As(err, &ne) && ne.Timeout() {
				continue // the server took us
			}
		}
		var opErr *net.OpError
		if errors.As(err, &opErr) && opErr.Op == "dial" {
			continue // not TLS's fault
		}
		return fmt.Errorf("store: etcd at %s: TLS: %v (check store.etcd.ca_file, cert_file and key_file)", ep, err)
	}
	return nil
}

// lockDataDir takes the data directory's lock file, so two servers never share one
// audit trail, pid file and admin socket.
func lockDataDir(dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	p := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		pid := "another process"
		if b, rerr := os.ReadFile(filepath.Join(dir, PIDFile)); rerr == nil {
			pid = "gmsa server pid " + strings.TrimSpace(string(b))
		}
		return nil, fmt.Errorf("data directory %s is held by %s (each server on a shared etcd cluster needs its own --data): %w", dir, pid, store.ErrLocked)
	}
	return func() { f.Close() }, nil
}

// describe names the store for the log.
func (c *StoreConfig) describe() string {
	if c.backend() != "etcd" {
		return "bolt"
	}
	prefix := c.Etcd.Prefix
	if prefix == "" {
		prefix = "gmsa/"
	}
	return "etcd " + strings.Join(c.Etcd.Endpoints, ",") + " prefix " + prefix
}

// Describe names where the store lives, for messages.
func (c *StoreConfig) Describe(data string) string {
	if c.backend() != "etcd" {
		return data
	}
	return c.describe()
}

// ValidateStore checks the store settings alone (what commands other than the server use).
func (c *Config) ValidateStore() error { return errors.Join(c.Store.validate()...) }

// CheckStore reaches the configured etcd cluster, so that --check-config finds a wrong
// endpoint, certificate or password before the server starts; bolt needs nothing.
func CheckStore(ctx context.Context, cfg Config) error {
	if cfg.Store.backend() != "etcd" {
		return nil
	}
	st, err := OpenEtcd(ctx, cfg.Store.Etcd, cfg.Memory.ReadCache)
	if err != nil {
		return err
	}
	return st.Close()
}
