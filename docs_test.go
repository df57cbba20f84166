package gmsa_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gmsa/internal/agent"
)

// The container walkthrough's commands, run in order in one shell with our binary on
// PATH: the documentation says what works because it is what was run.
func TestContainerWalkthrough(t *testing.T) {
	doc, err := os.ReadFile("docs/containers.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(string(doc), -1)
	if len(blocks) < 6 {
		t.Fatalf("%d sh blocks in docs/containers.md", len(blocks))
	}
	bin := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", filepath.Join(bin, "gmsa"), "./cmd/gmsa").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	var script strings.Builder
	script.WriteString("set -euo pipefail\n")
	for _, b := range blocks {
		script.WriteString(b[1])
	}
	work := t.TempDir()
	cmd := exec.Command("bash", "-c", script.String())
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	t.Cleanup(func() { // the server, if a step failed before the last block stopped it
		if pid, err := os.ReadFile(filepath.Join(work, "gmsa-data", "gmsa.pid")); err == nil {
			exec.Command("kill", strings.TrimSpace(string(pid))).Run()
		}
	})
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(work, "gmsa-server.log"))
		t.Fatalf("the walkthrough failed: %v\n%s\nserver log:\n%s", err, out, log)
	}
	for _, want := range []string{"0 failed", "CONTAINERHOST01$ → Container Hosts", "1 of 2 hosts can retrieve", "2 of 2 hosts can retrieve",
		"EXAMPLE_webapp01.json: valid"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the walkthrough's output does not say %q:\n%s", want, out)
		}
	}
}

// The agent's documented configuration uses only keys the agent knows, and its table
// names every key of the example.
func TestAgentConfigurationDocumented(t *testing.T) {
	doc, err := os.ReadFile("docs/agent.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindStringSubmatch(string(doc))
	if m == nil {
		t.Fatal("no yaml block in docs/agent.md")
	}
	cfg, err := agent.DecodeConfig([]byte(m[1]), "docs/agent.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Accounts) != 2 || cfg.Accounts[0].CCache == nil || len(cfg.Accounts[1].Hooks) != 2 || cfg.LeaseAPI.Socket == "" {
		t.Fatalf("the example lost its parts: %+v", cfg)
	}
	for _, key := range []string{"domain", "servers", "dns_server", "kdcs", "ca_file", "timeout", "state_dir", "identity", "accounts[].keytab",
		"accounts[].ccache", "accounts[].keys", "accounts[].hooks", "accounts[].enctypes", "refresh", "metrics.listen", "lease_api"} {
		if !strings.Contains(string(doc), "| `"+key+"`") {
			t.Errorf("the table does not describe %s", key)
		}
	}
}
