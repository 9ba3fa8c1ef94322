package handlers

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/internal/testkit"
	"github.com/couchnpm/couchnpm/registry"
	"github.com/couchnpm/couchnpm/registry/registrytest"
)

// namesMirror is an upstream that knows every name, or cannot be asked
// when down is set.
type namesMirror struct {
	registry.Mirror // nil; keeps the fake building if the interface grows
	down            bool
}

func (m namesMirror) Private(name string) bool { return strings.HasPrefix(name, "@corp/") }

func (m namesMirror) Known(context.Context, string) (bool, error) {
	if m.down {
		return false, registry.E(registry.KindUnavailable, "the upstream registry cannot be reached")
	}
	return true, nil
}

// The takeover guard's refusals reach npm as a status and an npm-style
// {"error": reason} body it prints.
func TestTakeoverPublishStatuses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		down   bool
		pkg    string
		status int
		reason string
	}{
		{"a name the upstream knows", false, "ms", 403, "ms exists on the upstream registry; publishing it here would shadow it for everyone. Use a private scope (@yourorg/ms) or ask an operator to run `couchnpm claim ms`"},
		{"an upstream that cannot be asked", true, "is-odd", 503, "cannot check whether is-odd exists on the upstream registry; retry later, or ask an operator to run `couchnpm claim is-odd`"},
		{"a private scope", true, "@corp/ms", 201, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := newService(t, registry.Config{Mirror: namesMirror{down: tc.down}, Orgs: registrytest.Orgs(t, "alice", "corp")})
			srv := httptest.NewServer(mustNew(t, Config{PublicURL: "http://registry.test", MaxPublishBytes: 1 << 20},
				realServices(reg, newFakeAccounts(), noTokens(t)), zerolog.Nop()))
			t.Cleanup(srv.Close)
			path := "/" + strings.Replace(tc.pkg, "/", "%2f", 1)
			resp, b := call(t, "PUT", srv.URL+path, npmPublishBody(t, tc.pkg, "99.0.0", "latest", testkit.Tarball(tc.pkg, "99.0.0")),
				"Authorization: Bearer cnpm_alice", "Content-Type: application/json")
			if resp.StatusCode != tc.status {
				t.Fatalf("publish: %d %s, want %d", resp.StatusCode, b, tc.status)
			}
			if tc.reason == "" {
				return
			}
			var body map[string]any
			if err := json.Unmarshal(b, &body); err != nil || body["error"] != tc.reason {
				t.Fatalf("body %s; want error %q", b, tc.reason)
			}
		})
	}
}
