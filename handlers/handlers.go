// Package handlers is couchnpm's HTTP surface: npm's registry API routed with
// gorilla/mux onto the registry package. Handlers decode requests and encode
// answers; the rules live in the registry package.
package handlers

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/auditlog"
	"github.com/couchnpm/couchnpm/registry"
	"github.com/couchnpm/couchnpm/replication"
)

// Registry is what the package routes need of the registry.
type Registry interface {
	Packument(ctx context.Context, user registry.Identity, name string) (*registry.Packument, error)
	// PackumentForWrite is Packument for a read that precedes a write:
	// the private package only (never the mirror), its current revision.
	PackumentForWrite(ctx context.Context, user registry.Identity, name string) (*registry.Packument, error)
	// SharedPackument is Packument for reading and rendering only: the
	// result may be the packument cache's own copy; never modify it.
	SharedPackument(ctx context.Context, user registry.Identity, name string) (*registry.Packument, error)
	Tarball(ctx context.Context, user registry.Identity, name, file string, head bool) (*registry.Tarball, error)
	Publish(ctx context.Context, user registry.Identity, name string, body *registry.PublishBody) error
}

// Accounts is what the user routes and authentication need. otp is the
// request's npm-otp header (two-factor authentication); addr and from the
// client's address (remoteAddr), for token CIDR rules and CouchDB's
// per-client lockout of password guesses.
type Accounts interface {
	Login(ctx context.Context, name, password, email, otp string, from netip.Addr) (string, error)
	User(ctx context.Context, name string) (*registry.User, error)
	ByToken(ctx context.Context, token string, addr netip.Addr) (registry.Identity, error)
	ByPassword(ctx context.Context, name, password, otp string, from netip.Addr) (registry.Identity, error)
	Logout(ctx context.Context, token string) error
	// VerifyWrite checks the one-time password a write needs from an
	// account in auth-and-writes mode (twofa.go).
	VerifyWrite(ctx context.Context, id registry.Identity, otp string) (registry.Identity, error)
	SetTwoFactor(ctx context.Context, id registry.Identity, req registry.TwoFactorRequest, otp string, from netip.Addr) (registry.TwoFactorAnswer, error)
}

// Pinger tells whether the storage answers.
type Pinger interface {
	Ping(ctx context.Context) error
}

// MirrorStatus reports the upstream mirror's state.
type MirrorStatus interface {
	Status(ctx context.Context) (*replication.Status, error)
}

// PeerStatus reports the replications with peer sites (GET
// /-/replication/status): the last reading and when it was taken.
type PeerStatus interface {
	Status() ([]replication.PeerStatus, time.Time)
}

// ConflictStatus reports the conflict resolver's work (GET
// /-/conflicts/status) as viewer may see it.
type ConflictStatus interface {
	Status(ctx context.Context, viewer registry.Identity) (any, error)
}

// Config is what the handlers need to know about the deployment.
type Config struct {
	PublicURL       string // base URL written into dist.tarball, no trailing slash
	MaxPublishBytes int64
	AuditUpstream   string         // command surface: base URL npm audit is forwarded to; "" = off
	AuditTimeout    time.Duration  // command surface: bound on one forwarded audit
	Mirror          MirrorStatus   // nil when mirroring is off
	Conflicts       ConflictStatus // nil: no conflict resolver
	Peers           PeerStatus     // nil: no peer sites
	LoginLimit      LoginLimit     // failed password checks before 429 (ratelimit.go); zero value: defaults
	TrustedProxies  TrustedProxies // proxies whose X-Forwarded-For names the client (proxies.go); none: the peer is the client
	Bodies          BodyCache      // fast path: rendered packuments per revision; nil = render each time
	Metrics         http.Handler   // GET /-/metrics (Prometheus); nil = none
	Observer        RequestObserver
	WebLogin        WebLogins         // npm's web login; nil: POST /-/v1/login answers 404 (npm falls back to the legacy login)
	AuditLog        auditlog.Recorder // writes and security events (auditlog.go); nil: not recorded
	// Keys are this registry's signing keys, UpstreamKeys the mirrored
	// upstream's, served together at GET /-/npm/v1/keys (keys.go); Keys
	// nil: 404, as npm expects of a registry that does not sign.
	Keys, UpstreamKeys KeySource
	// Attestations serves mirrored versions' attestations (keys.go); nil:
	// 404.
	Attestations AttestationReader
	Pages        Pages     // web UI for browsers (pages.go); nil: none
	Downloads    Downloads // download counts (downloads.go); nil: not counted, API 404
	// IsAdmin tells who sees the admin-only details of the status
	// endpoints (peer host names, error texts); nil: nobody.
	IsAdmin func(name string) bool
}

// Services are what the routes call. Every one is required: New refuses a
// nil one, so no route finds a dependency missing at run time.
type Services struct {
	Registry Registry      // package reads and publishes
	Commands Commands      // npm's management commands (commands.go)
	Orgs     Orgs          // npm org, npm team, npm access grant/revoke (orgs.go)
	Accounts Accounts      // users, logins, authentication
	Tokens   TokenCommands // npm token (tokens.go)
	DB       Pinger        // GET /-/ping
}

// check names the services that are missing.
func (d Services) check() error {
	var missing []string
	for _, s := range []struct {
		name string
		nil  bool
	}{
		{"Registry", d.Registry == nil}, {"Commands", d.Commands == nil}, {"Orgs", d.Orgs == nil},
		{"Accounts", d.Accounts == nil}, {"Tokens", d.Tokens == nil}, {"DB", d.DB == nil},
	} {
		if s.nil {
			missing = append(missing, s.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("handlers.New: missing %s", strings.Join(missing, ", "))
	}
	return nil
}

// Server holds the dependencies of the routes.
type Server struct {
	cfg      Config
	reg      Registry
	cmds     Commands
	orgs     Orgs
	accounts Accounts
	tokens   TokenCommands
	db       Pinger
	render   registry.Render
	limiter  *loginLimiter // every password and one-time code check (ratelimit.go)
}

// pkgVar is the route variable for a package name, for every route that
// names a package: unscoped, or scoped as "@scope/name" or "@scope%2fname"
// (npm escapes the slash). The name itself is validated by the handler.
// packumentPath (fastpath.go) matches "/"+pkgVar without the router; a
// change here is a change there (TestPackumentFastPathRoutesAsTheRouter).
const pkgVar = `{pkg:@[^/%]+(?:/|%2[fF])[^/]+|[^/@][^/]*}`

// New builds the HTTP handler over svc; a missing service is an error.
func New(cfg Config, svc Services, log zerolog.Logger) (http.Handler, error) {
	if err := svc.check(); err != nil {
		return nil, err
	}
	accounts := svc.Accounts
	s := &Server{cfg: cfg, reg: svc.Registry, cmds: svc.Commands, orgs: svc.Orgs, accounts: accounts, tokens: svc.Tokens,
		db: svc.DB, render: registry.Render{BaseURL: cfg.PublicURL}, limiter: newLoginLimiter(cfg.LoginLimit)}
	r, fast := s.routes()
	// The one middleware chain (chain.go): logging, metrics, recovery,
	// security headers, authentication and audit for every request, mux's
	// own 404 and 405 included; its password checks share the routes'
	// login limiter.
	return fromTrustedProxies(cfg.TrustedProxies, chain(r, fast, log, accounts, cfg.AuditLog, cfg.Observer, s.limiter)), nil
}

// routes is the router of every endpoint, and the fast path in front of
// its GET /{pkg} route (fastpath.go).
func (s *Server) routes() (*mux.Router, *packumentFastPath) {
	cfg := s.cfg
	r := mux.NewRouter()
	// Match on the escaped path, so "@scope%2fname" stays one segment.
	r.UseEncodedPath()

	api := r.PathPrefix("/-/").Subrouter()
	api.HandleFunc("/ping", s.ping).Methods(http.MethodGet, http.MethodHead)
	api.HandleFunc("/whoami", s.whoami).Methods(http.MethodGet)
	api.HandleFunc("/user/org.couchdb.user:{name}", audited("login", s.login)).Methods(http.MethodPut)
	api.HandleFunc("/user/org.couchdb.user:{name}/-rev/{rev}", audited("login", s.login)).Methods(http.MethodPut)
	api.HandleFunc("/user/org.couchdb.user:{name}", s.getUser).Methods(http.MethodGet)
	api.HandleFunc("/user/token/{token}", audited("logout", s.logout)).Methods(http.MethodDelete)
	api.HandleFunc("/npm/v1/user", s.profile).Methods(http.MethodGet)                             // npm profile get (twofa.go)
	api.HandleFunc("/npm/v1/user", audited("profile.2fa", s.setProfile)).Methods(http.MethodPost) // npm profile enable-2fa|disable-2fa
	s.webLoginRoutes(api)                                                                         // web login (weblogin.go)
	api.HandleFunc("/mirror/status", s.mirrorStatus).Methods(http.MethodGet)
	api.HandleFunc("/conflicts/status", s.conflictStatus).Methods(http.MethodGet)
	api.HandleFunc("/replication/status", s.replicationStatus).Methods(http.MethodGet)
	if cfg.Metrics != nil {
		api.Handle("/metrics", cfg.Metrics).Methods(http.MethodGet)
	}
	// npm audit signatures (keys.go)
	api.HandleFunc("/npm/v1/keys", s.keys).Methods(http.MethodGet)
	api.HandleFunc("/npm/v1/attestations/{spec:.+}", s.attestations).Methods(http.MethodGet)
	s.commandRoutes(api, r) // command surface
	// web UI for browsers (websession.go, pages.go)
	s.pageRoutes(api, r)
	s.downloadRoutes(api) // download counts (downloads.go)
	api.PathPrefix("/").HandlerFunc(s.notFound)

	r.HandleFunc("/"+pkgVar+"/-/{file:.+}", s.tarball).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/"+pkgVar, audited("publish", s.publish)).Methods(http.MethodPut)
	r.HandleFunc("/"+pkgVar+"/{version}", s.version).Methods(http.MethodGet)
	pkgRoute := r.HandleFunc("/"+pkgVar, s.packument).Methods(http.MethodGet, http.MethodHead)
	r.NotFoundHandler = http.HandlerFunc(s.notFound)
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method not allowed", "reason": r.Method + " is not supported here"})
	})
	return r, &packumentFastPath{route: pkgRoute, serve: s.servePackument}
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	// The reason is logged: a token in the path must not reach the log.
	writeError(w, r, registry.E(registry.KindNotFound, "no such endpoint: %s %s", r.Method, redactPath(r.URL.EscapedPath())))
}

func (s *Server) ping(w http.ResponseWriter, r *http.Request) {
	if err := s.db.Ping(r.Context()); err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{})
}

// mirrorStatus reports the mirror's progress and health (for people and
// for `couchnpm mirror status`).
func (s *Server) replicationStatus(w http.ResponseWriter, r *http.Request) {
	out := struct {
		Peers     []replication.PeerStatus `json:"peers"`
		CheckedAt *time.Time               `json:"checked_at,omitempty"`
	}{Peers: []replication.PeerStatus{}}
	if s.cfg.Peers != nil {
		st, at := s.cfg.Peers.Status()
		if st != nil {
			out.Peers = st
		}
		// Peer host names and error texts (URLs) are for admins only.
		if !s.isAdmin(r) {
			out.Peers = replication.PublicPeers(out.Peers)
		}
		if !at.IsZero() {
			out.CheckedAt = &at
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) conflictStatus(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Conflicts == nil {
		s.notFound(w, r)
		return
	}
	user, err := identity(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	st, err := s.cfg.Conflicts.Status(r.Context(), user)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) mirrorStatus(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Mirror == nil {
		writeJSON(w, http.StatusOK, map[string]string{"mode": "off", "state": "off"})
		return
	}
	st, err := s.cfg.Mirror.Status(r.Context())
	if err != nil {
		writeError(w, r, err)
		return
	}
	// The upstream's address, instance names and error texts (URLs) are
	// for admins only.
	if !s.isAdmin(r) {
		pub := st.Public()
		st = &pub
	}
	writeJSON(w, http.StatusOK, st)
}

// isAdmin tells whether the request's user sees the admin-only details of
// the status endpoints.
func (s *Server) isAdmin(r *http.Request) bool {
	user, err := identity(r)
	return err == nil && !user.Anonymous() && s.cfg.IsAdmin != nil && s.cfg.IsAdmin(user.Name)
}
