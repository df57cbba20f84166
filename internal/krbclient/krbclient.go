// Package krbclient gets Kerberos tickets for the host side as a host's own tools do:
// from a keytab (the machine's /etc/krb5.keytab and its HOST$), a ticket cache, or a
// password, against the KDCs a krb5.conf names or DNS SRV records find. gokrb5's client
// runs the AS and TGS exchanges.
package krbclient

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/credentials"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"gmsa/internal/krbkey"
)

// Options name the identity and where its KDCs are.
type Options struct {
	Principal string // user, HOST$ or name@REALM; default: the keytab's machine account, or the cache's client
	Keytab    string // a keytab file (MIT format)
	// KeytabData is a keytab held in memory (keys derived from a gMSA's password,
	// never written to disk), used as Keytab is.
	KeytabData []byte
	CCache     string   // a FILE: ticket cache holding a TGT (as after kinit); "" with no keytab or password: $KRB5CCNAME
	Password   string   // the principal's password
	Realm      string   // default: the principal's realm, else krb5.conf's default_realm
	Config     string   // krb5.conf; default $KRB5_CONFIG, else /etc/krb5.conf when it exists
	KDCs       []string // host:port of the realm's KDCs, when no krb5.conf names them (default: DNS SRV _kerberos._tcp)
	// ClockSkew is how far the KDC's clock may be from this host's (default krb5.conf's
	// clockskew, 5 min).
	ClockSkew time.Duration
}

// Client holds a logged-on identity and gets service tickets for it.
type Client struct {
	cl        *client.Client
	Principal types.PrincipalName
	Realm     string
	authTime  time.Time
	hasKey    bool // logged on with a keytab or a password, so it can ask for new TGTs
}

// ErrNoCredentials is an identity with nothing to prove it.
var ErrNoCredentials = errors.New("krbclient: no Kerberos credentials: give a keytab, a ticket cache or a password")

// New logs the identity on (an AS exchange, or the TGT of the cache). getenv reads
// KRB5_CONFIG and KRB5CCNAME.
func New(opt Options, getenv func(string) string) (*Client, error) {
	cfg, err := loadConfig(opt, getenv, "/etc/krb5.conf")
	if err != nil {
		return nil, err
	}
	if opt.ClockSkew > 0 {
		cfg.LibDefaults.Clockskew = opt.ClockSkew
	}
	name, realm := splitPrincipal(opt.Principal)
	if realm == "" {
		realm = opt.Realm
	}
	settings := []func(*client.Settings){client.DisablePAFXFAST(true)}
	var cl *client.Client
	switch {
	case opt.Keytab != "" || opt.KeytabData != nil:
		b, src := opt.KeytabData, "the keytab"
		if b == nil {
			if b, err = os.ReadFile(opt.Keytab); err != nil {
				return nil, fmt.Errorf("krbclient: %w", err)
			}
			src = opt.Keytab
		}
		kt, entries, err := parseKeytab(b, src)
		if err != nil {
			return nil, err
		}
		e, err := pickEntry(entries, name, realm)
		if err != nil {
			return nil, fmt.Errorf("krbclient: %s: %w", src, err)
		}
		name, realm = strings.Join(e.Principal.Components, "/"), e.Principal.Realm
		cl = client.NewWithKeytab(name, realm, kt, cfg, settings...)
	case opt.Password != "":
		if name == "" {
			return nil, errors.New("krbclient: a password needs --principal")
		}
		if realm == "" {
			realm = cfg.LibDefaults.DefaultRealm
		}
		cl = client.NewWithPassword(name, strings.ToUpper(realm), opt.Password, cfg, settings...)
	default:
		path := opt.CCache
		if path == "" {
			path = getenv("KRB5CCNAME")
		}
		path = strings.TrimPrefix(path, "FILE:")
		if path == "" {
			return nil, ErrNoCredentials
		}
		cc, err := credentials.LoadCCache(path)
		if err != nil {
			return nil, fmt.Errorf("krbclient: ticket cache %s: %w (run kinit first)", path, err)
		}
		if cl, err = client.NewFromCCache(cc, cfg, settings...); err != nil {
			return nil, fmt.Errorf("krbclient: ticket cache %s: %w", path, err)
		}
		out := &Client{cl: cl, Principal: cc.GetClientPrincipalName(), Realm: cc.GetClientRealm()}
		tgs := types.PrincipalName{NameType: 2, NameString: []string{"krbtgt", cc.GetClientRealm()}}
		if cred, ok := cc.GetEntry(tgs); ok {
			out.authTime = cred.AuthTime
		}
		return out, nil
	}
	if realm == "" {
		return nil, errors.New("krbclient: no realm: give the principal as name@REALM, --realm, or a krb5.conf with default_realm")
	}
	if err := guard(cl.Login); err != nil {
		return nil, fmt.Errorf("krbclient: logging on as %s@%s: %w", name, realm, err)
	}
	return &Client{cl: cl, Principal: cl.Credentials.CName(), Realm: cl.Credentials.Realm(), hasKey: true}, nil
}

// ServiceTicket gets a ticket for spn (such as ldap/dc1.example.test) and its session key.
func (c *Client) ServiceTicket(spn string) (t messages.Ticket, k types.EncryptionKey, err error) {
	err = guard(func() (err error) {
		t, k, err = c.cl.GetServiceTicket(spn)
		return err
	})
	if err != nil {
		return t, k, fmt.Errorf("krbclient: a ticket for %s: %w", spn, err)
	}
	return t, k, nil
}

// guard runs a gokrb5 exchange; its decoders panic on some malformed replies, which
// become an error here rather than the end of the process.
func guard(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the KDC's reply broke the Kerberos decoder (%v)", r)
		}
	}()
	return f()
}

// TGTAuthTime is when the KDC authenticated the identity of a ticket cache's TGT,
// hence when it built the PAC and the groups the TGT carries; zero for identities that
// logged on here.
func (c *Client) TGTAuthTime() time.Time { return c.authTime }

// Close forgets the tickets.
func (c *Client) Close() { c.cl.Destroy() }

// Name is principal@REALM.
func (c *Client) Name() string { return c.Principal.PrincipalNameString() + "@" + c.Realm }

func splitPrincipal(p string) (name, realm string) {
	if i := strings.LastIndexByte(p, '@'); i >= 0 {
		return p[:i], p[i+1:]
	}
	return p, ""
}

// loadConfig reads the krb5.conf in use (opt.Config, $KRB5_CONFIG, else the system's
// when no KDCs are given), or builds one from the realm and KDCs given (DNS SRV lookup
// when none are).
func loadConfig(opt Options, getenv func(string) string, system string) (*config.Config, error) {
	path := opt.Config
	if path == "" {
		path = getenv("KRB5_CONFIG")
	}
	if path == "" && system != "" && len(opt.KDCs) == 0 {
		if _, err := os.Stat(system); err == nil {
			path = system
		}
	}
	if path != "" {
		cfg, err := config.Load(path)
		if err != nil {
			return nil, fmt.Errorf("krbclient: %s: %w", path, err)
		}
		return cfg, nil
	}
	_, realm := splitPrincipal(opt.Principal)
	if realm == "" {
		realm = opt.Realm
	}
	realm = strings.ToUpper(realm)
	cfg := config.New()
	cfg.LibDefaults.DefaultRealm = realm
	cfg.LibDefaults.DNSLookupKDC = len(opt.KDCs) == 0
	cfg.LibDefaults.UDPPreferenceLimit = 1 // TCP: AD's tickets carry PACs
	if len(opt.KDCs) > 0 {
		cfg.Realms = []config.Realm{{Realm: realm, KDC: opt.KDCs, DefaultDomain: strings.ToLower(realm)}}
	}
	return cfg, nil
}

// parseKeytab reads a keytab with gokrb5 (for the client) and with krbkey (to list it).
func parseKeytab(b []byte, path string) (*keytab.Keytab, []krbkey.KeytabEntry, error) {
	ours, err := krbkey.ParseKeytab(b)
	if err != nil {
		return nil, nil, fmt.Errorf("krbclient: %s: %w", path, err)
	}
	kt := keytab.New()
	if err := kt.Unmarshal(b); err != nil {
		return nil, nil, fmt.Errorf("krbclient: %s: %w", path, err)
	}
	return kt, ours.Entries, nil
}

// pickEntry finds the keytab entry of name@realm, case-insensitively as AD matches
// names (credentials-fetcher asks for HOST$@REALM upper-cased); with no name, the
// machine account (NAME$), as kinit -k does with a host keytab.
func pickEntry(entries []krbkey.KeytabEntry, name, realm string) (krbkey.KeytabEntry, error) {
	for _, e := range entries {
		full := strings.Join(e.Principal.Components, "/")
		switch {
		case name == "" && len(e.Principal.Components) == 1 && strings.HasSuffix(full, "$"):
			return e, nil
		case name != "" && strings.EqualFold(full, name) && (realm == "" || strings.EqualFold(e.Principal.Realm, realm)):
			return e, nil
		}
	}
	if name == "" {
		return krbkey.KeytabEntry{}, errors.New("no machine account (NAME$) in the keytab: give --principal")
	}
	return krbkey.KeytabEntry{}, fmt.Errorf("no key for %s in the keytab", name)
}
