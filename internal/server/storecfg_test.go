package server

import (
	"context"
	crand "crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gmsa/internal/pki"
	"gmsa/internal/store/etcd/etcdtest"
)

// Every mistake in the store settings is named at once, with the setting's name.
func TestStoreSettingsValidate(t *testing.T) {
	dir := t.TempDir()
	c := DefaultConfig()
	c.Data = dir
	c.Store.Backend = "etcd"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "store.etcd.endpoints: the etcd backend needs at least one endpoint") {
		t.Fatalf("no endpoints: %v", err)
	}
	c.Store.Etcd = EtcdConfig{Endpoints: []string{"10.0.0.1:2379", "ftp://x:1", "https://host"}, Prefix: "example.test",
		CertFile: filepath.Join(dir, "c.pem"), Username: "gmsa", CAFile: filepath.Join(dir, "missing.pem")}
	err := c.Validate()
	for _, want := range []string{`"10.0.0.1:2379": want a URL`, `"ftp://x:1": scheme "ftp"`, `"https://host": no port`,
		`store.etcd.prefix: "example.test": end it with /`, "cert_file and key_file: give both or neither",
		"store.etcd.password_file: username is set", "store.etcd.ca_file: open"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in:\n%v", want, err)
		}
	}
	c.Store = StoreConfig{Backend: "consul"}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), `store.backend: "consul": want bolt or etcd`) {
		t.Fatal(err)
	}
	// The environment sets them too.
	c = DefaultConfig()
	env := map[string]string{"GMSA_STORE_BACKEND": "etcd", "GMSA_ETCD_ENDPOINTS": "https://a:2379, https://b:2379", "GMSA_ETCD_PREFIX": "d1/"}
	if err := c.LoadEnv(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if c.Store.backend() != "etcd" || len(c.Store.Etcd.Endpoints) != 2 || c.Store.Etcd.Endpoints[1] != "https://b:2379" || c.Store.Etcd.Prefix != "d1/" {
		t.Fatalf("%+v", c.Store)
	}
}

// Against a real member that serves TLS and requires client certificates: the right
// files reach it; a missing client certificate and a wrong CA are refused with errors
// that say so.
func TestStoreOverTLSWithClientCertificates(t *testing.T) {
	tlsDir := t.TempDir()
	if _, err := pki.Ensure(tlsDir, []string{"127.0.0.1", "localhost"}, time.Now(), crand.Reader); err != nil {
		t.Fatal(err)
	}
	cl := etcdtest.StartTLS(t, tlsDir)
	certPEM, keyPEM, err := pki.IssueClient(tlsDir, "dc1", "", time.Hour, time.Now(), crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key")
	os.WriteFile(certFile, certPEM, 0o600)
	os.WriteFile(keyFile, keyPEM, 0o600)
	cfg := DefaultConfig()
	cfg.Data = dir
	cfg.Store = StoreConfig{Backend: "etcd", Etcd: EtcdConfig{Endpoints: cl.URLs(), Prefix: "example.test/", DialTimeout: 2 * time.Second,
		CAFile: filepath.Join(tlsDir, pki.CAFile), CertFile: certFile, KeyFile: keyFile}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := CheckStore(ctx, cfg); err != nil {
		t.Fatalf("with the client certificate: %v", err)
	}
	st, release, err := OpenConfigured(ctx, cfg, false, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := OpenConfigured(ctx, cfg, false, true); err == nil || !strings.Contains(err.Error(), "each server on a shared etcd cluster needs its own --data") {
		t.Fatalf("a second server on the same data directory: %v", err)
	}
	if _, err := st.List(ctx, ""); err != nil {
		t.Fatal(err)
	}
	release()

	noCert := cfg
	noCert.Store.Etcd.CertFile, noCert.Store.Etcd.KeyFile = "", ""
	if err := CheckStore(ctx, noCert); err == nil || !strings.Contains(err.Error(), "TLS") {
		t.Fatalf("without a client certificate: %v", err)
	} else {
		t.Log(err)
	}
	otherCA := t.TempDir()
	pki.Ensure(otherCA, []string{"127.0.0.1"}, time.Now(), crand.Reader)
	wrongCA := cfg
	wrongCA.Store.Etcd.CAFile = filepath.Join(otherCA, pki.CAFile)
	if err := CheckStore(ctx, wrongCA); err == nil || !strings.Contains(err.Error(), "TLS") {
		t.Fatalf("with another CA: %v", err)
	} else {
		t.Log(err)
	}
}
