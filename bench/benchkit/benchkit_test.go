package benchkit

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/couchnpm/couchnpm/bench/upstream"
)

// fakeBulk is a _bulk_docs endpoint that records what it was sent and fails
// the request numbered failAt (1-based; 0: none).
type fakeBulk struct {
	mu       sync.Mutex
	ids      map[string]bool
	requests int
	withRev  int
	badAuth  int
	failAt   int
}

func (f *fakeBulk) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	if u, p, ok := r.BasicAuth(); !ok || u != "admin" || p != "pw" {
		f.badAuth++
	}
	if r.Method != http.MethodPost || r.URL.Path != "/db/_bulk_docs" {
		http.Error(w, `{"error":"not_found"}`, http.StatusNotFound)
		return
	}
	if f.requests == f.failAt {
		http.Error(w, `{"error":"unknown_error"}`, http.StatusInternalServerError)
		return
	}
	var body struct {
		Docs []map[string]json.RawMessage `json:"docs"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, `{"error":"bad_request"}`, http.StatusBadRequest)
		return
	}
	for _, d := range body.Docs {
		var id string
		_ = json.Unmarshal(d["_id"], &id)
		f.ids[id] = true
		if _, ok := d["_rev"]; ok {
			f.withRev++
		}
	}
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write([]byte(`[]`))
}

func TestBulkLoad(t *testing.T) {
	up := upstream.New(upstream.Config{Packages: 250, Big: -1, Seed: 3})
	up.Bind("http://127.0.0.1:9") // renders the packuments
	tests := []struct {
		name     string
		parallel int
		failAt   int
		wantErr  bool
	}{
		{"every packument, in batches, without _rev", 4, 0, false},
		// One worker: after its failure nobody else takes the third batch.
		{"a failed request is an error, not a hang", 1, 2, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeBulk{ids: map[string]bool{}, failAt: tc.failAt}
			srv := httptest.NewServer(f)
			defer srv.Close()
			done := make(chan error, 1)
			go func() {
				_, err := BulkLoad(Store{URL: srv.URL, User: "admin", Password: "pw"}, "db", up, 100, tc.parallel)
				done <- err
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("BulkLoad did not return")
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.badAuth > 0 {
				t.Errorf("%d requests without the admin credentials", f.badAuth)
			}
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), "500") {
					t.Fatalf("err = %v, want the failed request's 500", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.requests != 3 || len(f.ids) != 250 || f.withRev != 0 {
				t.Fatalf("%d requests, %d distinct ids, %d with _rev; want 3, 250, 0", f.requests, len(f.ids), f.withRev)
			}
			for _, n := range up.Names() {
				if !f.ids[n] {
					t.Fatalf("%s was not sent", n)
				}
			}
		})
	}
}
