package handlers

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/registry"
)

// otpHeader carries the one-time password npm sends (--otp, or the code
// typed at its prompt).
const otpHeader = "npm-otp"

// otpExempt are the writes that do not need the write OTP: logins check
// their own (auth-only and auth-and-writes both need one to log in), the
// profile's two-factor changes check theirs, a logout only revokes, an
// audit only reads, and the web login is anonymous.
var otpExempt = []string{
	"/-/user/org.couchdb.user:",
	"/-/user/token/",
	"/-/npm/v1/security/",
	"/-/v1/login",
}

// needsWriteOTP tells whether the request is a write of an account in
// auth-and-writes mode that still needs a one-time password. Every method
// but GET, HEAD and OPTIONS is a write unless exempt, so a new write route
// needs nothing to be covered. Read-only tokens are refused writes anyway
// (403), so they are not asked for a code first.
func needsWriteOTP(r *http.Request, id registry.Identity) bool {
	if id.TwoFactor != registry.TwoFactorAuthAndWrites || id.OTPVerified || id.ReadOnly {
		return false
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	p := r.URL.EscapedPath()
	if p == "/-/npm/v1/user" {
		return false
	}
	for _, prefix := range otpExempt {
		if strings.HasPrefix(p, prefix) {
			return false
		}
	}
	return true
}

// profileView is npm profile get's answer. tfa is false when off, else
// {pending, mode}; the secret is never shown.
type profileView struct {
	Name          string    `json:"name"`
	Email         string    `json:"email"`
	EmailVerified bool      `json:"email_verified"`
	TFA           any       `json:"tfa"`
	Created       time.Time `json:"created,omitzero"`
	Updated       time.Time `json:"updated,omitzero"`
}

// profile answers npm profile get (GET /-/npm/v1/user): the caller's own
// account.
func (s *Server) profile(w http.ResponseWriter, r *http.Request) {
	id, err := requireUser(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	u, err := s.accounts.User(r.Context(), id.Name)
	if err != nil {
		writeError(w, r, err)
		return
	}
	v := profileView{Name: u.Name, Email: u.Email, TFA: false, Created: u.Created, Updated: u.Created}
	if u.TwoFactor != nil {
		v.TFA = map[string]any{"pending": u.TwoFactor.Pending, "mode": u.TwoFactor.Mode}
	}
	writeJSON(w, http.StatusOK, v)
}

// setProfile answers npm profile's changes (POST /-/npm/v1/user). Only
// two-factor authentication can be changed: {tfa: {password, mode}} starts
// a set-up, changes the mode or (mode "disable") turns it off; {tfa:
// [code]} confirms a set-up.
func (s *Server) setProfile(w http.ResponseWriter, r *http.Request) {
	id, err := requireUser(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	var body struct {
		TFA json.RawMessage `json:"tfa"`
	}
	if err := decodeSmall(r, &body); err != nil {
		writeError(w, r, err)
		return
	}
	var req registry.TwoFactorRequest
	raw := bytes.TrimSpace(body.TFA)
	switch {
	case len(raw) == 0 || bytes.Equal(raw, []byte("null")):
		writeError(w, r, registry.E(registry.KindInvalid, "this registry's profile only changes two-factor authentication (npm profile enable-2fa, disable-2fa)"))
		return
	case raw[0] == '[':
		err = json.Unmarshal(raw, &req.Codes)
		if err == nil && len(req.Codes) == 0 {
			err = registry.E(registry.KindInvalid, "tfa: no code")
		}
	default:
		var in struct{ Password, Mode string }
		err = json.Unmarshal(raw, &in)
		req.Password, req.Mode = in.Password, in.Mode
	}
	if err != nil {
		writeError(w, r, registry.Wrap(registry.KindInvalid, err, "tfa must be {password, mode} or [code]"))
		return
	}
	ans, err := guardPassword(s.limiter, r, id.Name, func() (registry.TwoFactorAnswer, error) { // ratelimit.go: password and code checks
		return s.accounts.SetTwoFactor(r.Context(), id, req, r.Header.Get(otpHeader), remoteAddr(r))
	})
	if err != nil {
		writeError(w, r, err)
		return
	}
	log := zerolog.Ctx(r.Context()).Info()
	switch {
	case ans.OTPAuthURL != "":
		log.Str("mode", req.Mode).Msg("two-factor set-up started")
		writeJSON(w, http.StatusOK, map[string]any{"tfa": ans.OTPAuthURL})
	case ans.Recovery != nil:
		log.Str("mode", ans.Mode).Msg("two-factor authentication enabled")
		writeJSON(w, http.StatusOK, map[string]any{"tfa": ans.Recovery})
	case ans.Mode != "":
		log.Str("mode", ans.Mode).Msg("two-factor mode changed")
		writeJSON(w, http.StatusOK, map[string]any{"tfa": map[string]any{"mode": ans.Mode, "pending": false}})
	default:
		log.Msg("two-factor authentication disabled")
		writeJSON(w, http.StatusOK, map[string]any{"tfa": false})
	}
}
