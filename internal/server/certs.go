package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"gmsa/internal/metrics"
)

// Names of the files ldap.tls_dir holds, as a Kubernetes TLS secret (and cert-manager)
// mounts them.
const (
	TLSDirCert = "tls.crt"
	TLSDirKey  = "tls.key"
)

// certSource is the certificate LDAPS and StartTLS serve: the operator's PEM files
// (certificate with its chain, and key), checked when loaded and loaded again when they
// change or on SIGHUP, or the self-made CA's. New connections take the current one;
// live connections keep theirs.
type certSource struct {
	certFile, keyFile string // "" for the self-made certificate
	dcName            string // the DC's DNS name, which a certificate must cover
	warnBefore        time.Duration
	now               func() time.Time
	log               *slog.Logger

	cur     atomic.Pointer[tls.Certificate]
	mu      sync.Mutex
	stamp   string           // the files' sizes and times when last loaded
	warned  time.Time        // when the expiry warning was last logged
	loaded  bool             // the first load is done: later ones are reloads
	metrics *metrics.Metrics // set once serving; nil: none
}

// loadCertificate reads and checks a certificate and key, naming every problem: a
// file that does not read, a key that is not the certificate's, a certificate not yet
// or no longer valid, one that does not name the DC, a chain that does not link.
func loadCertificate(certFile, keyFile, dcName string, now time.Time) (*tls.Certificate, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		if strings.Contains(err.Error(), "does not match") {
			return nil, fmt.Errorf("ldap.tls_key: %s is not the key of %s's certificate", keyFile, certFile)
		}
		return nil, fmt.Errorf("ldap.tls_cert/tls_key: %v", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("ldap.tls_cert: %s: %v", certFile, err)
	}
	pair.Leaf = leaf
	var errs []error
	switch {
	case now.After(leaf.NotAfter):
		errs = append(errs, fmt.Errorf("ldap.tls_cert: %s expired on %s", certFile, leaf.NotAfter.UTC().Format(time.RFC3339)))
	case now.Before(leaf.NotBefore):
		errs = append(errs, fmt.Errorf("ldap.tls_cert: %s is not valid before %s", certFile, leaf.NotBefore.UTC().Format(time.RFC3339)))
	}
	if dcName != "" {
		if err := leaf.VerifyHostname(dcName); err != nil {
			errs = append(errs, fmt.Errorf("ldap.tls_cert: %s does not name the DC %s (subject alternative names %v): clients that connect by name refuse it",
				certFile, dcName, leaf.DNSNames))
		}
	}
	if len(pair.Certificate) > 1 { // the chain the file carries must lead from the leaf upwards
		inter := x509.NewCertPool()
		var top *x509.Certificate
		for _, der := range pair.Certificate[1:] {
			c, err := x509.ParseCertificate(der)
			if err != nil {
				errs = append(errs, fmt.Errorf("ldap.tls_cert: %s: a chain certificate does not parse: %v", certFile, err))
				continue
			}
			inter.AddCert(c)
			top = c
		}
		if top != nil {
			roots := x509.NewCertPool()
			roots.AddCert(top)
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
				errs = append(errs, fmt.Errorf("ldap.tls_cert: %s: the chain in the file does not lead to its last certificate: %v", certFile, err))
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &pair, nil
}

// filesStamp describes the files' current state, to notice a change: size, mtime and
// the inode, since file systems stamp times at a coarse clock's tick and a renewal
// swapped in as new files (a Kubernetes secret's directory swap) can carry the same
// size and time as the files it replaces.
func filesStamp(files ...string) string {
	var b strings.Builder
	for _, f := range files {
		if st, err := os.Stat(f); err == nil {
			var ino uint64
			if sys, ok := st.Sys().(*syscall.Stat_t); ok {
				ino = sys.Ino
			}
			fmt.Fprintf(&b, "%d/%d/%d;", st.Size(), st.ModTime().UnixNano(), ino)
		} else {
			b.WriteString("missing;")
		}
	}
	return b.String()
}

// operatorFiles returns the certificate and key files the configuration names, or "".
func (c *Config) operatorFiles() (cert, key string) {
	if d := c.LDAP.TLSDir; d != "" {
		return filepath.Join(d, TLSDirCert), filepath.Join(d, TLSDirKey)
	}
	return c.LDAP.TLSCert, c.LDAP.TLSKey
}

// Current is the certificate new connections serve.
func (s *certSource) Current() *tls.Certificate { return s.cur.Load() }

// reload loads the files again if they changed (or always, when forced: SIGHUP). A
// replacement that fails its checks is refused and the current certificate stays.
func (s *certSource) reload(force bool) error {
	if s.certFile == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	stamp := filesStamp(s.certFile, s.keyFile)
	if !force && stamp == s.stamp {
		return nil
	}
	cert, err := loadCertificate(s.certFile, s.keyFile, s.dcName, s.now())
	if s.loaded {
		s.metrics.CertificateReload(err)
	}
	if err != nil {
		s.stamp = stamp // say it once per change, not on every poll
		return err
	}
	s.cur.Store(cert)
	s.stamp = stamp
	s.loaded = true
	s.log.Info("TLS certificate loaded", "file", s.certFile, "subject", cert.Leaf.Subject.String(), "not_after", cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

// checkExpiry logs a warning when the certificate expires within warnBefore — once a
// day, and at once after a reload — and returns the time left.
func (s *certSource) checkExpiry() time.Duration {
	cert := s.cur.Load()
	now := s.now()
	left := cert.Leaf.NotAfter.Sub(now)
	s.mu.Lock()
	defer s.mu.Unlock()
	if left < s.warnBefore && (s.warned.IsZero() || now.Sub(s.warned) >= 24*time.Hour) {
		s.warned = now
		what := "an operator-supplied certificate: replace ldap.tls_cert and ldap.tls_key (they are reloaded without a restart)"
		if s.certFile == "" {
			what = "the self-made certificate: it is renewed at the next start"
		}
		s.log.Warn("the LDAPS certificate expires soon", "days_left", int(left.Hours()/24), "not_after", cert.Leaf.NotAfter.UTC().Format(time.RFC3339), "what", what)
	}
	return left
}

// daysLeft is the time until the certificate expires, in days.
func (s *certSource) daysLeft() float64 {
	return s.cur.Load().Leaf.NotAfter.Sub(s.now()).Hours() / 24
}

// defaultCiphers are the TLS 1.2 suites offered unless ldap.tls_ciphers says otherwise:
// forward secrecy and AEAD only.
var defaultCiphers = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// tlsPolicy reads ldap.tls_min_version and ldap.tls_ciphers.
func (c *Config) tlsPolicy() (minVersion uint16, ciphers []uint16, errs []error) {
	switch c.LDAP.TLSMinVersion {
	case "", "1.2":
		minVersion = tls.VersionTLS12
	case "1.3":
		minVersion = tls.VersionTLS13
	default:
		errs = append(errs, fmt.Errorf("ldap.tls_min_version: %q: want 1.2 or 1.3 (older versions are not offered)", c.LDAP.TLSMinVersion))
	}
	if len(c.LDAP.TLSCiphers) == 0 {
		return minVersion, defaultCiphers, errs
	}
	known := map[string]uint16{}
	for _, cs := range tls.CipherSuites() {
		known[cs.Name] = cs.ID
	}
	insecure := map[string]bool{}
	for _, cs := range tls.InsecureCipherSuites() {
		insecure[cs.Name] = true
	}
	for _, name := range c.LDAP.TLSCiphers {
		switch id, ok := known[name]; {
		case ok:
			ciphers = append(ciphers, id)
		case insecure[name]:
			errs = append(errs, fmt.Errorf("ldap.tls_ciphers: %s is insecure and not offered", name))
		default:
			errs = append(errs, fmt.Errorf("ldap.tls_ciphers: %q is not a TLS 1.2 suite name such as TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", name))
		}
	}
	return minVersion, ciphers, errs
}

// validateTLS checks the TLS settings; the operator's files are loaded (without the DC
// name, which the directory knows) so that --check-config names their problems too.
func (c *Config) validateTLS() []error {
	_, _, errs := c.tlsPolicy()
	l := &c.LDAP
	switch {
	case l.TLSDir != "" && (l.TLSCert != "" || l.TLSKey != ""):
		errs = append(errs, errors.New("ldap.tls_dir and ldap.tls_cert/tls_key: give one or the other"))
	case (l.TLSCert == "") != (l.TLSKey == ""):
		errs = append(errs, errors.New("ldap.tls_cert and ldap.tls_key: give both or neither"))
	default:
		if cert, key := c.operatorFiles(); cert != "" {
			if _, err := loadCertificate(cert, key, "", time.Now()); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if l.TLSExpiryWarning < 0 {
		errs = append(errs, errors.New("ldap.tls_expiry_warning: negative; leave it out for the default"))
	}
	return errs
}
