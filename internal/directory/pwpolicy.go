package directory

import (
	"crypto/subtle"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"gmsa/internal/krbkey"
)

// The password policy the domain object advertises (minPwdLength 7, pwdProperties 1:
// DOMAIN_PASSWORD_COMPLEX), enforced when a user's password is set, reset or changed
// ([MS-SAMR] 3.1.1.7.1, [MS-ADTS] 3.1.1.3.1.5). Computer accounts are not held to it,
// as AD and Samba do not hold them: machine passwords are random, and msktutil's
// pre-created accounts start with the lower-case host name.
const (
	minPasswordLength = 7
	// passwordHistoryLength is pwdHistoryLength: a change may not reuse the current
	// password or the 23 before it.
	passwordHistoryLength = 24
	// complexitySpecials are AD's non-alphanumeric characters of the complexity rule.
	complexitySpecials = "~!@#$%^&*_-+=`|\\(){}[]:;\"'<>,.?/ "
)

// checkPasswordPolicy refuses a user's new password that is shorter than
// minPwdLength or draws on fewer than three of the complexity rule's five kinds of
// character: upper case, lower case, digits, non-alphanumeric characters and other
// Unicode letters. The error says what is missing, never the password.
func checkPasswordPolicy(o *Object, pw string) error {
	if o.Class != ClassUser {
		return nil
	}
	if n := utf8.RuneCountInString(pw); n < minPasswordLength {
		return fmt.Errorf("directory: 0000052D: the password has %d characters; the domain's policy asks for at least %d: %w", n, minPasswordLength, ErrConstraint)
	}
	var upper, lower, digit, special, other bool
	for _, r := range pw {
		switch {
		case r < utf8.RuneSelf && r >= 'A' && r <= 'Z', r >= utf8.RuneSelf && unicode.IsUpper(r):
			upper = true
		case r < utf8.RuneSelf && r >= 'a' && r <= 'z', r >= utf8.RuneSelf && unicode.IsLower(r):
			lower = true
		case r >= '0' && r <= '9':
			digit = true
		case strings.ContainsRune(complexitySpecials, r):
			special = true
		case unicode.IsLetter(r):
			other = true
		}
	}
	kinds := 0
	for _, k := range []bool{upper, lower, digit, special, other} {
		if k {
			kinds++
		}
	}
	if kinds < 3 {
		return fmt.Errorf("directory: 0000052D: the password draws on %d of the complexity rule's kinds of character (upper case, lower case, digits, symbols, other letters); the domain's policy asks for 3: %w", kinds, ErrConstraint)
	}
	return nil
}

// checkPasswordHistory refuses a user's new password that is the current one or one of
// those its history remembers: on a change with the old password (LDAP or kpasswd),
// and on a reset only when the policy hints control asks ([MS-ADTS] 3.1.1.3.4.1.35).
// Hashes are compared in constant time.
func checkPasswordHistory(o *Object, pw string) error {
	if o.Class != ClassUser {
		return nil
	}
	nt := krbkey.NTHash(EncodePassword(pw))
	used := 0
	for _, h := range append([][]byte{o.NTHash}, o.NTHistory...) {
		used |= subtle.ConstantTimeCompare(nt[:], h)
	}
	if used == 1 {
		return fmt.Errorf("directory: 0000052D: the password was used before; the domain's policy remembers the last %d: %w", passwordHistoryLength, ErrConstraint)
	}
	return nil
}
