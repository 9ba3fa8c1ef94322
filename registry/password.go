package registry

import (
	_ "embed"
	"strings"
	"sync"
	"unicode/utf8"
)

// MinPasswordLength is the shortest password accepted for a new account,
// in characters (runes), not bytes.
const MinPasswordLength = 10

// maxPasswordBytes bounds what is sent on to CouchDB's hashing.
const maxPasswordBytes = 1024

// commonPasswordsText is a list of the passwords people pick most often
// (scripts/gen-common-passwords.py writes it from well-known patterns:
// common words with digits or years, number runs, keyboard walks), one
// lower-case entry of at least MinPasswordLength characters per line.
//
//go:embed commonpasswords.txt
var commonPasswordsText string

var commonPasswords = sync.OnceValue(func() map[string]struct{} {
	m := make(map[string]struct{}, 8192)
	for _, line := range strings.Split(commonPasswordsText, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			m[line] = struct{}{}
		}
	}
	return m
})

// CheckNewPassword is the password policy for a new account (and for any
// password set by an operator): at least MinPasswordLength characters, not
// the user name nor containing it, not one of the most common passwords.
// The reasons are meant for the person choosing the password; npm prints
// them.
func CheckNewPassword(name, password string) error {
	if password == "" {
		return E(KindInvalid, "a password is required")
	}
	if len(password) > maxPasswordBytes {
		return E(KindInvalid, "the password is longer than %d bytes", maxPasswordBytes)
	}
	if !utf8.ValidString(password) {
		return E(KindInvalid, "the password is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(password); n < MinPasswordLength {
		return E(KindInvalid, "the password is too short (%d characters): use at least %d", n, MinPasswordLength)
	}
	lp, ln := strings.ToLower(password), strings.ToLower(name)
	if ln != "" && lp == ln {
		return E(KindInvalid, "the password must not be the user name")
	}
	// Names of one to three characters occur by chance in good passwords.
	if utf8.RuneCountInString(ln) >= 4 && strings.Contains(lp, ln) {
		return E(KindInvalid, "the password must not contain the user name")
	}
	if _, ok := commonPasswords()[lp]; ok {
		return E(KindInvalid, "this password is one of the most common passwords; choose another")
	}
	return nil
}
