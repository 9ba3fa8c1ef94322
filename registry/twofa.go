package registry

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
)

// Two-factor modes, as npm names them.
const (
	TwoFactorAuthOnly      = "auth-only"       // a one-time password to log in
	TwoFactorAuthAndWrites = "auth-and-writes" // and for every write
	twoFactorDisable       = "disable"         // npm's mode for turning it off
)

// TwoFactor is an account's two-factor state, stored with the account
// (CouchDB's _users, which only admins read). The secret and the recovery
// hashes never leave the service once the setup is confirmed.
type TwoFactor struct {
	Mode     string   // TwoFactorAuthOnly or TwoFactorAuthAndWrites
	Pending  bool     // set up but not yet confirmed with a code: not in force
	Secret   string   // base32 TOTP secret
	Recovery []string // sha256 (hex) of the unused recovery codes
	// Replay protection: the latest TOTP step accepted, and the credential
	// (a token key, or "password") that presented it.
	LastStep int64
	LastBy   string
}

// Active reports whether two-factor authentication is in force.
func (t *TwoFactor) Active() bool { return t != nil && !t.Pending && t.Mode != "" }

// TwoFactorChange changes an account's two-factor state: it gets the
// current state (nil: off) and returns the next (nil: off). Returning cur
// itself means "no change": the store writes nothing. An error aborts.
type TwoFactorChange func(cur *TwoFactor) (*TwoFactor, error)

// ErrWrongOTP marks a one-time password that was given but is wrong,
// reused or expired: the login limiter counts these as failed guesses.
var ErrWrongOTP = errors.New("wrong one-time password")

var (
	errOTPRequired = E(KindOTPRequired, "this operation requires a one-time password from your authenticator app (npm: --otp=123456)")
	errOTPWrong    = Wrap(KindOTPRequired, ErrWrongOTP, "this one-time password is wrong or has expired; enter the current one-time password from your authenticator app")
	errOTPReplayed = Wrap(KindOTPRequired, ErrWrongOTP, "this one-time password was already used; wait for the next one-time password from your authenticator app")
)

// credentialOf names what presented an OTP: the same token may present
// the same code again (npm sends it on every request of one command, and
// npm unpublish pkg@version writes twice); any other credential may not.
func credentialOf(id Identity) string {
	if id.Token != nil {
		return "token:" + id.Token.Key
	}
	return ""
}

// checkOTP verifies code, a TOTP code or a recovery code, for name's
// account in force, and records its use: a TOTP step is accepted once,
// except by the same credential (by, "" for none) again within the step;
// a recovery code is accepted once. An account without two-factor
// authentication needs no code.
func (a *Accounts) checkOTP(ctx context.Context, name, by, code string) error {
	code = strings.ReplaceAll(strings.TrimSpace(code), " ", "")
	if code == "" {
		return errOTPRequired
	}
	if len(code) > 64 {
		return errOTPWrong
	}
	now := a.now()
	return a.users.UpdateTwoFactor(ctx, name, func(cur *TwoFactor) (*TwoFactor, error) {
		if !cur.Active() {
			return cur, nil
		}
		if isRecoveryCodeShape(code) {
			h := recoveryHash(code)
			i := slices.Index(cur.Recovery, h)
			if i < 0 {
				return nil, errOTPWrong
			}
			next := *cur
			next.Recovery = slices.Delete(slices.Clone(cur.Recovery), i, i+1)
			return &next, nil
		}
		step, ok := matchTOTP(cur.Secret, code, now)
		switch {
		case !ok:
			return nil, errOTPWrong
		case step == cur.LastStep && by != "" && by == cur.LastBy:
			return cur, nil
		case step <= cur.LastStep:
			return nil, errOTPReplayed
		}
		next := *cur
		next.LastStep, next.LastBy = step, by
		return &next, nil
	})
}

// VerifyWrite lets a write through for id: an account in auth-and-writes
// mode needs a valid one-time password (otp, npm's npm-otp header) unless
// this request already gave one. The returned identity carries the result
// for Identity.CanWrite.
func (a *Accounts) VerifyWrite(ctx context.Context, id Identity, otp string) (Identity, error) {
	if id.TwoFactor != TwoFactorAuthAndWrites || id.OTPVerified {
		return id, nil
	}
	if err := a.checkOTP(ctx, id.Name, credentialOf(id), otp); err != nil {
		return id, err
	}
	id.OTPVerified = true
	return id, nil
}

// TwoFactorRequest is a change npm profile asks for (POST /-/npm/v1/user
// with a tfa field).
type TwoFactorRequest struct {
	Password string
	Mode     string   // auth-only, auth-and-writes or disable; "" with Codes
	Codes    []string // the code confirming a pending set-up (npm sends one)
}

// TwoFactorAnswer is what a change answers.
type TwoFactorAnswer struct {
	OTPAuthURL string   // set-up started: the secret to confirm, once
	Mode       string   // the mode in force after the change ("" when off)
	Recovery   []string // set-up confirmed: the recovery codes, shown once
}

// SetTwoFactor is the one place that changes an account's two-factor
// authentication (npm profile enable-2fa and disable-2fa), for the caller
// only:
//
//   - {mode, password}, off or pending: a new secret, pending until
//     confirmed (the answer's otpauth:// URL);
//   - {codes: [code]} while pending: confirms the set-up with a code of the
//     new secret and answers the recovery codes;
//   - {mode, password} while on: changes the mode; needs otp;
//   - {mode: disable, password}: turns it off; needs otp (or a recovery
//     code) while on.
func (a *Accounts) SetTwoFactor(ctx context.Context, id Identity, req TwoFactorRequest, otp string, from netip.Addr) (TwoFactorAnswer, error) {
	if id.Anonymous() {
		return TwoFactorAnswer{}, E(KindUnauthorized, "you must be logged in to change two-factor authentication")
	}
	if id.ReadOnly {
		return TwoFactorAnswer{}, E(KindForbidden, "this token is read-only")
	}
	if len(req.Codes) > 0 {
		return a.confirmTwoFactor(ctx, id, req.Codes[0])
	}
	switch req.Mode {
	case TwoFactorAuthOnly, TwoFactorAuthAndWrites, twoFactorDisable:
	default:
		return TwoFactorAnswer{}, E(KindInvalid, "unknown two-factor mode %q (auth-only, auth-and-writes or disable)", req.Mode)
	}
	if req.Password == "" {
		return TwoFactorAnswer{}, E(KindUnauthorized, "changing two-factor authentication needs your password")
	}
	if err := a.users.CheckPassword(ctx, id.Name, req.Password, from); err != nil {
		return TwoFactorAnswer{}, err
	}
	user, err := a.users.GetUser(ctx, id.Name)
	if err != nil {
		return TwoFactorAnswer{}, err
	}
	wasActive := user.TwoFactor.Active()
	if wasActive {
		// A stolen password and token are not enough to turn it off.
		if err := a.checkOTP(ctx, id.Name, credentialOf(id), otp); err != nil {
			return TwoFactorAnswer{}, err
		}
	}
	if req.Mode == twoFactorDisable {
		err := a.users.UpdateTwoFactor(ctx, id.Name, func(cur *TwoFactor) (*TwoFactor, error) {
			if cur.Active() && !wasActive {
				return nil, E(KindConflict, "two-factor authentication was enabled meanwhile; disable it again")
			}
			return nil, nil
		})
		return TwoFactorAnswer{}, err
	}
	if wasActive {
		var mode string
		err := a.users.UpdateTwoFactor(ctx, id.Name, func(cur *TwoFactor) (*TwoFactor, error) {
			if !cur.Active() {
				return nil, E(KindConflict, "two-factor authentication was turned off meanwhile; enable it again")
			}
			next := *cur
			next.Mode, mode = req.Mode, req.Mode
			return &next, nil
		})
		return TwoFactorAnswer{Mode: mode}, err
	}
	secret, err := newTOTPSecret()
	if err != nil {
		return TwoFactorAnswer{}, err
	}
	err = a.users.UpdateTwoFactor(ctx, id.Name, func(cur *TwoFactor) (*TwoFactor, error) {
		if cur.Active() {
			return nil, E(KindConflict, "two-factor authentication was enabled meanwhile")
		}
		return &TwoFactor{Mode: req.Mode, Pending: true, Secret: secret}, nil
	})
	if err != nil {
		return TwoFactorAnswer{}, err
	}
	return TwoFactorAnswer{OTPAuthURL: otpauthURL(twoFactorIssuer, id.Name, secret)}, nil
}

// twoFactorIssuer labels the account in authenticator apps.
const twoFactorIssuer = "couchnpm"

func (a *Accounts) confirmTwoFactor(ctx context.Context, id Identity, code string) (TwoFactorAnswer, error) {
	codes, hashes, err := newRecoveryCodes()
	if err != nil {
		return TwoFactorAnswer{}, err
	}
	code = strings.ReplaceAll(strings.TrimSpace(code), " ", "")
	now := a.now()
	var mode string
	err = a.users.UpdateTwoFactor(ctx, id.Name, func(cur *TwoFactor) (*TwoFactor, error) {
		if cur == nil || !cur.Pending {
			return nil, E(KindInvalid, "there is no two-factor set-up to confirm; run npm profile enable-2fa")
		}
		step, ok := matchTOTP(cur.Secret, code, now)
		if !ok {
			return nil, errOTPWrong
		}
		mode = cur.Mode
		return &TwoFactor{Mode: cur.Mode, Secret: cur.Secret, Recovery: hashes, LastStep: step, LastBy: credentialOf(id)}, nil
	})
	if err != nil {
		return TwoFactorAnswer{}, err
	}
	return TwoFactorAnswer{Mode: mode, Recovery: codes}, nil
}
