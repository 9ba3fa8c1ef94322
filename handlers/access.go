package handlers

import (
	"net/http"

	"github.com/rs/zerolog"
)

// visibility answers npm access get status: {public: bool}.
func (s *Server) visibility(w http.ResponseWriter, r *http.Request) {
	user, name, c, err := s.prelude(r, false)
	if err != nil {
		writeError(w, r, err)
		return
	}
	public, err := c.Visibility(r.Context(), user, name)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"public": public})
}

// collaborators answers npm access list collaborators.
func (s *Server) collaborators(w http.ResponseWriter, r *http.Request) {
	user, name, c, err := s.prelude(r, false)
	if err != nil {
		writeError(w, r, err)
		return
	}
	m, err := c.Collaborators(r.Context(), user, name)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, m)
}

// setAccess answers npm access set status=public|private. The mfa
// settings npm sends to the same URL are not supported.
func (s *Server) setAccess(w http.ResponseWriter, r *http.Request) {
	user, name, c, err := s.prelude(r, true)
	if err != nil {
		writeError(w, r, err)
		return
	}
	var body struct {
		Access *string `json:"access"`
	}
	if err := decodeSmall(r, &body); err != nil {
		writeError(w, r, err)
		return
	}
	if body.Access == nil {
		writeError(w, r, errNoAccess)
		return
	}
	noteOf(r).target = *body.Access
	if err := c.SetAccess(r.Context(), user, name, *body.Access); err != nil {
		writeError(w, r, err)
		return
	}
	zerolog.Ctx(r.Context()).Info().Str("pkg", name).Str("access", *body.Access).Msg("access changed")
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// userPackages answers npm access list packages <user>. Listings need a
// logged-in caller: they name restricted packages.
func (s *Server) userPackages(w http.ResponseWriter, r *http.Request) {
	user, _, c, err := s.prelude(r, true)
	if err != nil {
		writeError(w, r, err)
		return
	}
	owner, err := routeVar(r, "user")
	if err != nil {
		writeError(w, r, err)
		return
	}
	m, err := c.PackagesOf(r.Context(), user, owner)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, m)
}

// scopePackages answers npm access list packages @scope; an empty scope is
// 404, so that npm falls back to the user listing.
func (s *Server) scopePackages(w http.ResponseWriter, r *http.Request) {
	user, _, c, err := s.prelude(r, true)
	if err != nil {
		writeError(w, r, err)
		return
	}
	scope, err := routeVar(r, "scope")
	if err != nil {
		writeError(w, r, err)
		return
	}
	m, err := c.PackagesInScope(r.Context(), user, scope)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, m)
}
