package handlers

import (
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/auditlog"
	"github.com/couchnpm/couchnpm/registry"
)

// tokenView is a token as npm token list and create show it. Only the
// hash (key) of a token is stored, so "token" shows the key's first
// characters, the same id npm token revoke accepts.
type tokenView struct {
	Token    string     `json:"token"`
	Key      string     `json:"key"`
	Name     string     `json:"name"`
	CIDR     []string   `json:"cidr_whitelist"`
	ReadOnly bool       `json:"readonly"`
	Created  time.Time  `json:"created"`
	Updated  time.Time  `json:"updated"`
	Expires  *time.Time `json:"expires,omitempty"`
}

func viewToken(t *registry.Token, shown string) tokenView {
	name := t.Name
	if name == "" {
		// npm token list prints the name as is: "undefined" when absent.
		// Tokens created before login tokens had a name, and by npm token
		// create without --name, show this.
		name = unnamedToken
	}
	return tokenView{Token: shown, Key: t.Key, Name: name, CIDR: t.CIDR, ReadOnly: t.ReadOnly,
		Created: t.Created, Updated: t.Created, Expires: t.Expires}
}

// unnamedToken is the name shown for a token created without one.
const unnamedToken = "(unnamed)"

const defaultTokensPerPage = 100

// listTokens answers npm token list, a page at a time (page, perPage);
// urls.next links the next page.
func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) {
	user, tc, err := s.tokenRequest(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	list, err := tc.ListTokens(r.Context(), user)
	if err != nil {
		writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	page, _ := strconv.Atoi(q.Get("page"))
	per, _ := strconv.Atoi(q.Get("perPage"))
	if per <= 0 || per > 1000 {
		per = defaultTokensPerPage
	}
	page = max(page, 0)
	from := min(page*per, len(list))
	to := min(from+per, len(list))
	objects := make([]tokenView, 0, to-from)
	for _, t := range list[from:to] {
		objects = append(objects, viewToken(t, t.Key[:min(6, len(t.Key))]))
	}
	urls := map[string]string{}
	if to < len(list) {
		next := url.Values{"page": {strconv.Itoa(page + 1)}, "perPage": {strconv.Itoa(per)}}
		urls["next"] = s.cfg.PublicURL + "/-/npm/v1/tokens?" + next.Encode()
	}
	writeJSON(w, http.StatusOK, map[string]any{"objects": objects, "total": len(list), "urls": urls})
}

// createToken answers npm token create. The new token is in the answer
// only; it is never logged.
func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	user, tc, err := s.tokenRequest(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	var req registry.TokenRequest
	if err := decodeSmall(r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	var t *registry.Token
	token, err := guardPassword(s.limiter, r, user.Name, func() (tok string, err error) { // ratelimit.go: a password check
		tok, t, err = tc.CreateToken(r.Context(), user, req, remoteAddr(r))
		return tok, err
	})
	if err != nil {
		writeError(w, r, err)
		return
	}
	noteOf(r).target = auditlog.TokenRef(t.Key)
	zerolog.Ctx(r.Context()).Info().Bool("readonly", t.ReadOnly).Int("cidrs", len(t.CIDR)).Msg("token created")
	writeJSON(w, http.StatusOK, viewToken(t, token))
}

// revokeToken answers npm token revoke: DELETE /-/npm/v1/tokens/token/{key},
// the key (or a unique prefix of it) of one of the caller's tokens.
func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) {
	user, tc, err := s.tokenRequest(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	key, err := routeVar(r, "key")
	if err != nil {
		writeError(w, r, err)
		return
	}
	noteOf(r).target = tokenRef(key)
	if err := tc.RevokeToken(r.Context(), user, key); err != nil {
		writeError(w, r, err)
		return
	}
	zerolog.Ctx(r.Context()).Info().Msg("token revoked")
	w.WriteHeader(http.StatusNoContent)
}

// tokenRequest resolves what every token route needs: a logged-in caller
// and the token operations.
func (s *Server) tokenRequest(r *http.Request) (registry.Identity, TokenCommands, error) {
	user, err := requireUser(r)
	if err != nil {
		return user, nil, err
	}
	return user, s.tokens, nil
}
