package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"gmsa/internal/directory"
	"gmsa/internal/servertest"
	"gmsa/internal/tlv"
)

// The load loop against a real server: pipelined password reads all carry the blob
// for a granted reader, none for another user, and every search is counted once.
func TestLoadReadsPasswords(t *testing.T) {
	ctx := context.Background()
	s := servertest.Start(t, servertest.Options{})
	for _, u := range []string{"reader", "other"} {
		if _, err := s.Dir.NewUser(ctx, directory.LocalSystem(), directory.UserOptions{Name: u, Password: "Pw-123456!"}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		if _, err := s.Dir.NewGMSA(ctx, directory.LocalSystem(), directory.GMSAOptions{Name: fmt.Sprintf("g%d", i), DNSHostName: "g.example.test", PrincipalsAllowed: []string{"reader"}}); err != nil {
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

// Responses come from whatever server is under test: any bytes give a response or an
// error, never a panic, and a frame never claims more than it holds.
func FuzzParseResponse(f *testing.F) {
	f.Add(message(nil, 7, []byte{0x65, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00}), "cn")
	f.Add([]byte{0x30, 0x0c, 0x02, 0x01, 0x02, 0x64, 0x07, 0x04, 0x00, 0x30, 0x03, 0x30, 0x01, 0x04}, "")
	f.Fuzz(func(t *testing.T, msg []byte, watch string) {
		parseResponse(msg, watch)
		if b, err := tlv.ReadMessage(bufio.NewReader(bytes.NewReader(msg)), nil, 1<<16, nil); err == nil && len(b) > len(msg) {
			t.Fatalf("read %d bytes from %d", len(b), len(msg))
		}
	})
}

// A paged enumeration follows the cookies to the end: every entry once per operation.
func TestLoadEnumeratesPaged(t *testing.T) {
	ctx := context.Background()
	s := servertest.Start(t, servertest.Options{})
	for i := range 25 {
		if _, err := s.Dir.NewUser(ctx, directory.LocalSystem(), directory.UserOptions{Name: fmt.Sprintf("p%d", i), Description: "paged"}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := loadConfig{url: "ldaps://" + s.LDAPS, bindDN: "Administrator@example.test", password: s.AdminPassword, base: "DC=example,DC=test",
		filter: "(description=paged)", attrs: []string{"cn"}, n: 1, conns: 1, depth: 1, page: 4, dur: 100 * time.Millisecond}
	r, err := load(cfg)
	if err != nil || r.errors != 0 || r.ops < 1 || r.withAttr != 25*r.ops {
		t.Fatalf("paged: %+v %v", r, err)
	}
}
