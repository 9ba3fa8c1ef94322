package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/couchnpm/couchnpm/cache"
	"github.com/couchnpm/couchnpm/replication"
)

func TestExposition(t *testing.T) {
	m := New()
	m.ObserveRequest("/{pkg}", "GET", 200, 3*time.Millisecond)
	m.WatchCache(func() cache.Stats { return cache.Stats{Hits: 7, Bytes: 1234, FeedsUp: 2} })
	lag := int64(5)
	m.WatchMirror(func(context.Context) (*replication.Status, error) {
		return &replication.Status{LagChanges: &lag, PackumentsWritten: 3,
			PullThrough: replication.PullThrough{WritesPending: 2, WritesFailed: 1, Prefetched: 9}}, nil
	})
	couch := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) }))
	defer couch.Close()
	c := &http.Client{Transport: m.CouchTransport(http.DefaultTransport)}
	resp, err := c.Get(couch.URL + "/registry/left-pad")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`couchnpm_http_requests_total{method="GET",route="/{pkg}",status="200"} 1`,
		`couchnpm_http_request_duration_seconds_bucket{method="GET",route="/{pkg}",le="0.005"} 1`,
		`couchnpm_couchdb_request_duration_seconds_count{kind="doc",method="GET",status="200"} 1`,
		"couchnpm_cache_hits_total 7",
		"couchnpm_cache_bytes 1234",
		"couchnpm_cache_feeds_up 2",
		"couchnpm_mirror_lag_changes 5",
		"couchnpm_mirror_packuments_written_total 3",
		"couchnpm_mirror_pull_writes_pending 2",
		`couchnpm_mirror_pull_writes_total{result="failed"} 1`,
		`couchnpm_mirror_prefetch_total{result="fetched"} 9`,
		"go_goroutines",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("missing %q", want)
		}
	}
	if strings.Contains(string(body), "left-pad") {
		t.Error("a document name reached a label")
	}
}

func TestCouchKind(t *testing.T) {
	for path, want := range map[string]string{
		"/":                           "server",
		"/_up":                        "server",
		"/registry/_changes":          "changes",
		"/registry/_design/x/_view/y": "view",
		"/registry/_all_docs":         "view",
		"/registry/foo":               "doc",
		"/registry/foo/foo-1.0.0.tgz": "attachment",
		// A scoped name's slash is escaped in the document id: a document.
		"/registry/@scope%2Ffoo":               "doc",
		"/registry/@scope%2Ffoo/foo-1.0.0.tgz": "attachment",
		"/registry":                            "db",
	} {
		if got := couchKind(path); got != want {
			t.Errorf("couchKind(%q) = %q, want %q", path, got, want)
		}
	}
}

// The mirror's status costs CouchDB calls: scrapes within
// mirrorStatusTTL share one reading, a failed one included.
func TestMirrorStatusCached(t *testing.T) {
	calls := 0
	fail := false
	now := time.Unix(1000, 0)
	c := &mirrorCollector{now: func() time.Time { return now }, status: func(context.Context) (*replication.Status, error) {
		calls++
		if fail {
			return nil, errors.New("CouchDB is down")
		}
		return &replication.Status{PackumentsWritten: int64(calls)}, nil
	}}
	m := New()
	m.reg.MustRegister(c)
	for i, step := range []struct {
		advance   time.Duration
		fail      bool
		wantCalls int
		want      string
	}{
		{0, false, 1, "couchnpm_mirror_packuments_written_total 1"},
		{time.Second, false, 1, "couchnpm_mirror_packuments_written_total 1"},
		{mirrorStatusTTL - 2*time.Second, false, 1, "couchnpm_mirror_packuments_written_total 1"},
		{2 * time.Second, false, 2, "couchnpm_mirror_packuments_written_total 2"},
		{mirrorStatusTTL, true, 3, "couchnpm_mirror_status_up 0"},
		{time.Second, false, 3, "couchnpm_mirror_status_up 0"},
		{mirrorStatusTTL, false, 4, "couchnpm_mirror_packuments_written_total 4"},
	} {
		now = now.Add(step.advance)
		fail = step.fail
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		if calls != step.wantCalls || !strings.Contains(rec.Body.String(), step.want) {
			t.Errorf("scrape %d: %d status reads (want %d), has %q: %v", i+1, calls, step.wantCalls, step.want, strings.Contains(rec.Body.String(), step.want))
		}
	}
}

// /-/metrics is public: peers are labelled by their number, never by host.
func TestPeersByNumber(t *testing.T) {
	m := New()
	pending := int64(4)
	m.WatchPeers(func() ([]replication.PeerStatus, time.Time) {
		return []replication.PeerStatus{
			{Peer: "https://couch.site-b.internal:6984", DB: "npm", State: "running", ChangesPending: &pending, DocsWritten: 9},
			{Peer: "https://couch.site-b.internal:6984", DB: "_users", State: "running"},
			{Peer: "https://couch.site-c.internal", DB: "npm", State: "crashing", LastError: "connection refused: https://couch.site-c.internal/npm"},
		}, time.Now()
	})
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`couchnpm_peer_replication_running{db="npm",peer="peer 1"} 1`,
		`couchnpm_peer_replication_running{db="_users",peer="peer 1"} 1`,
		`couchnpm_peer_replication_running{db="npm",peer="peer 2"} 0`,
		`couchnpm_peer_replication_changes_pending{db="npm",peer="peer 1"} 4`,
		`couchnpm_peer_replication_docs_written_total{db="npm",peer="peer 1"} 9`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("missing %q", want)
		}
	}
	if strings.Contains(body, "internal") {
		t.Errorf("a peer's host name reached /-/metrics:\n%s", body)
	}
}

// ObserveRequest's looked-up series count like the vectors themselves, and
// only standard methods are kept in its map.
func TestObserveRequestSeries(t *testing.T) {
	m := New()
	for range 3 {
		m.ObserveRequest("/{pkg}", "GET", 200, time.Millisecond)
	}
	m.ObserveRequest("/{pkg}", "GET", 304, time.Millisecond)
	m.ObserveRequest("unmatched", "BREW", 405, time.Millisecond)
	m.ObserveRequest("unmatched", "BREW", 405, time.Millisecond)
	m.ObserveRequest("unmatched", "X-ANY-1", 405, time.Millisecond)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{
		`couchnpm_http_requests_total{method="GET",route="/{pkg}",status="200"} 3`,
		`couchnpm_http_requests_total{method="GET",route="/{pkg}",status="304"} 1`,
		`couchnpm_http_requests_total{method="OTHER",route="unmatched",status="405"} 3`,
		`couchnpm_http_request_duration_seconds_count{method="GET",route="/{pkg}"} 4`,
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("missing %q", want)
		}
	}
	if strings.Contains(rec.Body.String(), "BREW") || strings.Contains(rec.Body.String(), "X-ANY-1") {
		t.Error("a made-up method became a label: clients could grow the metrics without bound")
	}
	if len(m.series) != 3 {
		t.Errorf("%d series kept, want 3 (made-up methods share OTHER's)", len(m.series))
	}
}
