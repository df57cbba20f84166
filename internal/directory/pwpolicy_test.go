package directory

import (
	"errors"
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
