package web

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/couchnpm/couchnpm/registry"
	"github.com/couchnpm/couchnpm/replication"
)

type fakeMirror struct{ calls int }

func (f *fakeMirror) Status(context.Context) (*replication.Status, error) {
	f.calls++
	lag, secs := int64(250), 12.0
	return &replication.Status{Mode: replication.ModeFollow, State: "catching-up", Upstream: "https://upstream.internal.example/",
		Checkpoint: "750-g1AAAA", UpstreamSeq: "1000-g1BBBB", LagChanges: &lag, LagSeconds: &secs, WrittenPerSecond: 42.5,
		PackumentsWritten: 700, Failures: 2, LastError: "GET https://upstream.internal.example/left-pad: 502",
		LastFailures: []replication.Failure{{Package: "left-pad", Error: "GET https://upstream.internal.example/left-pad: 502", Time: time.Unix(1700000000, 0)}}}, nil
}

type fakeCounts struct{ calls int }

func (f *fakeCounts) Counts(context.Context) (SiteCounts, error) {
	f.calls++
	return SiteCounts{Private: 12, Mirrored: 3400, CachedTarballs: 56, CacheBytes: 3 << 20}, nil
}

type fakeConflicts struct{ calls *int }

func (f fakeConflicts) Status(_ context.Context, viewer registry.Identity) (any, error) {
	*f.calls++
	st := map[string]any{"resolved": 4, "dropped_versions": 1, "unconfirmed_writes": 0, "open_count": 2}
	if viewer.Name == "root" {
		st["open"] = []string{"@corp/secret-thing", "other"}
	}
	return st, nil
}

type fakePeers []replication.PeerStatus

func (f fakePeers) Status() ([]replication.PeerStatus, time.Time) {
	return append([]replication.PeerStatus(nil), f...), time.Unix(1700000000, 0)
}

var conflictReadings int

func statusSite(t *testing.T) (*Site, *fakeMirror, *fakeCounts) {
	t.Helper()
	m, c := &fakeMirror{}, &fakeCounts{}
	conflictReadings = 0
	s := New(Config{PublicURL: "https://npm.example.com", Mirror: m, Counts: c, Conflicts: fakeConflicts{&conflictReadings},
		Peers:   fakePeers{{Peer: "https://couch.site-b.internal", DB: "npm", State: "crashing", LastError: "refused: https://couch.site-b.internal/npm"}},
		IsAdmin: func(n string) bool { return n == "root" }}, &fakeRegistry{})
	return s, m, c
}

func TestStatusPage(t *testing.T) {
	s, mirror, counts := statusSite(t)
	secrets := []string{"upstream.internal.example", "site-b.internal", "@corp/secret-thing"}
	for _, tc := range []struct {
		name  string
		user  registry.Identity
		admin bool
	}{
		{"anonymous", registry.Identity{}, false},
		{"a user", alice, false},
		{"an admin", registry.Identity{Name: "root"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, target := range []string{"/-/web/status", "/-/web/status.json"} {
				rec := get(t, func(w http.ResponseWriter, r *http.Request) { s.ServeWeb(w, r, tc.user) }, target)
				body := rec.Body.String()
				if rec.Code != 200 {
					t.Fatalf("%s: status %d", target, rec.Code)
				}
				for _, secret := range secrets[:2] {
					if strings.Contains(body, secret) != tc.admin {
						t.Errorf("%s shows %q: %v, want %v", target, secret, !tc.admin, tc.admin)
					}
				}
				if tc.name == "anonymous" && strings.Contains(body, secrets[2]) {
					t.Errorf("%s names a conflicting package to an anonymous visitor", target)
				}
				for _, want := range []string{"catching-up", "250 changes", "42.5 packuments/s", "75.0 %", "left-pad", "3.0 MB", "crashing"} {
					if !strings.Contains(body, want) {
						t.Errorf("%s lacks %q", target, want)
					}
				}
			}
		})
	}
	rec := get(t, func(w http.ResponseWriter, r *http.Request) { s.ServeWeb(w, r, alice) }, "/-/web/status")
	body := rec.Body.String()
	for _, want := range []string{`<progress id="mirror-progress" data-v="mirror.progress" data-max="mirror.progress_max" value="750" max="1000">`,
		`<script src="/-/web/static/status.js" defer></script>`, `data-k="mirror.lag"`, `data-list="peers"`} {
		if !strings.Contains(body, want) {
			t.Errorf("status page lacks %s", want)
		}
	}
	if strings.Count(body, "<script") != 2 || strings.Contains(body, "<script>") {
		t.Errorf("inline script on the status page")
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self';") || !strings.Contains(csp, "connect-src 'self'") {
		t.Errorf("CSP %q", csp)
	}
	// The JSON the script reads has every field the page names.
	rec = get(t, func(w http.ResponseWriter, r *http.Request) { s.ServeWeb(w, r, alice) }, "/-/web/status.json")
	var data map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &data); err != nil || rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("status.json: %v, Cache-Control %q", err, rec.Header().Get("Cache-Control"))
	}
	for _, k := range fieldsNamed(body) {
		var v any = data
		for _, part := range strings.Split(k, ".") {
			m, _ := v.(map[string]any)
			var ok bool
			if v, ok = m[part]; !ok {
				t.Errorf("the page names %s, the JSON has no such field", k)
				break
			}
		}
	}
	// The readings are cached: many views, one reading.
	if mirror.calls != 1 || counts.calls != 1 || conflictReadings != 2 {
		t.Errorf("%d mirror readings, %d count readings, %d conflict readings (want 1, 1, 2: public and admin) for many page views",
			mirror.calls, counts.calls, conflictReadings)
	}
}

// fieldsNamed lists the data-k, data-v, data-max and data-list fields of a page.
func fieldsNamed(body string) []string {
	var out []string
	for _, attr := range []string{`data-k="`, `data-v="`, `data-max="`, `data-list="`} {
		rest := body
		for {
			i := strings.Index(rest, attr)
			if i < 0 {
				break
			}
			rest = rest[i+len(attr):]
			out = append(out, rest[:strings.IndexByte(rest, '"')])
		}
	}
	return out
}

func TestHomeCountsAndMirrorHealth(t *testing.T) {
	s, _, _ := statusSite(t)
	rec := get(t, func(w http.ResponseWriter, r *http.Request) { s.Home(w, r, registry.Identity{}) }, "/")
	body := rec.Body.String()
	for _, want := range []string{"Private packages</dt><dd>12", "Mirrored packages</dt><dd>3400", "56 (3.0 MB)", "catching-up", "75.0 %", `href="/-/web/status"`} {
		if !strings.Contains(body, want) {
			t.Errorf("home lacks %q", want)
		}
	}
	if strings.Contains(body, "upstream.internal.example") {
		t.Errorf("home shows the mirror's error text to an anonymous visitor")
	}
}
