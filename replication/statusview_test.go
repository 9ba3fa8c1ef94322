package replication

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestStatusPublicHidesAddressesAndErrorTexts(t *testing.T) {
	lag := int64(3)
	secret := []string{"upstream.internal", "s3cret", "node-7.internal", "couch@10.1.2.3"}
	for _, tc := range []struct {
		name string
		in   Status
		keep []string // in the public JSON
	}{
		{
			name: "follow mode",
			in: Status{Mode: ModeFollow, State: "backoff", Upstream: "https://mirror:s3cret@upstream.internal/npm",
				Instance: "node-7.internal-42", Holder: "node-7.internal-42", Checkpoint: "10", UpstreamSeq: "13", LagChanges: &lag,
				Failures: 2, LastError: "GET https://upstream.internal/_changes: 500",
				LastFailures: []Failure{{Package: "left-pad", Error: "dial tcp upstream.internal:443: refused", Time: time.Unix(1700000000, 0)}}},
			keep: []string{`"mode":"follow"`, `"state":"backoff"`, `"checkpoint":"10"`, `"lag_changes":3`, `"failures":2`, `"package":"left-pad"`,
				`"upstream":"` + HiddenDetail + `"`, `"last_error":"` + HiddenDetail + `"`, `"follower_holder":"` + HiddenDetail + `"`},
		},
		{
			name: "replicate mode on CouchDB",
			in: Status{Mode: ModeReplicate, State: "crashing", Upstream: "https://upstream.internal", Instance: "node-7.internal-1",
				Replication: map[string]any{"state": "crashing", "node": "couch@10.1.2.3", "error_count": 4.0, "source_of_state": "_scheduler/docs",
					"info": map[string]any{"error": "unauthorized: https://mirror:s3cret@upstream.internal/ refused", "docs_written": 12.0, "through_seq": "99-g1", "changes_pending": nil}}},
			keep: []string{`"state":"crashing"`, `"error_count":4`, `"docs_written":12`, `"through_seq":"99-g1"`, `"changes_pending":null`, `"error":"` + HiddenDetail + `"`},
		},
		{
			name: "replicate mode on PouchDB Server",
			in: Status{Mode: ModeReplicate, State: "error", Replication: map[string]any{"state": "error", "reason": "upstream.internal unreachable",
				"info": json.RawMessage(`{"docs_read":5,"last_error":"s3cret"}`)}},
			keep: []string{`"reason":"` + HiddenDetail + `"`, `"docs_read":5`, `"last_error":"` + HiddenDetail + `"`},
		},
		{
			name: "nothing to hide",
			in:   Status{Mode: ModeOnDemand, State: "on-demand"},
			keep: []string{`"mode":"on-demand"`, `"last_failures":[]`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := json.Marshal(tc.in)
			b, err := json.Marshal(tc.in.Public())
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range secret {
				if strings.Contains(string(b), s) {
					t.Errorf("the public status shows %q: %s", s, b)
				}
			}
			for _, s := range tc.keep {
				if !strings.Contains(string(b), s) {
					t.Errorf("the public status lacks %s: %s", s, b)
				}
			}
			if after, _ := json.Marshal(tc.in); string(after) != string(before) {
				t.Errorf("Public changed the status it was given:\n%s\n%s", before, after)
			}
		})
	}
}
