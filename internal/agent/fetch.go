package agent

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"gmsa/internal/adclient"
	"gmsa/internal/krbclient"
	"gmsa/internal/locator"
	"gmsa/internal/managedpw"
)

// gmsaData is what a DC said of one gMSA in one read.
type gmsaData struct {
	sam      string
	blob     *managedpw.Blob
	kvno     uint32
	spns     []string
	upn      string
	enctypes *uint32 // msDS-SupportedEncryptionTypes; nil when the DC sent none
	interval int64   // msDS-ManagedPasswordInterval in days (0 when not sent)
	dc       string
	readAt   time.Time
	err      error // this account's own problem (no such gMSA, no password for the identity …)
}

var gmsaAttrs = []string{"sAMAccountName", "msDS-ManagedPassword", "msDS-KeyVersionNumber", "servicePrincipalName",
	"userPrincipalName", "msDS-SupportedEncryptionTypes", "msDS-ManagedPasswordInterval"}

// locate is the DC locator of the configuration: DNS SRV through the configured DNS
// server (or the host's), names resolved there too.
func (a *Agent) locate() (*locator.Resolver, error) {
	return locator.New(a.cfg.DNSServer, a.timeout())
}

func (a *Agent) timeout() time.Duration { return a.cfg.Timeout.or(15 * time.Second) }

// resolve maps a DC's name to an address through the configured DNS server, so that a
// host pointed at the domain's DNS needs no change to its resolver.
func (a *Agent) resolve(res *locator.Resolver) func(string) string {
	if a.cfg.DNSServer == "" || res == nil {
		return nil
	}
	return func(host string) string {
		if addrs, err := res.Addrs(host); err == nil {
			return addrs[0]
		}
		return ""
	}
}

// located is what the DC locator found for one refresh: the resolver and the KDCs.
type located struct {
	res    *locator.Resolver
	resErr error
	kdcs   []string
	kdcErr error
}

// locateAll asks DNS once per refresh, for every identity and account in it.
func (a *Agent) locateAll() *located {
	l := &located{}
	l.res, l.resErr = a.locate()
	l.kdcs, l.kdcErr = a.kdcs(l.res)
	return l
}

// kdcs are the KDCs to ask: configured, else the _kerberos._tcp SRV records with their
// targets resolved.
func (a *Agent) kdcs(res *locator.Resolver) ([]string, error) {
	if len(a.cfg.KDCs) > 0 {
		return a.cfg.KDCs, nil
	}
	if res == nil {
		return nil, errors.New("no DNS to find the KDCs (give kdcs)")
	}
	_, srvs, err := res.LookupSRV("kerberos", "tcp", a.cfg.Domain)
	if err != nil {
		return nil, fmt.Errorf("finding the KDCs (_kerberos._tcp.%s): %w", a.cfg.Domain, err)
	}
	var out []string
	for _, s := range srvs {
		host := strings.TrimSuffix(s.Target, ".")
		if addrs, err := res.Addrs(host); err == nil {
			host = addrs[0]
		}
		out = append(out, net.JoinHostPort(host, strconv.Itoa(int(s.Port))))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no _kerberos._tcp.%s records", a.cfg.Domain)
	}
	return out, nil
}

// login makes the identity's Kerberos client, when it binds with Kerberos.
func (a *Agent) login(id *Identity, kdcs []string) (*krbclient.Client, error) {
	opt := krbclient.Options{Realm: a.cfg.Realm(), KDCs: kdcs, Principal: id.Principal, ClockSkew: a.deps.ClockSkew}
	switch {
	case id.Keytab != "":
		opt.Keytab = id.Keytab
	case id.CCache != "":
		opt.CCache = id.CCache
	default:
		pw, err := id.secret()
		if err != nil {
			return nil, err
		}
		opt.Principal, opt.Password = id.User, pw
	}
	if opt.Principal != "" && !strings.Contains(opt.Principal, "@") {
		opt.Principal += "@" + a.cfg.Realm()
	}
	noEnv := func(string) string { return "" } // the configuration says where the KDCs are
	return krbclient.New(opt, noEnv)
}

func readPassword(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("password file: %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// read connects to the first DC that answers as id, with one bind and one search for
// all of accounts (a second, for key versions only, right after a rotation: the read
// that makes a DC rotate may report the old version).
func (a *Agent) read(id *Identity, accounts []string, dcs *located) (map[string]*gmsaData, error) {
	opt := adclient.Options{URL: id.urls(a.cfg.Servers), Domain: a.cfg.Domain, CAFile: a.cfg.CAFile,
		Insecure: a.cfg.Insecure, Timeout: a.timeout(), Resolve: a.resolve(dcs.res)}
	if dcs.res != nil {
		opt.LookupSRV = dcs.res.LookupSRV
	} else if len(a.cfg.Servers) == 0 {
		return nil, failed(causeUnreachable, fmt.Errorf("finding the DCs: %w", dcs.resErr))
	}
	if id.kerberos() {
		if dcs.kdcErr != nil {
			return nil, failed(causeUnreachable, dcs.kdcErr)
		}
		kc, err := a.login(id, dcs.kdcs)
		if err != nil {
			return nil, failed(causeIdentity, err)
		}
		defer kc.Close()
		opt.Kerberos, opt.User = kc, kc.Name()
	} else {
		pw, err := id.secret()
		if err != nil {
			return nil, failed(causeIdentity, err)
		}
		opt.User, opt.Password = id.User, pw
	}
	c, err := adclient.Dial(opt)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	a.countRequest(3) // bind, RootDSE, domain
	var terms []string
	for _, n := range accounts {
		terms = append(terms, "(sAMAccountName="+ldap.EscapeFilter(SAMName(n))+")")
	}
	filter := "(&(objectClass=msDS-GroupManagedServiceAccount)(|" + strings.Join(terms, "") + "))"
	entries, err := c.Search("", filter, gmsaAttrs...)
	a.countRequest(1)
	if err != nil {
		return nil, fmt.Errorf("searching %s: %w", c.URL, err)
	}
	now := a.now()
	out := map[string]*gmsaData{}
	recent := false
	for _, e := range entries {
		d := &gmsaData{sam: e.GetAttributeValue("sAMAccountName"), dc: c.URL, readAt: now,
			spns: e.GetAttributeValues("servicePrincipalName"), upn: e.GetAttributeValue("userPrincipalName")}
		if v, err := strconv.ParseUint(e.GetAttributeValue("msDS-KeyVersionNumber"), 10, 32); err == nil {
			d.kvno = uint32(v)
		}
		if s := e.GetAttributeValue("msDS-SupportedEncryptionTypes"); s != "" {
			if v, err := strconv.ParseInt(s, 10, 64); err == nil {
				u := uint32(v)
				d.enctypes = &u
			}
		}
		d.interval, _ = strconv.ParseInt(e.GetAttributeValue("msDS-ManagedPasswordInterval"), 10, 64)
		raw := e.GetRawAttributeValue("msDS-ManagedPassword")
		switch {
		case len(raw) == 0:
			d.err = fmt.Errorf("%s returned no msDS-ManagedPassword of %s to %s: the identity may not retrieve it (gmsa doctor --account %s shows why)",
				c.URL, d.sam, opt.User, d.sam)
		case d.kvno == 0:
			d.err = fmt.Errorf("%s sent no msDS-KeyVersionNumber for %s", c.URL, d.sam)
		default:
			b, err := managedpw.Decode(raw)
			if err != nil {
				d.err = fmt.Errorf("%s sent an msDS-ManagedPassword of %s that does not decode: %w", c.URL, d.sam, err)
				break
			}
			d.blob = b
			recent = recent || justRotated(b, d.interval)
		}
		out[strings.ToLower(d.sam)] = d
	}
	if recent {
		entries, err := c.Search("", filter, "sAMAccountName", "msDS-KeyVersionNumber")
		a.countRequest(1)
		if err != nil {
			return nil, fmt.Errorf("searching %s: %w", c.URL, err)
		}
		for _, e := range entries {
			if d := out[strings.ToLower(e.GetAttributeValue("sAMAccountName"))]; d != nil {
				if v, err := strconv.ParseUint(e.GetAttributeValue("msDS-KeyVersionNumber"), 10, 32); err == nil && uint32(v) > d.kvno {
					d.kvno = uint32(v)
				}
			}
		}
	}
	for _, n := range accounts {
		if out[strings.ToLower(SAMName(n))] == nil {
			out[strings.ToLower(SAMName(n))] = &gmsaData{sam: SAMName(n), dc: c.URL, readAt: now,
				err: fmt.Errorf("%s: no gMSA named %s in %s", c.URL, SAMName(n), a.cfg.Domain)}
		}
	}
	return out, nil
}

// justRotated says whether the password changed within the last ten minutes: the
// interval in days less the time to the next change ([MS-ADTS] 2.2.19).
func justRotated(b *managedpw.Blob, intervalDays int64) bool {
	if intervalDays <= 0 || lookAhead(b) {
		return false
	}
	period := time.Duration(intervalDays) * 24 * time.Hour
	left := time.Duration(b.QueryInterval) * 100
	return period-left < 10*time.Minute
}

// lookAhead says whether a blob is in the five minutes before a change, when a DC hands
// out the next password as current and the one in use as previous ([MS-ADTS]
// 3.1.1.4.5.39; gmsa-algorithm.md §8): then the unchanged interval runs past the query
// interval, to the end of the next period.
func lookAhead(b *managedpw.Blob) bool { return b.UnchangedInterval > b.QueryInterval }
