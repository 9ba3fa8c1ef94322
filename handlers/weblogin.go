package handlers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html/template"
	"io"
	"net/http"
	"net/netip"
	"strings"

	"github.com/gorilla/mux"
	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/registry"
)

// WebLogins is npm's web login flow; *registry.WebLogins implements it.
type WebLogins interface {
	Start(ctx context.Context, create bool) (page, done string, err error)
	Page(ctx context.Context, page string) (*registry.WebLoginPage, error)
	// Submit checks the credentials the client at from typed in.
	Submit(ctx context.Context, page, name, password, email string, create bool, from netip.Addr) (*registry.User, error)
	Collect(ctx context.Context, done string) (string, error)
}

// The web login's URLs; the secret after each prefix is cut out of the
// request log (redactPath).
const (
	webLoginPagePrefix = "/-/v1/login/web/"
	webLoginDonePrefix = "/-/v1/login/done/"
)

// webLoginRoutes adds npm's web login: POST /-/v1/login starts one, the
// loginUrl is a small HTML page, npm polls the doneUrl.
func (s *Server) webLoginRoutes(api *mux.Router) {
	api.HandleFunc("/v1/login", s.webLogin).Methods(http.MethodPost)
	// Audited when the form is posted (webLoginPage names the action).
	api.HandleFunc("/v1/login/web/{id}", s.webLoginPage).Methods(http.MethodGet, http.MethodHead, http.MethodPost)
	api.HandleFunc("/v1/login/done/{id}", s.webLoginDone).Methods(http.MethodGet)
}

// webLogin starts a web login (npm login; npm ≤ 11 adduser sends
// {"create":true}). Without a WebLogins service it answers 404, and npm
// (≥ 9.5) falls back to the legacy login.
func (s *Server) webLogin(w http.ResponseWriter, r *http.Request) {
	if s.cfg.WebLogin == nil {
		writeError(w, r, registry.E(registry.KindNotFound, "web login is not enabled on this registry; npm falls back to the legacy login"))
		return
	}
	var body struct {
		Create bool `json:"create"`
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		writeError(w, r, registry.Wrap(registry.KindInvalid, err, "cannot read the login body"))
		return
	}
	if len(bytes.TrimSpace(b)) > 0 {
		if err := json.Unmarshal(b, &body); err != nil {
			writeError(w, r, registry.Wrap(registry.KindInvalid, err, "the login body is not valid JSON"))
			return
		}
	}
	page, done, err := s.cfg.WebLogin.Start(r.Context(), body.Create)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{
		"loginUrl": s.cfg.PublicURL + webLoginPagePrefix + page,
		"doneUrl":  s.cfg.PublicURL + webLoginDonePrefix + done,
	})
}

// webLoginDone is npm's poll: 202 with Retry-After until the browser has
// logged in, then 200 {token} once; 404 for unknown (or already
// collected) logins, 410 for expired ones.
func (s *Server) webLoginDone(w http.ResponseWriter, r *http.Request) {
	if s.cfg.WebLogin == nil {
		s.notFound(w, r)
		return
	}
	token, err := s.cfg.WebLogin.Collect(r.Context(), mux.Vars(r)["id"])
	switch {
	case errors.Is(err, registry.ErrWebLoginExpired):
		writeJSON(w, http.StatusGone, map[string]string{"error": "expired", "reason": registry.ReasonOf(err)})
	case err != nil:
		writeError(w, r, err)
	case token == "":
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusAccepted, map[string]any{})
	default:
		writeJSON(w, http.StatusOK, map[string]string{"token": token})
	}
}

// webLoginPage is the loginUrl: GET shows the form, POST checks the name
// and password typed into it. The page id in the path is a 256-bit
// secret only the npm that started the login (and whoever it shows the
// URL to) knows; the form posts back to the same path, so it carries the
// id, and a cross-site POST is refused (Sec-Fetch-Site).
func (s *Server) webLoginPage(w http.ResponseWriter, r *http.Request) {
	if s.cfg.WebLogin == nil {
		s.notFound(w, r)
		return
	}
	id := mux.Vars(r)["id"]
	data := loginPageData{Registry: s.cfg.PublicURL}
	info, err := s.cfg.WebLogin.Page(r.Context(), id)
	if err != nil {
		failLoginPage(w, r, loginStatus(err), data, err)
		return
	}
	data.Create, data.SignUp = info.Create, info.SignUp
	data.CreateChecked = info.Create && info.SignUp
	if info.User != "" {
		data.User = info.User
		renderLoginPage(w, r, http.StatusOK, data)
		return
	}
	if r.Method != http.MethodPost {
		data.Form = true
		renderLoginPage(w, r, http.StatusOK, data)
		return
	}

	note := noteOf(r) // a posted form is a login attempt
	note.action = "login.web"
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		failLoginPage(w, r, http.StatusForbidden, data, registry.E(registry.KindForbidden, "this form cannot be sent from another site"))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		data.Form = true
		failLoginPage(w, r, http.StatusBadRequest, data, registry.Wrap(registry.KindInvalid, err, "the form could not be read"))
		return
	}
	name := strings.TrimSpace(r.PostForm.Get("name"))
	note.actor = name
	email := strings.TrimSpace(r.PostForm.Get("email"))
	create := info.SignUp && r.PostForm.Get("create") != ""
	if create {
		note.target = "create if new"
	}
	password := r.PostForm.Get("password")
	user, err := guardPassword(s.limiter, r, name, func() (*registry.User, error) { // ratelimit.go: a password check
		return s.cfg.WebLogin.Submit(r.Context(), id, name, password, email, create, remoteAddr(r))
	})
	if err != nil {
		status := loginStatus(err)
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", retryAfter(err))
		}
		// Wrong credentials and bad input may be retried on the same page;
		// a cancelled, expired or completed login may not.
		retry := status == http.StatusUnauthorized || status == http.StatusBadRequest ||
			status == http.StatusForbidden || status == http.StatusTooManyRequests
		data.Form = retry && !errors.Is(err, registry.ErrWebLoginCancelled)
		data.Name, data.Email, data.CreateChecked = name, email, create
		failLoginPage(w, r, status, data, err)
		return
	}
	data.User = user.Name
	renderLoginPage(w, r, http.StatusOK, data)
}

// loginStatus is the page's status for an error (410 for an expired login).
func loginStatus(err error) int {
	if errors.Is(err, registry.ErrWebLoginExpired) {
		return http.StatusGone
	}
	return StatusOf(registry.KindOf(err))
}

// loginPageData fills the login page.
type loginPageData struct {
	Registry      string
	Form          bool   // show the form
	Create        bool   // started by npm adduser
	SignUp        bool   // new accounts are allowed
	CreateChecked bool   // the "create" box is ticked
	Name, Email   string // echoed back after a failed attempt (never the password)
	Error         string
	User          string // logged in: the success page
}

// failLoginPage logs err as writeError does (the cause at debug level, or
// error level for 5xx; never the form's fields) and shows its reason on
// the page.
func failLoginPage(w http.ResponseWriter, r *http.Request, status int, d loginPageData, err error) {
	ev := zerolog.Ctx(r.Context()).Debug()
	if status >= 500 {
		ev = zerolog.Ctx(r.Context()).Error()
	}
	ev.Int("status", status).Err(err).Msg("login page request failed")
	d.Error = registry.ReasonOf(err)
	noteOf(r).reason = d.Error
	renderLoginPage(w, r, status, d)
}

// loginCSS is the page's only style; the Content-Security-Policy allows
// exactly it, by hash.
const loginCSS = `body{font:16px/1.5 system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;color:#222}` +
	`h1{font-size:1.4rem}label{display:block;margin:.8rem 0 .2rem}` +
	`input[type=text],input[type=password],input[type=email]{width:100%;box-sizing:border-box;padding:.4rem;font:inherit}` +
	`button{margin-top:1rem;padding:.5rem 1.2rem;font:inherit}.error{color:#a00;font-weight:600}` +
	`.note{color:#555;font-size:.9rem}label.check{display:flex;gap:.4rem;align-items:center}`

var loginCSP = func() string {
	sum := sha256.Sum256([]byte(loginCSS))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; " +
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
}()

var loginTemplate = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{if .User}}Logged in{{else if .Create}}Create your account{{else}}Log in{{end}} – couchnpm</title>
<style>` + loginCSS + `</style>
</head>
<body>
{{if .User}}
<h1>Logged in</h1>
<p id="done">You are logged in to <code>{{.Registry}}</code> as <strong id="user">{{.User}}</strong>.</p>
<p>Return to your terminal: npm finishes the login by itself. You can close this page.</p>
{{else}}
<h1>{{if .Create}}Create your account{{else}}Log in{{end}}</h1>
<p>npm is waiting for this login to <code>{{.Registry}}</code>.</p>
{{if .Error}}<p class="error" id="error" role="alert">{{.Error}}</p>{{end}}
{{if .Form}}
<form method="post" autocomplete="on">
<label for="name">User name</label>
<input type="text" id="name" name="name" value="{{.Name}}" autocomplete="username" autocapitalize="none" spellcheck="false" required autofocus>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required>
{{if .SignUp}}
<label class="check"><input type="checkbox" id="create" name="create" value="1"{{if .CreateChecked}} checked{{end}}> Create this account if the name is new</label>
<label for="email">Email (only for a new account)</label>
<input type="email" id="email" name="email" value="{{.Email}}" autocomplete="email">
<p class="note" id="password-rules">A new account needs an e-mail address and a password of at least
10 characters that is not your user name and not a common password.</p>
{{end}}
<button type="submit" id="submit">{{if .Create}}Create account or log in{{else}}Log in{{end}}</button>
</form>
<p class="note">Only continue if you started <code>npm login</code> yourself just now: the npm that
started this login receives a token for the account you log in with.</p>
{{end}}
{{end}}
</body>
</html>
`))

// renderLoginPage sends the page with its own Content-Security-Policy; the
// chain's front door adds the other HTML headers that keep it out of
// caches, frames and other sites' reach (htmlSecurityHeaders).
func renderLoginPage(w http.ResponseWriter, r *http.Request, status int, d loginPageData) {
	var buf bytes.Buffer
	if err := loginTemplate.Execute(&buf, d); err != nil {
		writeError(w, r, registry.Wrap(registry.KindInternal, err, "render the login page"))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", loginCSP)
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}
