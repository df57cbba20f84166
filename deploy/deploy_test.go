// Package deploy holds what installs and watches gmsa server: the systemd unit, the
// default configuration, the Grafana dashboard. Its tests check the dashboard against
// the metrics the server exports; test/interop checks the unit with systemd-analyze.
package deploy

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gmsa/internal/metrics"
)

type dashboard struct {
	Title  string `json:"title"`
	UID    string `json:"uid"`
	Panels []struct {
		Title   string `json:"title"`
		GridPos struct{ X, Y, W, H int }
		Targets []struct {
			RefID string `json:"refId"`
			Expr  string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

var metricName = regexp.MustCompile(`\bgmsa_[a-z_]+`)

// Every query of the dashboard names metrics the server exports, and every metric the
// server exports is on the dashboard. (internal/server's tests check that Names is what a
// running server exports.)
func TestDashboardQueriesUseExportedMetrics(t *testing.T) {
	b, err := os.ReadFile("grafana/gmsa-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	if d.UID == "" || d.Title == "" || len(d.Panels) == 0 {
		t.Fatal("the dashboard has no uid, title or panels")
	}
	used := map[string]bool{}
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		if p.GridPos.W <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q lies outside Grafana's 24-column grid", p.Title)
		}
		for _, q := range p.Targets {
			if q.RefID == "" || q.Expr == "" {
				t.Errorf("panel %q has a query without refId or expr", p.Title)
			}
			if strings.Count(q.Expr, "(") != strings.Count(q.Expr, ")") || strings.Count(q.Expr, "{") != strings.Count(q.Expr, "}") ||
				strings.Count(q.Expr, "[") != strings.Count(q.Expr, "]") {
				t.Errorf("panel %q: unbalanced brackets in %s", p.Title, q.Expr)
			}
			names := metricName.FindAllString(q.Expr, -1)
			if len(names) == 0 {
				t.Errorf("panel %q: %s queries no gmsa metric", p.Title, q.Expr)
			}
			for _, n := range names {
				base := n
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if b, ok := strings.CutSuffix(n, suffix); ok && slices.Contains(metrics.Names, b) {
						base = b
					}
				}
				if !slices.Contains(metrics.Names, base) {
					t.Errorf("panel %q queries %s, which the server does not export", p.Title, n)
				}
				used[base] = true
			}
		}
	}
	for _, n := range metrics.Names {
		if !used[n] {
			t.Errorf("the server exports %s and no panel shows it", n)
		}
	}
}
