package servertest

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gmsa/internal/cli"
	"gmsa/internal/server"
)

// DC is a whole `gmsa server` (LDAP, LDAPS, KDC, DNS) running in this process on one
// loopback address, with the dev domain EXAMPLE.TEST.
type DC struct {
	Data, LDAP, LDAPS, KDC, DNS, CA, PasswordFile string
	Endpoints                                     server.Endpoints
}

// StartDC runs a server on ip (free ports) with the clock now; mutate adjusts its
// configuration. The test's cleanup stops it.
func StartDC(t testing.TB, ip string, now func() time.Time, mutate func(*server.Config)) *DC {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.Data, cfg.Dev = t.TempDir(), true
	cfg.LDAP.Listen, cfg.LDAP.LDAPSListen, cfg.KDC.Listen, cfg.DNS.Listen = ip+":0", ip+":0", ip+":0", ip+":0"
	cfg.Metrics.Listen = "off"
	cfg.LDAP.TLSNames = []string{ip}
	if mutate != nil {
		mutate(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- server.Run(ctx, cfg, server.Deps{Now: now}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-stopped; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	d := &DC{Data: cfg.Data, PasswordFile: filepath.Join(cfg.Data, "admin-password")}
	for i := 0; ; i++ {
		b, err := os.ReadFile(filepath.Join(cfg.Data, server.EndpointsFile))
		if err == nil && json.Unmarshal(b, &d.Endpoints) == nil && d.Endpoints.LDAPS != "" {
			break
		}
		select {
		case err := <-stopped:
			t.Fatalf("the server stopped: %v", err)
		default:
		}
		if i == 500 {
			t.Fatal("the server did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	ep := d.Endpoints
	d.LDAP, d.LDAPS, d.KDC, d.DNS, d.CA = ep.LDAP, ep.LDAPS, ep.KDC, ep.DNS, ep.CA
	return d
}

// Port is the port of an endpoint URL or host:port.
func Port(endpoint string) string { return endpoint[strings.LastIndexByte(endpoint, ':')+1:] }

// Gm runs a gmsa admin command against the DC as Administrator and returns its output.
func (d *DC) Gm(t testing.TB, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	args = append(args, "--server", d.LDAPS, "--user", "Administrator", "--password-file", d.PasswordFile, "--ca-file", d.CA)
	if err := cli.Run(context.Background(), args, &out, &errOut); err != nil {
		t.Fatalf("gmsa %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.String() + errOut.String()
}
