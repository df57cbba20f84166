package agent

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/net/netutil"
)

// agentMetrics are the agent's Prometheus series, by account.
type agentMetrics struct {
	reg         *prometheus.Registry
	lastSuccess *prometheus.GaugeVec
	nextChange  *prometheus.GaugeVec
	ticketEnd   *prometheus.GaugeVec
	kvno        *prometheus.GaugeVec
	ok          *prometheus.GaugeVec
	failures    *prometheus.CounterVec
}

func newAgentMetrics(a *Agent) *agentMetrics {
	by := []string{"account"}
	m := &agentMetrics{reg: prometheus.NewRegistry(),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "gmsa_agent_last_success_timestamp_seconds", Help: "When the account's outputs were last brought up to date."}, by),
		nextChange:  prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "gmsa_agent_next_password_change_timestamp_seconds", Help: "When the DC changes the account's password next."}, by),
		ticketEnd:   prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "gmsa_agent_ticket_expiry_timestamp_seconds", Help: "When the account's cached TGT expires."}, by),
		kvno:        prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "gmsa_agent_kvno", Help: "The account's key version number."}, by),
		ok:          prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "gmsa_agent_account_ok", Help: "1 when the last refresh of the account succeeded."}, by),
		failures:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gmsa_agent_failures_total", Help: "Failed refreshes by cause."}, []string{"account", "cause"}),
	}
	m.reg.MustRegister(m.lastSuccess, m.nextChange, m.ticketEnd, m.kvno, m.ok, m.failures,
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "gmsa_agent_dc_requests_total", Help: "LDAP requests sent to DCs."},
			func() float64 { return float64(a.Requests()) }))
	return m
}

func seconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func (m *agentMetrics) success(s *AccountStatus) {
	m.lastSuccess.WithLabelValues(s.Account).Set(seconds(s.LastSuccess))
	m.nextChange.WithLabelValues(s.Account).Set(seconds(s.NextPassword))
	if !s.TicketExpires.IsZero() {
		m.ticketEnd.WithLabelValues(s.Account).Set(seconds(s.TicketExpires))
	}
	m.kvno.WithLabelValues(s.Account).Set(float64(s.KVNO))
	m.ok.WithLabelValues(s.Account).Set(1)
}

func (m *agentMetrics) failure(account, cause string) {
	m.failures.WithLabelValues(account, cause).Inc()
	m.ok.WithLabelValues(account).Set(0)
}

// serveHTTP serves /metrics and /healthz (200 while every account's last refresh
// succeeded, else 503 with the failing accounts) until ctx ends.
func (a *Agent) serveHTTP(ctx context.Context, ln net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(a.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		failing := map[string]string{}
		for _, s := range a.Status() {
			if !s.OK && !s.LastAttempt.IsZero() {
				failing[s.Account] = s.LastError
			}
		}
		w.Header().Set("Content-Type", "application/json")
		if len(failing) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(map[string]any{"ok": len(failing) == 0, "failing": failing})
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, MaxHeaderBytes: 8 << 10}
	go func() { <-ctx.Done(); srv.Close() }()
	if err := srv.Serve(netutil.LimitListener(ln, maxLocalConns)); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
