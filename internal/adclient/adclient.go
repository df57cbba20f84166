// Package adclient talks LDAP to any AD-compatible DC (ours, Samba, Windows): binds,
// the domain's naming facts, searches and writes the admin commands need, and reading
// msDS-ManagedPassword. It is a client of the protocol only: it never imports the
// server's storage or directory.
package adclient

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/go-ldap/ldap/v3"

	"gmsa/internal/krbclient"
	"gmsa/internal/ntsec"
)

// Options say how to reach and authenticate to a DC.
type Options struct {
	URL      string // ldaps://host:port or ldap://host:port; several, comma-separated, are tried in turn
	Domain   string // with no URL: find the domain's DCs by DNS SRV (_ldap._tcp.dc._msdcs.DOMAIN)
	User     string // DN, user@realm or NETBIOS\name (simple bind); with Kerberos, the identity's name
	Password string
	CAFile   string // PEM CA to trust; default the system pool
	Insecure bool   // skip certificate verification (labs only)

	// Kerberos binds with this identity over SASL instead of a simple bind: sealed on
	// ldap://, without a layer on ldaps://.
	Kerberos  *krbclient.Client
	Mechanism string    // MechGSSAPI (default) or MechSPNEGO
	Rand      io.Reader // default crypto/rand
	// LookupSRV finds DCs (default net.LookupSRV).
	LookupSRV func(service, proto, name string) (string, []*net.SRV, error)
	// Timeout bounds connecting, binding and each request (default: 15 s to connect,
	// requests unbounded).
	Timeout time.Duration
	// Resolve maps a DC's host name to the address to connect to (default: the
	// system's resolver); the name still names the certificate and the ldap/ SPN.
	Resolve func(host string) string
}

func (o *Options) dialTimeout() time.Duration {
	if o.Timeout > 0 {
		return o.Timeout
	}
	return 15 * time.Second
}

// dialAddr is where to connect for host:port.
func (o *Options) dialAddr(host, port string) string {
	if o.Resolve != nil && net.ParseIP(host) == nil {
		if a := o.Resolve(host); a != "" {
			host = a
		}
	}
	return net.JoinHostPort(host, port)
}

func (o *Options) rand() io.Reader {
	if o.Rand == nil {
		return rand.Reader
	}
	return o.Rand
}

// Client is a bound LDAP connection with the domain's naming facts.
type Client struct {
	Conn       *ldap.Conn
	URL        string // the DC it is connected to
	BaseDN     string // defaultNamingContext
	ConfigDN   string
	DNSName    string // example.test
	Realm      string // EXAMPLE.TEST
	DomainSID  ntsec.SID
	DomainGUID ntsec.GUID
	NetBIOS    string // the domain's NetBIOS name
	DCHostName string
}

// Dial connects to the first DC that answers, binds (Kerberos, or simple over LDAPS or
// StartTLS) and reads the RootDSE and the domain object.
func Dial(opt Options) (*Client, error) {
	tc := &tls.Config{InsecureSkipVerify: opt.Insecure} //nolint:gosec // only when asked, for labs
	if opt.CAFile != "" {
		pem, err := os.ReadFile(opt.CAFile)
		if err != nil {
			return nil, fmt.Errorf("adclient: CA file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("adclient: %s holds no PEM certificate", opt.CAFile)
		}
	}
	urls, err := opt.servers()
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, u := range urls {
		c, err := dialOne(u, opt, tc)
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		var le *ldap.Error
		if errors.As(err, &le) && (le.ResultCode == ldap.LDAPResultInvalidCredentials || le.ResultCode == ldap.LDAPResultInsufficientAccessRights) {
			break // the next DC would refuse the same credentials
		}
	}
	return nil, errors.Join(errs...)
}

// servers lists the URLs to try: those given, or the domain's DCs by DNS SRV in
// priority and weight order ([RFC 2782]; the DC locator's _ldap._tcp.dc._msdcs).
func (o *Options) servers() ([]string, error) {
	if o.URL != "" {
		var out []string
		for _, u := range strings.Split(o.URL, ",") {
			if u = strings.TrimSpace(u); u != "" {
				out = append(out, u)
			}
		}
		return out, nil
	}
	if o.Domain == "" {
		return nil, errors.New("adclient: no DC: give its URL, or the domain to find its DCs by DNS")
	}
	lookup := o.LookupSRV
	if lookup == nil {
		lookup = net.LookupSRV
	}
	_, srvs, err := lookup("ldap", "tcp", "dc._msdcs."+o.Domain)
	if err != nil || len(srvs) == 0 {
		return nil, fmt.Errorf("adclient: finding the DCs of %s (DNS SRV _ldap._tcp.dc._msdcs.%s): %v", o.Domain, o.Domain, err)
	}
	var out []string
	for _, s := range srvs {
		host := strings.TrimSuffix(s.Target, ".")
		if o.Kerberos != nil {
			out = append(out, fmt.Sprintf("ldap://%s:%d", host, s.Port))
		} else {
			out = append(out, fmt.Sprintf("ldaps://%s:636", host))
		}
	}
	return out, nil
}

func dialOne(raw string, opt Options, tc *tls.Config) (*Client, error) {
	var conn *ldap.Conn
	if opt.Kerberos != nil {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") {
			return nil, fmt.Errorf("adclient: %q: want ldap://HOST[:PORT] or ldaps://HOST[:PORT]", raw)
		}
		if conn, err = kerberosBind(u, opt, tc); err != nil {
			return nil, err
		}
	} else {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") {
			return nil, fmt.Errorf("adclient: %q: want ldap://HOST[:PORT] or ldaps://HOST[:PORT]", raw)
		}
		if tc.ServerName == "" && net.ParseIP(u.Hostname()) == nil {
			tc = tc.Clone()
			tc.ServerName = u.Hostname()
		}
		port := u.Port()
		if port == "" {
			port = map[bool]string{false: "389", true: "636"}[u.Scheme == "ldaps"]
		}
		dialURL := u.Scheme + "://" + opt.dialAddr(u.Hostname(), port)
		if conn, err = ldap.DialURL(dialURL, ldap.DialWithTLSConfig(tc), ldap.DialWithDialer(&net.Dialer{Timeout: opt.dialTimeout()})); err != nil {
			return nil, fmt.Errorf("adclient: connecting to %s: %w", raw, err)
		}
		if opt.Timeout > 0 {
			conn.SetTimeout(opt.Timeout)
		}
		if strings.HasPrefix(strings.ToLower(raw), "ldap://") {
			if err := conn.StartTLS(tc); err != nil {
				conn.Close()
				return nil, fmt.Errorf("adclient: StartTLS with %s: %w (passwords and keys only travel encrypted; or bind with Kerberos)", raw, err)
			}
		}
		if err := conn.Bind(opt.User, opt.Password); err != nil {
			conn.Close()
			return nil, fmt.Errorf("adclient: bind as %s: %w", opt.User, err)
		}
	}
	if opt.Timeout > 0 {
		conn.SetTimeout(opt.Timeout)
	}
	c := &Client{Conn: conn, URL: raw}
	if err := c.naming(); err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

func (c *Client) naming() error {
	r, err := c.Conn.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)",
		[]string{"defaultNamingContext", "configurationNamingContext", "dnsHostName"}, nil))
	if err != nil || len(r.Entries) == 0 {
		return fmt.Errorf("adclient: reading the RootDSE: %v", err)
	}
	e := r.Entries[0]
	c.BaseDN, c.ConfigDN, c.DCHostName = e.GetAttributeValue("defaultNamingContext"), e.GetAttributeValue("configurationNamingContext"), e.GetAttributeValue("dnsHostName")
	if c.BaseDN == "" {
		return errors.New("adclient: the server reports no defaultNamingContext: is it an AD DC?")
	}
	var labels []string
	for _, rdn := range strings.Split(c.BaseDN, ",") {
		if k, v, ok := strings.Cut(rdn, "="); ok && strings.EqualFold(strings.TrimSpace(k), "DC") {
			labels = append(labels, strings.ToLower(strings.TrimSpace(v)))
		}
	}
	c.DNSName = strings.Join(labels, ".")
	c.Realm = strings.ToUpper(c.DNSName)
	d, err := c.Conn.Search(ldap.NewSearchRequest(c.BaseDN, ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", []string{"objectSid", "objectGUID"}, nil))
	if err != nil || len(d.Entries) == 0 {
		return fmt.Errorf("adclient: reading the domain object: %v", err)
	}
	sid, err := ntsec.SIDFromBytes(d.Entries[0].GetRawAttributeValue("objectSid"))
	if err != nil {
		return fmt.Errorf("adclient: the domain's objectSid: %w", err)
	}
	c.DomainSID = sid
	c.DomainGUID, _ = ntsec.GUIDFromBytes(d.Entries[0].GetRawAttributeValue("objectGUID"))
	// The NetBIOS name is the domain's crossRef's ([MS-ADTS] 6.1.1.2.1.1.2); a DC
	// without the Partitions container gets the first DNS label, upper-cased.
	if len(labels) > 0 {
		c.NetBIOS = strings.ToUpper(labels[0])
	}
	if p, err := c.Conn.Search(ldap.NewSearchRequest("CN=Partitions,"+c.ConfigDN, ldap.ScopeSingleLevel, 0, 0, 0, false,
		"(&(objectClass=crossRef)(nCName="+ldap.EscapeFilter(c.BaseDN)+"))", []string{"nETBIOSName"}, nil)); err == nil && len(p.Entries) == 1 {
		if nb := p.Entries[0].GetAttributeValue("nETBIOSName"); nb != "" {
			c.NetBIOS = nb
		}
	}
	return nil
}

// Close ends the connection.
func (c *Client) Close() error { return c.Conn.Close() }

// Search runs a subtree search under base (the domain by default).
func (c *Client) Search(base, filter string, attrs ...string) ([]*ldap.Entry, error) {
	if base == "" {
		base = c.BaseDN
	}
	r, err := c.Conn.SearchWithPaging(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, 0, 0, 0, false, filter, attrs, nil), 500)
	if err != nil {
		return nil, err
	}
	return r.Entries, nil
}

// Find resolves a principal or object by SID, DN, sAMAccountName (with or without the
// trailing $), NETBIOS\name or user@realm, like the admin commands accept.
func (c *Client) Find(ref string, attrs ...string) (*ldap.Entry, error) {
	ref = strings.TrimSpace(ref)
	var filters []string
	switch {
	case strings.HasPrefix(strings.ToUpper(ref), "S-1-"):
		filters = []string{"(objectSid=" + ldap.EscapeFilter(ref) + ")"}
	case strings.Contains(ref, "=") && strings.Contains(ref, ","):
		r, err := c.Conn.Search(ldap.NewSearchRequest(ref, ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", attrs, nil))
		if err != nil {
			return nil, fmt.Errorf("adclient: %s: %w", ref, err)
		}
		return r.Entries[0], nil
	default:
		name := ref
		if i := strings.IndexByte(name, '\\'); i >= 0 {
			name = name[i+1:]
		}
		if i := strings.IndexByte(name, '@'); i >= 0 {
			name = name[:i]
		}
		filters = []string{"(sAMAccountName=" + ldap.EscapeFilter(name) + ")"}
		if !strings.HasSuffix(name, "$") {
			filters = append(filters, "(sAMAccountName="+ldap.EscapeFilter(name)+"$)")
		}
		filters = append(filters, "(cn="+ldap.EscapeFilter(name)+")")
	}
	for _, f := range filters {
		es, err := c.Search("", f, attrs...)
		if err != nil {
			return nil, err
		}
		if len(es) == 1 {
			return es[0], nil
		}
		if len(es) > 1 {
			return nil, fmt.Errorf("adclient: %q matches %d objects; name it by DN or SID", ref, len(es))
		}
	}
	return nil, fmt.Errorf("adclient: %q: no such object: %w", ref, ErrNotFound)
}

// ErrNotFound is a name that matches nothing.
var ErrNotFound = errors.New("not found")

// SID reads an entry's objectSid.
func SID(e *ldap.Entry) (ntsec.SID, error) {
	return ntsec.SIDFromBytes(e.GetRawAttributeValue("objectSid"))
}

// UnicodePwd encodes a password as AD's unicodePwd value: in double quotes, UTF-16LE
// ([MS-ADTS] 3.1.1.3.1.5).
func UnicodePwd(password string) string {
	u := utf16.Encode([]rune(`"` + password + `"`))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return string(b)
}
