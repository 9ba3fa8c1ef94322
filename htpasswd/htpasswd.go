// Package htpasswd verifies the password hashes of htpasswd files as
// Verdaccio 5 does (bcrypt, DES crypt, MD5-crypt and apr1, {SHA}), so
// that accounts imported from it keep their passwords. It only verifies:
// couchnpm never makes such hashes.
package htpasswd

import (
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"strings"
	"unicode/utf16"

	"golang.org/x/crypto/bcrypt"
)

// Kind is a kind of htpasswd hash.
type Kind string

// The kinds Verdaccio 5 verifies (verdaccio-htpasswd: bcryptjs, {SHA},
// apache-md5 for $apr1$ and $1$, unix-crypt-td-js for DES crypt).
const (
	Bcrypt   Kind = "bcrypt"
	DESCrypt Kind = "DES crypt"
	MD5Crypt Kind = "MD5-crypt ($1$)"
	APR1     Kind = "MD5 (apr1)"
	SHA1     Kind = "SHA-1 ({SHA})"
)

// Why Identify refuses a hash. The messages never repeat the hash.
var (
	ErrEmpty       = errors.New("no password hash")
	ErrPlainText   = errors.New("a plain-text password ({PLAIN})")
	ErrUnsupported = errors.New("a crypt(3) kind Verdaccio 5 cannot verify either (only DES crypt, $1$ and $apr1$ are)")
	ErrUnknown     = errors.New("an unknown hash kind (plain text?)")
)

// MalformedError is a hash of a known kind whose form is wrong.
type MalformedError struct{ Kind Kind }

func (e MalformedError) Error() string { return "a malformed " + string(e.Kind) + " hash" }

// Identify says which kind hash is, checking its form.
func Identify(hash string) (Kind, error) {
	switch {
	case hash == "":
		return "", ErrEmpty
	case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"), strings.HasPrefix(hash, "$2y$"):
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return Bcrypt, MalformedError{Bcrypt}
		}
		return Bcrypt, nil
	case strings.HasPrefix(hash, "{PLAIN}"):
		return "", ErrPlainText
	case strings.HasPrefix(hash, "{SHA}"):
		if d, err := base64.StdEncoding.Strict().DecodeString(hash[5:]); err != nil || len(d) != sha1.Size {
			return SHA1, MalformedError{SHA1}
		}
		return SHA1, nil
	case strings.HasPrefix(hash, "$apr1$"):
		if _, ok := md5Salt(hash, "$apr1$"); !ok {
			return APR1, MalformedError{APR1}
		}
		return APR1, nil
	case strings.HasPrefix(hash, "$1$"):
		if _, ok := md5Salt(hash, "$1$"); !ok {
			return MD5Crypt, MalformedError{MD5Crypt}
		}
		return MD5Crypt, nil
	case strings.HasPrefix(hash, "$"):
		return "", ErrUnsupported
	case len(hash) == 13:
		if !desForm(hash) {
			return DESCrypt, MalformedError{DESCrypt}
		}
		return DESCrypt, nil
	default:
		return "", ErrUnknown
	}
}

// md5Salt returns the salt of an MD5-crypt hash "magic salt $ 22
// characters", the salt being 1 to 8 characters of the crypt alphabet.
func md5Salt(hash, magic string) (string, bool) {
	salt, sum, ok := strings.Cut(hash[len(magic):], "$")
	if !ok || len(salt) == 0 || len(salt) > 8 || !inAlphabet(salt) || len(sum) != 22 || !inAlphabet(sum) {
		return "", false
	}
	// The last character holds 8 bits in 12: its top 4 are zero.
	if strings.IndexByte(cryptAlphabet, sum[21]) >= 4 {
		return "", false
	}
	return salt, true
}

// desForm checks "2 salt characters, 11 of the crypt alphabet". Salts may
// hold '+' besides the crypt alphabet: Verdaccio 5 draws them from
// standard base64.
func desForm(hash string) bool {
	for _, c := range []byte(hash[:2]) {
		if c != '+' && strings.IndexByte(cryptAlphabet, c) < 0 {
			return false
		}
	}
	// 64 bits in 66: the last character's low 2 bits are zero.
	return inAlphabet(hash[2:]) && strings.IndexByte(cryptAlphabet, hash[12])%4 == 0
}

func inAlphabet(s string) bool {
	for _, c := range []byte(s) {
		if strings.IndexByte(cryptAlphabet, c) < 0 {
			return false
		}
	}
	return true
}

// Verify reports whether password matches hash, comparing in constant
// time. A hash Identify refuses never matches. DES crypt, as everywhere,
// only looks at the first 8 characters of a password.
func Verify(hash, password string) bool {
	kind, err := Identify(hash)
	if err != nil {
		return false
	}
	switch kind {
	case Bcrypt:
		return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
	case SHA1:
		sum := sha1.Sum([]byte(password))
		return equal(base64.StdEncoding.EncodeToString(sum[:]), hash[5:])
	}
	ok := false
	for _, key := range keys(password) {
		var got string
		switch kind {
		case DESCrypt:
			got = desCrypt(key, hash[0], hash[1])
		case APR1:
			salt, _ := md5Salt(hash, "$apr1$")
			got = md5Crypt(key, "$apr1$", salt)
		case MD5Crypt:
			salt, _ := md5Salt(hash, "$1$")
			got = md5Crypt(key, "$1$", salt)
		}
		ok = equal(got, hash) || ok
	}
	return ok
}

// keys are the bytes a password may have been hashed from: its UTF-8
// (Apache's htpasswd, glibc's crypt) and, when it is not ASCII, the low
// byte of each UTF-16 unit, which is what Verdaccio's JavaScript hashed
// for DES crypt and MD5-crypt.
func keys(password string) [][]byte {
	out := [][]byte{[]byte(password)}
	for _, r := range password {
		if r >= 0x80 {
			units := utf16.Encode([]rune(password))
			low := make([]byte, len(units))
			for i, u := range units {
				low[i] = byte(u)
			}
			return append(out, low)
		}
	}
	return out
}

func equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
