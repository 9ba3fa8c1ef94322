package handlers

import (
	"context"
	"net/http"
	"net/netip"

	"github.com/gorilla/mux"

	"github.com/couchnpm/couchnpm/registry"
)

// Commands is what npm's management commands need of the registry
// (dist-tag, deprecate, owner, unpublish, star, access, search).
// *registry.Service implements it; New takes it as Services.Commands.
type Commands interface {
	DistTags(ctx context.Context, user registry.Identity, name string) (map[string]string, error)
	SetDistTag(ctx context.Context, user registry.Identity, name, tag, version string) error
	DeleteDistTag(ctx context.Context, user registry.Identity, name, tag string) error
	SetDistTags(ctx context.Context, user registry.Identity, name string, tags map[string]string, replace bool) error
	Update(ctx context.Context, user registry.Identity, name, rev string, b *registry.UpdateBody) error
	Unpublish(ctx context.Context, user registry.Identity, name, rev string) error
	DeleteTarball(ctx context.Context, user registry.Identity, name, file string) error
	Visibility(ctx context.Context, user registry.Identity, name string) (bool, error)
	Collaborators(ctx context.Context, user registry.Identity, name string) (map[string]string, error)
	SetAccess(ctx context.Context, user registry.Identity, name, access string) error
	PackagesOf(ctx context.Context, user registry.Identity, owner string) (map[string]string, error)
	PackagesInScope(ctx context.Context, user registry.Identity, scope string) (map[string]string, error)
	StarredBy(ctx context.Context, user registry.Identity, who string) ([]string, error)
	Search(ctx context.Context, user registry.Identity, q registry.SearchQuery) ([]registry.SearchHit, int, error)
	DefaultAccess() string
}

// TokenCommands is what npm token needs; *registry.Accounts implements it
// (Services.Tokens).
type TokenCommands interface {
	CreateToken(ctx context.Context, user registry.Identity, req registry.TokenRequest, from netip.Addr) (string, *registry.Token, error)
	ListTokens(ctx context.Context, user registry.Identity) ([]*registry.Token, error)
	RevokeToken(ctx context.Context, user registry.Identity, ref string) error
}

// commandRoutes adds the command surface's routes: api is the /-/
// subrouter (before its catch-all), root the router (before the package
// routes).
func (s *Server) commandRoutes(api, root *mux.Router) {
	get, put, post, del := http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete
	api.HandleFunc("/package/"+pkgVar+"/dist-tags", s.distTags).Methods(get)
	api.HandleFunc("/package/"+pkgVar+"/dist-tags", audited("dist-tag.set", s.replaceDistTags)).Methods(put, post)
	api.HandleFunc("/package/"+pkgVar+"/dist-tags/{tag}", audited("dist-tag.add", s.setDistTag)).Methods(put, post)
	api.HandleFunc("/package/"+pkgVar+"/dist-tags/{tag}", audited("dist-tag.rm", s.deleteDistTag)).Methods(del)
	api.HandleFunc("/package/"+pkgVar+"/visibility", s.visibility).Methods(get)
	api.HandleFunc("/package/"+pkgVar+"/collaborators", s.collaborators).Methods(get)
	api.HandleFunc("/package/"+pkgVar+"/access", audited("access.set", s.setAccess)).Methods(post)
	api.HandleFunc("/user/{user}/package", s.userPackages).Methods(get)
	api.HandleFunc("/org/{scope}/package", s.scopePackages).Methods(get)
	s.orgRoutes(api) // npm org, npm team, npm access grant/revoke (orgs.go)
	api.HandleFunc("/_view/starredByUser", s.starredByUser).Methods(get)
	api.HandleFunc("/v1/search", s.search).Methods(get)
	api.HandleFunc("/npm/v1/tokens", s.listTokens).Methods(get)
	api.HandleFunc("/npm/v1/tokens", audited("token.create", s.createToken)).Methods(post)
	api.HandleFunc("/npm/v1/tokens/token/{key}", audited("token.revoke", s.revokeToken)).Methods(del)
	api.HandleFunc("/npm/v1/security/advisories/bulk", s.auditBulk).Methods(post)
	api.HandleFunc("/npm/v1/security/audits/quick", s.auditBulk).Methods(post)

	root.HandleFunc("/"+pkgVar+"/-rev/{rev}", audited("publish", s.publish)).Methods(put)
	root.HandleFunc("/"+pkgVar+"/-rev/{rev}", audited("unpublish", s.unpublish)).Methods(del)
	root.HandleFunc("/"+pkgVar+"/-/{file:.+}/-rev/{rev}", audited("unpublish.tarball", s.deleteTarball)).Methods(del)
}

// prelude resolves what nearly every command handler needs: the caller
// (logged in when needUser is set), the package in the route, and the
// command surface.
func (s *Server) prelude(r *http.Request, needUser bool) (registry.Identity, string, Commands, error) {
	var user registry.Identity
	var err error
	if needUser {
		user, err = requireUser(r)
	} else {
		user, err = identity(r)
	}
	if err != nil {
		return user, "", nil, err
	}
	name := ""
	if _, ok := mux.Vars(r)["pkg"]; ok {
		if name, err = packageName(r); err != nil {
			return user, "", nil, err
		}
	}
	return user, name, s.cmds, nil
}

var errNoAccess = registry.E(registry.KindInvalid, "this registry only supports setting access (public or restricted), not mfa settings")
