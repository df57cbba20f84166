package doctor

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// HostAccess is one host's answer: can it retrieve the password today, and if not,
// why and the command that fixes it.
type HostAccess struct {
	Host    string   `json:"host"`
	Granted bool     `json:"granted"`
	Chain   []string `json:"chain,omitempty"` // host → groups → the allowed entry
	Reason  string   `json:"reason"`
	Fix     string   `json:"fix,omitempty"`
}

// Fleet is the rollout question for many hosts at once, with the account's own
// problems (missing, disabled, no usable root key) that stop every host alike.
type Fleet struct {
	Account       string       `json:"account"`
	AccountChecks []Step       `json:"account_checks"`
	Hosts         []HostAccess `json:"hosts"`
}

// Failed says whether any host cannot retrieve the password, or the account is broken.
func (f *Fleet) Failed() bool {
	for _, s := range f.AccountChecks {
		if s.Status == Fail {
			return true
		}
	}
	for _, h := range f.Hosts {
		if !h.Granted {
			return true
		}
	}
	return false
}

// RunFleet answers, for each host, whether it may retrieve the gMSA's password.
func RunFleet(ctx context.Context, opt Options, hosts []string) *Fleet {
	opt.defaults()
	d := &run{opt: opt, r: &Report{Account: samName(opt.Account)}, ldapPort: 389, ldapsPort: 636, kdcPort: 88, dnsPort: 53}
	d.domain = opt.Domain
	if d.domain != "" {
		d.locator()
	}
	d.connect()
	f := &Fleet{Account: samName(opt.Account)}
	if d.c == nil {
		f.AccountChecks = d.r.Steps
		return f
	}
	defer d.c.Close()
	d.domain = d.c.DNSName
	d.account()
	d.rootKey()
	for _, s := range d.r.Steps {
		if s.Status == Pass || s.Status == Info {
			continue
		}
		f.AccountChecks = append(f.AccountChecks, s)
	}
	if d.acct == nil {
		return f
	}
	name := strings.TrimSuffix(samName(opt.Account), "$")
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if !strings.HasSuffix(h, "$") && !strings.Contains(h, "\\") && !strings.Contains(h, "@") {
			h += "$"
		}
		acc, err := d.c.MayRetrieve(samName(opt.Account), h)
		r := HostAccess{Host: h}
		switch {
		case err != nil:
			r.Reason = err.Error()
		case acc.PrincipalMissing:
			r.Reason, r.Fix = acc.Reason, "join it to the domain: adcli join (or gmsa computer new "+strings.TrimSuffix(h, "$")+")"
		case acc.Granted:
			r.Granted, r.Chain, r.Reason = true, acc.Chain, acc.Reason
		default:
			r.Reason = acc.Reason
			if g := firstGroup(acc.Allowed); g != "" {
				r.Fix = fmt.Sprintf("gmsa group add-member '%s' %s, then a new host ticket (kdestroy; kinit -k, or restart)", g, h)
			} else {
				r.Fix = fmt.Sprintf("gmsa account set %s --principals-allowed %s", name, strings.Join(append(acc.Allowed, h), ","))
			}
		}
		f.Hosts = append(f.Hosts, r)
	}
	return f
}

// Print writes one line a host, then the account's own problems.
func (f *Fleet) Print(w io.Writer) {
	for _, s := range f.AccountChecks {
		fmt.Fprintf(w, "%-4s  %s: %s\n", strings.ToUpper(string(s.Status)), s.Check, s.Evidence)
		if s.Fix != "" {
			fmt.Fprintf(w, "      fix: %s\n", s.Fix)
		}
	}
	ok := 0
	for _, h := range f.Hosts {
		if h.Granted {
			ok++
			fmt.Fprintf(w, "yes   %-20s %s\n", h.Host, strings.Join(h.Chain, " → "))
			continue
		}
		fmt.Fprintf(w, "no    %-20s %s\n", h.Host, h.Reason)
		if h.Fix != "" {
			fmt.Fprintf(w, "      %-20s fix: %s\n", "", h.Fix)
		}
	}
	fmt.Fprintf(w, "%s: %d of %d hosts can retrieve the password\n", f.Account, ok, len(f.Hosts))
}
