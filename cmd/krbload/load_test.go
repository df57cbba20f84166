package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"gmsa/internal/servertest"
)

// The load loop against a whole server: AS exchanges with pre-authentication and TGS
// exchanges for a service all get their replies; a wrong password gets none.
func TestLoadGetsTickets(t *testing.T) {
	dc := servertest.StartDC(t, "127.0.0.1", time.Now, nil)
	pw, err := os.ReadFile(dc.PasswordFile)
	if err != nil {
		t.Fatal(err)
	}
	password := strings.TrimSpace(string(pw))
	for _, mode := range []string{"as", "tgs"} {
		l, err := newLoad(dc.KDC, "EXAMPLE.TEST", "Administrator", password, "", "host/dc1.example.test", false)
		if err != nil {
			t.Fatal(err)
		}
		if mode == "tgs" {
			if err := l.login(password); err != nil {
				t.Fatal(err)
			}
		}
		if r := l.run(mode, 2, 300*time.Millisecond); r.ops < 10 || r.errors != 0 {
			t.Fatalf("%s: %+v", mode, r)
		}
	}
	l, err := newLoad(dc.KDC, "EXAMPLE.TEST", "Administrator", "wrong", "", "", false)
	if err != nil {
		t.Fatal(err)
	}
	if r := l.run("as", 1, 50*time.Millisecond); r.ops != 0 || r.errors == 0 {
		t.Fatalf("wrong password: %+v", r)
	}
}

func TestLoopbackOnly(t *testing.T) {
	for _, a := range []string{"127.0.0.1:88", "localhost:88", "[::1]:88"} {
		if err := loopbackOnly(a); err != nil {
			t.Errorf("%s: %v", a, err)
		}
	}
	for _, a := range []string{"10.0.0.1:88", "dc.example.test:88"} {
		if err := loopbackOnly(a); err == nil {
			t.Errorf("%s accepted", a)
		}
	}
}
