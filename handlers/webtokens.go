package handlers

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gorilla/mux"
	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/auditlog"
	"github.com/couchnpm/couchnpm/registry"
)

// The web UI's tokens page (/-/web/tokens): list, create and revoke the
// logged-in user's tokens with the registry methods npm token uses, so the
// rules are the API's. The session itself is read-only: every change asks
// for the password again (and a one-time password when the account has
// two-factor authentication on), which gives the writable identity the
// registry methods require. Forms carry the CSRF token and are POST only.

// TokensPage is what the tokens page shows.
type TokensPage struct {
	Status int
	CSRF   string
	Tokens []*registry.Token
	// Created is the token just created, shown this once (never stored in
	// clear, never shown again); CreatedKey its key.
	Created    string
	CreatedKey string
	Revoked    string          // the key prefix of the token just revoked
	Revoke     *registry.Token // the token the visitor asked to revoke: the confirmation
	Form       TokenForm       // echoed after a failed create (never the password)
	Error      string          // why the last change was refused
	OTP        bool            // ask for a one-time password (two-factor authentication on)
	Session    *registry.Token // this browser's own session token, if listed
}

// TokenForm is the create form's fields.
type TokenForm struct {
	Name     string
	ReadOnly bool
	CIDR     string // comma- or space-separated
	Expires  string // days, "" for never
}

// webTokenRoutes adds the tokens page's routes to api (the /-/ router),
// before the /-/web/ catch-all.
func (s *Server) webTokenRoutes(api *mux.Router) {
	api.HandleFunc("/web/tokens", s.tokensPage).Methods(http.MethodGet, http.MethodHead)
	api.HandleFunc("/web/tokens/create", audited("token.create", s.tokensCreate)).Methods(http.MethodPost)
	api.HandleFunc("/web/tokens/revoke", audited("token.revoke", s.tokensRevoke)).Methods(http.MethodPost)
}

// tokensPage lists the caller's tokens; ?revoke=KEY asks to confirm the
// revocation of one. Anonymous visitors are sent to log in first.
func (s *Server) tokensPage(w http.ResponseWriter, r *http.Request) {
	user, tc, ok := s.tokensCaller(w, r)
	if !ok {
		return
	}
	page := TokensPage{Status: http.StatusOK, Revoked: shortKey(r.URL.Query().Get("revoked"))}
	if key := r.URL.Query().Get("revoke"); key != "" {
		page.Revoke = &registry.Token{Key: key} // looked up in the list below
	}
	s.showTokens(w, r, user, tc, page)
}

// tokensCaller resolves the page's caller and the token operations; false
// when it answered already (a redirect to the login page, or an error).
func (s *Server) tokensCaller(w http.ResponseWriter, r *http.Request) (registry.Identity, TokenCommands, bool) {
	if s.cfg.Pages == nil {
		s.notFound(w, r)
		return registry.Identity{}, nil, false
	}
	user, err := s.pageIdentity(w, r)
	if err != nil {
		writeError(w, r, err)
		return user, nil, false
	}
	if user.Anonymous() {
		http.Redirect(w, r, "/-/web/login?"+url.Values{"next": {"/-/web/tokens"}}.Encode(), http.StatusSeeOther)
		return user, nil, false
	}
	return user, s.tokens, true
}

// showTokens fills the list, the CSRF token and the session's own token
// into page and renders it.
func (s *Server) showTokens(w http.ResponseWriter, r *http.Request, user registry.Identity, tc TokenCommands, page TokensPage) {
	list, err := tc.ListTokens(r.Context(), user)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if page.CSRF, err = s.csrfToken(w, r); err != nil {
		writeError(w, r, err)
		return
	}
	ask := page.Revoke
	page.Revoke = nil
	for _, t := range list {
		if user.Token != nil && t.Key == user.Token.Key {
			page.Session = t
		}
		if ask != nil && t.Key == ask.Key {
			page.Revoke = t
		}
	}
	page.Tokens = list
	page.OTP = page.OTP || user.TwoFactor != ""
	s.cfg.Pages.Tokens(w, r, user, page)
}

// tokensWrite is the common part of a change: the form is read and
// checked (CSRF, origin), and the password (and one-time password) give
// the writable identity the registry methods need. false: it answered.
func (s *Server) tokensWrite(w http.ResponseWriter, r *http.Request, page *TokensPage) (registry.Identity, registry.Identity, TokenCommands, bool) {
	user, tc, ok := s.tokensCaller(w, r)
	if !ok {
		return user, user, nil, false
	}
	note := noteOf(r)
	note.actor = user.Name // a session cookie is no credential the middleware sees
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		writeError(w, r, registry.Wrap(registry.KindInvalid, err, "the form could not be read"))
		return user, user, nil, false
	}
	if key := r.PostForm.Get("key"); key != "" {
		page.Revoke = &registry.Token{Key: key} // a failed revoke asks again
	}
	if err := checkForm(r); err != nil {
		s.tokensFail(w, r, user, tc, *page, err)
		return user, user, nil, false
	}
	password := r.PostForm.Get("password")
	if password == "" {
		s.tokensFail(w, r, user, tc, *page, registry.E(registry.KindUnauthorized, "enter your password: changing tokens needs it, as npm token does"))
		return user, user, nil, false
	}
	writer, err := guardPassword(s.limiter, r, user.Name, func() (registry.Identity, error) { // ratelimit.go: a password check
		return s.accounts.ByPassword(r.Context(), user.Name, password, strings.TrimSpace(r.PostForm.Get("otp")), remoteAddr(r))
	})
	if err != nil {
		if registry.KindOf(err) == registry.KindOTPRequired {
			page.OTP = true
		}
		if status := StatusOf(registry.KindOf(err)); status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", retryAfter(err))
		}
		s.tokensFail(w, r, user, tc, *page, err)
		return user, user, nil, false
	}
	return user, writer, tc, true
}

// tokensFail shows the page again with the reason a change was refused.
func (s *Server) tokensFail(w http.ResponseWriter, r *http.Request, user registry.Identity, tc TokenCommands, page TokensPage, err error) {
	page.Status = StatusOf(registry.KindOf(err))
	page.Error = registry.ReasonOf(err)
	noteOf(r).reason = page.Error
	ev := zerolog.Ctx(r.Context()).Info()
	if page.Status >= 500 {
		ev = zerolog.Ctx(r.Context()).Error()
	}
	ev.Int("status", page.Status).Err(err).Msg("web ui token change refused")
	if page.Status >= 500 {
		writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	s.showTokens(w, r, user, tc, page)
}

// tokensCreate creates a token (npm token create's rules: read-only, CIDR
// ranges, expiry, name) and shows it once.
func (s *Server) tokensCreate(w http.ResponseWriter, r *http.Request) {
	page := TokensPage{}
	user, writer, tc, ok := s.tokensWrite(w, r, &page)
	if !ok {
		return
	}
	f := r.PostForm
	page.Form = TokenForm{Name: strings.TrimSpace(f.Get("name")), ReadOnly: f.Get("readonly") != "",
		CIDR: strings.TrimSpace(f.Get("cidr")), Expires: strings.TrimSpace(f.Get("expires"))}
	req := registry.TokenRequest{Password: f.Get("password"), ReadOnly: page.Form.ReadOnly, Name: page.Form.Name,
		CIDR: strings.FieldsFunc(page.Form.CIDR, func(c rune) bool { return c == ',' || c == ' ' || c == '\n' || c == '\r' || c == '\t' })}
	if page.Form.Expires != "" {
		days, err := strconv.Atoi(page.Form.Expires)
		if err != nil || days <= 0 {
			s.tokensFail(w, r, user, tc, page, registry.E(registry.KindInvalid, "expires must be a number of days (or empty for never)"))
			return
		}
		req.Expires = days
	}
	token, t, err := tc.CreateToken(r.Context(), writer, req, remoteAddr(r))
	if err != nil {
		s.tokensFail(w, r, user, tc, page, err)
		return
	}
	noteOf(r).target = auditlog.TokenRef(t.Key)
	zerolog.Ctx(r.Context()).Info().Str("user", user.Name).Bool("readonly", t.ReadOnly).Int("cidrs", len(t.CIDR)).Msg("token created from the web ui")
	// The token is in this answer only: never cached, never in a URL.
	w.Header().Set("Cache-Control", "no-store")
	s.showTokens(w, r, user, tc, TokensPage{Status: http.StatusOK, Created: token, CreatedKey: t.Key})
}

// tokensRevoke revokes one of the caller's tokens by its key.
func (s *Server) tokensRevoke(w http.ResponseWriter, r *http.Request) {
	page := TokensPage{}
	user, writer, tc, ok := s.tokensWrite(w, r, &page)
	if !ok {
		return
	}
	key := strings.TrimSpace(r.PostForm.Get("key"))
	noteOf(r).target = tokenRef(key)
	if err := tc.RevokeToken(r.Context(), writer, key); err != nil {
		s.tokensFail(w, r, user, tc, page, err)
		return
	}
	zerolog.Ctx(r.Context()).Info().Str("user", user.Name).Msg("token revoked from the web ui")
	if user.Token != nil && strings.HasPrefix(user.Token.Key, strings.ToLower(key)) {
		// The browser revoked its own session: it is logged out.
		s.setCookie(w, r, sessionCookie, "", "/", -1)
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/-/web/tokens?"+url.Values{"revoked": {shortKey(key)}}.Encode(), http.StatusSeeOther)
}

// shortKey is the part of a token key the pages show (npm token list's id).
func shortKey(key string) string {
	key = strings.ToLower(strings.TrimSpace(key))
	for _, c := range key {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return ""
		}
	}
	return key[:min(len(key), 6)]
}
