package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/types"

	"gmsa/internal/adclient"
	"gmsa/internal/credspec"
	"gmsa/internal/kds"
	"gmsa/internal/krbclient"
	"gmsa/internal/krbkey"
	"gmsa/internal/locator"
	"gmsa/internal/managedpw"
	"gmsa/internal/ntsec"
)

// run is one doctor run's state: what earlier steps found, for later ones.
type run struct {
	opt    Options
	r      *Report
	res    *locator.Resolver
	c      *adclient.Client // the directory connection
	domain string
	realm  string
	dcHost string // the DC's name
	dcAddr string // the address its ports are probed on
	// the DC's ports: from the locator records, the URL, else AD's defaults
	ldapPort, ldapsPort, kdcPort, dnsPort int
	dnsOnDC                               bool
	probe                                 *krbclient.Probe
	acct                                  *ldap.Entry
	spec                                  *credspec.Spec
	specProblems                          []credspec.Problem
	access                                *adclient.Access
	principal                             string // whose access is examined
	blob                                  *managedpw.Blob
	readBy                                *krbclient.Client // the identity's Kerberos client, when it has one
	gmsaKeys                              []krbkey.KeytabEntry
	tgt                                   *krbclient.Client
	tlsOK                                 bool
}

// Run examines the account and returns every step's finding. It never stops at a
// failure: later steps that depend on a failed one say so and are skipped.
func Run(ctx context.Context, opt Options) *Report {
	opt.defaults()
	d := &run{opt: opt, r: &Report{Account: samName(opt.Account)}, ldapPort: 389, ldapsPort: 636, kdcPort: 88, dnsPort: 53}
	if opt.Credspec != nil {
		d.spec, d.specProblems = credspec.Parse(opt.Credspec)
	}
	d.domain = opt.Domain
	if d.domain == "" && d.spec != nil {
		d.domain = d.spec.DomainJoinConfig.DnsName
	}
	d.locator()
	d.connect()
	if d.c != nil && d.domain == "" {
		d.domain = d.c.DNSName
	}
	d.r.Domain, d.r.DC = d.domain, d.dcHost
	d.ports()
	d.clock()
	d.account()
	d.rootKey()
	d.hostAccess()
	d.channel()
	d.readPassword()
	d.hostTicket()
	d.obtainTGT()
	d.serviceTickets()
	d.credspec()
	if d.c != nil {
		d.c.Close()
	}
	if d.readBy != nil {
		d.readBy.Close()
	}
	if d.tgt != nil {
		d.tgt.Close()
	}
	return d.r
}

// locator: the DC locator's SRV records and the DC's address ([MS-ADTS] 6.3.2.3).
func (d *run) locator() {
	if d.domain == "" {
		d.r.add("dns", Skip, "", "not checked: give --domain (or a credential spec) to check the DC locator records")
		d.fromURL()
		return
	}
	res, err := locator.New(d.opt.DNSServer, d.opt.Timeout)
	if err != nil {
		d.r.add("dns", Fail, "configure a DNS server that serves the domain (the DC's) in /etc/resolv.conf, or give --dns-server", "%v", err)
		d.fromURL()
		return
	}
	d.res = res
	ldapSRV, err := res.SRV("_ldap._tcp.dc._msdcs." + d.domain)
	if err != nil || len(ldapSRV) == 0 {
		d.r.add("dns", Fail, "point this host's DNS at a DC of "+d.domain+" (AD-integrated DNS registers these records; gmsa server: dns.listen)",
			"_ldap._tcp.dc._msdcs.%s via %s: %v", d.domain, res.Server(), orNone(err))
		d.fromURL()
		return
	}
	d.dcHost = strings.TrimSuffix(ldapSRV[0].Target, ".")
	d.ldapPort = int(ldapSRV[0].Port)
	found := []string{fmt.Sprintf("_ldap._tcp.dc._msdcs → %s:%d", d.dcHost, d.ldapPort)}
	var missing []string
	for _, name := range []string{"_kerberos._tcp.", "_kerberos._udp."} {
		srv, err := res.SRV(name + d.domain)
		if err != nil || len(srv) == 0 {
			missing = append(missing, name+d.domain)
			continue
		}
		d.kdcPort = int(srv[0].Port)
		found = append(found, fmt.Sprintf("%s → %s:%d", strings.TrimSuffix(name, "."), strings.TrimSuffix(srv[0].Target, "."), srv[0].Port))
	}
	if len(missing) > 0 {
		d.r.add("dns", Fail, "register the KDC's records (a DC registers them at start; check its DNS registration)",
			"%s resolve; %s do not", strings.Join(found, ", "), strings.Join(missing, ", "))
	} else {
		d.r.add("dns", Pass, "", "%s (via %s)", strings.Join(found, ", "), res.Server())
	}
	if gc, err := res.SRV("_gc._tcp." + d.domain); err == nil && len(gc) > 0 {
		d.r.add("dns.gc", Info, "", "_gc._tcp → %s:%d", strings.TrimSuffix(gc[0].Target, "."), gc[0].Port)
	} else {
		d.r.add("dns.gc", Info, "", "no global catalog record (_gc._tcp.%s): only forest-wide searches need one", d.domain)
	}
	addrs, err := res.Addrs(d.dcHost)
	if err != nil {
		d.r.add("dns.dc", Fail, "add the DC's A record ("+d.dcHost+") to the zone", "%s: %v", d.dcHost, err)
		d.fromURL()
		return
	}
	d.dcAddr = addrs[0]
	d.r.add("dns.dc", Pass, "", "%s → %s", d.dcHost, strings.Join(addrs, ", "))
	if host, port, err := net.SplitHostPort(res.Server()); err == nil && host == d.dcAddr {
		d.dnsOnDC = true
		d.dnsPort, _ = strconv.Atoi(port)
	}
}

// fromURL takes the DC's name and ports from the LDAP URL when DNS did not give them.
func (d *run) fromURL() {
	first, _, _ := strings.Cut(d.opt.LDAP.URL, ",")
	u, err := url.Parse(strings.TrimSpace(first))
	if err != nil || u.Host == "" {
		return
	}
	if d.dcHost == "" {
		d.dcHost = u.Hostname()
	}
	if d.dcAddr == "" {
		d.dcAddr = u.Hostname()
		if net.ParseIP(d.dcAddr) == nil {
			if addrs, err := net.LookupHost(d.dcAddr); err == nil && len(addrs) > 0 {
				d.dcAddr = addrs[0]
			}
		}
	}
	if p, err := strconv.Atoi(u.Port()); err == nil {
		if strings.EqualFold(u.Scheme, "ldaps") {
			d.ldapsPort = p
		} else {
			d.ldapPort = p
		}
	}
}

func orNone(err error) string {
	if err == nil {
		return "no record"
	}
	return err.Error()
}

// connect binds to the directory with the reader's identity.
func (d *run) connect() {
	o := d.opt.LDAP
	if o.URL == "" && o.Domain == "" {
		o.Domain = d.domain
	}
	if o.URL != "" {
		u, _ := url.Parse(strings.Split(o.URL, ",")[0])
		if u != nil && strings.EqualFold(u.Scheme, "ldaps") {
			if p, err := strconv.Atoi(u.Port()); err == nil {
				d.ldapsPort = p
			}
		}
	}
	if d.res != nil {
		o.LookupSRV, o.Resolve = d.lookupSRV, d.resolve
	}
	o.Timeout = d.ldapTimeout()
	c, err := adclient.Dial(o)
	if err != nil {
		if isTimeout(err) {
			d.r.add("ldap", Fail, "check that the address is the DC's LDAP port and that nothing between (a proxy, a firewall) holds the connection",
				"%s accepted the connection but did not answer within %s: %v", o.URL, o.Timeout, err)
			return
		}
		d.r.add("ldap", Fail, "check the DC's address and the credentials given (--server, --user, --password-file or Kerberos)", "%v", err)
		return
	}
	d.c = c
	d.realm = c.Realm
	if d.dcHost == "" {
		d.dcHost = strings.ToLower(c.DCHostName)
	}
	d.r.add("ldap", Pass, "", "bound to %s as %s; domain %s (%s), DC %s", c.URL, o.User, c.DNSName, c.NetBIOS, c.DCHostName)
}

// ldapTimeout bounds each LDAP step: a DC that accepts connections and then says
// nothing is a failure named after a while, not a doctor that hangs.
func (d *run) ldapTimeout() time.Duration { return 5 * d.opt.Timeout }

// resolve finds a host's address through the DNS server the doctor asks, so every
// connection goes where the locator records lead.
func (d *run) resolve(host string) string {
	if strings.EqualFold(host, d.dcHost) && d.dcAddr != "" {
		return d.dcAddr
	}
	if d.res != nil {
		if addrs, err := d.res.Addrs(host); err == nil {
			return addrs[0]
		}
	}
	return ""
}

func (d *run) lookupSRV(service, proto, name string) (string, []*net.SRV, error) {
	srvs, err := d.res.SRV("_" + service + "._" + proto + "." + name)
	if err != nil {
		return "", nil, err
	}
	var out []*net.SRV
	for _, s := range srvs {
		out = append(out, &net.SRV{Target: s.Target, Port: s.Port, Priority: s.Priority, Weight: s.Weight})
	}
	return "", out, nil
}

// ports: the DC's ports the troubleshooting guide lists (53, 88, 389, 636), and those
// it reports (139, 3268, 464).
func (d *run) ports() {
	if d.dcAddr == "" {
		d.r.add("ports", Skip, "", "no DC address: neither DNS nor --server named one")
		return
	}
	type port struct {
		n    int
		what string
		need Status // the status when closed
	}
	ps := []port{{d.kdcPort, "Kerberos", Fail}, {d.ldapPort, "LDAP", Fail}, {d.ldapsPort, "LDAPS", Warn}, {d.dnsPort, "DNS", Warn}}
	if !d.dnsOnDC && d.res != nil {
		ps[3].need = Info // the records came from another server
	}
	var open, closed []string
	worst := Pass
	var fixes []string
	for _, p := range ps {
		addr := net.JoinHostPort(d.dcAddr, strconv.Itoa(p.n))
		if err := tcpOpen(addr, d.opt.Timeout); err != nil {
			closed = append(closed, fmt.Sprintf("%d/tcp (%s) %s", p.n, p.what, shortNetErr(err)))
			if p.need == Fail || p.need == Warn && worst == Pass {
				worst = p.need
			}
			if p.need != Info {
				fixes = append(fixes, fmt.Sprintf("TCP and UDP %d", p.n))
			}
			continue
		}
		open = append(open, fmt.Sprintf("%d/tcp (%s)", p.n, p.what))
	}
	fix := ""
	if len(fixes) > 0 {
		fix = "open " + strings.Join(fixes, ", ") + " from this host to " + d.dcAddr + " (firewall, security group, or the DC's listener)"
	}
	ev := d.dcAddr + ": open " + strings.Join(open, ", ")
	if len(closed) > 0 {
		ev += "; closed " + strings.Join(closed, ", ")
	}
	d.r.add("ports", worst, fix, "%s", ev)
	var info []string
	for _, p := range []struct {
		n    int
		what string
	}{{139, "NetLogon"}, {3268, "global catalog"}, {464, "kpasswd"}} {
		state := "open"
		if tcpOpen(net.JoinHostPort(d.dcAddr, strconv.Itoa(p.n)), d.opt.Timeout) != nil {
			state = "closed"
		}
		info = append(info, fmt.Sprintf("%d/tcp (%s) %s", p.n, p.what, state))
	}
	d.r.add("ports.other", Info, "", "%s", strings.Join(info, ", "))
}

// isTimeout says whether err is a deadline that passed: a peer that said nothing.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() ||
		strings.Contains(err.Error(), "deadline exceeded") || strings.Contains(err.Error(), "i/o timeout")
}

func shortNetErr(err error) string {
	if isTimeout(err) {
		return "no answer (timed out)"
	}
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	return s
}

// kdcAddr is the KDC's host:port.
func (d *run) kdcAddr() string { return net.JoinHostPort(d.dcAddr, strconv.Itoa(d.kdcPort)) }

// clock: the KDC's time from its answer to an AS-REQ without pre-authentication
// (stime of the KRB-ERROR), against this host's; Kerberos tolerates 5 minutes.
func (d *run) clock() {
	if d.dcAddr == "" || d.realm == "" && d.domain == "" {
		d.r.add("clock", Skip, "", "no DC to ask")
		return
	}
	realm := d.realm
	if realm == "" {
		realm = strings.ToUpper(d.domain)
	}
	d.realm = realm
	p, err := krbclient.ProbeKDC(d.kdcAddr(), realm, samName(d.opt.Account), "udp", d.opt.Timeout, d.opt.Now)
	var udpErr error
	if err != nil {
		udpErr = err
		p, err = krbclient.ProbeKDC(d.kdcAddr(), realm, samName(d.opt.Account), "tcp", d.opt.Timeout, d.opt.Now)
	}
	if err != nil {
		d.r.add("kdc", Fail, "open TCP and UDP "+strconv.Itoa(d.kdcPort)+" to the DC and check that its KDC runs", "no answer from the KDC at %s: %v", d.kdcAddr(), err)
		d.r.add("clock", Skip, "", "the KDC did not answer")
		return
	}
	d.probe = p
	answer := "an AS-REP"
	if p.Code != 0 {
		answer = krbclient.ErrorName(p.Code)
	}
	if udpErr != nil {
		d.r.add("kdc", Warn, "open UDP "+strconv.Itoa(d.kdcPort)+" too: Windows and MIT clients try UDP first",
			"the KDC at %s answers over TCP only (%s for %s); over UDP: %v", d.kdcAddr(), answer, samName(d.opt.Account), udpErr)
	} else {
		d.r.add("kdc", Pass, "", "the KDC at %s answers over %s (%s): %s for %s", d.kdcAddr(), p.Transport, p.RTT.Round(time.Microsecond), answer, samName(d.opt.Account))
	}
	local := d.opt.Now().Add(-p.RTT / 2)
	skew := p.STime.Sub(local)
	abs := skew
	if abs < 0 {
		abs = -abs
	}
	dir := "ahead of"
	if skew < 0 {
		dir = "behind"
	}
	ev := fmt.Sprintf("the DC's clock is %s %s this host's (KDC time %s)", abs.Round(time.Second), dir, p.STime.UTC().Format(time.RFC3339))
	switch {
	case abs > 5*time.Minute:
		d.r.add("clock", Fail, "synchronize this host's clock with the DC (chrony or systemd-timesyncd pointed at the DC; Windows: w32tm /resync)",
			"%s: more than Kerberos's 5-minute tolerance, tickets fail with KRB_AP_ERR_SKEW", ev)
	case abs > time.Minute:
		d.r.add("clock", Warn, "synchronize this host's clock with the DC", "%s", ev)
	default:
		d.r.add("clock", Pass, "", "%s", ev)
	}
}

// account: the gMSA exists, is one, is enabled, has WORKSTATION_TRUST_ACCOUNT, a DNS
// host name, SPNs no other account holds, no namesake without $, and enctypes this host
// and the KDC share.
func (d *run) account() {
	if d.c == nil {
		d.r.add("account", Skip, "", "no directory connection")
		return
	}
	sam := samName(d.opt.Account)
	name := strings.TrimSuffix(sam, "$")
	es, err := d.c.Search("", "(sAMAccountName="+ldap.EscapeFilter(sam)+")", "objectClass", "userAccountControl", "dNSHostName",
		"servicePrincipalName", "msDS-SupportedEncryptionTypes", "msDS-ManagedPasswordId", "whenCreated", "msDS-KeyVersionNumber", "sAMAccountName", "objectSid")
	if err != nil {
		d.r.add("account", Fail, "", "searching for %s: %v", sam, err)
		return
	}
	if len(es) == 0 {
		d.r.add("account", Fail, fmt.Sprintf("create it: gmsa account new %s --dns-host-name %s.%s --principals-allowed GROUP (New-ADServiceAccount)", name, strings.ToLower(name), d.domain),
			"no account %s in %s", sam, d.domain)
		return
	}
	e := es[0]
	d.acct = e
	if !hasValue(e.GetAttributeValues("objectClass"), "msDS-GroupManagedServiceAccount") {
		d.r.add("account", Fail, "use a gMSA (gmsa account new): only a gMSA's password is managed by the DCs",
			"%s is a %s, not a gMSA", sam, last(e.GetAttributeValues("objectClass")))
		d.acct = nil
		return
	}
	uac, _ := strconv.ParseUint(e.GetAttributeValue("userAccountControl"), 10, 32)
	if uac&0x2 != 0 {
		d.r.add("account.enabled", Fail, fmt.Sprintf("gmsa account set %s --enable (Enable-ADAccount)", name), "%s is disabled (userAccountControl 0x%x): it cannot log on", sam, uac)
	} else {
		d.r.add("account.enabled", Pass, "", "%s exists in %s and is enabled", sam, d.domain)
	}
	if uac&0x1000 == 0 {
		fixed := uac&0x7FFFC5FF | 0x1000
		d.r.add("account.flags", Fail, fmt.Sprintf("set userAccountControl to %d ((uac & 0x7FFFC5FF) | 0x1000): ldapmodify replace: userAccountControl on %s", fixed, e.DN),
			"userAccountControl 0x%x lacks WORKSTATION_TRUST_ACCOUNT (0x1000): NETLOGON in the container cannot reach the DC", uac)
	} else {
		d.r.add("account.flags", Pass, "", "userAccountControl 0x%x has WORKSTATION_TRUST_ACCOUNT", uac)
	}
	if h := e.GetAttributeValue("dNSHostName"); h == "" {
		d.r.add("account.dnshostname", Warn, fmt.Sprintf("gmsa account set %s --dns-host-name %s.%s", name, strings.ToLower(name), d.domain), "%s has no dNSHostName", sam)
	} else {
		d.r.add("account.dnshostname", Pass, "", "dNSHostName %s", h)
	}
	d.spns(e, sam)
	d.namesakes(name, sam)
	d.enctypes(e, name)
}

func (d *run) spns(e *ldap.Entry, sam string) {
	spns := e.GetAttributeValues("servicePrincipalName")
	if len(spns) == 0 {
		d.r.add("account.spn", Warn, fmt.Sprintf("gmsa account set %s --add-spn host/%s", strings.TrimSuffix(sam, "$"), e.GetAttributeValue("dNSHostName")),
			"%s has no SPN: clients cannot get tickets for the app it runs", sam)
		return
	}
	var dups []string
	for _, spn := range spns {
		others, err := d.c.Search("", "(servicePrincipalName="+ldap.EscapeFilter(spn)+")", "sAMAccountName")
		if err != nil {
			continue
		}
		for _, o := range others {
			if !strings.EqualFold(o.DN, e.DN) {
				dups = append(dups, fmt.Sprintf("%s also on %s", spn, o.GetAttributeValue("sAMAccountName")))
			}
		}
	}
	if len(dups) > 0 {
		d.r.add("account.spn", Fail, "remove the duplicate from the other account (setspn -D SPN ACCOUNT, or ldapmodify delete: servicePrincipalName)",
			"%s: the KDC cannot tell which key to use (KDC_ERR_PRINCIPAL_NOT_UNIQUE)", strings.Join(dups, "; "))
		return
	}
	d.r.add("account.spn", Pass, "", "%d SPN(s), unique in the domain: %s", len(spns), strings.Join(spns, ", "))
}

func (d *run) namesakes(name, sam string) {
	es, err := d.c.Search("", "(sAMAccountName="+ldap.EscapeFilter(name)+")", "sAMAccountName", "objectClass")
	if err != nil {
		d.r.add("account.name", Warn, "", "could not search for namesakes: %v", err)
		return
	}
	if len(es) > 0 {
		d.r.add("account.name", Fail, "rename or remove the other account: lookups of "+name+" find it instead of the gMSA",
			"a %s named %s exists beside %s (%s)", last(es[0].GetAttributeValues("objectClass")), es[0].GetAttributeValue("sAMAccountName"), sam, es[0].DN)
		return
	}
	d.r.add("account.name", Pass, "", "no other account is named %s", name)
}

// enctypes: msDS-SupportedEncryptionTypes ([MS-KILE] 2.2.7) against the host side's.
func (d *run) enctypes(e *ldap.Entry, name string) {
	bits := map[int32]uint64{23: 0x4, 17: 0x8, 18: 0x10}
	host := map[uint64]bool{}
	var hostNames []string
	for _, et := range d.opt.Enctypes {
		host[bits[et]] = true
		hostNames = append(hostNames, krbkey.EtypeName(et))
	}
	raw := e.GetAttributeValue("msDS-SupportedEncryptionTypes")
	if raw == "" {
		d.r.add("account.enctypes", Warn, fmt.Sprintf("gmsa account set %s --enctypes aes128,aes256", name),
			"msDS-SupportedEncryptionTypes is not set: the KDC uses the domain's default, RC4 on older DCs")
		return
	}
	v, _ := strconv.ParseInt(raw, 10, 64)
	var shared, has []string
	for _, et := range []int32{18, 17, 23} {
		if uint64(v)&bits[et] != 0 {
			has = append(has, krbkey.EtypeName(et))
			if host[bits[et]] {
				shared = append(shared, krbkey.EtypeName(et))
			}
		}
	}
	if len(shared) == 0 {
		d.r.add("account.enctypes", Fail, fmt.Sprintf("gmsa account set %s --enctypes aes128,aes256 (Set-ADServiceAccount -KerberosEncryptionType AES128,AES256)", name),
			"msDS-SupportedEncryptionTypes 0x%x (%s) shares nothing with this host's %s", v, strings.Join(orList(has), ", "), strings.Join(hostNames, ", "))
		return
	}
	if d.probe != nil && len(d.probe.Etypes) > 0 {
		var kdc []string
		match := false
		for _, ei := range d.probe.Etypes {
			kdc = append(kdc, krbkey.EtypeName(ei.EType))
			if host[bits[ei.EType]] {
				match = true
			}
		}
		if !match {
			d.r.add("account.enctypes", Fail, fmt.Sprintf("gmsa account set %s --enctypes aes128,aes256, and check the domain's default enctypes", name),
				"the KDC offers %s for %s, none of this host's %s", strings.Join(kdc, ", "), samName(name), strings.Join(hostNames, ", "))
			return
		}
	}
	d.r.add("account.enctypes", Pass, "", "msDS-SupportedEncryptionTypes 0x%x: %s shared with this host", v, strings.Join(shared, ", "))
}

func orList(s []string) []string {
	if len(s) == 0 {
		return []string{"none this host knows"}
	}
	return s
}

func hasValue(vs []string, want string) bool {
	for _, v := range vs {
		if strings.EqualFold(v, want) {
			return true
		}
	}
	return false
}

func last(vs []string) string {
	if len(vs) == 0 {
		return "object"
	}
	return vs[len(vs)-1]
}

// rootKey: a KDS root key exists and was usable when the account's first password was
// made; the account's password id names a key that still exists.
func (d *run) rootKey() {
	if d.c == nil {
		d.r.add("rootkey", Skip, "", "no directory connection")
		return
	}
	base := "CN=Master Root Keys,CN=Group Key Distribution Service,CN=Services," + d.c.ConfigDN
	r, err := d.c.Conn.Search(ldap.NewSearchRequest(base, ldap.ScopeSingleLevel, 0, 0, 0, false, "(objectClass=msKds-ProvRootKey)",
		[]string{"cn", "msKds-UseStartTime", "msKds-CreateTime"}, nil))
	if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
		d.r.add("rootkey", Warn, "run the doctor with an identity that may read the configuration partition (a Domain Admin)", "cannot list KDS root keys: %v", err)
		return
	}
	type key struct {
		id    string
		usage time.Time
	}
	var keys []key
	if r != nil {
		for _, e := range r.Entries {
			ft, err := strconv.ParseInt(e.GetAttributeValue("msKds-UseStartTime"), 10, 64)
			if err != nil {
				continue
			}
			keys = append(keys, key{id: e.GetAttributeValue("cn"), usage: ntsec.FileTime(ft).Time()})
		}
	}
	now := d.opt.Now()
	if len(keys) == 0 {
		ev := fmt.Sprintf("no KDS root key in %s: no gMSA password can be derived", d.domain)
		if d.acct != nil {
			if id, err := kds.ParsePasswordID(d.acct.GetRawAttributeValue("msDS-ManagedPasswordId")); err == nil {
				ev += fmt.Sprintf("; %s's passwords derive from root key %s, which no longer exists", samName(d.opt.Account), id.RootKeyID)
			}
		}
		d.r.add("rootkey", Fail, "gmsa kds add --effective-immediately (Add-KdsRootKey -EffectiveImmediately; DCs use it after 10 hours), or restore the removed key from a backup", "%s", ev)
		return
	}
	var usable []key
	next := keys[0]
	for _, k := range keys {
		if !k.usage.After(now) {
			usable = append(usable, k)
		}
		if k.usage.Before(next.usage) {
			next = k
		}
	}
	if len(usable) == 0 {
		d.r.add("rootkey", Fail, fmt.Sprintf("wait until %s, when the DCs start using it (in a lab: gmsa kds add --effective-time with a past time)", next.usage.UTC().Format(time.RFC3339)),
			"the only root key(s) start in the future: %s is usable from %s (in %s)", next.id, next.usage.UTC().Format(time.RFC3339), next.usage.Sub(now).Round(time.Minute))
		return
	}
	if d.acct == nil {
		d.r.add("rootkey", Pass, "", "%d usable root key(s), the first %s since %s", len(usable), usable[0].id, usable[0].usage.UTC().Format(time.RFC3339))
		return
	}
	raw := d.acct.GetRawAttributeValue("msDS-ManagedPasswordId")
	created, _ := adclient.ParseGeneralizedTime(d.acct.GetAttributeValue("whenCreated"))
	if len(raw) == 0 {
		d.r.add("rootkey", Pass, "", "%d usable root key(s); %s has no msDS-ManagedPasswordId yet (made at its first read)", len(usable), samName(d.opt.Account))
		return
	}
	id, err := kds.ParsePasswordID(raw)
	if err != nil {
		d.r.add("rootkey", Fail, "", "%s's msDS-ManagedPasswordId does not decode: %v", samName(d.opt.Account), err)
		return
	}
	for _, k := range keys {
		if strings.EqualFold(k.id, id.RootKeyID.String()) {
			if !created.IsZero() && k.usage.After(created) {
				d.r.add("rootkey", Fail, "recreate the gMSA now that the key is usable (its first password was made before)",
					"root key %s became usable at %s, after %s was created (%s)", k.id, k.usage.UTC().Format(time.RFC3339), samName(d.opt.Account), created.UTC().Format(time.RFC3339))
				return
			}
			d.r.add("rootkey", Pass, "", "the account's passwords derive from root key %s, usable since %s", k.id, k.usage.UTC().Format(time.RFC3339))
			return
		}
	}
	var ids []string
	for _, k := range keys {
		ids = append(ids, k.id)
	}
	d.r.add("rootkey", Fail, "restore the root key from a backup (gmsa restore), or recreate the gMSA under a current key",
		"the account's passwords derive from root key %s, which no longer exists (keys: %s)", id.RootKeyID, strings.Join(ids, ", "))
}

// identityName is the principal the identity logs on as, for the access check.
func (d *run) identityName() string {
	if d.opt.Host != "" {
		return d.opt.Host
	}
	id := d.opt.Identity
	switch {
	case id == nil:
		return ""
	case id.Kerberos != nil && d.readBy != nil:
		return d.readBy.Principal.PrincipalNameString()
	case id.Kerberos != nil && id.Kerberos.Principal != "":
		return strings.Split(id.Kerberos.Principal, "@")[0]
	}
	return id.User
}

// hostAccess: may the host retrieve the password, through which entry and groups.
func (d *run) hostAccess() {
	if d.opt.Identity != nil && d.opt.Identity.Kerberos != nil {
		d.loginIdentity()
	}
	d.principal = d.identityName()
	if d.principal == "" {
		d.r.add("access", Skip, "", "give --host NAME$ or an identity to check who may retrieve the password")
		return
	}
	if d.c == nil || d.acct == nil {
		d.r.add("access", Skip, "", "no account to check")
		return
	}
	acc, err := d.c.MayRetrieve(samName(d.opt.Account), d.principal)
	if err != nil {
		d.r.add("access", Fail, "", "evaluating %s's access: %v", d.principal, err)
		return
	}
	d.access = &acc
	name := strings.TrimSuffix(samName(d.opt.Account), "$")
	switch {
	case acc.PrincipalMissing:
		d.r.add("access", Fail, "join the host to the domain (adcli join, or gmsa computer new) or name the right account", "%s", acc.Reason)
	case acc.Granted:
		d.r.add("access", Pass, "", "%s may retrieve the password of %s: %s", d.principal, samName(d.opt.Account), acc.Reason)
	default:
		fix := fmt.Sprintf("gmsa account set %s --principals-allowed %s", name, strings.Join(append(acc.Allowed, d.principal), ","))
		if g := firstGroup(acc.Allowed); g != "" {
			fix = fmt.Sprintf("gmsa group add-member '%s' %s (Add-ADGroupMember), then give the host a new ticket (Linux: kdestroy; kinit -k; Windows: klist purge -li 0x3e7 or restart)", g, d.principal)
		}
		d.r.add("access", Fail, fix, "%s may not retrieve the password of %s: %s", d.principal, samName(d.opt.Account), acc.Reason)
	}
}

// firstGroup is the first allowed name that is a group (not an account NAME$).
func firstGroup(names []string) string {
	for _, n := range names {
		if !strings.HasSuffix(n, "$") && !strings.HasPrefix(n, "S-1-") {
			return n
		}
	}
	return ""
}

// loginIdentity logs the Kerberos identity on (keytab or cache).
func (d *run) loginIdentity() {
	ko := *d.opt.Identity.Kerberos
	if ko.Realm == "" {
		ko.Realm = d.realm
	}
	getenv := d.opt.Getenv
	if len(ko.KDCs) == 0 && ko.Config == "" && getenv("KRB5_CONFIG") == "" && d.dcAddr != "" {
		ko.KDCs = []string{d.kdcAddr()}
	}
	kc, err := krbclient.New(ko, getenv)
	if err != nil {
		d.r.add("identity", Fail, "check the keytab or ticket cache (klist -k, klist), and the host's clock", "%v", err)
		return
	}
	d.readBy = kc
	d.r.add("identity", Pass, "", "logged on as %s", kc.Name())
}

// channel: an encrypted channel to the DC: LDAPS, StartTLS, or a sealed Kerberos bind.
func (d *run) channel() {
	if d.dcHost == "" {
		d.r.add("channel", Skip, "", "no DC")
		return
	}
	tc, err := d.tlsConfig()
	if err != nil {
		d.r.add("channel", Fail, "", "%v", err)
		return
	}
	addrHost := d.dcAddr
	if addrHost == "" {
		addrHost = d.dcHost
	}
	var got []string
	var errs []string
	dialer := &net.Dialer{Timeout: d.opt.Timeout}
	if c, err := tls.DialWithDialer(dialer, "tcp", net.JoinHostPort(addrHost, strconv.Itoa(d.ldapsPort)), tc); err == nil {
		got = append(got, fmt.Sprintf("LDAPS on %d (%s)", d.ldapsPort, tls.VersionName(c.ConnectionState().Version)))
		c.Close()
	} else {
		errs = append(errs, fmt.Sprintf("LDAPS on %d: %s", d.ldapsPort, shortNetErr(err)))
	}
	if l, err := ldap.DialURL("ldap://"+net.JoinHostPort(addrHost, strconv.Itoa(d.ldapPort)), ldap.DialWithDialer(dialer)); err == nil {
		l.SetTimeout(d.opt.Timeout)
		if err := l.StartTLS(tc); err == nil {
			got = append(got, fmt.Sprintf("StartTLS on %d", d.ldapPort))
		} else {
			errs = append(errs, fmt.Sprintf("StartTLS on %d: %s", d.ldapPort, shortNetErr(err)))
		}
		l.Close()
	} else {
		errs = append(errs, fmt.Sprintf("LDAP on %d: %s", d.ldapPort, shortNetErr(err)))
	}
	d.tlsOK = len(got) > 0
	kerberos := d.readBy != nil
	switch {
	case len(got) > 0:
		ev := strings.Join(got, ", ") + ", certificate verified for " + tc.ServerName
		if tc.InsecureSkipVerify {
			ev = strings.Join(got, ", ") + ", certificate NOT verified (--insecure-skip-verify)"
		}
		if len(errs) > 0 {
			ev += "; " + strings.Join(errs, "; ")
		}
		d.r.add("channel", Pass, "", "%s", ev)
	case kerberos:
		d.r.add("channel", Warn, "trust the DC's CA (--ca-file, or the system store) for TLS",
			"no TLS channel (%s): only a sealed Kerberos bind can carry the password", strings.Join(errs, "; "))
	default:
		d.r.add("channel", Fail, "trust the DC's CA (--ca-file, or the system store), or read with Kerberos (--identity-keytab: a sealed bind)",
			"no encrypted channel to the DC: %s; the DC hands msDS-ManagedPassword only over an encrypted one", strings.Join(errs, "; "))
	}
}

func (d *run) tlsConfig() (*tls.Config, error) {
	tc := &tls.Config{ServerName: d.dcHost, InsecureSkipVerify: d.opt.LDAP.Insecure} //nolint:gosec // only when asked, for labs
	if d.opt.LDAP.CAFile != "" {
		pem, err := os.ReadFile(d.opt.LDAP.CAFile)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate", d.opt.LDAP.CAFile)
		}
	}
	return tc, nil
}

// readPassword reads msDS-ManagedPassword as the identity.
func (d *run) readPassword() {
	id := d.opt.Identity
	sam := samName(d.opt.Account)
	if id == nil {
		d.r.add("password", Skip, "", "give an identity (--identity-keytab, --identity-ccache or --identity-user) to read the password as the host")
		return
	}
	if d.acct == nil {
		d.r.add("password", Skip, "", "no account")
		return
	}
	if id.Kerberos != nil && d.readBy == nil {
		d.r.add("password", Skip, "", "the identity did not log on")
		return
	}
	o := d.opt.LDAP
	o.LookupSRV, o.Resolve, o.Timeout = nil, d.resolve, d.ldapTimeout()
	how := ""
	if d.readBy != nil {
		o.Kerberos, o.User, o.Password = d.readBy, d.readBy.Name(), ""
		o.URL = "ldap://" + net.JoinHostPort(d.dcHost, strconv.Itoa(d.ldapPort))
		how = "a sealed Kerberos bind"
	} else {
		o.User, o.Password = id.User, id.Password
		o.URL = "ldaps://" + net.JoinHostPort(d.dcHost, strconv.Itoa(d.ldapsPort))
		if !d.tlsOK {
			o.URL = "ldap://" + net.JoinHostPort(d.dcHost, strconv.Itoa(d.ldapPort))
		}
		how = "a simple bind over TLS"
	}
	c, err := adclient.Dial(o)
	if err != nil && d.readBy != nil && d.tlsOK { // no plain LDAP port: Kerberos over LDAPS
		o.URL = "ldaps://" + net.JoinHostPort(d.dcHost, strconv.Itoa(d.ldapsPort))
		how = "a Kerberos bind over LDAPS"
		c, err = adclient.Dial(o)
	}
	if err != nil {
		d.r.add("password", Fail, "check the identity's credentials and the channel above", "binding as %s: %v", o.User, err)
		return
	}
	defer c.Close()
	e, err := c.Find(sam, "msDS-ManagedPassword")
	if err != nil {
		d.r.add("password", Fail, "", "reading %s as %s: %v", sam, o.User, err)
		return
	}
	raw := e.GetRawAttributeValue("msDS-ManagedPassword")
	if len(raw) == 0 {
		fix := "allow the host (see access above)"
		if st, ok := d.r.Step("rootkey"); ok && st.Status == Fail {
			fix = "see rootkey above: without its root key no DC can derive the password"
		} else if d.access != nil && d.access.Granted {
			fix = "the DC decides from the groups in the identity's ticket: get a new one (see host.ticket)"
		}
		d.r.add("password", Fail, fix, "the DC returned no msDS-ManagedPassword to %s over %s", o.User, how)
		return
	}
	b, err := managedpw.Decode(raw)
	if err != nil {
		d.r.add("password", Fail, "", "the DC's msDS-ManagedPassword does not decode: %v", err)
		return
	}
	d.blob = b
	ev := fmt.Sprintf("%s read a %d-byte password over %s", o.User, len(b.Current), how)
	if b.Previous != nil {
		ev += ", with the previous one"
	}
	if b.QueryInterval > 0 {
		ev += fmt.Sprintf("; it changes in %s", (time.Duration(b.QueryInterval) * 100).Round(time.Minute))
	}
	d.r.add("password", Pass, "", "%s", ev)
}

// hostTicket: a host's ticket carries the groups it had when the KDC issued it; one
// older than the membership that allows the host lacks that group.
func (d *run) hostTicket() {
	if d.readBy == nil || d.readBy.TGTAuthTime().IsZero() {
		return // a fresh logon (keytab, password) carries today's groups
	}
	auth := d.readBy.TGTAuthTime()
	if d.access == nil || !d.access.Granted || d.access.Since.IsZero() {
		d.r.add("host.ticket", Info, "", "the identity's ticket was issued at %s", auth.UTC().Format(time.RFC3339))
		return
	}
	since := d.access.Since
	if !auth.After(since) { // both in whole seconds: the same second cannot show which came first
		st := Warn
		if d.blob == nil {
			st = Fail
		}
		d.r.add("host.ticket", st, fmt.Sprintf("give the host a new ticket: Linux kdestroy; kinit -k %s (Windows: klist purge -li 0x3e7, or restart the computer)", d.principal),
			"%s's ticket was issued at %s, before its membership that allows it (%s) was made at %s: the ticket lacks that group",
			d.principal, auth.UTC().Format(time.RFC3339), strings.Join(d.access.Chain, " → "), since.UTC().Format(time.RFC3339))
		return
	}
	d.r.add("host.ticket", Pass, "", "the identity's ticket (%s) is newer than the membership that allows it (%s)", auth.UTC().Format(time.RFC3339), since.UTC().Format(time.RFC3339))
}

// obtainTGT logs on as the gMSA with the password read: the keys of its kvno from the
// salt the KDC gave in ETYPE-INFO2.
func (d *run) obtainTGT() {
	sam := samName(d.opt.Account)
	if d.blob == nil {
		d.r.add("tgt", Skip, "", "no password read")
		return
	}
	kvno := uint32(1)
	if v, err := strconv.ParseUint(d.acct.GetAttributeValue("msDS-KeyVersionNumber"), 10, 32); err == nil && v > 0 {
		kvno = uint32(v)
	}
	salt := krbkey.ComputerSalt(d.realm, sam, d.domain)
	var etypes []int32
	offered := map[int32]bool{}
	if d.probe != nil {
		for _, ei := range d.probe.Etypes {
			offered[ei.EType] = true
			if ei.Salt != "" && ei.EType != 23 {
				salt = ei.Salt
			}
		}
	}
	for _, et := range d.opt.Enctypes {
		if len(offered) == 0 || offered[et] {
			etypes = append(etypes, et)
		}
	}
	if len(etypes) == 0 {
		d.r.add("tgt", Fail, "see account.enctypes", "the KDC offers no enctype this host uses")
		return
	}
	kt := &krbkey.Keytab{}
	add := func(pw []byte, v uint32) error {
		keys, err := krbkey.AccountKeys(pw, salt, etypes)
		if err != nil {
			return err
		}
		for _, k := range keys {
			kt.Entries = append(kt.Entries, krbkey.KeytabEntry{Principal: krbkey.Principal{Realm: d.realm, Components: []string{sam}, NameType: 1},
				Timestamp: uint32(d.opt.Now().Unix()), KVNO: v, Key: k})
		}
		return nil
	}
	if err := add(d.blob.Current, kvno); err != nil {
		d.r.add("tgt", Fail, "", "deriving keys: %v", err)
		return
	}
	d.gmsaKeys = kt.Entries
	b, err := kt.Marshal()
	if err != nil {
		d.r.add("tgt", Fail, "", "%v", err)
		return
	}
	getenv := func(k string) string {
		if k == "KRB5_CONFIG" || k == "KRB5CCNAME" {
			return ""
		}
		return d.opt.Getenv(k)
	}
	kc, err := krbclient.New(krbclient.Options{KeytabData: b, Principal: sam + "@" + d.realm, Realm: d.realm, KDCs: []string{d.kdcAddr()}}, getenv)
	if err != nil {
		fix := ""
		if strings.Contains(err.Error(), "PREAUTH_FAILED") {
			fix = "the password read does not open the KDC's key: a rotation in progress or a DC that has not replicated it; retry, then compare msDS-KeyVersionNumber on each DC"
		}
		d.r.add("tgt", Fail, fix, "no TGT for %s@%s: %v", sam, d.realm, err)
		return
	}
	d.tgt = kc
	d.r.add("tgt", Pass, "", "TGT for %s@%s with the password read (kvno %d, %s)", sam, d.realm, kvno, etypeNames(etypes))
}

func etypeNames(ets []int32) string {
	var out []string
	for _, e := range ets {
		out = append(out, krbkey.EtypeName(e))
	}
	return strings.Join(out, ", ")
}

// serviceTickets: a ticket for each SPN, opened with the gMSA's key, proves clients
// reach the app with tickets it can read.
func (d *run) serviceTickets() {
	if d.acct == nil {
		return
	}
	spns := d.acct.GetAttributeValues("servicePrincipalName")
	if len(spns) == 0 {
		return
	}
	kc := d.tgt
	if kc == nil {
		kc = d.readBy
	}
	if kc == nil {
		d.r.add("spn.tickets", Skip, "", "no TGT to ask with")
		return
	}
	var ok, bad []string
	for _, spn := range spns {
		tkt, _, err := kc.ServiceTicket(spn)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s: %v", spn, err))
			continue
		}
		if d.gmsaKeys == nil {
			ok = append(ok, spn)
			continue
		}
		opened := false
		for _, e := range d.gmsaKeys {
			if e.Key.Etype != tkt.EncPart.EType || (tkt.EncPart.KVNO != 0 && uint32(tkt.EncPart.KVNO) != e.KVNO) {
				continue
			}
			if _, err := crypto.DecryptEncPart(tkt.EncPart, types.EncryptionKey{KeyType: e.Key.Etype, KeyValue: e.Key.Value}, keyusage.KDC_REP_TICKET); err == nil {
				opened = true
			}
		}
		if !opened {
			bad = append(bad, fmt.Sprintf("%s: the ticket (%s, kvno %d) does not open with %s's key", spn, krbkey.EtypeName(tkt.EncPart.EType), tkt.EncPart.KVNO, samName(d.opt.Account)))
			continue
		}
		ok = append(ok, spn+" ("+krbkey.EtypeName(tkt.EncPart.EType)+")")
	}
	if len(bad) > 0 {
		d.r.add("spn.tickets", Fail, "check that each SPN is on this gMSA only (account.spn) and that the KDC shares an enctype with it", "%s", strings.Join(bad, "; "))
		return
	}
	what := "service tickets for " + strings.Join(ok, ", ")
	if d.gmsaKeys != nil {
		what += ", each opened with the gMSA's key"
	}
	d.r.add("spn.tickets", Pass, "", "%s", what)
}

// credspec: the spec's own problems, then against the directory.
func (d *run) credspec() {
	if d.opt.Credspec == nil {
		return
	}
	name := d.opt.CredspecName
	var fatal []string
	var warns []string
	for _, p := range d.specProblems {
		if p.Fatal {
			fatal = append(fatal, p.Field+": "+p.Message)
		} else {
			warns = append(warns, p.Field+": "+p.Message)
		}
	}
	if d.spec != nil {
		for _, p := range d.spec.Lint() {
			if p.Fatal {
				fatal = append(fatal, p.Field+": "+p.Message)
			} else {
				warns = append(warns, p.Field+": "+p.Message)
			}
		}
		if d.c != nil {
			ps, err := credspec.Check(clientDirectory{d.c}, d.spec, d.principalForSpec())
			if err != nil {
				fatal = append(fatal, err.Error())
			}
			for _, p := range ps {
				fatal = append(fatal, p.Field+": "+p.Message)
			}
		}
	}
	fatal, warns = dedupe(fatal), dedupe(warns)
	switch {
	case len(fatal) > 0:
		d.r.add("credspec", Fail, fmt.Sprintf("regenerate it from the directory: gmsa credspec new --account %s --out %s --force", strings.TrimSuffix(samName(d.opt.Account), "$"), name),
			"%s: %s", name, strings.Join(fatal, "; "))
	case len(warns) > 0:
		d.r.add("credspec", Warn, "", "%s: %s", name, strings.Join(warns, "; "))
	default:
		d.r.add("credspec", Pass, "", "%s matches the directory", name)
	}
}

func (d *run) principalForSpec() string {
	if d.access != nil && !d.access.PrincipalMissing {
		return d.principal
	}
	return ""
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// clientDirectory shows a DC's directory to credspec.Check.
type clientDirectory struct{ c *adclient.Client }

func (cd clientDirectory) Domain() (credspec.Domain, error) {
	out := credspec.Domain{SID: cd.c.DomainSID.String(), DNSName: cd.c.DNSName, NetBIOS: cd.c.NetBIOS}
	if !cd.c.DomainGUID.IsZero() {
		out.GUID = cd.c.DomainGUID.String()
	}
	return out, nil
}

func (cd clientDirectory) Account(name string) (bool, string, bool, error) {
	es, err := cd.c.Search("", "(sAMAccountName="+ldap.EscapeFilter(name)+")", "objectClass", "userAccountControl")
	if err != nil || len(es) == 0 {
		return false, "", false, err
	}
	classes := es[0].GetAttributeValues("objectClass")
	class := last(classes)
	if hasValue(classes, "msDS-GroupManagedServiceAccount") {
		class = "gmsa"
	}
	uac, _ := strconv.ParseUint(es[0].GetAttributeValue("userAccountControl"), 10, 32)
	return true, class, uac&0x2 == 0, nil
}

func (cd clientDirectory) MayRetrieve(account, host string) (bool, string, error) {
	a, err := cd.c.MayRetrieve(account, host)
	return a.Granted && !a.AccountDisabled, a.Reason, err
}
