//go:build interop

// Package interop runs gmsa against real third-party peers: a Samba 4.22 AD DC and MIT
// Kerberos clients (see peers.sh). It needs root (the DC runs in a chroot) and is run by
// the README's test command.
package interop

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gmsa/internal/ldif"
	"gmsa/internal/ntsec"
)

var exportVectors = flag.String("export-vectors", "", "write the values read from Samba to this JSON file")

const (
	adminPass = "Passw0rd!Adm1n"
	baseDN    = "DC=example,DC=test"
	msaDN     = "CN=Managed Service Accounts," + baseDN
	rootKeyDN = "CN=Master Root Keys,CN=Group Key Distribution Service,CN=Services,CN=Configuration," + baseDN
)

var (
	gmsaBin string // our binary, built once
	dcDir   string // the DC's directory seen from the host
	workDir string
)

func TestMain(m *testing.M) {
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "interop: the Samba DC runs in a chroot and needs root")
		os.Exit(1)
	}
	var err error
	if workDir, err = os.MkdirTemp("", "gmsa-interop-"); err != nil {
		panic(err)
	}
	gmsaBin = filepath.Join(workDir, "gmsa")
	if out, err := exec.Command("go", "build", "-o", gmsaBin, "../../cmd/gmsa").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "interop: building gmsa: %v\n%s", err, out)
		os.Exit(1)
	}
	out, err := exec.Command("bash", "peers.sh", "dir").Output()
	if err != nil {
		panic(err)
	}
	dcDir = strings.TrimSpace(string(out))
	code := m.Run()
	exec.Command("bash", "peers.sh", "samba-stop").Run()
	os.RemoveAll(workDir)
	os.Exit(code)
}

// sh runs a command and returns its standard output; it fails the test on error.
func sh(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return string(out)
}

func peers(t *testing.T, args ...string) string {
	return sh(t, nil, "bash", append([]string{"peers.sh"}, args...)...)
}

var ldapEnv = []string{"LDAPTLS_REQCERT=never"}

// ldapsearch reads entries over LDAPS as Administrator.
func ldapsearch(t *testing.T, base, filter string, attrs ...string) []*ldif.Entry {
	t.Helper()
	args := append([]string{"-LLL", "-o", "ldif-wrap=no", "-x", "-H", "ldaps://127.0.0.1", "-D", "Administrator@example.test", "-w", adminPass, "-b", base, filter}, attrs...)
	es, err := ldif.Parse([]byte(sh(t, ldapEnv, "ldapsearch", args...)))
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func ldapmodify(t *testing.T, add bool, ldifText string) {
	t.Helper()
	args := []string{"-x", "-H", "ldaps://127.0.0.1", "-D", "Administrator@example.test", "-w", adminPass}
	if add {
		args = append(args, "-a")
	}
	cmd := exec.Command("ldapmodify", args...)
	cmd.Env = append(os.Environ(), ldapEnv...)
	cmd.Stdin = strings.NewReader(ldifText)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ldapmodify: %v\n%s", err, out)
	}
}

// gmsaJSON runs our binary with -o json.
func gmsaJSON(t *testing.T, args ...string) map[string]any {
	t.Helper()
	out := sh(t, nil, gmsaBin, append(args, "-o", "json")...)
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("gmsa %v: %v\n%s", args, err, out)
	}
	return m
}

type account struct {
	Name         string `json:"name"`
	SID          string `json:"sid"`
	WhenCreated  string `json:"when_created"`
	IntervalDays int64  `json:"interval_days"`
	ReadAt       string `json:"read_at"`
	KVNO         string `json:"kvno"`
	PasswordID   string `json:"password_id"`
	PreviousID   string `json:"previous_id,omitempty"`
	Blob         string `json:"blob"`
}

type snapshot struct {
	Phase    string    `json:"phase"`
	Accounts []account `json:"accounts"`
}

// readAccounts reads every gMSA with the attributes the derivation needs; readAt is
// the DC's clock at the time of the search.
func readAccounts(t *testing.T, readAt time.Time) []account {
	es := ldapsearch(t, msaDN, "(objectClass=msDS-GroupManagedServiceAccount)",
		"sAMAccountName", "objectSid", "whenCreated", "msDS-ManagedPasswordInterval", "msDS-KeyVersionNumber",
		"msDS-ManagedPasswordId", "msDS-ManagedPasswordPreviousId", "msDS-ManagedPassword")
	var out []account
	for _, e := range es {
		sid, err := ntsec.SIDFromBytes(e.First("objectSid"))
		if err != nil {
			t.Fatal(err)
		}
		when, err := time.Parse("20060102150405.0Z", string(e.First("whenCreated")))
		if err != nil {
			t.Fatal(err)
		}
		iv, _ := strconv.ParseInt(string(e.First("msDS-ManagedPasswordInterval")), 10, 64)
		a := account{Name: string(e.First("sAMAccountName")), SID: sid.String(), WhenCreated: when.Format(time.RFC3339),
			IntervalDays: iv, ReadAt: readAt.UTC().Format(time.RFC3339Nano), KVNO: string(e.First("msDS-KeyVersionNumber")),
			PasswordID: hex.EncodeToString(e.First("msDS-ManagedPasswordId")), Blob: hex.EncodeToString(e.First("msDS-ManagedPassword"))}
		if p := e.First("msDS-ManagedPasswordPreviousId"); p != nil {
			a.PreviousID = hex.EncodeToString(p)
		}
		if a.Blob == "" || a.PasswordID == "" {
			t.Fatalf("%s: Samba returned no msDS-ManagedPassword / Id", a.Name)
		}
		out = append(out, a)
	}
	return out
}

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

// verify checks that our derivation reproduces what Samba served for each account,
// and returns how many previous passwords were checked. Samba returns the ids as they
// were before the read that rotated them, so on such a read (idsCurrent false) only the
// schedule is checked.
func verify(t *testing.T, keysFile string, accts []account, wantPrevious, idsCurrent bool) (prevChecked int) {
	t.Helper()
	for _, a := range accts {
		blob := gmsaJSON(t, "blob", "decode", a.Blob)
		// 1. From the id Samba stored: root key + GKID + SID.
		if idsCurrent {
			byID := gmsaJSON(t, "kds", "compute", "--root-key-file", keysFile, "--sid", a.SID, "--password-id", a.PasswordID)
			if str(byID, "password_hex") != str(blob, "current_password_hex") {
				t.Errorf("%s (interval %d): password derived from msDS-ManagedPasswordId differs from Samba's blob", a.Name, a.IntervalDays)
			}
			if str(byID, "nt_hash") != str(blob, "current_nt_hash") {
				t.Errorf("%s: NT hash differs", a.Name)
			}
		}
		// 2. From the schedule alone: whenCreated, interval and the time of the read.
		sched := gmsaJSON(t, "kds", "compute", "--root-key-file", keysFile, "--sid", a.SID,
			"--created", a.WhenCreated, "--interval-days", strconv.FormatInt(a.IntervalDays, 10), "--at", a.ReadAt)
		if str(sched, "password_hex") != str(blob, "current_password_hex") {
			t.Errorf("%s (interval %d, created %s, read %s): the schedule picks another current password than Samba (gkid %v)",
				a.Name, a.IntervalDays, a.WhenCreated, a.ReadAt, sched["gkid"])
		}
		if sched["previous_password_hex"] != blob["previous_password_hex"] {
			t.Errorf("%s (interval %d): previous password: ours %v, Samba's %v", a.Name, a.IntervalDays,
				sched["previous_password_hex"] != nil, blob["previous_password_hex"] != nil)
		}
		// The query interval counts down from the read; allow for the time the search took.
		q, sq := blob["query_password_interval"].(float64), sched["query_password_interval"].(float64)
		if d := q - sq; d > 60e7 || d < -60e7 {
			t.Errorf("%s: query interval ours %.0f, Samba's %.0f", a.Name, sq, q)
		}
		if u := blob["unchanged_password_interval"].(float64); q-u != 3e9 && q > 3e9 {
			t.Errorf("%s: Samba's unchanged interval %.0f is not query − 5 min", a.Name, u)
		}
		// 3. The previous password from msDS-ManagedPasswordPreviousId.
		switch {
		case blob["previous_password_hex"] == nil:
			if wantPrevious {
				t.Errorf("%s (interval %d): Samba returned no previous password", a.Name, a.IntervalDays)
			}
		case idsCurrent:
			prevChecked++
			if a.PreviousID == "" {
				t.Errorf("%s: a previous password without msDS-ManagedPasswordPreviousId", a.Name)
				continue
			}
			byPrev := gmsaJSON(t, "kds", "compute", "--root-key-file", keysFile, "--sid", a.SID, "--password-id", a.PreviousID)
			if str(byPrev, "password_hex") != str(blob, "previous_password_hex") {
				t.Errorf("%s: previous password derived from msDS-ManagedPasswordPreviousId differs", a.Name)
			}
		}
	}
	return prevChecked
}

func writeKeys(t *testing.T, name string) (string, []*ldif.Entry) {
	es := ldapsearch(t, rootKeyDN, "(objectClass=msKds-ProvRootKey)", "cn", "msKds-RootKeyData", "msKds-KDFParam",
		"msKds-KDFAlgorithmID", "msKds-Version", "msKds-CreateTime", "msKds-UseStartTime", "msKds-DomainID")
	raw := sh(t, ldapEnv, "ldapsearch", "-LLL", "-x", "-H", "ldaps://127.0.0.1", "-D", "Administrator@example.test", "-w", adminPass,
		"-b", rootKeyDN, "(objectClass=msKds-ProvRootKey)")
	p := filepath.Join(workDir, name)
	if err := os.WriteFile(p, []byte(raw), 0o600); err != nil {
		t.Fatal(err)
	}
	return p, es
}

// intervals mixes the default with intervals that are not multiples of 5 days, where
// the 10-hour rounding of the rollover matters.
var intervals = []int64{30, 1, 2, 3, 4, 5, 7, 11, 13, 17, 23, 29}

func TestSambaGMSA(t *testing.T) {
	peers(t, "samba-provision")
	peers(t, "samba-start")
	defer peers(t, "samba-stop")
	krbEnv := []string{"KRB5_CONFIG=" + filepath.Join(dcDir, "krb5.conf"), "KRB5CCNAME=FILE:" + filepath.Join(workDir, "cc")}

	// A second root key, usable from now: the rotation 45 days on must move to it.
	peers(t, "samba-tool", "domain", "kds", "root-key", "create")
	// svc00 through samba-tool (the reference tool), enabled, with an SPN for Kerberos and
	// AES only (msDS-SupportedEncryptionTypes 24, as -KerberosEncryptionType AES128,AES256
	// sets it; without it the KDC encrypts service tickets with RC4).
	peers(t, "samba-tool", "service-account", "create", "--name=svc00", "--dns-host-name=svc00.example.test", "--managed-password-interval=30")
	ldapmodify(t, false, "dn: CN=svc00,"+msaDN+"\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 4096\n-\nadd: servicePrincipalName\nservicePrincipalName: http/svc00.example.test\n-\nreplace: msDS-SupportedEncryptionTypes\nmsDS-SupportedEncryptionTypes: 24\n")
	// svc01…svc23 through LDAP, as an admin script would add them.
	dom := ldapsearch(t, baseDN, "(objectClass=domain)", "objectSid")
	domSID, err := ntsec.SIDFromBytes(dom[0].First("objectSid"))
	if err != nil {
		t.Fatal(err)
	}
	sd, err := ntsec.ParseSDDL(fmt.Sprintf("O:S-1-5-32-544D:(A;;0xf01ff;;;%s)", domSID.Child(500)), domSID)
	if err != nil {
		t.Fatal(err)
	}
	var add strings.Builder
	for i := 1; i < 24; i++ {
		fmt.Fprintf(&add, "dn: CN=svc%02d,%s\nobjectClass: msDS-GroupManagedServiceAccount\nsAMAccountName: svc%02d$\n"+
			"dNSHostName: svc%02d.example.test\nmsDS-ManagedPasswordInterval: %d\nuserAccountControl: 4096\n"+
			"msDS-GroupMSAMembership:: %s\n\n", i, msaDN, i, i, intervals[i%len(intervals)], base64.StdEncoding.EncodeToString(sd.Bytes()))
	}
	ldapmodify(t, true, add.String())

	keysFile, keyEntries := writeKeys(t, "keys-now.ldif")
	if len(keyEntries) != 2 {
		t.Fatalf("want 2 root keys, Samba has %d", len(keyEntries))
	}
	now := readAccounts(t, time.Now())
	if len(now) != 24 {
		t.Fatalf("want 24 gMSAs, read %d", len(now))
	}
	verify(t, keysFile, now, false, true)
	t.Logf("phase 1: our derivation reproduced all %d blobs Samba served", len(now))

	// Kerberos: a keytab from our tool lets MIT kinit get a TGT as svc00$ from Samba's KDC,
	// and kvno -k validates a service ticket for its SPN against the same keytab.
	var svc00 account
	for _, a := range now {
		if a.Name == "svc00$" {
			svc00 = a
		}
	}
	kt := filepath.Join(workDir, "svc00.keytab")
	sh(t, nil, gmsaBin, "keytab", "create", "--blob", svc00.Blob, "--account", "svc00$", "--domain", "example.test",
		"--kvno", svc00.KVNO, "--spn", "http/svc00.example.test", "--out", kt)
	if st, _ := os.Stat(kt); st.Mode().Perm() != 0o600 {
		t.Fatalf("keytab mode %v", st.Mode())
	}
	list := sh(t, krbEnv, "klist", "-k", "-t", "-e", kt)
	if !strings.Contains(list, "svc00$@EXAMPLE.TEST") || !strings.Contains(list, "aes256-cts-hmac-sha1-96") || !strings.Contains(list, "http/svc00.example.test@EXAMPLE.TEST") {
		t.Fatalf("klist -k does not show our entries:\n%s", list)
	}
	sh(t, krbEnv, "kinit", "-k", "-t", kt, "svc00$@EXAMPLE.TEST")
	if out := sh(t, krbEnv, "klist"); !strings.Contains(out, "krbtgt/EXAMPLE.TEST@EXAMPLE.TEST") {
		t.Fatalf("no TGT after kinit:\n%s", out)
	}
	out := sh(t, krbEnv, "kvno", "-k", kt, "http/svc00.example.test@EXAMPLE.TEST")
	if !strings.Contains(out, "keytab entry valid") {
		t.Fatalf("kvno -k did not validate the service ticket with our keytab:\n%s", out)
	}
	t.Logf("phase 1: MIT kinit -k and kvno -k accepted our keytab: %s", strings.TrimSpace(out))

	// Phase 2: the DC 45 days on. Every account has rotated at least once and carries a
	// previous password; the new periods must take the second root key.
	peers(t, "samba-tool", "user", "setexpiry", "Administrator", "--noexpiry") // AD's 42-day maximum password age
	peers(t, "samba-stop")
	peers(t, "samba-start", "+45d")
	rotating := readAccounts(t, time.Now().Add(45*24*time.Hour))
	verify(t, keysFile, rotating, true, false)
	later := readAccounts(t, time.Now().Add(45*24*time.Hour))
	byName := func(as []account) map[string]account {
		m := map[string]account{}
		for _, a := range as {
			m[a.Name] = a
		}
		return m
	}
	before, served := byName(now), byName(rotating)
	for _, a := range later {
		// The blob's first 16+256 bytes (header and current password) stay; the intervals count down.
		if a.PasswordID == before[a.Name].PasswordID || a.Blob[:2*272] != served[a.Name].Blob[:2*272] {
			t.Errorf("%s: Samba did not persist the rotation it served", a.Name)
		}
	}
	prev := verify(t, keysFile, later, true, true)
	newKey := str(gmsaJSON(t, "kds", "compute", "--root-key-file", keysFile, "--sid", later[0].SID, "--password-id", later[0].PasswordID), "root_key_id")
	oldKey := str(gmsaJSON(t, "kds", "compute", "--root-key-file", keysFile, "--sid", now[0].SID, "--password-id", now[0].PasswordID), "root_key_id")
	if newKey == oldKey {
		t.Errorf("after 45 days the password still derives from the first root key %s", oldKey)
	}
	t.Logf("phase 2: rotated passwords reproduced for %d accounts, %d previous passwords checked, root key %s → %s", len(later), prev, oldKey, newKey)

	if *exportVectors != "" {
		keysRaw, _ := os.ReadFile(keysFile)
		doc := map[string]any{
			"source":         "exported by test/interop (TestSambaGMSA -export-vectors) from a live Samba 4.22 AD DC",
			"root_keys_ldif": string(keysRaw),
			"snapshots":      []snapshot{{Phase: "after creation", Accounts: now}, {Phase: "45 days later, second read", Accounts: later}},
		}
		b, _ := json.MarshalIndent(doc, "", " ")
		if err := os.WriteFile(*exportVectors, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
