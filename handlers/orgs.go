package handlers

import (
	"context"
	"net/http"

	"github.com/gorilla/mux"
	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/registry"
)

// Orgs is what npm org, npm team and npm access grant/revoke need of the
// registry; *registry.Service implements it (Services.Orgs).
type Orgs interface {
	SetOrgMember(ctx context.Context, user registry.Identity, org, member, role string) (*registry.Membership, error)
	RemoveOrgMember(ctx context.Context, user registry.Identity, org, member string) error
	OrgMembers(ctx context.Context, user registry.Identity, org string) (map[string]string, error)
	CreateTeam(ctx context.Context, user registry.Identity, org, team, description string) error
	DestroyTeam(ctx context.Context, user registry.Identity, org, team string) error
	AddTeamMember(ctx context.Context, user registry.Identity, org, team, member string) error
	RemoveTeamMember(ctx context.Context, user registry.Identity, org, team, member string) error
	Teams(ctx context.Context, user registry.Identity, org string) ([]string, error)
	TeamMembers(ctx context.Context, user registry.Identity, org, team string) ([]string, error)
	TeamPackages(ctx context.Context, user registry.Identity, org, team string) (map[string]string, error)
	GrantTeam(ctx context.Context, user registry.Identity, org, team, pkg, perm string) error
	RevokeTeam(ctx context.Context, user registry.Identity, org, team, pkg string) error
}

// orgRoutes adds the org and team endpoints npm's libnpmorg, libnpmteam
// and libnpmaccess call to api, the /-/ subrouter. Every one needs a
// logged-in caller.
func (s *Server) orgRoutes(api *mux.Router) {
	get, put, del := http.MethodGet, http.MethodPut, http.MethodDelete
	api.HandleFunc("/org/{org}/user", s.orgMembers).Methods(get)
	api.HandleFunc("/org/{org}/user", audited("org.member.set", s.setOrgMember)).Methods(put)
	api.HandleFunc("/org/{org}/user", audited("org.member.rm", s.removeOrgMember)).Methods(del)
	api.HandleFunc("/org/{org}/team", s.teams).Methods(get)
	api.HandleFunc("/org/{org}/team", audited("org.team.create", s.createTeam)).Methods(put)
	api.HandleFunc("/team/{org}/{team}", audited("org.team.destroy", s.destroyTeam)).Methods(del)
	api.HandleFunc("/team/{org}/{team}/user", s.teamMembers).Methods(get)
	api.HandleFunc("/team/{org}/{team}/user", audited("org.team.member.add", s.addTeamMember)).Methods(put)
	api.HandleFunc("/team/{org}/{team}/user", audited("org.team.member.rm", s.removeTeamMember)).Methods(del)
	api.HandleFunc("/team/{org}/{team}/package", s.teamPackages).Methods(get)
	api.HandleFunc("/team/{org}/{team}/package", audited("access.grant", s.grantTeam)).Methods(put)
	api.HandleFunc("/team/{org}/{team}/package", audited("access.revoke", s.revokeTeam)).Methods(del)
}

// orgRequest is one org or team request: the logged-in caller, the org
// (and team, when the route names one) and the registry's org surface.
type orgRequest struct {
	user registry.Identity
	org  string
	team string
	orgs Orgs
}

// orgPrelude resolves an orgRequest; npm may send the org as "@acme".
func (s *Server) orgPrelude(r *http.Request) (orgRequest, error) {
	var q orgRequest
	var err error
	if q.user, err = requireUser(r); err != nil {
		return q, err
	}
	if q.org, err = routeVar(r, "org"); err != nil {
		return q, err
	}
	if len(q.org) > 1 && q.org[0] == '@' {
		q.org = q.org[1:]
	}
	if _, ok := mux.Vars(r)["team"]; ok {
		if q.team, err = routeVar(r, "team"); err != nil {
			return q, err
		}
	}
	q.orgs = s.orgs
	return q, nil
}

// orgHandler wraps the common shape of the org handlers: resolve the
// request, run do and write its answer (201
// for created, 200 otherwise).
func (s *Server) orgHandler(status int, do func(r *http.Request, q orgRequest) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q, err := s.orgPrelude(r)
		if err != nil {
			writeError(w, r, err)
			return
		}
		out, err := do(r, q)
		if err != nil {
			writeError(w, r, err)
			return
		}
		writeJSON(w, status, out)
	}
}

type userBody struct {
	User string `json:"user"`
	Role string `json:"role"`
}

func decodeUser(r *http.Request) (userBody, error) {
	var b userBody
	if err := decodeSmall(r, &b); err != nil {
		return b, err
	}
	if len(b.User) > 1 && b.User[0] == '@' {
		b.User = b.User[1:]
	}
	if b.User == "" {
		return b, registry.E(registry.KindInvalid, "the request body names no user")
	}
	return b, nil
}

func logOrg(r *http.Request, q orgRequest) *zerolog.Event {
	return zerolog.Ctx(r.Context()).Info().Str("org", q.org).Str("team", q.team).Str("by", q.user.Name)
}

// orgMembers answers npm org ls: {user: role}.
func (s *Server) orgMembers(w http.ResponseWriter, r *http.Request) {
	s.orgHandler(http.StatusOK, func(r *http.Request, q orgRequest) (any, error) {
		return q.orgs.OrgMembers(r.Context(), q.user, q.org)
	})(w, r)
}

// setOrgMember answers npm org set: the membership and the org's size.
func (s *Server) setOrgMember(w http.ResponseWriter, r *http.Request) {
	s.orgHandler(http.StatusOK, func(r *http.Request, q orgRequest) (any, error) {
		b, err := decodeUser(r)
		if err != nil {
			return nil, err
		}
		m, err := q.orgs.SetOrgMember(r.Context(), q.user, q.org, b.User, b.Role)
		if err == nil {
			logOrg(r, q).Str("user", m.User).Str("role", m.Role).Msg("org member set")
		}
		return m, err
	})(w, r)
}

// removeOrgMember answers npm org rm.
func (s *Server) removeOrgMember(w http.ResponseWriter, r *http.Request) {
	s.orgHandler(http.StatusOK, func(r *http.Request, q orgRequest) (any, error) {
		b, err := decodeUser(r)
		if err != nil {
			return nil, err
		}
		if err := q.orgs.RemoveOrgMember(r.Context(), q.user, q.org, b.User); err != nil {
			return nil, err
		}
		logOrg(r, q).Str("user", b.User).Msg("org member removed")
		return map[string]bool{"ok": true}, nil
	})(w, r)
}

// teams answers npm team ls <org>: ["org:team", …].
func (s *Server) teams(w http.ResponseWriter, r *http.Request) {
	s.orgHandler(http.StatusOK, func(r *http.Request, q orgRequest) (any, error) {
		return q.orgs.Teams(r.Context(), q.user, q.org)
	})(w, r)
}

// createTeam answers npm team create.
func (s *Server) createTeam(w http.ResponseWriter, r *http.Request) {
	s.orgHandler(http.StatusCreated, func(r *http.Request, q orgRequest) (any, error) {
		var b struct {
			Name        string `json:"name"`
			Description string `json:"description"`
		}
		if err := decodeSmall(r, &b); err != nil {
			return nil, err
		}
		if err := q.orgs.CreateTeam(r.Context(), q.user, q.org, b.Name, b.Description); err != nil {
			return nil, err
		}
		q.team = b.Name
		logOrg(r, q).Msg("team created")
		return map[string]string{"name": b.Name, "description": b.Description}, nil
	})(w, r)
}

// destroyTeam answers npm team destroy.
func (s *Server) destroyTeam(w http.ResponseWriter, r *http.Request) {
	s.orgHandler(http.StatusOK, func(r *http.Request, q orgRequest) (any, error) {
		if err := q.orgs.DestroyTeam(r.Context(), q.user, q.org, q.team); err != nil {
			return nil, err
		}
		logOrg(r, q).Msg("team destroyed")
		return map[string]bool{"ok": true}, nil
	})(w, r)
}

// teamMembers answers npm team ls <org>:<team>: [user, …].
func (s *Server) teamMembers(w http.ResponseWriter, r *http.Request) {
	s.orgHandler(http.StatusOK, func(r *http.Request, q orgRequest) (any, error) {
		return q.orgs.TeamMembers(r.Context(), q.user, q.org, q.team)
	})(w, r)
}

// addTeamMember answers npm team add.
func (s *Server) addTeamMember(w http.ResponseWriter, r *http.Request) {
	s.orgHandler(http.StatusCreated, func(r *http.Request, q orgRequest) (any, error) {
		b, err := decodeUser(r)
		if err != nil {
			return nil, err
		}
		if err := q.orgs.AddTeamMember(r.Context(), q.user, q.org, q.team, b.User); err != nil {
			return nil, err
		}
		logOrg(r, q).Str("user", b.User).Msg("team member added")
		return map[string]bool{"ok": true}, nil
	})(w, r)
}

// removeTeamMember answers npm team rm.
func (s *Server) removeTeamMember(w http.ResponseWriter, r *http.Request) {
	s.orgHandler(http.StatusOK, func(r *http.Request, q orgRequest) (any, error) {
		b, err := decodeUser(r)
		if err != nil {
			return nil, err
		}
		if err := q.orgs.RemoveTeamMember(r.Context(), q.user, q.org, q.team, b.User); err != nil {
			return nil, err
		}
		logOrg(r, q).Str("user", b.User).Msg("team member removed")
		return map[string]bool{"ok": true}, nil
	})(w, r)
}

// teamPackages answers npm access list packages <org>:<team>.
func (s *Server) teamPackages(w http.ResponseWriter, r *http.Request) {
	s.orgHandler(http.StatusOK, func(r *http.Request, q orgRequest) (any, error) {
		return q.orgs.TeamPackages(r.Context(), q.user, q.org, q.team)
	})(w, r)
}

type grantBody struct {
	Package     string `json:"package"`
	Permissions string `json:"permissions"`
}

func decodeGrant(r *http.Request) (grantBody, error) {
	var b grantBody
	if err := decodeSmall(r, &b); err != nil {
		return b, err
	}
	if b.Package == "" {
		return b, registry.E(registry.KindInvalid, "the request body names no package")
	}
	return b, nil
}

// grantTeam answers npm access grant read-only|read-write <org>:<team> <pkg>.
func (s *Server) grantTeam(w http.ResponseWriter, r *http.Request) {
	s.orgHandler(http.StatusCreated, func(r *http.Request, q orgRequest) (any, error) {
		b, err := decodeGrant(r)
		if err != nil {
			return nil, err
		}
		if err := q.orgs.GrantTeam(r.Context(), q.user, q.org, q.team, b.Package, b.Permissions); err != nil {
			return nil, err
		}
		logOrg(r, q).Str("pkg", b.Package).Str("permissions", b.Permissions).Msg("team granted")
		return map[string]bool{"ok": true}, nil
	})(w, r)
}

// revokeTeam answers npm access revoke <org>:<team> <pkg>.
func (s *Server) revokeTeam(w http.ResponseWriter, r *http.Request) {
	s.orgHandler(http.StatusOK, func(r *http.Request, q orgRequest) (any, error) {
		b, err := decodeGrant(r)
		if err != nil {
			return nil, err
		}
		if err := q.orgs.RevokeTeam(r.Context(), q.user, q.org, q.team, b.Package); err != nil {
			return nil, err
		}
		logOrg(r, q).Str("pkg", b.Package).Msg("team grant revoked")
		return map[string]bool{"ok": true}, nil
	})(w, r)
}
