package cli

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gmsa/internal/directory"
	"gmsa/internal/krbkey"
	"gmsa/internal/server"
	"gmsa/internal/store/bolt"
	"gmsa/internal/vectors"
)

var fixedNow = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func runCLI(args ...string) (string, string, error) {
	return runEnv(&env{now: func() time.Time { return fixedNow }}, args...)
}

// runEnv runs the command line with e's clock (and data directory environment).
func runEnv(e *env, args ...string) (string, string, error) {
	var out, errb bytes.Buffer
	e.stdout, e.stderr = &out, &errb
	if e.stdin == nil {
		e.stdin = strings.NewReader("")
	}
	if e.rand == nil {
		e.rand = crand.Reader
	}
	if e.getenv == nil {
		e.getenv = func(string) string { return "" }
	}
	e.output, e.data = "", ""
	err := run(context.Background(), args, e)
	return out.String(), errb.String(), err
}

func runJSON(t *testing.T, args ...string) map[string]any {
	t.Helper()
	out, _, err := runCLI(append(args, "-o", "json")...)
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
	return m
}

// The Samba end-to-end vector through the command line.
var e2e = vectors.Public("gmsa_password_end_to_end")[0]

func e2eArgs() []string {
	return []string{"kds", "compute", "--root-key-id", vectors.String(e2e.Inputs, "root_key_id"),
		"--root-key-data", vectors.String(e2e.Inputs, "root_key_data"), "--sid", vectors.String(e2e.Inputs, "account_sid")}
}

func TestComputeVector(t *testing.T) {
	m := runJSON(t, append(e2eArgs(), "--gkid", "362,0,23", "--account", "svc$", "--domain", "example.test")...)
	if m["password_hex"] != vectors.String(e2e.Expected, "password_256_bytes_utf16le_after_postprocess") ||
		m["nt_hash"] != vectors.String(e2e.Derived, "nt_hash") {
		t.Fatalf("%v", m)
	}
	if g := m["gkid"].([]any); g[0] != 362.0 || g[1] != 0.0 || g[2] != 23.0 {
		t.Fatalf("gkid %v", g)
	}
	for _, k := range []string{"password_base64", "aes256_key", "aes128_key"} {
		if s, _ := m[k].(string); s == "" {
			t.Errorf("%s missing", k)
		}
	}
	if _, ok := m["previous_password_hex"]; ok {
		t.Error("previous_* fields outside schedule mode")
	}
	// The same period named by time.
	at := runJSON(t, append(e2eArgs(), "--at", "2023-11-28T03:00:00Z")...)
	if at["password_hex"] != m["password_hex"] {
		t.Fatal("--at in the same period gives another password")
	}
	// Table form.
	out, _, err := runCLI(append(e2eArgs(), "--gkid", "362,0,23")...)
	if err != nil || !strings.Contains(out, "f3510c3e6b429d9fe6ca41248b331c1a") || !strings.Contains(out, "(362,0,23)") {
		t.Fatalf("%s %v", out, err)
	}
}

func TestComputeSchedule(t *testing.T) {
	args := append(e2eArgs(), "--created", "2024-01-01T00:00:00Z", "--interval-days", "1", "--at", "2024-01-03T01:00:00Z", "--account", "svc$", "--domain", "example.test")
	m := runJSON(t, args...)
	if m["previous_password_hex"] == nil || m["previous_aes256_key"] == nil || m["previous_gkid"] == nil {
		t.Fatalf("no previous password: %v", m)
	}
	if m["query_password_interval"] != 3*3600*1e7 || m["unchanged_password_interval"] != 3*3600*1e7-3e9 {
		t.Fatalf("intervals %v %v", m["query_password_interval"], m["unchanged_password_interval"])
	}
	blob := runJSON(t, "blob", "decode", m["managed_password_blob"].(string))
	if blob["current_password_hex"] != m["password_hex"] || blob["previous_password_hex"] != m["previous_password_hex"] {
		t.Fatal("the schedule's blob does not carry its passwords")
	}
	id := runJSON(t, append(e2eArgs(), "--password-id", m["password_id"].(string))...)
	if id["password_hex"] != m["password_hex"] {
		t.Fatal("the schedule's password id does not name its period")
	}
	// Young account: previous fields are present and null.
	young := runJSON(t, append(e2eArgs(), "--created", "2024-01-01T00:00:00Z", "--at", "2024-01-02T00:00:00Z")...)
	if v, ok := young["previous_password_hex"]; !ok || v != nil {
		t.Fatalf("previous_password_hex %v %v", v, ok)
	}
}

func TestRootKeyFiles(t *testing.T) {
	dir := t.TempDir()
	exp := vectors.Samba()
	ldifFile := filepath.Join(dir, "keys.ldif")
	os.WriteFile(ldifFile, []byte(exp.RootKeysLDIF), 0o600)
	a := exp.Snapshots[1].Accounts[0]
	fromLDIF := runJSON(t, "kds", "compute", "--root-key-file", ldifFile, "--sid", a.SID, "--password-id", a.PasswordID)
	blob := runJSON(t, "blob", "decode", a.Blob)
	if fromLDIF["password_hex"] != blob["current_password_hex"] {
		t.Fatal("LDIF root keys: password differs from Samba's blob")
	}
	jsonFile := filepath.Join(dir, "key.json")
	os.WriteFile(jsonFile, []byte(`{"cn": "`+vectors.String(e2e.Inputs, "root_key_id")+`", "msKds-RootKeyData": "`+
		vectors.String(e2e.Inputs, "root_key_data")+`", "msKds-KDFParam": "00000000010000000e000000000000005300480041003500310032000000", "msKds-UseStartTime": 1}`), 0o600)
	fromJSON := runJSON(t, "kds", "compute", "--root-key-file", jsonFile, "--sid", vectors.String(e2e.Inputs, "account_sid"), "--gkid", "362,0,23")
	if fromJSON["password_hex"] != vectors.String(e2e.Expected, "password_256_bytes_utf16le_after_postprocess") {
		t.Fatal("JSON root key: wrong password")
	}
}

func TestBlobDecode(t *testing.T) {
	v := vectors.Public("managedpassword_blob_parse")[0]
	raw := vectors.String(v.Inputs, "blob")
	m := runJSON(t, "blob", "decode", raw)
	if m["current_nt_hash"] != vectors.String(v.Derived, "nt_hash_of_current") || m["previous_password_hex"] != nil ||
		m["query_password_interval"] != 25763432939433.0 || m["unchanged_password_interval"] != 25760432939433.0 {
		t.Fatalf("%v", m)
	}
	for _, k := range []string{"previous_password_hex", "previous_nt_hash"} {
		if _, ok := m[k]; !ok {
			t.Errorf("%s absent; want null", k)
		}
	}
	f := filepath.Join(t.TempDir(), "blob.bin")
	b := vectors.Hex(v.Inputs, "blob")
	os.WriteFile(f, b, 0o600)
	fromFile := runJSON(t, "blob", "decode", "--file", f, "--account", "svc$", "--domain", "example.test")
	if fromFile["current_nt_hash"] != m["current_nt_hash"] || fromFile["current_aes256_key"] == nil {
		t.Fatalf("%v", fromFile)
	}
	out, _, err := runCLI("blob", "decode", raw)
	if err != nil || !strings.Contains(out, "29d 19h 39m 3.2939433s") || !strings.Contains(out, "previous password") {
		t.Fatalf("%s %v", out, err)
	}
}

// ldapsearch's LDIF output, folded at 76 columns, decodes like the raw blob.
func TestBlobDecodeFromLDIF(t *testing.T) {
	v := vectors.Public("managedpassword_blob_parse")[0]
	b64 := base64.StdEncoding.EncodeToString(vectors.Hex(v.Inputs, "blob"))
	line := "msDS-ManagedPassword:: " + b64
	var folded strings.Builder
	for len(line) > 76 {
		folded.WriteString(line[:76] + "\n ")
		line = line[76:]
	}
	folded.WriteString(line + "\n")
	f := filepath.Join(t.TempDir(), "svc.ldif")
	os.WriteFile(f, []byte("dn: CN=svc,CN=Managed Service Accounts,DC=example,DC=test\n"+folded.String()+"\n"), 0o600)
	m := runJSON(t, "blob", "decode", "--file", f)
	if m["current_nt_hash"] != vectors.String(v.Derived, "nt_hash_of_current") {
		t.Fatalf("%v", m)
	}
	two := filepath.Join(t.TempDir(), "two.ldif")
	os.WriteFile(two, []byte("dn: CN=a\n"+folded.String()+"\ndn: CN=b\n"+folded.String()+"\n"), 0o600)
	if _, _, err := runCLI("blob", "decode", "--file", two); ExitCode(err) != ExitUsage || !strings.Contains(err.Error(), "2 msDS-ManagedPassword values") {
		t.Fatalf("two entries: %v", err)
	}
}

// Passwords come whole from standard input (inner newlines included); an empty one is
// refused; a command on a directory with no domain says where it looked and creates
// nothing; kds test -o json exits non-zero for a missing key.
func TestNewcomerErrors(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	_, _, err := runCLI("account", "list", "--data", data)
	if ExitCode(err) != ExitUsage || !strings.Contains(err.Error(), filepath.Join(data, "gmsa.db")) || !strings.Contains(err.Error(), "--server ldaps://") {
		t.Fatalf("no data directory: %v", err)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Fatalf("a read created %s", data)
	}
	if _, _, err := runCLI("domain", "provision", "--realm", "EXAMPLE.TEST", "--data", data); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runEnv(&env{now: func() time.Time { return fixedNow }, stdin: strings.NewReader("\n")}, "user", "new", "empty", "--password-stdin", "--data", data); ExitCode(err) != ExitUsage || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("empty password: %v", err)
	}
	long := "Line-One-1!\nline two " + strings.Repeat("x", 2000)
	if _, _, err := runEnv(&env{now: func() time.Time { return fixedNow }, stdin: strings.NewReader(long + "\n")}, "user", "new", "multi", "--password-stdin", "--data", data); err != nil {
		t.Fatal(err)
	}
	// A local command's change is in the data directory's audit trail, with who ran it.
	if b, err := os.ReadFile(filepath.Join(data, server.AuditFile)); err != nil || !strings.Contains(string(b), `"msg":"directory changed","principal":"SYSTEM","remote":"local: `) ||
		!strings.Contains(string(b), `"dn":"CN=multi,CN=Users,DC=example,DC=test"`) || strings.Contains(string(b), "Line-One") {
		t.Fatalf("the audit trail after a local user new: %v\n%s", err, b)
	}
	st, err := server.OpenExisting(data, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := directory.Open(context.Background(), st, directory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Authenticate(context.Background(), directory.Anonymous(directory.ProtectionTLS, "test"), "multi", long); err != nil {
		t.Fatalf("the whole password from standard input: %v", err)
	}
	st.Close()
	out, _, err := runCLI("kds", "test", "00000000-0000-0000-0000-000000000001", "--data", data, "-o", "json")
	if err == nil || !strings.Contains(out, `"valid": false`) {
		t.Fatalf("kds test -o json of a missing key: %v %s", err, out)
	}
}

func TestKeytabCreate(t *testing.T) {
	a := vectors.Samba().Snapshots[1].Accounts[3] // after rotation: has a previous password
	out := filepath.Join(t.TempDir(), "svc.keytab")
	_, _, err := runCLI("keytab", "create", "--blob", a.Blob, "--account", a.Name, "--domain", "example.test", "--kvno", "5",
		"--spn", "http/web.example.test", "--spn", "HOST/web", "--enctypes", "aes256,aes128,rc4", "--out", out)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(out)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("%v %v", st, err)
	}
	raw, _ := os.ReadFile(out)
	kt, err := krbkey.ParseKeytab(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(kt.Entries) != 3*3*2 { // principals × etypes × (current, previous)
		t.Fatalf("%d entries", len(kt.Entries))
	}
	counts := map[uint32]int{}
	for _, e := range kt.Entries {
		counts[e.KVNO]++
		if e.Principal.Realm != "EXAMPLE.TEST" || e.Timestamp != uint32(fixedNow.Unix()) {
			t.Fatalf("%v", e)
		}
	}
	if counts[5] != 9 || counts[4] != 9 {
		t.Fatalf("kvnos %v", counts)
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	future := filepath.Join(dir, "future.json")
	os.WriteFile(future, []byte(`{"cn":"`+vectors.String(e2e.Inputs, "root_key_id")+`","msKds-RootKeyData":"`+
		vectors.String(e2e.Inputs, "root_key_data")+`","msKds-UseStartTime":"2030-01-01T00:00:00Z"}`), 0o600)
	sid := vectors.String(e2e.Inputs, "account_sid")
	usage := map[string][]string{
		"no subcommand":     {"kds"},
		"unknown command":   {"frobnicate"},
		"unknown flag":      {"kds", "compute", "--nope"},
		"no root key":       {"kds", "compute", "--sid", sid, "--gkid", "1,2,3"},
		"short key data":    append(e2eArgs()[:4], "--root-key-data", "abcd", "--sid", sid, "--gkid", "1,2,3"),
		"unknown hash":      append(e2eArgs(), "--kdf-hash", "MD5", "--gkid", "1,2,3"),
		"bad SID":           append(e2eArgs()[:6], "--sid", "S-1-5-x", "--gkid", "1,2,3"),
		"missing SID":       e2eArgs()[:6],
		"bad GKID":          append(e2eArgs(), "--gkid", "1,32,0"),
		"GKID shape":        append(e2eArgs(), "--gkid", "1,2"),
		"two modes":         append(e2eArgs(), "--gkid", "1,2,3", "--at", "2024-01-01T00:00:00Z"),
		"no mode":           e2eArgs(),
		"bad time":          append(e2eArgs(), "--at", "tomorrow"),
		"bad password id":   append(e2eArgs(), "--password-id", "00112233"),
		"interval 0":        append(e2eArgs(), "--created", "2024-01-01T00:00:00Z", "--interval-days", "0"),
		"account no domain": append(e2eArgs(), "--gkid", "1,2,3", "--account", "svc$"),
		"account no $":      append(e2eArgs(), "--gkid", "1,2,3", "--account", "svc", "--domain", "d"),
		"before key start":  {"kds", "compute", "--root-key-file", future, "--sid", sid, "--gkid", "362,0,23"},
		"blob not hex":      {"blob", "decode", "@@@"},
		"blob malformed":    {"blob", "decode", "0100000022010000"},
		"keytab no kvno":    {"keytab", "create", "--blob", "00", "--account", "a$", "--domain", "d", "--out", filepath.Join(dir, "k")},
		"bad output":        {"blob", "decode", "00", "-o", "yaml"},
		"bad enctype":       {"keytab", "create", "--blob", "00", "--account", "a$", "--domain", "d", "--kvno", "1", "--enctypes", "des", "--out", "x"},
	}
	for name, args := range usage {
		_, _, err := runCLI(args...)
		if err == nil || ExitCode(err) != ExitUsage {
			t.Errorf("%s: %v (exit %d), want a usage error", name, err, ExitCode(err))
			continue
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error spans lines: %q", name, err)
		}
	}
	// A failure that is not the user's input: the output directory does not exist.
	v := vectors.Public("managedpassword_blob_parse")[0]
	_, _, err := runCLI("keytab", "create", "--blob", vectors.String(v.Inputs, "blob"), "--account", "a$", "--domain", "d", "--kvno", "1", "--out", filepath.Join(dir, "no", "k"))
	if err == nil || ExitCode(err) != ExitFailure {
		t.Errorf("unwritable output: %v", err)
	}
	// Root key data never appears in an error.
	_, _, err = runCLI("kds", "compute", "--root-key-id", vectors.String(e2e.Inputs, "root_key_id"), "--root-key-data", vectors.String(e2e.Inputs, "root_key_data")[:100], "--sid", sid, "--gkid", "1,2,3")
	if err == nil || strings.Contains(err.Error(), vectors.String(e2e.Inputs, "root_key_data")[:20]) {
		t.Errorf("error leaks key data: %v", err)
	}
}

func TestGenerateThenCompute(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "root.json")
	if _, _, err := runCLI("kds", "generate", "--out", key, "--effective-time", "2026-11-01T00:00:00Z"); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(key); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode())
	}
	args := []string{"kds", "compute", "--root-key-file", key, "--sid", "S-1-5-21-1-2-3-1105"}
	m := runJSON(t, append(args, "--created", "2026-11-02T08:00:00Z", "--interval-days", "7", "--at", "2026-11-20T00:00:00Z")...)
	if m["previous_password_hex"] == nil || len(m["password_hex"].(string)) != 512 {
		t.Fatalf("%v", m)
	}
	// Add-KdsRootKey's default: usable 10 h from now, so a period before that is refused.
	key2 := filepath.Join(dir, "default.json")
	runCLI("kds", "generate", "--out", key2)
	_, _, err := runCLI("kds", "compute", "--root-key-file", key2, "--sid", "S-1-5-21-1-2-3-1105", "--at", "2026-11-21T00:00:00Z")
	if ExitCode(err) != ExitUsage || !strings.Contains(err.Error(), "becomes usable") {
		t.Fatalf("%v", err)
	}
}
