package registry

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // RFC 6238 TOTP is HMAC-SHA1, as every authenticator app implements it
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"net/url"
	"strings"
	"time"
)

// TOTP parameters (RFC 6238 with the defaults every authenticator app
// uses): HMAC-SHA1, 6 digits, 30-second steps. A code is accepted one step
// either side of now, for clocks that drift and codes typed slowly.
const (
	totpDigits = 6
	totpStep   = 30 // seconds
	totpWindow = 1  // steps either side
	secretSize = 20 // bytes, 160 bits (RFC 4226's recommendation)
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// newTOTPSecret returns a random secret, base32 without padding (the form
// otpauth:// URLs and authenticator apps take).
func newTOTPSecret() (string, error) {
	b := make([]byte, secretSize)
	if _, err := rand.Read(b); err != nil {
		return "", Wrap(KindInternal, err, "cannot make a two-factor secret")
	}
	return b32.EncodeToString(b), nil
}

// totpStepAt is the RFC 6238 time counter T for t.
func totpStepAt(t time.Time) int64 { return t.Unix() / totpStep }

// hotp is RFC 4226's HOTP value of key at counter, with digits digits.
func hotp(key []byte, counter int64, digits int) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(counter))
	mac := hmac.New(sha1.New, key)
	mac.Write(msg[:])
	sum := mac.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	bin := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	mod := uint32(1)
	for range digits {
		mod *= 10
	}
	s := make([]byte, digits)
	v := bin % mod
	for i := digits - 1; i >= 0; i-- {
		s[i] = byte('0' + v%10)
		v /= 10
	}
	return string(s)
}

// TOTPCode is the 6-digit code of a base32 secret at step (what an
// authenticator app shows between step*30 and step*30+29 seconds).
func TOTPCode(secret string, step int64) (string, error) {
	key, err := b32.DecodeString(strings.ToUpper(strings.TrimRight(secret, "=")))
	if err != nil {
		return "", Wrap(KindInternal, err, "the two-factor secret is not base32")
	}
	return hotp(key, step, totpDigits), nil
}

// matchTOTP returns the step, within the window around now, whose code is
// code; ok is false when none is.
func matchTOTP(secret, code string, now time.Time) (step int64, ok bool) {
	if len(code) != totpDigits {
		return 0, false
	}
	cur := totpStepAt(now)
	for s := cur - totpWindow; s <= cur+totpWindow; s++ {
		want, err := TOTPCode(secret, s)
		if err != nil {
			return 0, false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return s, true
		}
	}
	return 0, false
}

// otpauthURL is the key URI authenticator apps read (the QR code npm
// prints): otpauth://totp/ISSUER:NAME?secret=...&issuer=ISSUER.
func otpauthURL(issuer, name, secret string) string {
	q := url.Values{}
	q.Set("secret", secret)
	q.Set("issuer", issuer)
	q.Set("algorithm", "SHA1")
	q.Set("digits", "6")
	q.Set("period", "30")
	return "otpauth://totp/" + url.PathEscape(issuer+":"+name) + "?" + q.Encode()
}

// Recovery codes: 32 random bytes, hex (64 characters: the form npm's OTP
// prompt accepts besides 6 digits). Only their sha256 is stored.
const recoveryCodes = 5

func newRecoveryCodes() (codes, hashes []string, err error) {
	for range recoveryCodes {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, nil, Wrap(KindInternal, err, "cannot make recovery codes")
		}
		c := hex.EncodeToString(b)
		codes = append(codes, c)
		hashes = append(hashes, recoveryHash(c))
	}
	return codes, hashes, nil
}

func recoveryHash(code string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(code)))
	return hex.EncodeToString(sum[:])
}

// isRecoveryCodeShape tells a recovery code from a TOTP code.
func isRecoveryCodeShape(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}
