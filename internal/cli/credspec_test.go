package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A credential spec made from the directory validates against it; the mistakes the
// troubleshooting guide names fail validation with the field and the fix: another
// domain's SID, an account that does not exist, a disabled gMSA, a host that may not
// retrieve the password.
func TestCredspecAgainstTheDirectory(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	e := &env{now: func() time.Time { return time.Date(2026, 5, 4, 9, 30, 0, 0, time.UTC) }}
	gm := func(args ...string) (string, string, error) { return runEnv(e, args...) }
	ok := func(args ...string) string {
		t.Helper()
		out, errOut, err := gm(args...)
		if err != nil {
			t.Fatalf("gmsa %v: %v\n%s%s", args, err, out, errOut)
		}
		return out + errOut
	}
	fails := func(want string, args ...string) {
		t.Helper()
		out, errOut, err := gm(args...)
		if err == nil || ExitCode(err) == 0 || !strings.Contains(out+errOut+err.Error(), want) {
			t.Fatalf("gmsa %v: %v %s%s; want a failure mentioning %q", args, err, out, errOut, want)
		}
	}
	ok("domain", "provision", "--realm", "EXAMPLE.TEST", "--netbios", "EXAMPLE", "--root-key-effective-time", "2026-05-01T00:00:00Z", "--data", data)
	ok("group", "new", "Container Hosts", "--data", data)
	ok("computer", "new", "CHOST01", "--data", data)
	ok("computer", "new", "OTHER01", "--data", data)
	ok("group", "add-member", "Container Hosts", "CHOST01$", "--data", data)
	ok("account", "new", "WebApp01", "--dns-host-name", "webapp01.example.test", "--principals-allowed", "Container Hosts", "--data", data)
	ok("credspec", "new", "--account", "WebApp01", "--dir", dir, "--data", data)
	file := filepath.Join(dir, "EXAMPLE_webapp01.json")
	fails("exists", "credspec", "new", "--account", "WebApp01", "--dir", dir, "--data", data)
	if out := ok("credspec", "validate", file, "--data", data, "--host", "CHOST01$"); !strings.Contains(out, "valid") {
		t.Fatal(out)
	}
	fails("OTHER01$ may not retrieve the password of WebApp01$", "credspec", "validate", file, "--data", data, "--host", "OTHER01$")

	b, _ := os.ReadFile(file)
	var m map[string]any
	json.Unmarshal(b, &m)
	edit := func(f func(map[string]any)) string {
		var c map[string]any
		json.Unmarshal(b, &c)
		f(c)
		out, _ := json.Marshal(c)
		p := filepath.Join(t.TempDir(), "spec.json")
		os.WriteFile(p, out, 0o644)
		return p
	}
	wrongSID := edit(func(c map[string]any) { c["DomainJoinConfig"].(map[string]any)["Sid"] = "S-1-5-21-1-2-3" })
	fails("is not this domain's SID", "credspec", "validate", wrongSID, "--data", data)
	missing := edit(func(c map[string]any) {
		for _, a := range c["ActiveDirectoryConfig"].(map[string]any)["GroupManagedServiceAccounts"].([]any) {
			a.(map[string]any)["Name"] = "Nobody01"
		}
		c["DomainJoinConfig"].(map[string]any)["MachineAccountName"] = "Nobody01"
	})
	fails("Nobody01$ does not exist", "credspec", "validate", missing, "--data", data)
	ok("account", "set", "WebApp01", "--disable", "--data", data)
	fails("WebApp01$ is disabled", "credspec", "validate", file, "--data", data)
	// Offline, the same file is fine: only the directory knows.
	ok("credspec", "validate", file)
	if out := ok("credspec", "list", dir); !strings.Contains(out, `EXAMPLE_webapp01.json	example.test\WebApp01, EXAMPLE\WebApp01	0 problem(s)`) {
		t.Fatal(out)
	}
}
