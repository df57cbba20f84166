package directory

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// A user's password follows the policy the domain advertises — at least 7 characters,
// three of the five kinds — when created, reset (directly or as a unicodePwd replace)
// or changed; a computer's does not (msktutil's default machine password is the host
// name). Refusals never repeat the password.
func TestPasswordPolicy(t *testing.T) {
	d, _ := lab(t)
	for _, c := range []struct {
		pw string
		ok bool
	}{
		{"Ab1!", false},                                       // too short
		{"pwpwpwpw", false},                                   // one kind
		{"pwpwpw12", false},                                   // two kinds
		{"Password12", true},                                  // upper, lower, digits
		{"password-12", true},                                 // lower, digits, a symbol
		{"ÄÖÜäöü-x", true},                                    // European upper and lower case, a symbol
		{"密码密码密码1!", true},                                    // other letters, a digit, a symbol
		{"correct horse", false},                              // lower case and a space only
		{"Correct horse", true},                               // upper, lower, a space
		{"\u00e9\u00e8\u00ea\u00eb\u00e0\u00e2\u00e4", false}, // lower case only
	} {
		_, err := d.NewUser(ctx, sys, UserOptions{Name: "pp", Password: c.pw})
		if c.ok != (err == nil) || err != nil && (!errors.Is(err, ErrConstraint) || strings.Contains(err.Error(), c.pw)) {
			t.Errorf("new user with %q: %v, want accepted %v (a constraint violation without the password)", c.pw, err, c.ok)
		}
		if err == nil {
			must(0, d.Delete(ctx, sys, "CN=pp,CN=Users,DC=example,DC=test"))
		}
	}
	must(d.NewUser(ctx, sys, UserOptions{Name: "polly", Password: "Polly-Pass-1!"}))
	if _, err := d.SetPassword(ctx, sys, "polly", "polly"); !errors.Is(err, ErrConstraint) {
		t.Errorf("a reset to a short password: %v", err)
	}
	if _, err := d.Modify(ctx, sys, "CN=polly,CN=Users,DC=example,DC=test", []Change{{Op: ChangeReplace, Attr: "unicodePwd", Values: [][]byte{EncodePassword(`"pollypolly"`)}}}); !errors.Is(err, ErrConstraint) {
		t.Errorf("a unicodePwd replace with one kind of character: %v", err)
	}
	must(d.SetPassword(ctx, sys, "polly", "Polly-Pass-2!"))
	must(d.NewComputer(ctx, sys, ComputerOptions{Name: "host4"}))
	if _, err := d.SetPassword(ctx, sys, "host4$", "host4"); err != nil {
		t.Errorf("a computer's default password: %v", err)
	}
}

// A change with the old password may not reuse the current password or one of the 23
// before it; an administrator's reset may, unless the policy hints control asks for the
// whole policy. Older passwords than that are free again.
func TestPasswordHistory(t *testing.T) {
	d, _ := lab(t)
	const dn = "CN=hedy,CN=Users,DC=example,DC=test"
	must(d.NewUser(ctx, sys, UserOptions{Name: "hedy", Password: "Hedy-Pass-0!"}))
	quoted := func(pw string) []byte { return EncodePassword(`"` + pw + `"`) }
	change := func(old, pw string) error {
		_, err := d.Modify(ctx, sys, dn, []Change{{Op: ChangeDelete, Attr: "unicodePwd", Values: [][]byte{quoted(old)}},
			{Op: ChangeAdd, Attr: "unicodePwd", Values: [][]byte{quoted(pw)}}})
		return err
	}
	reset := func(pw string, full bool) error {
		_, err := d.Modify(ctx, sys, dn, []Change{{Op: ChangeReplace, Attr: "unicodePwd", Values: [][]byte{quoted(pw)}, EnforceHistory: full}})
		return err
	}
	if err := change("Hedy-Pass-0!", "Hedy-Pass-0!"); !errors.Is(err, ErrConstraint) {
		t.Fatalf("a change to the current password: %v", err)
	}
	must(0, change("Hedy-Pass-0!", "Hedy-Pass-1!"))
	if err := change("Hedy-Pass-1!", "Hedy-Pass-0!"); !errors.Is(err, ErrConstraint) || strings.Contains(err.Error(), "Hedy") {
		t.Fatalf("a change back to the previous password: %v", err)
	}
	if _, err := d.ChangeOwnPassword(ctx, must(d.Authenticate(ctx, Anonymous(ProtectionTLS, "test"), "hedy", "Hedy-Pass-1!")), "Hedy-Pass-0!"); !errors.Is(err, ErrConstraint) {
		t.Fatalf("a kpasswd change back to the previous password: %v", err)
	}
	if err := reset("Hedy-Pass-0!", true); !errors.Is(err, ErrConstraint) {
		t.Fatalf("a reset to a remembered password with the policy hints: %v", err)
	}
	must(0, reset("Hedy-Pass-0!", false)) // an administrator's reset is not held to the history
	// 24 remembered, the current one among them: after 23 more changes the reset's
	// password is the oldest still refused, the one before it is free; one change more
	// frees it too.
	cur := "Hedy-Pass-0!"
	for i := 2; i <= 24; i++ {
		next := fmt.Sprintf("Hedy-Pass-%d!", i)
		must(0, change(cur, next))
		cur = next
	}
	if err := change(cur, "Hedy-Pass-0!"); !errors.Is(err, ErrConstraint) {
		t.Fatalf("a change to the password 23 changes back: %v", err)
	}
	must(0, change(cur, "Hedy-Pass-1!"))
	if err := change("Hedy-Pass-1!", "Hedy-Pass-0!"); err != nil {
		t.Fatalf("a change to a password older than the history: %v", err)
	}
}
