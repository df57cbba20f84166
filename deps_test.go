// The import rules of docs/design: pure packages do no I/O and read no clock; the host
// side never reaches into the server's storage or directory.
package gmsa_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The rules name packages of design.md's layout; those not written yet are checked as
// soon as they exist (TestRulesNameRealPackages keeps the names honest).
var (
	pure     = []string{"ntsec", "kds", "managedpw", "krbkey", "ldif", "tlv", "vectors", "pac", "gss"}
	hostSide = []string{"adclient", "krbclient", "locator", "agent", "credspec", "doctor"}
	// the server side, which the host side never imports
	serverSide = []string{"store", "directory", "audit", "ldapserver", "kdc", "dnsserver", "server", "servertest"}
	// import paths forbidden in pure packages: I/O of any kind
	ioImports = []string{"os", "os/exec", "os/signal", "net", "net/http", "syscall", "io/ioutil", "log"}
	// calls forbidden in pure packages' sources: the clock and process-wide state
	impureCalls = []string{"time.Now(", "slog.Default(", "rand.Read("}
)

func imports(t *testing.T) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./...").Output()
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		m[f[0]] = f[1:]
	}
	return m
}

// existing returns the packages of names that exist, by import path.
func existing(deps map[string][]string, names []string) []string {
	var out []string
	for _, n := range names {
		if _, ok := deps["gmsa/internal/"+n]; ok {
			out = append(out, "gmsa/internal/"+n)
		}
	}
	return out
}

func TestImportDirections(t *testing.T) {
	deps := imports(t)
	for _, p := range existing(deps, pure) {
		for _, imp := range deps[p] {
			for _, bad := range ioImports {
				if imp == bad {
					t.Errorf("pure package %s imports %s", p, imp)
				}
			}
			if strings.HasPrefix(imp, "gmsa/") && !isPure(strings.TrimPrefix(imp, "gmsa/internal/")) {
				t.Errorf("pure package %s imports %s", p, imp)
			}
		}
	}
	for _, p := range existing(deps, hostSide) {
		for _, imp := range deps[p] {
			for _, s := range existing(deps, serverSide) {
				if imp == s || strings.HasPrefix(imp, s+"/") {
					t.Errorf("host-side package %s imports %s", p, imp)
				}
			}
		}
	}
}

// Every forbidden import is a real package path, and the existing packages the rules
// name are checked (a rule over no package would pass without checking anything).
func TestRulesNameRealPackages(t *testing.T) {
	out, err := exec.Command("go", append([]string{"list"}, ioImports...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("a forbidden import is not a package: %v\n%s", err, out)
	}
	deps := imports(t)
	for name, list := range map[string][]string{"pure": pure, "host side": hostSide, "server side": serverSide} {
		if len(existing(deps, list)) == 0 {
			t.Errorf("no %s package exists: the rule checks nothing", name)
		}
	}
}

func isPure(p string) bool {
	for _, q := range pure {
		if p == q {
			return true
		}
	}
	return false
}

// Pure packages take time and randomness as arguments and log through no global.
func TestPurePackagesReadNoClock(t *testing.T) {
	for _, p := range pure {
		files, _ := filepath.Glob(filepath.Join("internal", p, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, _ := os.ReadFile(f)
			for _, call := range impureCalls {
				if strings.Contains(string(b), call) {
					t.Errorf("%s calls %s", f, call)
				}
			}
		}
	}
}
