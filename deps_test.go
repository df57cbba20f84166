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

var (
	pure     = []string{"ntsec", "kds", "managedpw", "krbkey", "ldif", "vectors"}
	hostSide = []string{"adclient", "agent", "credspec", "doctor"}
	// forbidden in pure packages
	ioImports = []string{"os", "os/exec", "net", "net/http", "syscall", "io/ioutil", "log", "log/slog.Default"}
)

func imports(t *testing.T) map[string][]string {
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

func TestImportDirections(t *testing.T) {
	deps := imports(t)
	for _, p := range pure {
		for _, imp := range deps["gmsa/internal/"+p] {
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
	for _, p := range hostSide {
		for _, imp := range deps["gmsa/internal/"+p] {
			if strings.HasPrefix(imp, "gmsa/internal/store") || strings.HasPrefix(imp, "gmsa/internal/directory") {
				t.Errorf("host-side package %s imports %s", p, imp)
			}
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

// Pure packages take time as an argument.
func TestPurePackagesReadNoClock(t *testing.T) {
	for _, p := range pure {
		files, _ := filepath.Glob(filepath.Join("internal", p, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, _ := os.ReadFile(f)
			if strings.Contains(string(b), "time.Now(") {
				t.Errorf("%s reads the clock", f)
			}
		}
	}
}
