package handlers

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/registry"
)

// The web UI's session: logging in on /-/web/login creates a read-only
// token (it shows in npm token list as "web session") and keeps it in an
// HttpOnly cookie. Only the pages read that cookie; the API never does, so
// no npm endpoint can be driven by a cross-site request riding on it.
const (
	sessionCookie = "couchnpm_session"
	csrfCookie    = "couchnpm_csrf"
	sessionDays   = 7
	sessionName   = registry.WebSessionTokenName
)

// pageRoutes adds the web UI's routes: api is the /-/ subrouter (before
// its catch-all), root the router.
func (s *Server) pageRoutes(api, root *mux.Router) {
	api.HandleFunc("/web/login", s.loginForm).Methods(http.MethodGet, http.MethodHead)
	api.HandleFunc("/web/login", s.loginSubmit).Methods(http.MethodPost)
	api.HandleFunc("/web/logout", s.logoutForm).Methods(http.MethodGet, http.MethodHead)
	api.HandleFunc("/web/logout", s.logoutSubmit).Methods(http.MethodPost)
	s.webTokenRoutes(api) // webtokens.go
	api.PathPrefix("/web/").HandlerFunc(s.webPages).Methods(http.MethodGet, http.MethodHead)
	root.HandleFunc("/", s.home).Methods(http.MethodGet, http.MethodHead)
}

// pageIdentity is the caller of a page: the Authorization header's, else
// the session cookie's. A session that is no longer valid (revoked,
// expired) is dropped and the visitor is anonymous.
func (s *Server) pageIdentity(w http.ResponseWriter, r *http.Request) (registry.Identity, error) {
	id, err := identity(r)
	if err != nil || !id.Anonymous() {
		return id, err
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return id, nil
	}
	u, err := s.accounts.ByToken(r.Context(), c.Value, remoteAddr(r))
	switch {
	case err == nil:
		zerolog.Ctx(r.Context()).UpdateContext(func(c zerolog.Context) zerolog.Context { return c.Str("user", u.Name) })
		return u, nil
	case registry.KindOf(err) == registry.KindUnauthorized:
		s.setCookie(w, r, sessionCookie, "", "/", -1)
		return registry.Identity{}, nil
	default:
		return id, err // storage outage: 503, not a silent logout
	}
}

// setCookie sets (maxAge > 0), or deletes (maxAge < 0), a cookie: HttpOnly,
// SameSite=Lax, Secure when the registry is served over https.
func (s *Server) setCookie(w http.ResponseWriter, r *http.Request, name, value, path string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: path, MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: r.TLS != nil || strings.HasPrefix(s.cfg.PublicURL, "https://"),
	})
}

// csrfToken returns the browser's CSRF token, setting a new one when it has
// none (double submit: the form carries the cookie's value, which another
// site can neither read nor set).
func (s *Server) csrfToken(w http.ResponseWriter, r *http.Request) (string, error) {
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) == 64 {
		if _, err := hex.DecodeString(c.Value); err == nil {
			return c.Value, nil
		}
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", registry.Wrap(registry.KindInternal, err, "no randomness for a CSRF token")
	}
	tok := hex.EncodeToString(b)
	s.setCookie(w, r, csrfCookie, tok, "/-/web/", 0)
	return tok, nil
}

// checkForm refuses a form post that is not from a page of this site: a
// cross-site fetch, a foreign Origin, or a CSRF token that does not match
// the cookie.
func checkForm(r *http.Request) error {
	forbidden := registry.E(registry.KindForbidden, "this form cannot be sent from another site; reload the page and try again")
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		return forbidden
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return forbidden
		}
	}
	c, err := r.Cookie(csrfCookie)
	if err != nil || c.Value == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostForm.Get("csrf"))) != 1 {
		return forbidden
	}
	return nil
}

// safeNext is where to go after logging in or out: a path on this site,
// never another host ("//host", "/\host") or a scheme.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		strings.ContainsAny(next, "\r\n\t") {
		return "/"
	}
	return next
}

// formUser is pageUser for the pages with a form: also the CSRF token the
// form carries.
func (s *Server) formUser(w http.ResponseWriter, r *http.Request) (user registry.Identity, csrf string, ok bool) {
	if user, ok = s.pageUser(w, r); !ok {
		return user, "", false
	}
	csrf, err := s.csrfToken(w, r)
	if err != nil {
		writeError(w, r, err)
		return user, "", false
	}
	return user, csrf, true
}

func (s *Server) loginForm(w http.ResponseWriter, r *http.Request) {
	if user, csrf, ok := s.formUser(w, r); ok {
		s.cfg.Pages.Login(w, r, user, LoginPage{Status: http.StatusOK, CSRF: csrf, Next: safeNext(r.URL.Query().Get("next")), Days: sessionDays})
	}
}

// LoginPage is what the login page shows.
type LoginPage struct {
	Status int
	CSRF   string
	Next   string
	Name   string // echoed after a failed attempt (never the password)
	Error  string
	Logout bool // the log-out confirmation instead of the form
	OTP    bool // ask for a one-time password (two-factor authentication)
	Days   int  // how long a session lasts
}

// postedForm is the start of every form submission: 404 without the web
// UI, else the form read (16 KiB at most). ok false: the answer is
// written.
func (s *Server) postedForm(w http.ResponseWriter, r *http.Request) (ok bool) {
	if s.cfg.Pages == nil {
		s.notFound(w, r)
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		writeError(w, r, registry.Wrap(registry.KindInvalid, err, "the form could not be read"))
		return false
	}
	return true
}

func (s *Server) loginSubmit(w http.ResponseWriter, r *http.Request) {
	if !s.postedForm(w, r) {
		return
	}
	page := LoginPage{Next: safeNext(r.PostForm.Get("next")), Name: strings.TrimSpace(r.PostForm.Get("name")), Days: sessionDays}
	fail := func(err error) {
		page.Status = loginStatus(err)
		if page.Status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", retryAfter(err))
		}
		page.Error = registry.ReasonOf(err)
		zerolog.Ctx(r.Context()).Info().Int("status", page.Status).Err(err).Msg("web ui login refused")
		if page.CSRF == "" {
			page.CSRF, _ = s.csrfToken(w, r)
		}
		s.cfg.Pages.Login(w, r, registry.Identity{}, page)
	}
	if err := checkForm(r); err != nil {
		fail(err)
		return
	}
	page.CSRF = r.PostForm.Get("csrf")
	tc := s.tokens
	if err := registry.ValidateUsername(page.Name); err != nil {
		fail(registry.E(registry.KindUnauthorized, "name or password is incorrect"))
		return
	}
	password := r.PostForm.Get("password")
	// A read-only token: the session reads pages, it never publishes. The
	// password check is a login: an account with two-factor
	// authentication needs its one-time password too.
	token, err := guardPassword(s.limiter, r, page.Name, func() (sessionToken, error) { // ratelimit.go
		id, err := s.accounts.ByPassword(r.Context(), page.Name, password, strings.TrimSpace(r.PostForm.Get("otp")), remoteAddr(r))
		if err != nil {
			return sessionToken{}, err
		}
		tok, t, err := tc.CreateToken(r.Context(), id,
			registry.TokenRequest{Password: password, ReadOnly: true, Expires: sessionDays, Name: sessionName}, remoteAddr(r))
		return sessionToken{tok, t}, err
	})
	if err != nil {
		page.OTP = registry.KindOf(err) == registry.KindOTPRequired
		fail(err)
		return
	}
	s.setCookie(w, r, sessionCookie, token.value, "/", int((sessionDays * 24 * time.Hour).Seconds()))
	zerolog.Ctx(r.Context()).Info().Str("user", page.Name).Msg("web ui login")
	http.Redirect(w, r, page.Next, http.StatusSeeOther)
}

// sessionToken is CreateToken's two results, for guardPassword.
type sessionToken struct {
	value string
	token *registry.Token
}

func (s *Server) logoutForm(w http.ResponseWriter, r *http.Request) {
	if user, csrf, ok := s.formUser(w, r); ok {
		s.cfg.Pages.Login(w, r, user, LoginPage{Status: http.StatusOK, CSRF: csrf, Next: "/", Logout: true})
	}
}

// logoutSubmit deletes the session's token and its cookie.
func (s *Server) logoutSubmit(w http.ResponseWriter, r *http.Request) {
	if !s.postedForm(w, r) {
		return
	}
	if err := checkForm(r); err != nil {
		writeError(w, r, err)
		return
	}
	if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" {
		if err := s.accounts.Logout(r.Context(), c.Value); err != nil {
			writeError(w, r, err)
			return
		}
	}
	s.setCookie(w, r, sessionCookie, "", "/", -1)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}
