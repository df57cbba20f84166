package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"gmsa/internal/directory"
	"gmsa/internal/servertest"
)

// The load loop against a real server: pipelined password reads all carry the blob
// for a granted reader, none for another user, and every search is counted once.
func TestLoadReadsPasswords(t *testing.T) {
	ctx := context.Background()
	s := servertest.Start(t, servertest.Options{})
	for _, u := range []string{"reader", "other"} {
		if _, err := s.Dir.NewUser(ctx, directory.UserOptions{Name: u, Password: "Pw-123456!"}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		if _, err := s.Dir.NewGMSA(ctx, directory.GMSAOptions{Name: fmt.Sprintf("g%d", i), DNSHostName: "g.example.test", PrincipalsAllowed: []string{"reader"}}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := loadConfig{url: "ldaps://" + s.LDAPS, bindDN: "reader@example.test", password: "Pw-123456!", base: "DC=example,DC=test",
		filter: "(sAMAccountName=g%d$)", attrs: []string{"msDS-ManagedPassword"}, n: 5, conns: 2, depth: 4, dur: 300 * time.Millisecond}
	r, err := load(cfg)
	if err != nil || r.errors != 0 || r.ops < 10 || r.withAttr != r.ops {
		t.Fatalf("granted reader: %+v %v", r, err)
	}
	cfg.bindDN = "other@example.test"
	if r, err := load(cfg); err != nil || r.errors != 0 || r.ops < 10 || r.withAttr != 0 {
		t.Fatalf("other user: %+v %v", r, err)
	}
	cfg.password = "wrong"
	if r, _ := load(cfg); r.errors != int64(cfg.conns) || !strings.Contains(r.firstErr, "result 49") {
		t.Fatalf("wrong password: %+v", r)
	}
}

func TestLoopbackOnly(t *testing.T) {
	for _, u := range []string{"ldap://127.0.0.1:389", "ldaps://localhost:636", "ldap://[::1]:389"} {
		if err := loopbackOnly(u); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	for _, u := range []string{"ldap://10.0.0.1", "ldaps://dc.example.test:636"} {
		if err := loopbackOnly(u); err == nil {
			t.Errorf("%s accepted", u)
		}
	}
}
