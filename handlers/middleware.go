package handlers

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/netip"
	"strings"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/registry"
)

func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func newRequestID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// redactPath hides tokens that npm puts in paths (logout, token revoke)
// and the secret ids of web logins.
func redactPath(p string) string {
	for _, prefix := range []string{"/-/user/token/", "/-/npm/v1/tokens/token/", webLoginPagePrefix, webLoginDonePrefix} {
		if i := strings.Index(p, prefix); i >= 0 {
			return p[:i+len(prefix)] + "[redacted]"
		}
	}
	return p
}

// authResult is who a request is, or why its credentials were refused.
type authResult struct {
	id  registry.Identity
	err error
}

// authenticate resolves the request's credentials once, up front; handlers
// decide what a failure means for them (see identity and optionalIdentity).
func authenticate(accounts Accounts, lim *loginLimiter) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var res authResult
			h := headerValue(r.Header, "Authorization")
			switch {
			case h == "":
			case len(h) >= len("Bearer ") && strings.EqualFold(h[:len("Bearer ")], "Bearer "): // schemes are case-insensitive
				res.id, res.err = accounts.ByToken(r.Context(), strings.TrimSpace(h[len("Bearer "):]), remoteAddr(r))
			default:
				if user, pass, ok := r.BasicAuth(); ok {
					res.id, res.err = guardPassword(lim, r, user, func() (registry.Identity, error) { // ratelimit.go
						return accounts.ByPassword(r.Context(), user, pass, r.Header.Get(otpHeader), remoteAddr(r))
					})
				} else {
					res.err = registry.E(registry.KindUnauthorized, "unsupported Authorization scheme")
				}
			}
			if res.err == nil && !res.id.Anonymous() {
				zerolog.Ctx(r.Context()).UpdateContext(func(c zerolog.Context) zerolog.Context {
					return c.Str("user", res.id.Name)
				})
				if needsWriteOTP(r, res.id) { // twofa.go
					id := res.id
					res.id, res.err = guardPassword(lim, r, id.Name, func() (registry.Identity, error) { // ratelimit.go: wrong codes count as guesses
						return accounts.VerifyWrite(r.Context(), id, r.Header.Get(otpHeader))
					})
					if res.err != nil {
						// Refused here, before any handler: a write route
						// added later is covered without knowing of 2FA.
						writeError(w, r, res.err)
						return
					}
				}
			}
			r, ex := withExchange(r)
			ex.auth = res
			next.ServeHTTP(w, r)
		})
	}
}

func remoteAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr()
}

// identity is the caller for a request that may be anonymous; credentials
// that were sent but are wrong are an error (npm then says E401 instead of
// silently acting anonymously).
func identity(r *http.Request) (registry.Identity, error) {
	ex := exchangeOf(r)
	if ex == nil { // outside the chain: nobody authenticated
		return registry.Identity{}, nil
	}
	return ex.auth.id, ex.auth.err
}

// requireUser is identity for requests that need a logged-in user.
func requireUser(r *http.Request) (registry.Identity, error) {
	id, err := identity(r)
	if err != nil {
		return id, err
	}
	if id.Anonymous() {
		return id, registry.E(registry.KindUnauthorized, "you must be logged in (npm login) to do this")
	}
	return id, nil
}
