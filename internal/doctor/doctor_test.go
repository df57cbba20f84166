package doctor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"gmsa/internal/adclient"
	"gmsa/internal/cli"
	"gmsa/internal/doctor"
	"gmsa/internal/krbclient"
	"gmsa/internal/server"
	"gmsa/internal/servertest"
)

// dc is a gmsa server running in this process on 127.0.0.5 (where nothing else
// listens on the well-known ports) with its DNS on.
type dc struct {
	*servertest.DC
	ldaps, dns, ca, pwFile string
}

func startDC(t *testing.T, now func() time.Time, mutate func(*server.Config)) *dc {
	t.Helper()
	d := servertest.StartDC(t, "127.0.0.5", now, mutate)
	return &dc{DC: d, ldaps: d.LDAPS, dns: d.DNS, ca: d.CA, pwFile: d.PasswordFile}
}

// gm runs a gmsa admin command against the DC as Administrator.
func (d *dc) gm(t *testing.T, args ...string) string { t.Helper(); return d.Gm(t, args...) }

// options are the doctor's: the DC by name, found through its own DNS.
func (d *dc) options(t *testing.T, account string) doctor.Options {
	pw, err := os.ReadFile(d.pwFile)
	if err != nil {
		t.Fatal(err)
	}
	port := d.ldaps[strings.LastIndexByte(d.ldaps, ':')+1:]
	return doctor.Options{Account: account, Domain: "example.test", DNSServer: d.dns, Timeout: time.Second,
		LDAP: adclient.Options{URL: "ldaps://dc1.example.test:" + port, User: "Administrator", Password: strings.TrimSpace(string(pw)), CAFile: d.ca}}
}

// expect checks the report: the named checks have the statuses given, a failing
// step's evidence or fix holds the text given, and no other step failed.
func expect(t *testing.T, r *doctor.Report, want map[string]doctor.Status, texts ...string) {
	t.Helper()
	var b bytes.Buffer
	r.Print(&b)
	for check, st := range want {
		s, ok := r.Step(check)
		if !ok || s.Status != st {
			t.Errorf("%s: %v, want %s\n%s", check, s.Status, st, b.String())
		}
	}
	for _, s := range r.Steps {
		if _, named := want[s.Check]; !named && s.Status == doctor.Fail {
			t.Errorf("%s failed unexpectedly: %s\n%s", s.Check, s.Evidence, b.String())
		}
	}
	for _, text := range texts {
		if !strings.Contains(b.String(), text) {
			t.Errorf("the report does not say %q:\n%s", text, b.String())
		}
	}
}

func run(opt doctor.Options) *doctor.Report { return doctor.Run(context.Background(), opt) }

// Each item of the troubleshooting guide, broken on purpose against our DC: the doctor
// names exactly that failure and its fix, and passes once it is repaired.
func TestDoctorNamesEachBreakage(t *testing.T) {
	d := startDC(t, time.Now, nil)
	dir := t.TempDir()
	keytab := filepath.Join(dir, "chost01.keytab")
	d.gm(t, "group", "new", "Container Hosts")
	d.gm(t, "group", "new", "Nested")
	d.gm(t, "group", "add-member", "Container Hosts", "Nested")
	d.gm(t, "computer", "new", "chost01", "--write-keytab", keytab)
	d.gm(t, "computer", "new", "chost02")
	d.gm(t, "computer", "new", "chost03")
	d.gm(t, "group", "add-member", "Container Hosts", "CHOST01$")
	d.gm(t, "group", "add-member", "Nested", "CHOST03$")
	d.gm(t, "account", "new", "WebApp01", "--dns-host-name", "webapp01.example.test", "--spn", "http/webapp01.example.test",
		"--principals-allowed", "Container Hosts", "--enctypes", "aes128,aes256")
	withKeytab := func() doctor.Options {
		o := d.options(t, "WebApp01")
		o.Identity = &doctor.Identity{Kerberos: &krbclient.Options{Keytab: keytab}}
		return o
	}

	// Everything in place: every step passes, to service tickets opened with the key.
	r := run(withKeytab())
	expect(t, r, map[string]doctor.Status{"dns": doctor.Pass, "dns.dc": doctor.Pass, "ports": doctor.Pass, "clock": doctor.Pass,
		"account.enabled": doctor.Pass, "rootkey": doctor.Pass, "access": doctor.Pass, "channel": doctor.Pass,
		"password": doctor.Pass, "tgt": doctor.Pass, "spn.tickets": doctor.Pass},
		"CHOST01$ → Container Hosts", "sealed Kerberos bind", "each opened with the gMSA's key")
	if r.Failed() {
		t.Fatal("a healthy setup failed")
	}

	// A host outside the group; then a host in a nested group.
	o := d.options(t, "WebApp01")
	o.Host = "CHOST02$"
	expect(t, run(o), map[string]doctor.Status{"access": doctor.Fail},
		"CHOST02$ may not retrieve the password of WebApp01$", "gmsa group add-member 'Container Hosts' CHOST02$")
	d.gm(t, "group", "add-member", "Container Hosts", "CHOST02$")
	expect(t, run(o), map[string]doctor.Status{"access": doctor.Pass})
	o.Host = "CHOST03$"
	expect(t, run(o), map[string]doctor.Status{"access": doctor.Pass}, "CHOST03$ → Nested → Container Hosts")

	// A disabled gMSA.
	d.gm(t, "account", "set", "WebApp01", "--disable")
	expect(t, run(withKeytab()), map[string]doctor.Status{"account.enabled": doctor.Fail, "tgt": doctor.Fail, "spn.tickets": doctor.Fail},
		"WebApp01$ is disabled", "gmsa account set WebApp01 --enable")
	d.gm(t, "account", "set", "WebApp01", "--enable")

	// Enctypes the host does not use.
	d.gm(t, "account", "set", "WebApp01", "--enctypes", "rc4")
	expect(t, run(withKeytab()), map[string]doctor.Status{"account.enctypes": doctor.Fail, "spn.tickets": doctor.Fail},
		"msDS-SupportedEncryptionTypes 0x4 (arcfour-hmac) shares nothing with this host's", "--enctypes aes128,aes256",
		"the ticket (arcfour-hmac, kvno 1) does not open with WebApp01$'s key")
	d.gm(t, "account", "set", "WebApp01", "--enctypes", "aes128,aes256")

	// A user with the gMSA's name without the $.
	pwFile := filepath.Join(dir, "user-password")
	os.WriteFile(pwFile, []byte("Reader-Passw0rd!\n"), 0o600)
	d.gm(t, "user", "new", "WebApp01", "--new-password-file", pwFile)
	expect(t, run(withKeytab()), map[string]doctor.Status{"account.name": doctor.Fail}, "named WebApp01 exists beside WebApp01$")
	d.gm(t, "user", "remove", "WebApp01")
	expect(t, run(withKeytab()), map[string]doctor.Status{"account.name": doctor.Pass})

	// Our DC refuses the duplicate SPN and the cleared flag outright (Samba's case is
	// in the interop tests).
	var out, errOut bytes.Buffer
	err := cli.Run(context.Background(), []string{"account", "new", "Other", "--dns-host-name", "other.example.test", "--spn", "http/webapp01.example.test",
		"--server", d.ldaps, "--user", "Administrator", "--password-file", d.pwFile, "--ca-file", d.ca}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "already used") {
		t.Fatalf("a duplicate SPN was accepted: %v", err)
	}
	o = d.options(t, "WebApp01")
	o.LDAP.Resolve = func(string) string { return "127.0.0.5" }
	c, err := adclient.Dial(o.LDAP)
	if err != nil {
		t.Fatal(err)
	}
	mod := ldap.NewModifyRequest("CN=WebApp01,CN=Managed Service Accounts,DC=example,DC=test", nil)
	mod.Replace("userAccountControl", []string{"512"})
	if err := c.Conn.Modify(mod); !ldap.IsErrorWithCode(err, ldap.LDAPResultUnwillingToPerform) && !ldap.IsErrorWithCode(err, ldap.LDAPResultConstraintViolation) {
		t.Fatalf("clearing WORKSTATION_TRUST_ACCOUNT: %v", err)
	}
	c.Close()

	// No encrypted channel: a client that does not trust the DC's certificate, reading
	// as a user.
	d.gm(t, "user", "new", "reader", "--new-password-file", pwFile)
	d.gm(t, "group", "add-member", "Container Hosts", "reader")
	o = d.options(t, "WebApp01")
	o.Identity = &doctor.Identity{User: "reader", Password: "Reader-Passw0rd!"}
	expect(t, run(o), map[string]doctor.Status{"channel": doctor.Pass, "password": doctor.Pass}, "a simple bind over TLS")
	o.LDAP.CAFile = filepath.Join(t.TempDir(), "other-ca.pem")
	os.WriteFile(o.LDAP.CAFile, otherCA(t), 0o644)
	expect(t, run(o), map[string]doctor.Status{"ldap": doctor.Fail, "channel": doctor.Fail, "password": doctor.Skip},
		"no encrypted channel to the DC", "certificate signed by unknown authority", "trust the DC's CA")

	// Credential specs: right, then a wrong SID, a swapped scope, a missing account.
	specFile := filepath.Join(dir, "EXAMPLE_webapp01.json")
	d.gm(t, "credspec", "new", "--account", "WebApp01", "--out", specFile)
	spec, _ := os.ReadFile(specFile)
	o = withKeytab()
	o.Credspec, o.CredspecName = spec, "EXAMPLE_webapp01.json"
	expect(t, run(o), map[string]doctor.Status{"credspec": doctor.Pass})
	for _, c := range []struct{ from, to, says string }{
		{`"Sid": "S-1-5-21-`, `"Sid": "S-1-5-21-1-`, "is not this domain's SID"},
		{`"Scope": "example.test"`, `"Scope": "EXAMPLE"`, "must be listed in both scopes"},
		{`"Name": "WebApp01"`, `"Name": "WebApp02"`, "WebApp02$ does not exist"},
	} {
		o.Credspec = bytes.Replace(spec, []byte(c.from), []byte(c.to), 1)
		expect(t, run(o), map[string]doctor.Status{"credspec": doctor.Fail}, c.says, "gmsa credspec new --account WebApp01")
	}

	// The fleet question.
	fl := doctor.RunFleet(context.Background(), d.options(t, "WebApp01"), []string{"chost01", "CHOST03$", "nosuch"})
	var b bytes.Buffer
	fl.Print(&b)
	if len(fl.Hosts) != 3 || !fl.Hosts[0].Granted || !fl.Hosts[1].Granted || fl.Hosts[2].Granted || !fl.Failed() ||
		!strings.Contains(b.String(), "CHOST03$ → Nested → Container Hosts") || !strings.Contains(b.String(), "2 of 3 hosts") ||
		!strings.Contains(fl.Hosts[2].Fix, "join it to the domain") {
		t.Errorf("fleet:\n%s", b.String())
	}

	// The root key: removed under the account, then only a future one.
	keys := d.gm(t, "kds", "list", "-o", "json")
	var list []map[string]any
	json.Unmarshal([]byte(keys), &list)
	if len(list) != 1 {
		t.Fatalf("kds list: %s", keys)
	}
	id, _ := list[0]["guid"].(string)
	d.gm(t, "kds", "remove", id)
	broken := map[string]doctor.Status{"rootkey": doctor.Fail, "password": doctor.Fail, "spn.tickets": doctor.Fail}
	expect(t, run(withKeytab()), broken, "which no longer exists", "no KDS root key", "see rootkey above")
	d.gm(t, "kds", "add")
	expect(t, run(withKeytab()), broken, "start in the future", "wait until")
}

// The clock and the ports: a DC whose clock runs ten minutes ahead, and one whose KDC
// is not listening.
func TestDoctorClockAndPorts(t *testing.T) {
	ahead := startDC(t, func() time.Time { return time.Now().Add(10 * time.Minute) }, nil)
	expect(t, run(ahead.options(t, "nobody")), map[string]doctor.Status{"clock": doctor.Fail, "account": doctor.Fail},
		"the DC's clock is 10m0s ahead of this host's", "synchronize this host's clock")

	noKDC := startDC(t, time.Now, func(c *server.Config) { c.KDC.Listen = "off" })
	expect(t, run(noKDC.options(t, "nobody")), map[string]doctor.Status{"dns": doctor.Fail, "ports": doctor.Fail, "kdc": doctor.Fail, "account": doctor.Fail},
		"88/tcp (Kerberos)", "open TCP and UDP 88 from this host to 127.0.0.5")
}

func otherCA(t *testing.T) []byte {
	t.Helper()
	d := startDC(t, time.Now, func(c *server.Config) { c.KDC.Listen, c.DNS.Listen = "off", "off" })
	b, err := os.ReadFile(d.ca)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A "DC" that accepts connections and never answers: every step ends within its bound
// and the report names the silence.
func TestDoctorAgainstASilentDC(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.5:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	start := time.Now()
	r := run(doctor.Options{Account: "WebApp01", Timeout: 200 * time.Millisecond,
		LDAP: adclient.Options{URL: "ldaps://" + l.Addr().String(), User: "Administrator", Password: "x"}})
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("the doctor took %s against a silent DC", took)
	}
	expect(t, r, map[string]doctor.Status{"ldap": doctor.Fail, "ports": doctor.Fail, "channel": doctor.Fail},
		"accepted the connection but did not answer within 1s", "LDAPS on "+l.Addr().(*net.TCPAddr).AddrPort().String()[len("127.0.0.5:"):]+": no answer (timed out)")
}
