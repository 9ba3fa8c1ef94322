package handlers

import (
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/registry"
	"github.com/couchnpm/couchnpm/replication"
)

type fakePeers []replication.PeerStatus

func (f fakePeers) Status() ([]replication.PeerStatus, time.Time) {
	return append([]replication.PeerStatus(nil), f...), time.Unix(1700000000, 0)
}

// Peer host names and error texts (which carry URLs) are for admins only.
func TestReplicationStatusHidesPeersFromNonAdmins(t *testing.T) {
	e := newEnv(t, zerolog.Disabled)
	e.accounts.tokens["cnpm_root"] = registry.Identity{Name: "root"}
	peers := fakePeers{
		{Peer: "https://couch.site-b.internal:6984", DB: "npm", State: "crashing", LastError: "connection refused: https://couch.site-b.internal:6984/npm"},
		{Peer: "https://couch.site-c.internal", DB: "_users", State: "running"},
	}
	e.h = mustNew(t, Config{PublicURL: publicURL, Peers: peers, IsAdmin: func(n string) bool { return n == "root" }}, fakeServices(t, e.reg, e.accounts, e.pinger), zerolog.Nop())
	for _, tc := range []struct {
		name, auth string
		admin      bool
	}{
		{"anonymous", "", false},
		{"a user", "Authorization: Bearer cnpm_alice", false},
		{"an admin", "Authorization: Bearer cnpm_root", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.auth != "" {
				hdr = append(hdr, tc.auth)
			}
			rec := e.do(t, "GET", "/-/replication/status", nil, hdr...)
			wantStatus(t, rec, 200)
			body := rec.Body.String()
			if shows := strings.Contains(body, "site-b.internal") || strings.Contains(body, "site-c.internal"); shows != tc.admin {
				t.Errorf("host names shown: %v, want %v: %s", shows, tc.admin, body)
			}
			for _, want := range []string{`"db":"npm"`, `"state":"crashing"`, `"db":"_users"`} {
				if !strings.Contains(body, want) {
					t.Errorf("%s lacks %s", body, want)
				}
			}
			if !tc.admin && (!strings.Contains(body, `"peer":"peer 1"`) || !strings.Contains(body, replication.HiddenDetail)) {
				t.Errorf("non-admin view: %s", body)
			}
		})
	}
}
