package handlers

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/gorilla/mux"

	"github.com/couchnpm/couchnpm/auditlog"
	"github.com/couchnpm/couchnpm/registry"
)

// auditNote is what a request tells the audit log; recordAudit creates it,
// audited names the action, handlers add what they learn (the package,
// the target, the name a login tried), writeError the reason.
type auditNote struct {
	action string
	pkg    string
	target string
	actor  string // overrides the authenticated user (a login names its user)
	reason string
	skip   bool // not an audited event after all (a star)
}

// noteOf is the request's note (kept in its exchange, chain.go), or a
// throwaway when the audit log is off.
func noteOf(r *http.Request) *auditNote {
	if ex := exchangeOf(r); ex != nil && ex.note != nil {
		return ex.note
	}
	return &auditNote{}
}

// audited marks a route's requests as audited events named action (see
// README "Audit log" for the names). The package and a dist-tag come from
// the route; handlers refine the rest with noteOf. Other engineers' new
// write routes wrap their handler the same way; events outside HTTP call
// auditlog.Recorder.Record directly.
func audited(action string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		n := noteOf(r)
		n.action = action
		vars := mux.Vars(r)
		if raw, ok := vars["pkg"]; ok {
			n.pkg = unescaped(raw)
		}
		if tag, ok := vars["tag"]; ok {
			n.target = unescaped(tag)
		}
		if org, ok := vars["org"]; ok { // org and team changes: ORG or ORG:TEAM
			n.target = unescaped(org)
			if team, ok := vars["team"]; ok {
				n.target += ":" + unescaped(team)
			}
		}
		h(w, r)
	}
}

func unescaped(raw string) string {
	if v, err := url.PathUnescape(raw); err == nil {
		return v
	}
	return raw
}

// recordAudit records every audited request once its answer is sent: who
// (the authenticated user, or the name a failed login tried), from which
// address, what, and the outcome with the status and the reason the
// client was told. A request that is no audited event but whose
// credentials were refused is recorded as "auth".
func recordAudit(rec auditlog.Recorder) mux.MiddlewareFunc {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n := &auditNote{}
			r, ex := withExchange(r)
			ex.note = n
			next.ServeHTTP(w, r)
			auth := ex.auth
			if n.skip || (n.action == "" && !refusedCredentials(auth.err)) {
				return
			}
			status := ex.statusOr(http.StatusOK) // the chain's one wrapper saw the answer
			ev := auditlog.Event{
				Actor: n.actor, Address: remoteAddr(r).String(), RequestID: w.Header().Get("X-Request-Id"),
				Action: n.action, Package: n.pkg, Target: n.target,
				Outcome: auditlog.OutcomeOf(status), Status: status, Reason: n.reason,
			}
			if !remoteAddr(r).IsValid() {
				ev.Address = ""
			}
			if ev.Actor == "" {
				ev.Actor = auth.id.Name
			}
			if ev.Action == "" {
				ev.Action = auditlog.ActionAuth
				ev.Package = ""
			}
			if auth.err != nil {
				// Credentials that were refused: whose they claimed to be.
				if u, _, ok := r.BasicAuth(); ok && ev.Actor == "" {
					ev.Actor = u
				}
				if ev.Action == auditlog.ActionAuth {
					ev.Target = credentialRef(r)
					ev.Reason = registry.ReasonOf(auth.err)
					// The credentials' refusal, whatever the route answered
					// (an anonymous read may have gone on, a 404 ignored them).
					ev.Outcome, ev.Status = auditlog.OutcomeRefused, StatusOf(registry.KindOf(auth.err))
				}
			}
			// The request's own context may be cancelled already; the
			// entry must still be written.
			rec.Record(context.WithoutCancel(r.Context()), ev)
		})
	}
}

// refusedCredentials reports whether authentication failed because of the
// credentials (not because CouchDB was down).
func refusedCredentials(err error) bool {
	k := registry.KindOf(err)
	return err != nil && (k == registry.KindUnauthorized || k == registry.KindTooManyRequests || k == registry.KindInvalid)
}

// credentialRef names the refused credential without revealing it: the
// scheme, and for a token the first characters of its key.
func credentialRef(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) >= len("Bearer ") && strings.EqualFold(h[:len("Bearer ")], "Bearer ") {
		return "token " + auditlog.TokenRef(registry.TokenKey(strings.TrimSpace(h[len("Bearer "):])))
	}
	if _, _, ok := r.BasicAuth(); ok {
		return "password"
	}
	return ""
}

// tokenRef names a token reference given to revoke (a key, a key prefix or
// the token itself) by its key prefix.
func tokenRef(ref string) string {
	if strings.HasPrefix(ref, "cnpm_") {
		return auditlog.TokenRef(registry.TokenKey(ref))
	}
	return auditlog.TokenRef(strings.ToLower(ref))
}

// versionList is the versions of a publish body, for the log.
func versionList(vs map[string]registry.Manifest) string {
	out := make([]string, 0, len(vs))
	for v := range vs {
		out = append(out, v)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// classifyUpdate names a publish request without tarballs. npm sends the
// whole document back for deprecate, owner and unpublish, so the body
// alone does not say which; npm's Npm-Command header does, and only known
// names are taken from it. The header never hides a request: only a body
// that can do nothing but star (users, and nothing else npm's commands
// change) goes unrecorded.
func classifyUpdate(n *auditNote, r *http.Request, b *registry.UpdateBody) {
	if b.Users != nil && b.Maintainers == nil && len(b.Versions) == 0 && b.DistTags == nil {
		n.skip = true // a star: changes no one's access or content
		return
	}
	switch cmd := r.Header.Get("Npm-Command"); {
	case cmd == "deprecate" || cmd == "undeprecate":
		n.action = cmd
		n.target = deprecatedList(b.Versions)
	case cmd == "unpublish":
		n.action = "unpublish.version"
	case cmd == "owner" || (b.Maintainers != nil && len(b.Versions) == 0):
		n.action = "owner.set"
	default:
		n.action = "package.update"
	}
	if n.action == "owner.set" || n.action == "package.update" {
		names := make([]string, 0, len(b.Maintainers))
		for _, m := range b.Maintainers {
			names = append(names, m.Name)
		}
		n.target = strings.Join(names, ",")
	}
}

// deprecatedList is the versions a body leaves deprecated.
func deprecatedList(vs map[string]registry.Manifest) string {
	var out []string
	for v, raw := range vs {
		var m struct {
			Deprecated string `json:"deprecated"`
		}
		if json.Unmarshal(raw, &m) == nil && m.Deprecated != "" {
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return "deprecated: " + strings.Join(out, ",")
}

// tagList is a dist-tag set, for the log.
func tagList(tags map[string]string) string {
	out := make([]string, 0, len(tags))
	for t, v := range tags {
		out = append(out, t+"="+v)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}
