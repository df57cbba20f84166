package agent

import "testing"

// FuzzParseConfig: whatever the configuration file holds, the agent reports problems,
// never panics.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("domain: example.test\nidentity: {keytab: /nonexistent}\naccounts:\n  - name: web\n    keytab: {path: /tmp/x, mode: \"0600\"}\n"))
	f.Add([]byte("accounts: [{name: a, hooks: [{signal: HUP}]}]\nrefresh: {jitter: -1s}\n"))
	f.Add([]byte("timeout: x\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b, "fuzz.yaml")
		if err == nil && (c.Domain == "" || len(c.Accounts) == 0) {
			t.Fatalf("accepted a configuration without domain or accounts: %q", b)
		}
	})
}
