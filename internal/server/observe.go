package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/net/netutil"

	"gmsa/internal/audit"
	"gmsa/internal/directory"
	"gmsa/internal/metrics"
	"gmsa/internal/store"
)

// Check is one readiness condition and what was found.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// Readiness is what /readyz answers.
type Readiness struct {
	Ready  bool    `json:"ready"`
	Checks []Check `json:"checks"`
}

// health decides readiness: the store answers, every listener accepts, a root key is
// usable for new gMSAs, and the audit trail takes records.
type health struct {
	dir       *directory.Directory
	trail     *audit.Log
	listeners map[string]string // name → host:port, dialled over TCP

	mu     sync.Mutex // one check at a time; callers within checkReuse share its result
	last   Readiness
	lastAt time.Time
}

// checkReuse is how long a readiness result answers further probes: a flood of
// /readyz (or scrapes) costs one check a second, and never fills the LDAP listener's
// per-source slots with the checks' own connections.
const checkReuse = time.Second

// checkTimeout bounds each readiness check: a store without quorum or a listener that
// does not accept is "not ready", not a hung probe.
const checkTimeout = 2 * time.Second

func (h *health) check(ctx context.Context) Readiness {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.lastAt.IsZero() && time.Since(h.lastAt) < checkReuse {
		return h.last
	}
	h.last, h.lastAt = h.run(ctx), time.Now()
	return h.last
}

func (h *health) run(ctx context.Context) Readiness {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	var r Readiness
	add := func(name string, err error) {
		c := Check{Name: name, OK: err == nil}
		if err != nil {
			c.Detail = err.Error()
		}
		r.Checks = append(r.Checks, c)
	}
	add("directory", h.dir.Ready(ctx)) // the store, and a usable root key
	for _, name := range []string{"ldap", "ldaps", "kdc"} {
		addr, ok := h.listeners[name]
		if !ok {
			continue
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
		} else {
			err = fmt.Errorf("%s does not accept: %w", addr, err)
		}
		add(name, err)
	}
	add("audit", h.trail.Healthy())
	r.Ready = true
	for _, c := range r.Checks {
		r.Ready = r.Ready && c.OK
	}
	return r
}

// storeTimer times the commits of a store for the metrics.
type storeTimer struct {
	store.Store
	m *metrics.Metrics
}

// Generation passes the store's generations through (store.Generations), so caches
// keyed on them keep working behind the timer.
func (s storeTimer) Generation() (uint64, bool) {
	if g, ok := s.Store.(store.Generations); ok {
		return g.Generation()
	}
	return 0, false
}

func (s storeTimer) Apply(ctx context.Context, ops ...store.Op) (int64, error) {
	start := time.Now()
	rev, err := s.Store.Apply(ctx, ops...)
	s.m.Commit(time.Since(start))
	return rev, err
}

// instrument wraps the store and registers the gauges read at scrape time.
func instrument(m *metrics.Metrics, st store.Store) store.Store {
	if m == nil {
		return st
	}
	if c, ok := st.(store.CacheReporter); ok {
		m.Counter("gmsa_store_cache_requests_total", "Store reads, by whether the read cache answered (hit) or the storage did (miss).",
			map[string]string{"result": "hit"}, func() float64 { h, _ := c.CacheStats(); return float64(h) })
		m.Counter("gmsa_store_cache_requests_total", "Store reads, by whether the read cache answered (hit) or the storage did (miss).",
			map[string]string{"result": "miss"}, func() float64 { _, mi := c.CacheStats(); return float64(mi) })
	}
	return storeTimer{st, m}
}

// maxHTTPConns bounds the metrics listener's connections (a scraper or two, probes).
const maxHTTPConns = 32

// serveHTTP serves /metrics, /healthz and /readyz on l until ctx ends.
func serveHTTP(ctx context.Context, l net.Listener, m *metrics.Metrics, h *health, log *slog.Logger) func() {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{ErrorLog: slogPrinter{log}, Timeout: 10 * time.Second}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n") // the process serves: liveness asks no more
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		rd := h.check(r.Context())
		w.Header().Set("Content-Type", "application/json")
		if !rd.Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(rd)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second,
		IdleTimeout: 60 * time.Second, MaxHeaderBytes: 16 << 10, BaseContext: func(net.Listener) context.Context { return ctx }}
	l = netutil.LimitListener(l, maxHTTPConns)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener failed", "err", err)
		}
	}()
	return func() {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(c)
		<-done
	}
}

// slogPrinter hands promhttp's errors to the server's log.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) {
	p.log.Error("metrics: " + strings.TrimSpace(fmt.Sprintln(v...)))
}

// Status reads a running server's readiness from the health URL in its endpoints file.
// It returns ErrNotRunning when no server runs on the data directory.
func Status(ctx context.Context, dataDir string) (Readiness, string, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, EndpointsFile))
	if errors.Is(err, os.ErrNotExist) {
		return Readiness{}, "", fmt.Errorf("%w on %s (no %s)", ErrNotRunning, dataDir, EndpointsFile)
	}
	if err != nil {
		return Readiness{}, "", err
	}
	var ep Endpoints
	if err := json.Unmarshal(b, &ep); err != nil {
		return Readiness{}, "", fmt.Errorf("%s: %w", EndpointsFile, err)
	}
	if ep.Health == "" {
		return Readiness{}, "", fmt.Errorf("%w: the server on %s has no health endpoint: set metrics.listen (GMSA_METRICS_LISTEN)", ErrNoHealth, dataDir)
	}
	u, err := url.JoinPath(ep.Health, "readyz")
	if err != nil {
		return Readiness{}, "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*checkTimeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Readiness{}, u, fmt.Errorf("%w: %s: %v", ErrNotRunning, u, err)
	}
	defer resp.Body.Close()
	var rd Readiness
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&rd); err != nil {
		return rd, u, fmt.Errorf("%s answered %s without a readiness report: %v", u, resp.Status, err)
	}
	return rd, u, nil
}

var (
	// ErrNotRunning is a data directory no server runs on.
	ErrNotRunning = errors.New("no server is running")
	// ErrNoHealth is a server that runs without metrics.listen.
	ErrNoHealth = errors.New("no health endpoint")
)
