package handlers

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"

	"github.com/gorilla/mux"

	"github.com/couchnpm/couchnpm/auditlog"
	"github.com/couchnpm/couchnpm/registry"
)

// loginBody is what npm's couch login/adduser flow sends.
type loginBody struct {
	Name     string `json:"name"`
	Password string `json:"password"`
	Email    string `json:"email"`
}

// login answers npm's legacy login and adduser (PUT
// /-/user/org.couchdb.user:NAME, also with /-rev/REV after a 409). It never
// needs the 409 dance: an existing user with the right password gets a new
// token straight away. npm ≥ 9 keeps only the token from the answer.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	name, err := url.PathUnescape(mux.Vars(r)["name"])
	if err != nil {
		writeError(w, r, registry.E(registry.KindInvalid, "invalid user name in the URL"))
		return
	}
	note := noteOf(r)
	note.actor = name
	var body loginBody
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&body); err != nil {
		writeError(w, r, registry.Wrap(registry.KindInvalid, err, "the login body is not valid JSON"))
		return
	}
	if body.Name == "" {
		body.Name = name
	}
	if body.Name != name {
		writeError(w, r, registry.E(registry.KindInvalid, "the body names user %q but the URL names %q", body.Name, name))
		return
	}
	if body.Password == "" {
		// The -rev retry sends Basic credentials instead of a password.
		if u, p, ok := r.BasicAuth(); ok && u == name {
			body.Password = p
		}
	}
	token, err := guardPassword(s.limiter, r, name, func() (string, error) { // ratelimit.go
		// Inside the guard: a rate-limited login asks CouchDB nothing.
		if _, err := s.accounts.User(r.Context(), name); registry.IsKind(err, registry.KindNotFound) {
			note.action = "adduser" // Login creates the account (when sign-up is allowed)
		}
		return s.accounts.Login(r.Context(), name, body.Password, body.Email, r.Header.Get(otpHeader), remoteAddr(r))
	})
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{
		"ok": true, "id": "org.couchdb.user:" + name, "rev": "_we_dont_use_revs_any_more", "token": token,
	})
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request) {
	if _, err := requireUser(r); err != nil {
		writeError(w, r, err)
		return
	}
	name, err := url.PathUnescape(mux.Vars(r)["name"])
	if err != nil {
		writeError(w, r, registry.E(registry.KindInvalid, "invalid user name in the URL"))
		return
	}
	u, err := s.accounts.User(r.Context(), name)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"_id": "org.couchdb.user:" + u.Name, "name": u.Name, "email": u.Email, "type": "user"})
}

func (s *Server) whoami(w http.ResponseWriter, r *http.Request) {
	id, err := requireUser(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"username": id.Name})
}

// logout revokes the token named in the path (npm logout). Knowing a token
// is enough to revoke it; the request's own credentials do not matter, so a
// logout with an already revoked token still succeeds.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	token, err := url.PathUnescape(mux.Vars(r)["token"])
	if err != nil {
		writeError(w, r, registry.E(registry.KindInvalid, "invalid token in the URL"))
		return
	}
	noteOf(r).target = "token " + auditlog.TokenRef(registry.TokenKey(token))
	if err := s.accounts.Logout(r.Context(), token); err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}
