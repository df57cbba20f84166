// Package metrics holds the server's Prometheus metrics. Every method is safe on a nil
// *Metrics (metrics off), so the transports call them unconditionally. Names follow
// Prometheus's conventions (gmsa_ prefix, _total counters, _seconds histograms); the
// Grafana dashboard in deploy/ queries them, and a test checks its queries against
// Names.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics is the server's registry and collectors.
type Metrics struct {
	Registry *prometheus.Registry

	conns        *prometheus.GaugeVec
	connsTotal   *prometheus.CounterVec
	requests     *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	binds        *prometheus.CounterVec
	passwords    *prometheus.CounterVec
	rootKeyReads prometheus.Counter
	rotations    prometheus.Counter
	auditWrite   prometheus.Histogram
	auditFails   prometheus.Counter
	storeCommit  prometheus.Histogram
	kdc          *prometheus.CounterVec
	reloads      *prometheus.CounterVec
}

// latencyBuckets span a cached read (tens of µs) to a slow commit (seconds).
var latencyBuckets = []float64{25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1, 2.5}

// New makes the collectors and registers them with the Go runtime's and the process's.
func New() *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry()}
	m.conns = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "gmsa_ldap_connections", Help: "LDAP connections open now, by listener (ldap, ldaps) and state (anonymous, bound)."}, []string{"listener", "state"})
	m.connsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gmsa_ldap_connections_total", Help: "LDAP connections accepted or refused (at a limit), by listener."}, []string{"listener", "result"})
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gmsa_ldap_requests_total", Help: "LDAP requests served, by operation."}, []string{"operation"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "gmsa_ldap_request_duration_seconds", Help: "Time to serve an LDAP request, by operation.", Buckets: latencyBuckets}, []string{"operation"})
	m.binds = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gmsa_ldap_binds_total", Help: "LDAP binds, by mechanism (simple, GSSAPI, GSS-SPNEGO, EXTERNAL) and result (success, failure)."}, []string{"mechanism", "result"})
	m.passwords = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gmsa_password_reads_total", Help: "msDS-ManagedPassword reads, by result (granted, denied)."}, []string{"result"})
	m.rootKeyReads = prometheus.NewCounter(prometheus.CounterOpts{Name: "gmsa_root_key_reads_total", Help: "KDS root key data read (msKds-RootKeyData)."})
	m.rotations = prometheus.NewCounter(prometheus.CounterOpts{Name: "gmsa_password_rotations_total", Help: "gMSA password rotations this server persisted."})
	m.auditWrite = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "gmsa_audit_write_duration_seconds", Help: "Time to write (and fsync, by policy) one group of audit records.", Buckets: latencyBuckets})
	m.auditFails = prometheus.NewCounter(prometheus.CounterOpts{Name: "gmsa_audit_write_failures_total", Help: "Audit writes that failed (operations are refused meanwhile)."})
	m.storeCommit = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "gmsa_store_commit_duration_seconds", Help: "Time to commit one store transaction.", Buckets: latencyBuckets})
	m.kdc = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gmsa_kdc_requests_total", Help: "Kerberos requests, by type (as, tgs) and result (ok or the KRB error's name)."}, []string{"type", "result"})
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gmsa_tls_certificate_reloads_total", Help: "Operator certificate loads after the first, by result (loaded, refused: the current one stays)."}, []string{"result"})
	m.Registry.MustRegister(m.connsTotal, m.requests, m.latency, m.binds, m.passwords, m.rootKeyReads, m.rotations,
		m.auditWrite, m.auditFails, m.storeCommit, m.kdc, m.reloads,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Gauge registers a gauge read when scraped (a certificate's days left, readiness).
func (m *Metrics) Gauge(name, help string, f func() float64) {
	if m != nil {
		m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
	}
}

// Counter registers a counter read when scraped (a cache's hits, kept by the store).
func (m *Metrics) Counter(name, help string, labels prometheus.Labels, f func() float64) {
	if m != nil {
		m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels}, f))
	}
}

// Accepted counts a connection accepted (true) or refused at a limit.
func (m *Metrics) Accepted(listener string, ok bool) {
	if m != nil {
		m.connsTotal.WithLabelValues(listener, map[bool]string{true: "accepted", false: "refused"}[ok]).Inc()
	}
}

// Request counts an LDAP request of an operation and its time.
func (m *Metrics) Request(operation string, d time.Duration) {
	if m != nil {
		m.requests.WithLabelValues(operation).Inc()
		m.latency.WithLabelValues(operation).Observe(d.Seconds())
	}
}

// Bind counts a bind response by its LDAP result code; the intermediate
// saslBindInProgress of a multi-step bind is not a bind's end and is not counted.
func (m *Metrics) Bind(mechanism string, code int) {
	const saslBindInProgress = 14
	if m != nil && code != saslBindInProgress {
		m.binds.WithLabelValues(mechanism, map[bool]string{true: "success", false: "failure"}[code == 0]).Inc()
	}
}

// ConnKey is a connection's listener (ldap, ldaps) and state (anonymous, bound).
type ConnKey struct{ Listener, State string }

// Connections registers the function that counts the open connections when scraped.
func (m *Metrics) Connections(count func() map[ConnKey]int) {
	if m != nil {
		m.Registry.MustRegister(connCollector{m.conns, count})
	}
}

// connCollector reads the connection counts at each scrape, so that serving a
// connection pays nothing for the gauge.
type connCollector struct {
	desc  *prometheus.GaugeVec
	count func() map[ConnKey]int
}

func (c connCollector) Describe(ch chan<- *prometheus.Desc) { c.desc.Describe(ch) }

func (c connCollector) Collect(ch chan<- prometheus.Metric) {
	counts := c.count()
	for _, l := range []string{"ldap", "ldaps"} { // every series present, zeros too
		for _, st := range []string{"anonymous", "bound"} {
			c.desc.WithLabelValues(l, st).Set(float64(counts[ConnKey{l, st}]))
		}
	}
	c.desc.Collect(ch)
}

// AuditEvent counts what an audit record says happened: password reads granted and
// denied, root-key reads, rotations. Counting the trail's records makes each count equal
// what the trail shows.
func (m *Metrics) AuditEvent(msg string) {
	if m == nil {
		return
	}
	switch msg {
	case "gMSA password read":
		m.passwords.WithLabelValues("granted").Inc()
	case "gMSA password read denied":
		m.passwords.WithLabelValues("denied").Inc()
	case "KDS root key read":
		m.rootKeyReads.Inc()
	case "gMSA password rotated":
		m.rotations.Inc()
	}
}

// AuditWrite records one audit write.
func (m *Metrics) AuditWrite(d time.Duration, err error) {
	if m != nil {
		m.auditWrite.Observe(d.Seconds())
		if err != nil {
			m.auditFails.Inc()
		}
	}
}

// Commit records one store commit.
func (m *Metrics) Commit(d time.Duration) {
	if m != nil {
		m.storeCommit.Observe(d.Seconds())
	}
}

// CertificateReload counts a replacement certificate taken or refused.
func (m *Metrics) CertificateReload(err error) {
	if m != nil {
		m.reloads.WithLabelValues(map[bool]string{true: "loaded", false: "refused"}[err == nil]).Inc()
	}
}

// KDC counts a Kerberos request.
func (m *Metrics) KDC(typ, result string) {
	if m != nil {
		m.kdc.WithLabelValues(typ, result).Inc()
	}
}

// Names are the metric names the server exports (besides Go's and the process's), for
// the dashboard's check.
var Names = []string{"gmsa_ldap_connections", "gmsa_ldap_connections_total", "gmsa_ldap_requests_total", "gmsa_ldap_request_duration_seconds",
	"gmsa_ldap_binds_total", "gmsa_password_reads_total", "gmsa_root_key_reads_total", "gmsa_password_rotations_total",
	"gmsa_audit_write_duration_seconds", "gmsa_audit_write_failures_total", "gmsa_store_commit_duration_seconds", "gmsa_kdc_requests_total",
	"gmsa_store_cache_requests_total", "gmsa_tls_certificate_expiry_days", "gmsa_tls_certificate_reloads_total", "gmsa_ready"}
