// Package doctor walks the chain a gMSA needs on a host — DNS, the DC's ports and clock,
// the KDS root key, the account, the host's right to its password, an encrypted channel,
// the password itself, a TGT and service tickets, the credential spec — and reports
// every step as pass, warn or fail with its evidence and the one thing that fixes it:
// the troubleshooting guide for gMSAs in Windows containers, automated. It is a client
// of DNS, LDAP and Kerberos only, so it examines ours, Samba and Windows DCs alike.
package doctor

import (
	"fmt"
	"io"
	"strings"
	"time"

	"gmsa/internal/adclient"
	"gmsa/internal/krbclient"
)

// Status is a step's outcome.
type Status string

// Outcomes: a failure stops the gMSA from working; a warning may; info is a fact.
const (
	Pass Status = "pass"
	Warn Status = "warn"
	Fail Status = "fail"
	Info Status = "info"
	Skip Status = "skip"
)

// Step is one check: what it found and, when it is not a pass, what to do.
type Step struct {
	Check    string `json:"check"`
	Status   Status `json:"status"`
	Evidence string `json:"evidence"`
	Fix      string `json:"fix,omitempty"`
}

// Report is every step of one run.
type Report struct {
	Account string `json:"account"`
	Domain  string `json:"domain,omitempty"`
	DC      string `json:"dc,omitempty"`
	Steps   []Step `json:"steps"`
}

// Failed says whether any step failed.
func (r *Report) Failed() bool {
	for _, s := range r.Steps {
		if s.Status == Fail {
			return true
		}
	}
	return false
}

// Step finds the first step of a check.
func (r *Report) Step(check string) (Step, bool) {
	for _, s := range r.Steps {
		if s.Check == check {
			return s, true
		}
	}
	return Step{}, false
}

func (r *Report) add(check string, st Status, fix string, format string, args ...any) {
	r.Steps = append(r.Steps, Step{Check: check, Status: st, Evidence: fmt.Sprintf(format, args...), Fix: fix})
}

// Print writes the report for people: one line a step, the fix under it.
func (r *Report) Print(w io.Writer) {
	mark := map[Status]string{Pass: "PASS", Warn: "WARN", Fail: "FAIL", Info: "INFO", Skip: "SKIP"}
	for _, s := range r.Steps {
		fmt.Fprintf(w, "%-4s  %-20s %s\n", mark[s.Status], s.Check, s.Evidence)
		if s.Fix != "" {
			fmt.Fprintf(w, "      %-20s fix: %s\n", "", s.Fix)
		}
	}
	n := map[Status]int{}
	for _, s := range r.Steps {
		n[s.Status]++
	}
	fmt.Fprintf(w, "%s: %d passed, %d warnings, %d failed\n", r.Account, n[Pass], n[Warn], n[Fail])
}

// Options say what to examine and with which identities.
type Options struct {
	Account string // the gMSA: NAME or NAME$
	Domain  string // the domain's DNS name; default the credential spec's, else the DC's
	// DNSServer is the resolver to ask (host:port); default the host's (resolv.conf).
	DNSServer string
	// LDAP reaches the directory for the account, root key and access checks, with an
	// administrator's or any reader's identity (a URL, or the domain to find one).
	LDAP adclient.Options
	// Host is the computer (NAME$) whose right to the password is examined; default the
	// identity's principal.
	Host string
	// Identity reads the password as the host would: a keytab (the host's
	// /etc/krb5.keytab, a sealed bind), a ticket cache (the host's current ticket), or a
	// user with a password (over LDAPS or StartTLS). Nil: the read is not tried.
	Identity *Identity
	// Credspec is a credential spec's content to compare with the directory.
	Credspec     []byte
	CredspecName string
	// Enctypes the host side uses (default AES256 and AES128).
	Enctypes []int32
	Now      func() time.Time
	Getenv   func(string) string
	Rand     io.Reader
	Timeout  time.Duration // each network probe (default 3 s)
}

// Identity is how the host proves itself: Kerberos (keytab or cache) or a user's
// password.
type Identity struct {
	Kerberos *krbclient.Options
	User     string
	Password string
}

func (o *Options) defaults() {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Getenv == nil {
		o.Getenv = func(string) string { return "" }
	}
	if o.Timeout == 0 {
		o.Timeout = 3 * time.Second
	}
	if len(o.Enctypes) == 0 {
		o.Enctypes = []int32{18, 17}
	}
}

// samName is NAME$ for a gMSA named NAME or NAME$.
func samName(account string) string {
	if strings.HasSuffix(account, "$") {
		return account
	}
	return account + "$"
}
