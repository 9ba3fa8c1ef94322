package replication

import (
	"context"
	"fmt"
	"net/url"
	"testing"

	"github.com/couchnpm/couchnpm/registry"
)

func TestUpstreamFetchOutcomes(t *testing.T) {
	noAnswer := registry.Wrap(registry.KindUnavailable, &url.Error{Op: "Get", URL: "http://up.example/x", Err: fmt.Errorf("connection refused")}, "the upstream registry cannot be reached")
	tests := []struct {
		name string
		err  error
		want UpstreamFetches
	}{
		{"ok", nil, UpstreamFetches{OK: 1}},
		{"404 is not an error", registry.Wrap(registry.KindNotFound, &StatusError{Status: 404}, "not_found"), UpstreamFetches{NotFound: 1}},
		{"503", registry.Wrap(registry.KindUnavailable, &StatusError{Status: 503}, "the upstream registry answered 503"), UpstreamFetches{Errors: 1, ErrorStatus: 1}},
		{"429", registry.Wrap(registry.KindUnavailable, &StatusError{Status: 429}, "the upstream registry answered 429"), UpstreamFetches{Errors: 1, ErrorStatus: 1}},
		{"connection refused", noAnswer, UpstreamFetches{Errors: 1, NoAnswer: 1}},
		{"timeout", registry.Wrap(registry.KindUnavailable, context.DeadlineExceeded, "gave up"), UpstreamFetches{Errors: 1, NoAnswer: 1}},
		{"over the size bound", registry.E(registry.KindUnavailable, "the upstream document for x is over the limit"), UpstreamFetches{Errors: 1, Unusable: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stats := &Stats{}
			stats.upstreamFetch(tc.err)
			st, err := (&Reporter{Mode: ModeOnDemand, Stats: stats}).Status(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if st.UpstreamFetches != tc.want {
				t.Errorf("upstream_fetches = %+v, want %+v", st.UpstreamFetches, tc.want)
			}
		})
	}
}

// TestStatusWrittenAddsUp: packuments_written is the follower's writes plus
// this instance's on-demand ones, in every mode.
func TestStatusWrittenAddsUp(t *testing.T) {
	stats := &Stats{}
	for range 164 {
		stats.onDemandWritten.Add(1)
	}
	st, err := (&Reporter{Mode: ModeOnDemand, Stats: stats}).Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.PackumentsWritten != 164 || st.OnDemandWritten != 164 || st.FollowerWritten != 0 {
		t.Errorf("written %d = follower %d + on demand %d, want 164 = 0 + 164", st.PackumentsWritten, st.FollowerWritten, st.OnDemandWritten)
	}
}
