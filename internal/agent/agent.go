package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-ldap/ldap/v3"

	"gmsa/internal/atomicfile"
	"gmsa/internal/krbclient"
)

// StatusFile is the status the agent writes in its state directory after each refresh.
const StatusFile = "status.json"

// Deps are the agent's injected time, randomness and log.
type Deps struct {
	Now    func() time.Time
	Rand   *rand.Rand
	Logger *slog.Logger
	// SystemctlPath runs reload_unit hooks (default "systemctl" on $PATH).
	SystemctlPath string
	// ClockSkew is how far a KDC's clock may be from the wall clock the Kerberos
	// library reads (default 5 min); tests that move Now widen it.
	ClockSkew time.Duration
}

// Agent keeps the configured accounts' outputs fresh.
type Agent struct {
	cfg  *Config
	deps Deps

	mu       sync.Mutex
	status   map[string]*AccountStatus // by lower-case sAMAccountName
	salts    map[string]string
	leases   map[string]*lease // the lease API's, by id
	requests atomic.Int64      // LDAP requests sent to DCs
	metrics  *agentMetrics

	// refreshing serializes refreshes (the daemon's and the lease API's), lease
	// deletions and configuration changes: one conversation with the DCs at a time.
	refreshing sync.Mutex
}

// AccountStatus is what `gmsa agent status` shows for one account.
type AccountStatus struct {
	Account         string    `json:"account"`
	Lease           string    `json:"lease,omitempty"` // the lease API's lease it belongs to
	OK              bool      `json:"ok"`
	LastAttempt     time.Time `json:"last_attempt"`
	LastSuccess     time.Time `json:"last_success,omitzero"`
	LastChange      time.Time `json:"last_change,omitzero"` // when an output last changed
	NextRefresh     time.Time `json:"next_refresh"`
	KVNO            uint32    `json:"kvno,omitempty"`
	NextPassword    time.Time `json:"next_password,omitzero"`     // when the DC changes the password
	NextPasswordOut time.Time `json:"next_password_out,omitzero"` // when the DC starts handing out the next one
	TicketExpires   time.Time `json:"ticket_expires,omitzero"`
	TicketRenew     time.Time `json:"ticket_renew,omitzero"` // when the agent gets the next TGT
	DC              string    `json:"dc,omitempty"`
	Outputs         []string  `json:"outputs,omitempty"`
	Failures        int       `json:"failures,omitempty"` // consecutive
	LastError       string    `json:"last_error,omitempty"`
	Cause           string    `json:"cause,omitempty"` // dc-unreachable, dc-reply, access, output, kdc, config
	Warnings        []string  `json:"warnings,omitempty"`
}

// New makes an agent; it reads the last status from the state directory when there is
// one (so that `once` after `once` keeps the schedule and the failure count).
func New(cfg *Config, deps Deps) *Agent {
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Rand == nil {
		deps.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if deps.SystemctlPath == "" {
		deps.SystemctlPath = "systemctl"
	}
	a := &Agent{cfg: cfg, deps: deps, status: map[string]*AccountStatus{}, salts: map[string]string{}, leases: map[string]*lease{}}
	a.metrics = newAgentMetrics(a)
	if b, err := os.ReadFile(filepath.Join(cfg.StateDir, StatusFile)); err == nil {
		var prev []*AccountStatus
		if json.Unmarshal(b, &prev) == nil {
			for _, s := range prev {
				a.status[strings.ToLower(SAMName(s.Account))+s.Lease] = s
			}
		}
	}
	return a
}

func (a *Agent) now() time.Time { return a.deps.Now() }

func (a *Agent) countRequest(n int) { a.requests.Add(int64(n)) }

// Requests is the number of LDAP requests the agent has sent to DCs.
func (a *Agent) Requests() int64 { return a.requests.Load() }

// config is the configuration in force.
func (a *Agent) config() *Config {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cfg
}

// accountList is the configured accounts, then the leases' (a.mu held).
func (a *Agent) accountList() []*Account {
	var out []*Account
	for i := range a.cfg.Accounts {
		out = append(out, &a.cfg.Accounts[i])
	}
	for _, id := range sortedKeys(a.leases) {
		out = append(out, a.leases[id].accounts...)
	}
	return out
}

// statusKey names an account's status: its sAMAccountName, and a lease's id.
func (acc *Account) statusKey() string { return strings.ToLower(SAMName(acc.Name)) + acc.lease }

// Status is a copy of every account's status, in configuration order.
func (a *Agent) Status() []AccountStatus {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []AccountStatus
	for _, acc := range a.accountList() {
		if s := a.status[acc.statusKey()]; s != nil {
			out = append(out, *s)
		} else {
			out = append(out, AccountStatus{Account: SAMName(acc.Name)})
		}
	}
	return out
}

// Due lists the accounts whose next refresh has come.
func (a *Agent) Due() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	var out []string
	for _, acc := range a.accountList() {
		s := a.status[acc.statusKey()]
		if s == nil || !s.NextRefresh.After(now) {
			out = append(out, acc.statusKey())
		}
	}
	return out
}

// NextWake is the earliest next refresh.
func (a *Agent) NextWake() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	var t time.Time
	for _, acc := range a.accountList() {
		s := a.status[acc.statusKey()]
		if s == nil {
			return a.now()
		}
		if t.IsZero() || s.NextRefresh.Before(t) {
			t = s.NextRefresh
		}
	}
	return t
}

// Refresh reads the accounts named by their status keys (all when keys is empty) with
// one connection per identity and brings their outputs up to date; it returns each
// account's status.
func (a *Agent) Refresh(ctx context.Context, keys []string) []AccountStatus {
	want := map[string]bool{}
	for _, k := range keys {
		want[k] = true
	}
	a.refreshing.Lock()
	defer a.refreshing.Unlock()
	groups := map[string][]*Account{}
	ids := map[string]*Identity{}
	var order []string
	a.mu.Lock() // identities are replaced (the lease API's renewals), never changed in place
	for _, acc := range a.accountList() {
		if len(want) > 0 && !want[acc.statusKey()] {
			continue
		}
		id := &a.cfg.Identity
		if acc.Identity != nil {
			id = acc.Identity
		}
		k := id.key()
		if _, ok := groups[k]; !ok {
			order = append(order, k)
			ids[k] = id
		}
		groups[k] = append(groups[k], acc)
	}
	a.mu.Unlock()
	var out []AccountStatus
	var dcs *located
	for _, k := range order {
		if ctx.Err() != nil {
			break
		}
		if dcs == nil {
			dcs = a.locateAll()
		}
		accs := groups[k]
		var names []string
		for _, acc := range accs {
			names = append(names, acc.Name)
		}
		data, err := a.read(ids[k], names, dcs)
		for _, acc := range accs {
			out = append(out, a.refreshOne(acc, data, err, dcs))
		}
	}
	if err := a.saveStatus(); err != nil {
		a.deps.Logger.Error("agent: writing the status", "err", err)
	}
	return out
}

// refreshOne brings one account's outputs up to date from what its DC said.
func (a *Agent) refreshOne(acc *Account, data map[string]*gmsaData, readErr error, dcs *located) AccountStatus {
	sam := SAMName(acc.Name)
	now := a.now()
	// Work on a copy, published when done: Status readers never see half an update.
	s := &AccountStatus{Account: sam, Lease: acc.lease}
	a.mu.Lock()
	if cur := a.status[acc.statusKey()]; cur != nil {
		*s = *cur
	}
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		if acc.lease == "" || a.leases[acc.lease] != nil { // not a lease deleted meanwhile
			a.status[acc.statusKey()] = s
		}
		a.mu.Unlock()
	}()
	s.LastAttempt, s.Warnings = now, nil
	fail := func(cause string, err error) AccountStatus {
		s.OK, s.Failures, s.LastError, s.Cause = false, s.Failures+1, err.Error(), cause
		s.NextRefresh = now.Add(a.backoff(s.Failures))
		a.metrics.failure(sam, cause)
		a.deps.Logger.Warn("agent: refresh failed; the last good files stay", "account", sam, "cause", cause, "err", err,
			"retry", s.NextRefresh.Format(time.RFC3339))
		return *s
	}
	if readErr != nil {
		return fail(classify(readErr), readErr)
	}
	d := data[strings.ToLower(sam)]
	if d.err != nil {
		cause := "dc-reply"
		if d.blob == nil && strings.Contains(d.err.Error(), "may not retrieve") {
			cause = "access"
		}
		return fail(cause, d.err)
	}
	s.DC, s.KVNO = d.dc, d.kvno
	etypes, err := etypesFor(acc.Enctypes, d.enctypes)
	if err != nil {
		return fail("config", err)
	}
	m := &material{sam: d.sam, realm: a.cfg.Realm(), d: d, etypes: etypes}
	if m.salt, err = a.salt(d.sam, dcs.kdcs, dcs.kdcErr); err != nil {
		return fail("kdc", err)
	}
	changed, err := a.writeOutputs(acc, m, s, dcs)
	if err != nil {
		cause := "output"
		if errors.As(err, new(*failure)) {
			cause = classify(err)
		}
		return fail(cause, err)
	}
	query := time.Duration(d.blob.QueryInterval) * 100
	unchanged := time.Duration(d.blob.UnchangedInterval) * 100
	s.NextPassword = now.Add(query)
	s.NextPasswordOut = time.Time{}
	if !lookAhead(d.blob) {
		s.NextPasswordOut = now.Add(unchanged)
	}
	s.OK, s.Failures, s.LastError, s.Cause, s.LastSuccess = true, 0, "", "", now
	s.NextRefresh = a.plan(s, now)
	if len(changed) > 0 {
		s.LastChange = now
		a.deps.Logger.Info("agent: outputs updated", "account", sam, "kvno", d.kvno, "changed", strings.Join(changed, ", "),
			"next", s.NextRefresh.Format(time.RFC3339))
		for i, h := range acc.Hooks {
			if err := a.runHook(h, sam, d.kvno, changed); err != nil {
				s.Warnings = append(s.Warnings, fmt.Sprintf("hooks[%d]: %v", i, err))
				a.deps.Logger.Warn("agent: hook failed", "account", sam, "hook", i, "err", err)
			}
		}
	}
	a.metrics.success(s)
	return *s
}

// plan is the next refresh: the earliest of the next password appearing (to write the
// SPNs' next keys ahead of the change), the change itself, two thirds of the ticket's
// life, and the maximum interval; each planned time plus the settle delay and jitter.
func (a *Agent) plan(s *AccountStatus, now time.Time) time.Time {
	settle := a.cfg.Refresh.Settle.or(10 * time.Second)
	t := now.Add(a.cfg.Refresh.MaxInterval.or(time.Hour))
	for _, c := range []time.Time{s.NextPasswordOut, s.NextPassword} {
		if !c.IsZero() && c.Add(settle).Before(t) {
			t = c.Add(settle)
		}
	}
	if !s.TicketExpires.IsZero() && s.TicketRenew.Before(t) {
		t = s.TicketRenew
	}
	if t.Before(now) {
		t = now
	}
	if j := a.cfg.Refresh.Jitter.or(30 * time.Second); j > 0 {
		t = t.Add(time.Duration(a.deps.Rand.Int64N(int64(j))))
	}
	return t
}

// backoff after the n-th consecutive failure: retry_min doubled each time, capped, with
// up to a fifth more at random.
func (a *Agent) backoff(n int) time.Duration {
	lo, hi := a.cfg.Refresh.RetryMin.or(10*time.Second), a.cfg.Refresh.RetryMax.or(10*time.Minute)
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return d + time.Duration(a.deps.Rand.Int64N(int64(d)/5+1))
}

// The causes status and metrics name.
const (
	causeUnreachable = "dc-unreachable"
	causeReply       = "dc-reply"
	causeIdentity    = "identity"
	causeKDC         = "kdc"
)

// failure is an error whose cause is known where it happened.
type failure struct {
	cause string
	err   error
}

func (f *failure) Error() string { return f.err.Error() }
func (f *failure) Unwrap() error { return f.err }

func failed(cause string, err error) error { return &failure{cause, err} }

// classify names a failure's cause: as marked where it happened, else refused
// credentials (LDAP 49) are the identity's, network errors the DC's reachability, and
// anything else the DC's reply.
func classify(err error) string {
	var f *failure
	var le *ldap.Error
	var ne net.Error
	switch {
	case errors.As(err, &f):
		return f.cause
	case errors.As(err, &le) && le.ResultCode == ldap.LDAPResultInvalidCredentials:
		return causeIdentity
	case errors.As(err, &ne):
		return causeUnreachable
	}
	return causeReply
}

// salt is the account's AES salt as its KDC states it in ETYPE-INFO2 (RFC 4120
// §5.2.7.5), asked once and remembered.
func (a *Agent) salt(sam string, kdcs []string, kdcErr error) (string, error) {
	a.mu.Lock()
	s, ok := a.salts[strings.ToLower(sam)]
	a.mu.Unlock()
	if ok {
		return s, nil
	}
	if kdcErr != nil {
		return "", kdcErr
	}
	var errs []error
	for _, kdc := range kdcs {
		for _, proto := range []string{"udp", "tcp"} {
			p, err := krbclient.ProbeKDC(kdc, a.cfg.Realm(), sam, proto, min(a.timeout(), 5*time.Second), a.now)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s/%s: %w", kdc, proto, err))
				continue
			}
			for _, e := range p.Etypes {
				if e.EType != 23 && e.Salt != "" {
					a.mu.Lock()
					a.salts[strings.ToLower(sam)] = e.Salt
					a.mu.Unlock()
					return e.Salt, nil
				}
			}
			if p.Code != 0 {
				return "", fmt.Errorf("the KDC %s answered %s for %s without an AES salt (ETYPE-INFO2): does the account have AES keys?", kdc, krbclient.ErrorName(p.Code), sam)
			}
			return "", fmt.Errorf("the KDC %s gave %s a ticket without pre-authentication: no ETYPE-INFO2 to take the salt from", kdc, sam)
		}
	}
	return "", fmt.Errorf("no KDC told %s's salt: %w", sam, errors.Join(errs...))
}

// writeOutputs writes each configured output that changed; an error leaves the files
// not yet written as they were.
func (a *Agent) writeOutputs(acc *Account, m *material, s *AccountStatus, dcs *located) ([]string, error) {
	var changed, outputs []string
	now := a.now()
	if o := acc.Keytab; o != nil {
		old, _ := os.ReadFile(o.Path)
		if have := highestKVNO(old, m.sam); have > m.d.kvno+1 || (have > m.d.kvno && !lookAhead(m.d.blob)) {
			return nil, fmt.Errorf("%s says kvno %d but %s already holds kvno %d: that DC is behind (replication); keeping the keytab",
				m.d.dc, m.d.kvno, o.Path, have)
		}
		b, err := m.keytab(o.UPN, old, now)
		if err != nil {
			return nil, err
		}
		ch, err := o.write(b)
		if err != nil {
			return nil, fmt.Errorf("keytab: %w", err)
		}
		outputs = append(outputs, o.Path)
		if ch {
			changed = append(changed, o.Path)
		}
	}
	if o := acc.Keys; o != nil {
		b, err := m.keysJSON()
		if err != nil {
			return nil, err
		}
		ch, err := o.write(b)
		if err != nil {
			return nil, fmt.Errorf("keys: %w", err)
		}
		outputs = append(outputs, o.Path)
		if ch {
			changed = append(changed, o.Path)
		}
	}
	if o := acc.CCache; o != nil {
		start, end, ok := ticketLeft(o.Path, m.sam, m.realm)
		missing := false
		for _, u := range o.Users {
			uid, _ := lookupUser(u)
			if _, err := os.Stat(o.userPath(uid)); err != nil {
				missing = true
			}
		}
		if !ok || missing || needsTicket(start, end, now) {
			if dcs.kdcErr != nil {
				return nil, failed(causeKDC, dcs.kdcErr)
			}
			cc, cred, err := m.tgt(dcs.kdcs, a.deps.ClockSkew)
			if err != nil {
				return nil, failed(causeKDC, fmt.Errorf("a TGT for %s: %w", m.sam, err))
			}
			start, end = cred.StartTime, cred.EndTime
			if _, err := o.write(cc); err != nil {
				return nil, fmt.Errorf("ccache: %w", err)
			}
			changed = append(changed, o.Path)
			for _, u := range o.Users {
				uid, _ := lookupUser(u)
				gid := o.gid
				if g, err := primaryGroup(uid); err == nil {
					gid = g
				}
				if _, err := writeOwned(o.userPath(uid), cc, 0o600, uid, gid); err != nil {
					return nil, fmt.Errorf("ccache for uid %d: %w", uid, err)
				}
				changed = append(changed, o.userPath(uid))
			}
		}
		outputs = append(outputs, o.Path)
		for _, u := range o.Users {
			uid, _ := lookupUser(u)
			outputs = append(outputs, o.userPath(uid))
		}
		s.TicketExpires, s.TicketRenew = end, renewAt(start, end)
	}
	s.Outputs = outputs
	return changed, nil
}

// saveStatus writes status.json (no secrets: times, versions, errors) atomically.
func (a *Agent) saveStatus() error {
	st := a.Status()
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(a.cfg.StateDir, 0o755); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(a.cfg.StateDir, StatusFile), append(b, '\n'), 0o644)
}

// ReadStatus reads the status an agent wrote in stateDir.
func ReadStatus(stateDir string) ([]AccountStatus, error) {
	b, err := os.ReadFile(filepath.Join(stateDir, StatusFile))
	if err != nil {
		return nil, fmt.Errorf("agent: no status yet (%w): has the agent run?", err)
	}
	var out []AccountStatus
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("agent: %s: %w", filepath.Join(stateDir, StatusFile), err)
	}
	return out, nil
}
