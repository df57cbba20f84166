// Command ldapload is a bounded LDAP load generator for the benchmarks: N connections,
// each binding once and then searching for a fixed time. It refuses targets outside
// the loopback range. %d in the filter becomes a random index below -n.
//
//	ldapload -url ldaps://127.0.0.1:636 -bind-dn USER -password PW -base DC=example,DC=test \
//	  -filter '(sAMAccountName=bench%d)' -n 2000 -attrs cn,mail -c 4 -d 5s
//
// Populating: -populate users|gmsas creates -n objects named bench0… (users with
// password -user-password; gMSAs allowing -allow SID) over LDAP, against any AD-like DC.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-ldap/ldap/v3"

	"gmsa/internal/adclient"
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
	dur := flag.Duration("d", 5*time.Second, "duration")
	populate := flag.String("populate", "", "users or gmsas: create -n objects named bench0… under -base")
	userPW := flag.String("user-password", "Bench-Pass-123!", "password of populated users")
	allow := flag.String("allow", "", "SID allowed to read populated gMSAs' passwords")
	flag.Parse()

	if err := loopbackOnly(*u); err != nil {
		fmt.Fprintln(os.Stderr, "ldapload:", err)
		os.Exit(2)
	}
	dial := func() (*ldap.Conn, error) {
		c, err := ldap.DialURL(*u, ldap.DialWithTLSConfig(&tls.Config{InsecureSkipVerify: true})) // benchmark peers use self-signed certificates
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
	if *populate != "" {
		if err := doPopulate(dial, *populate, *base, *n, *userPW, *allow); err != nil {
			fmt.Fprintln(os.Stderr, "ldapload:", err)
			os.Exit(1)
		}
		return
	}
	var want []string
	if *attrs != "" {
		want = strings.Split(*attrs, ",")
	}
	var ops, errs, withAttr atomic.Int64
	var firstErr atomic.Value
	stop := time.Now().Add(*dur)
	var wg sync.WaitGroup
	for range *conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dial()
			if err != nil {
				errs.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
				return
			}
			defer c.Close()
			for time.Now().Before(stop) {
				f := *filter
				if strings.Contains(f, "%d") {
					f = fmt.Sprintf(f, rand.IntN(*n))
				}
				r, err := c.Search(ldap.NewSearchRequest(*base, ldap.ScopeWholeSubtree, 0, 0, 0, false, f, want, nil))
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				ops.Add(1)
				if len(want) > 0 && len(r.Entries) > 0 && len(r.Entries[0].GetRawAttributeValue(want[0])) > 0 {
					withAttr.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	rate := float64(ops.Load()) / dur.Seconds()
	fmt.Printf("url=%s c=%d ops=%d rate=%.0f/s errors=%d", *u, *conns, ops.Load(), rate, errs.Load())
	if len(want) > 0 {
		fmt.Printf(" with_%s=%d", want[0], withAttr.Load())
	}
	if e := firstErr.Load(); e != nil {
		fmt.Printf(" first_error=%q", e)
	}
	fmt.Println()
}

// loopbackOnly refuses any target outside 127.0.0.0/8 and ::1.
func loopbackOnly(raw string) error {
	pu, err := url.Parse(raw)
	if err != nil {
		return err
	}
	host := pu.Hostname()
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("target %q is not a loopback address; this tool only loads local test servers", host)
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
	fmt.Printf("populated %d %s under %s\n", n, kind, base)
	return nil
}
