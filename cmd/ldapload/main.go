// Command ldapload is a bounded LDAP load generator for the benchmarks: N connections,
// each binding once and then searching for a fixed time. It refuses targets outside
// the loopback range. %d in the filter becomes a random index below -n.
//
//	ldapload -url ldaps://127.0.0.1:636 -bind-dn USER -password PW -base DC=example,DC=test \
//	  -filter '(sAMAccountName=bench%d)' -n 2000 -attrs cn,mail -c 4 -depth 1 -d 5s
//
// With -depth N each connection keeps N searches in flight (LDAP message IDs allow a
// client to pipeline); the load loop encodes requests once and reads responses in
// place, so its own cost stays small next to the server's.
//
// With -krb5-ccache each connection binds with Kerberos instead (SASL GSSAPI, sealed on
// ldap://) with the cache's identity and the KDCs of $KRB5_CONFIG; the URL names the
// DC by host name (ldap/<host> is the ticket's service).
//
// Populating: -populate users|gmsas creates -n objects named bench0… (users with
// password -user-password; gMSAs allowing -allow SID) over LDAP, against any AD-like DC.
package main

import (
	crand "crypto/rand"
	"crypto/tls"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-ldap/ldap/v3"

	"gmsa/internal/adclient"
	"gmsa/internal/gss"
	"gmsa/internal/krbclient"
	"gmsa/internal/ntsec"
)

func main() {
	u := flag.String("url", "ldaps://127.0.0.1:636", "server URL (loopback only)")
	bindDN := flag.String("bind-dn", "", "bind name")
	password := flag.String("password", "", "bind password")
	base := flag.String("base", "", "search base")
	filter := flag.String("filter", "(objectClass=*)", "filter; %d becomes a random index below -n")
	attrs := flag.String("attrs", "", "comma-separated attributes to request")
	n := flag.Int("n", 1, "index range for %d, or how many objects -populate creates")
	conns := flag.Int("c", 1, "connections")
	depth := flag.Int("depth", 1, "requests outstanding per connection (1: wait for each result)")
	dur := flag.Duration("d", 5*time.Second, "duration")
	page := flag.Int("page", 0, "enumerate: each operation is a whole paged search (RFC 2696) with pages of this size")
	populate := flag.String("populate", "", "users or gmsas: create -n objects named bench0… under -base")
	userPW := flag.String("user-password", "Bench-Pass-123!", "password of populated users")
	allow := flag.String("allow", "", "SID allowed to read populated gMSAs' passwords")
	ccache := flag.String("krb5-ccache", "", "bind with Kerberos (SASL GSSAPI, sealed on ldap://) from this ticket cache")
	propagate := flag.String("propagate", "", "another server's URL: change -base's description on -url -n times and time until this one serves each change")
	flag.Parse()

	if *conns < 1 || *conns > 256 || *depth < 1 || *depth > 64 || *dur <= 0 || *dur > 10*time.Minute {
		fmt.Fprintln(os.Stderr, "ldapload: bounds: 1 ≤ -c ≤ 256, 1 ≤ -depth ≤ 64, 0 < -d ≤ 10m")
		os.Exit(2)
	}
	for _, target := range []string{*u, *propagate} {
		if err := loopbackOnly(target); target != "" && err != nil {
			fmt.Fprintln(os.Stderr, "ldapload:", err)
			os.Exit(2)
		}
	}
	dialURL := func(url string) (*ldap.Conn, error) {
		c, err := ldap.DialURL(url, ldap.DialWithTLSConfig(&tls.Config{InsecureSkipVerify: true})) // benchmark peers use self-signed certificates
		if err != nil {
			return nil, err
		}
		if *bindDN != "" {
			if err := c.Bind(*bindDN, *password); err != nil {
				c.Close()
				return nil, err
			}
		}
		return c, nil
	}
	dial := func() (*ldap.Conn, error) { return dialURL(*u) }
	if *propagate != "" {
		if err := doPropagate(dial, func() (*ldap.Conn, error) { return dialURL(*propagate) }, *base, *n); err != nil {
			fmt.Fprintln(os.Stderr, "ldapload:", err)
			os.Exit(1)
		}
		return
	}
	if *populate != "" {
		if err := doPopulate(dial, *populate, *base, *n, *userPW, *allow); err != nil {
			fmt.Fprintln(os.Stderr, "ldapload:", err)
			os.Exit(1)
		}
		return
	}
	var want []string
	var err error
	if *attrs != "" {
		want = strings.Split(*attrs, ",")
	}
	var sasl saslBinder
	if *ccache != "" {
		if sasl, err = kerberos(*u, *ccache); err != nil {
			fmt.Fprintln(os.Stderr, "ldapload:", err)
			os.Exit(2)
		}
	}
	r, err := load(loadConfig{url: *u, bindDN: *bindDN, password: *password, base: *base, filter: *filter,
		attrs: want, n: *n, conns: *conns, depth: *depth, dur: *dur, sasl: sasl, page: *page})
	if err != nil {
		fmt.Fprintln(os.Stderr, "ldapload:", err)
		os.Exit(2)
	}
	fmt.Printf("url=%s c=%d depth=%d ops=%d rate=%.0f/s errors=%d", *u, *conns, *depth, r.ops, r.rate, r.errors)
	if *page > 0 {
		fmt.Printf(" entries=%d secs_per_op=%.3f", r.withAttr, 1/max(r.rate, 1e-9))
	} else if len(want) > 0 {
		fmt.Printf(" with_%s=%d", want[0], r.withAttr)
	}
	if r.firstErr != "" {
		fmt.Printf(" first_error=%q", r.firstErr)
	}
	fmt.Println()
}

type loadConfig struct {
	url, bindDN, password, base, filter string
	attrs                               []string
	n, conns, depth                     int
	page                                int // > 0: each operation enumerates with pages of this size
	dur                                 time.Duration
	sasl                                saslBinder
}

type loadResult struct {
	ops, errors, withAttr int64   // searches done, failures, entries carrying attrs[0] (paged: entries)
	rate                  float64 // searches per second
	firstErr              string
}

// load runs conns connections for dur, each keeping depth searches in flight.
func load(cfg loadConfig) (loadResult, error) {
	watch := ""
	if len(cfg.attrs) > 0 {
		watch = cfg.attrs[0]
	}
	// One encoded SearchRequest per filter variant, built before the clock starts.
	variants := 1
	if strings.Contains(cfg.filter, "%d") {
		variants = cfg.n
	}
	requests := make([][]byte, variants)
	for i := range requests {
		f := cfg.filter
		if variants > 1 {
			f = fmt.Sprintf(f, i)
		}
		op, err := searchOp(cfg.base, f, cfg.attrs)
		if err != nil {
			return loadResult{}, err
		}
		requests[i] = op
	}
	var ops, errs, withAttr atomic.Int64
	var firstErr atomic.Value
	fail := func(err error) {
		errs.Add(1)
		firstErr.CompareAndSwap(nil, err.Error())
	}
	begin := time.Now()
	stop := begin.Add(cfg.dur)
	var wg sync.WaitGroup
	for range cfg.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dialWire(cfg.url, cfg.bindDN, cfg.password, cfg.sasl)
			if err != nil {
				fail(err)
				return
			}
			defer c.nc.Close()
			if cfg.page > 0 {
				for time.Now().Before(stop) || ops.Load() == 0 {
					n, err := c.enumerate(requests[rand.IntN(len(requests))], cfg.page)
					if err != nil {
						fail(err)
						return
					}
					ops.Add(1)
					withAttr.Add(int64(n))
				}
				return
			}
			outstanding := 0
			for ; outstanding < cfg.depth; outstanding++ {
				c.send(requests[rand.IntN(len(requests))])
			}
			for outstanding > 0 {
				resp, err := c.next(watch)
				if err != nil {
					fail(err)
					return
				}
				switch resp.op {
				case 0x64: // SearchResultEntry
					if resp.hasAttr {
						withAttr.Add(1)
					}
				case 0x73: // SearchResultReference
				case 0x65: // SearchResultDone
					outstanding--
					if resp.code == 0 {
						ops.Add(1)
					} else {
						fail(fmt.Errorf("search: result %d %s", resp.code, resp.diag))
					}
					if time.Now().Before(stop) {
						c.send(requests[rand.IntN(len(requests))])
						outstanding++
					}
				default:
					fail(fmt.Errorf("unexpected response [APPLICATION %d]", resp.op&0x1f))
					return
				}
			}
		}()
	}
	wg.Wait()
	r := loadResult{ops: ops.Load(), errors: errs.Load(), withAttr: withAttr.Load()}
	r.rate = float64(r.ops) / time.Since(begin).Seconds()
	if e := firstErr.Load(); e != nil {
		r.firstErr = e.(string)
	}
	return r, nil
}

// kerberos gets one service ticket for the URL's host from the cache; every connection
// then binds with its own authenticator.
func kerberos(rawURL, ccache string) (saslBinder, error) {
	pu, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	kc, err := krbclient.New(krbclient.Options{CCache: ccache}, os.Getenv)
	if err != nil {
		return nil, err
	}
	tkt, key, err := kc.ServiceTicket("ldap/" + strings.ToLower(pu.Hostname()))
	if err != nil {
		return nil, err
	}
	return func(nc net.Conn, isTLS bool) (net.Conn, error) {
		in := &gss.Initiator{Ticket: tkt, SessionKey: key, Client: kc.Principal, Realm: kc.Realm,
			Flags: gss.FlagInteg | gss.FlagConf | gss.FlagSequence, Now: time.Now, Rand: crand.Reader}
		return adclient.SASLBind(nc, isTLS, in, adclient.MechGSSAPI)
	}, nil
}

// loopbackOnly refuses any target outside 127.0.0.0/8 and ::1.
func loopbackOnly(raw string) error {
	pu, err := url.Parse(raw)
	if err != nil {
		return err
	}
	host := pu.Hostname()
	addrs := []string{host}
	if net.ParseIP(host) == nil { // a name (Kerberos needs one): every address it has must be loopback
		if addrs, err = net.LookupHost(host); err != nil {
			return err
		}
	}
	for _, a := range addrs {
		if ip := net.ParseIP(a); ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("target %q is not a loopback address; this tool only loads local test servers", host)
		}
	}
	return nil
}

func doPopulate(dial func() (*ldap.Conn, error), kind, base string, n int, pw, allow string) error {
	c, err := dial()
	if err != nil {
		return err
	}
	defer c.Close()
	var sd []byte
	if kind == "gmsas" {
		s, err := ntsec.ParseSDDL("O:S-1-5-32-544D:(A;;0xf01ff;;;"+allow+")", ntsec.SID{})
		if err != nil {
			return fmt.Errorf("-allow: %w", err)
		}
		sd = s.Bytes()
	}
	start := time.Now()
	for i := range n {
		name := fmt.Sprintf("bench%d", i)
		var req *ldap.AddRequest
		switch kind {
		case "users":
			req = ldap.NewAddRequest("CN="+name+","+base, nil)
			req.Attribute("objectClass", []string{"top", "person", "organizationalPerson", "user"})
			req.Attribute("sAMAccountName", []string{name})
			req.Attribute("userAccountControl", []string{"512"})
			req.Attribute("unicodePwd", []string{adclient.UnicodePwd(pw)})
		case "gmsas":
			req = ldap.NewAddRequest("CN="+name+","+base, nil)
			req.Attribute("objectClass", []string{"msDS-GroupManagedServiceAccount"})
			req.Attribute("sAMAccountName", []string{name + "$"})
			req.Attribute("dNSHostName", []string{name + ".example.test"})
			req.Attribute("userAccountControl", []string{"4096"})
			req.Attribute("msDS-ManagedPasswordInterval", []string{"30"})
			req.Attribute("msDS-GroupMSAMembership", []string{string(sd)})
		default:
			return fmt.Errorf("-populate %q: want users or gmsas", kind)
		}
		if err := c.Add(req); err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultEntryAlreadyExists) {
			return fmt.Errorf("adding %s: %w", name, err)
		}
	}
	el := time.Since(start)
	fmt.Printf("populated %d %s under %s in %s: %.0f adds/s\n", n, kind, base, el.Round(time.Millisecond), float64(n)/el.Seconds())
	return nil
}

// doPropagate changes dn's description on one server n times and, after each change is
// acknowledged, searches the other until it serves the new value: the time a change on
// one server takes to be served by another.
func doPropagate(dialA, dialB func() (*ldap.Conn, error), dn string, n int) error {
	a, err := dialA()
	if err != nil {
		return err
	}
	defer a.Close()
	b, err := dialB()
	if err != nil {
		return err
	}
	defer b.Close()
	var lat []time.Duration
	for i := range n {
		v := fmt.Sprintf("change %d at %d", i, time.Now().UnixNano())
		m := ldap.NewModifyRequest(dn, nil)
		m.Replace("description", []string{v})
		if err := a.Modify(m); err != nil {
			return err
		}
		acked := time.Now()
		for {
			r, err := b.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", []string{"description"}, nil))
			if err != nil {
				return err
			}
			if len(r.Entries) == 1 && r.Entries[0].GetAttributeValue("description") == v {
				break
			}
			if time.Since(acked) > 30*time.Second {
				return fmt.Errorf("change %d not served by the other server after 30 s", i)
			}
		}
		lat = append(lat, time.Since(acked))
	}
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))] }
	fmt.Printf("changes=%d served_by_other_after median=%s p99=%s max=%s\n", n, q(0.5).Round(time.Microsecond), q(0.99).Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond))
	return nil
}
