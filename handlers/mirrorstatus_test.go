package handlers

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/registry"
	"github.com/couchnpm/couchnpm/replication"
)

type fakeMirror struct{ st replication.Status }

func (f fakeMirror) Status(context.Context) (*replication.Status, error) {
	st := f.st
	st.LastFailures = append([]replication.Failure(nil), f.st.LastFailures...)
	return &st, nil
}

// The upstream's address, the instance names and the error texts (which
// carry URLs, host names, credentials) are for admins only; the mode,
// progress, counts and lag are for everyone.
func TestMirrorStatusHidesDetailsFromNonAdmins(t *testing.T) {
	e := newEnv(t, zerolog.Disabled)
	e.accounts.tokens["cnpm_root"] = registry.Identity{Name: "root"}
	lag, lagSeconds := int64(2), 1.5
	mirror := fakeMirror{replication.Status{
		Mode: replication.ModeFollow, State: "backoff", Upstream: "https://mirror:s3cret@upstream.internal/npm",
		Instance: "web-3.internal-17", Holder: "web-4.internal-9", Checkpoint: "40", UpstreamSeq: "42",
		LagChanges: &lag, LagSeconds: &lagSeconds, WrittenPerSecond: 12.5, FollowerWritten: 40, PackumentsWritten: 40, Failures: 1,
		LastError:    "GET https://upstream.internal/_changes: status 500",
		LastFailures: []replication.Failure{{Package: "left-pad", Error: "dial tcp upstream.internal:443: connection refused", Time: time.Unix(1700000000, 0)}},
	}}
	e.h = mustNew(t, Config{PublicURL: publicURL, Mirror: mirror, IsAdmin: func(n string) bool { return n == "root" }}, fakeServices(t, e.reg, e.accounts, e.pinger), zerolog.Nop())
	secrets := []string{"upstream.internal", "s3cret", "web-3.internal", "web-4.internal", "status 500", "connection refused"}
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
			rec := e.do(t, "GET", "/-/mirror/status", nil, hdr...)
			wantStatus(t, rec, 200)
			body := rec.Body.String()
			for _, s := range secrets {
				if shown := strings.Contains(body, s); shown != tc.admin {
					t.Errorf("%q shown: %v, want %v: %s", s, shown, tc.admin, body)
				}
			}
			var got replication.Status
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if got.Mode != replication.ModeFollow || got.State != "backoff" || got.Checkpoint != "40" || got.UpstreamSeq != "42" ||
				got.LagChanges == nil || *got.LagChanges != 2 || got.LagSeconds == nil || got.WrittenPerSecond != 12.5 ||
				got.PackumentsWritten != 40 || got.Failures != 1 || len(got.LastFailures) != 1 || got.LastFailures[0].Package != "left-pad" {
				t.Errorf("progress, counts and lag are for everyone: %s", body)
			}
			if !tc.admin && (got.Upstream != replication.HiddenDetail || got.LastError != replication.HiddenDetail || got.LastFailures[0].Error != replication.HiddenDetail) {
				t.Errorf("non-admin view: %s", body)
			}
		})
	}
}
