package agent

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// RunOptions are how `gmsa agent run` is wired to its process.
type RunOptions struct {
	ConfigPath string
	Reload     <-chan struct{}              // SIGHUP: read the configuration again
	Getenv     func(string) string          // NOTIFY_SOCKET, WATCHDOG_USEC
	Started    func(metrics, leases string) // called with the listeners' addresses once serving
}

// Run is the daemon: it refreshes each account when its time comes, tells systemd it is
// ready, alive (watchdog) and reloading, reloads the configuration on opt.Reload
// (keeping the running one when the new one is invalid), and returns when ctx ends.
func Run(ctx context.Context, opt RunOptions, deps Deps) error {
	cfg, err := LoadConfig(opt.ConfigPath)
	if err != nil {
		return err
	}
	n := newNotifier(opt.Getenv)
	a := New(cfg, deps)
	log := a.deps.Logger

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	var metricsAddr, leaseAddr string
	if cfg.Metrics.Listen != "" {
		ln, err := net.Listen("tcp", cfg.Metrics.Listen)
		if err != nil {
			return fmt.Errorf("agent: metrics: %w", err)
		}
		metricsAddr = ln.Addr().String()
		go func() { errc <- a.serveHTTP(ctx, ln) }()
	}
	if cfg.LeaseAPI.Socket != "" {
		if err := os.MkdirAll(cfg.LeaseAPI.Directory, 0o755); err != nil {
			return fmt.Errorf("agent: lease API: %w", err)
		}
		ln, err := ListenLeases(cfg.LeaseAPI.Socket)
		if err != nil {
			return err
		}
		leaseAddr = cfg.LeaseAPI.Socket
		go func() { errc <- a.serveLeases(ctx, ln) }()
	}
	if opt.Started != nil {
		opt.Started(metricsAddr, leaseAddr)
	}

	if every := n.watchdogEvery(); every > 0 {
		// Its own goroutine: a refresh waiting on dead DCs (each wait bounded by
		// timeout:) does not starve systemd's watchdog.
		go func() {
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					n.send("WATCHDOG=1")
				}
			}
		}()
	}
	a.Refresh(ctx, nil)
	n.send("READY=1\nSTATUS=" + summary(a.Status()))
	log.Info("agent: running", "accounts", len(cfg.Accounts), "next", a.NextWake().Format(time.RFC3339))

	for {
		// At least once a minute: a clock stepped forward (or a suspended host) is
		// noticed without waiting out a timer set before.
		wait := max(min(a.NextWake().Sub(a.now()), time.Minute), 10*time.Millisecond)
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			n.send("STOPPING=1")
			log.Info("agent: stopping")
			return nil
		case err := <-errc:
			timer.Stop()
			if err != nil {
				return err
			}
		case <-opt.Reload:
			timer.Stop()
			n.send("RELOADING=1\nMONOTONIC_USEC=" + monotonicUsec())
			next, err := LoadConfig(opt.ConfigPath)
			if err != nil {
				log.Error("agent: the new configuration is refused; the running one stays", "err", err)
			} else {
				a.reconfigure(next)
				log.Info("agent: configuration reloaded", "accounts", len(next.Accounts))
				a.Refresh(ctx, nil)
			}
			n.send("READY=1\nSTATUS=" + summary(a.Status()))
		case <-timer.C:
			if due := a.Due(); len(due) > 0 {
				a.Refresh(ctx, due)
				n.send("STATUS=" + summary(a.Status()))
			}
		}
	}
}

// reconfigure takes a new configuration; statuses of accounts still configured stay.
func (a *Agent) reconfigure(cfg *Config) {
	a.refreshing.Lock()
	defer a.refreshing.Unlock()
	a.mu.Lock()
	defer a.mu.Unlock()
	cfg.LeaseAPI = a.cfg.LeaseAPI // the socket stays as it was opened
	a.cfg = cfg
	keep := map[string]*AccountStatus{}
	for _, acc := range a.accountList() {
		if s := a.status[acc.statusKey()]; s != nil {
			s.NextRefresh = time.Time{} // read at once with the new settings
			keep[acc.statusKey()] = s
		}
	}
	a.status = keep
	a.salts = map[string]string{}
}

// summary is a one-line status for systemd.
func summary(st []AccountStatus) string {
	ok := 0
	for _, s := range st {
		if s.OK {
			ok++
		}
	}
	return strconv.Itoa(ok) + " of " + strconv.Itoa(len(st)) + " accounts up to date"
}

// notifier speaks systemd's notification protocol (sd_notify(3)): datagrams to the
// Unix socket in $NOTIFY_SOCKET.
type notifier struct {
	socket string
	getenv func(string) string
}

func newNotifier(getenv func(string) string) *notifier {
	if getenv == nil {
		getenv = os.Getenv
	}
	return &notifier{socket: getenv("NOTIFY_SOCKET"), getenv: getenv}
}

func (n *notifier) send(state string) {
	if n.socket == "" {
		return
	}
	addr := &net.UnixAddr{Name: n.socket, Net: "unixgram"}
	if addr.Name[0] == '@' {
		addr.Name = "\x00" + addr.Name[1:]
	}
	c, err := net.DialUnix("unixgram", nil, addr)
	if err != nil {
		return
	}
	defer c.Close()
	c.Write([]byte(state))
}

// watchdogEvery is half of $WATCHDOG_USEC (sd_watchdog_enabled(3)), or 0.
func (n *notifier) watchdogEvery() time.Duration {
	us, err := strconv.ParseInt(n.getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || us <= 0 {
		return 0
	}
	if pid := n.getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0
	}
	return time.Duration(us) * time.Microsecond / 2
}

// monotonicUsec is CLOCK_MONOTONIC in microseconds, which RELOADING=1 carries.
func monotonicUsec() string {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) != nil {
		return "0"
	}
	return strconv.FormatInt(ts.Nano()/1000, 10)
}
