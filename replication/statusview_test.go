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

// PublicPeers numbers peers (in --peer order), not rows: every database of
// one peer carries the same number.
func TestPublicPeers(t *testing.T) {
	tests := []struct {
		name string
		in   []PeerStatus
		want []string
	}{
		{"none", nil, []string{}},
		{"one peer, two databases", []PeerStatus{{Peer: "https://b", DB: "npm"}, {Peer: "https://b", DB: "_users"}}, []string{"peer 1", "peer 1"}},
		{"two peers, two databases each", []PeerStatus{
			{Peer: "https://b", DB: "npm"}, {Peer: "https://b", DB: "_users"},
			{Peer: "https://c", DB: "npm"}, {Peer: "https://c", DB: "_users"},
		}, []string{"peer 1", "peer 1", "peer 2", "peer 2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := PublicPeers(tc.in)
			got := []string{}
			for i, p := range out {
				got = append(got, p.Peer)
				if p.DB != tc.in[i].DB {
					t.Errorf("row %d: db %q, want %q", i, p.DB, tc.in[i].DB)
				}
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("peers %v, want %v", got, tc.want)
			}
		})
	}
	in := []PeerStatus{{Peer: "https://b", LastError: "refused: https://b/npm"}}
	if out := PublicPeers(in); out[0].LastError != HiddenDetail || in[0].Peer != "https://b" {
		t.Errorf("PublicPeers: %+v (input %+v): want the error hidden and the input untouched", out[0], in[0])
	}
}
