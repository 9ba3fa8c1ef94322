package couch

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/registry"
)

// fakeCouch answers as CouchDB 3 does: /_up and / for anyone, /_session
// with the user the Basic credentials name, and 401 with CouchDB's body
// whenever the credentials are wrong.
func fakeCouch(t *testing.T, user, password string, hits *atomic.Int64) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Server", "CouchDB/3.5.0 (Erlang OTP/26)")
		if u, p, ok := r.BasicAuth(); ok && (u != user || p != password) {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":"unauthorized","reason":"Name or password is incorrect."}`)
			return
		}
		switch r.URL.Path {
		case "/_up":
			io.WriteString(w, `{"status":"ok","seeds":{}}`)
		case "/":
			io.WriteString(w, `{"couchdb":"Welcome","version":"3.5.0"}`)
		case "/_session":
			name := "null"
			if u, _, ok := r.BasicAuth(); ok {
				name = `"` + u + `"`
			}
			io.WriteString(w, `{"ok":true,"userCtx":{"name":`+name+`,"roles":["_admin"]},"info":{"authentication_handlers":["cookie","default"]}}`)
		default:
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error":"not_found","reason":"missing"}`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func openTest(t *testing.T, url, user, password string) *Client {
	t.Helper()
	c, err := Open(Config{URL: url, User: user, Password: password, Prefix: "t", Timeout: 2 * time.Second}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestWaitReady(t *testing.T) {
	closed := func() string { return closedPort(t) }
	tests := []struct {
		name           string
		url            func(srv *httptest.Server) string
		user, password string
		maxWait        time.Duration
		wantErr        []string // substrings; none: success
		maxTime        time.Duration
		maxHits        int64
	}{
		{name: "right credentials", user: "svc", password: "right", maxWait: 5 * time.Second, maxTime: time.Second},
		{name: "wrong password fails at once, naming the user and the variables", user: "svc", password: "wrong",
			maxWait: 30 * time.Second, maxTime: 2 * time.Second, maxHits: 2,
			wantErr: []string{`refused the credentials of user "svc" (401)`, "check COUCHDB_USER/COUCHDB_PASSWORD"}},
		{name: "unknown user fails at once", user: "nobody", password: "right",
			maxWait: 30 * time.Second, maxTime: 2 * time.Second, maxHits: 2,
			wantErr: []string{`user "nobody" (401)`}},
		{name: "connection refused says so, not a status", user: "svc", password: "right",
			url:     func(*httptest.Server) string { return closed() },
			maxWait: 300 * time.Millisecond, maxTime: 3 * time.Second,
			wantErr: []string{"did not answer within 300ms", "cannot reach CouchDB at http://127.0.0.1:", "connection refused"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var hits atomic.Int64
			srv := fakeCouch(t, "svc", "right", &hits)
			u := srv.URL
			if tc.url != nil {
				u = tc.url(srv)
			}
			c := openTest(t, u, tc.user, tc.password)
			start := time.Now()
			err := c.WaitReady(context.Background(), tc.maxWait)
			took := time.Since(start)
			if took > tc.maxTime {
				t.Errorf("WaitReady took %s, want under %s", took, tc.maxTime)
			}
			if tc.maxHits > 0 && hits.Load() > tc.maxHits {
				t.Errorf("%d requests to CouchDB, want at most %d (no retries)", hits.Load(), tc.maxHits)
			}
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("WaitReady: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("WaitReady succeeded, want an error with %q", tc.wantErr)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "status 502") || strings.Contains(err.Error(), "right") || strings.Contains(err.Error(), "wrong") {
				t.Errorf("error %q names a made-up status or a password", err)
			}
		})
	}
}

// TestTranslateNetwork: errors without an answer say what happened, never a
// status nobody sent.
func TestTranslateNetwork(t *testing.T) {
	tests := []struct {
		name, url string
		want      string
	}{
		{"unknown host", "http://couchnpm-test.invalid:5984", "cannot reach CouchDB at http://couchnpm-test.invalid:5984: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := openTest(t, tc.url, "", "")
			err := c.Ping(context.Background())
			if err == nil {
				t.Fatal("Ping succeeded")
			}
			if !registry.IsKind(err, registry.KindUnavailable) {
				t.Errorf("kind %v, want unavailable", registry.KindOf(err))
			}
			if r := registry.DetailOf(err); !strings.Contains(r, tc.want) || strings.Contains(r, "status") {
				t.Errorf("detail %q, want it to contain %q and no status", r, tc.want)
			}
			if r := registry.ReasonOf(err); strings.Contains(r, "couchnpm-test.invalid") || !strings.Contains(r, "database is unavailable") {
				t.Errorf("client-facing reason %q, want no host and a plain unavailable message", r)
			}
		})
	}
}

// TestTranslateStatus: statuses CouchDB did send are named as such.
func TestTranslateStatus(t *testing.T) {
	tests := []struct {
		status   int
		body     string
		wantKind registry.Kind
		want     string
	}{
		{500, `{"error":"unknown_error","reason":"function_clause"}`, registry.KindUnavailable, "CouchDB answered 500 (function_clause)"},
		{401, `{"error":"unauthorized","reason":"Name or password is incorrect."}`, registry.KindUnavailable, "check COUCHDB_USER/COUCHDB_PASSWORD"},
		{503, `{"error":"service_unavailable","reason":"nodedown"}`, registry.KindUnavailable, "CouchDB answered 503 (nodedown)"},
	}
	for _, tc := range tests {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			c := openTest(t, srv.URL, "", "")
			_, err := c.k.Version(context.Background())
			err = translate(err, "read")
			if registry.KindOf(err) != tc.wantKind || !strings.Contains(registry.DetailOf(err), tc.want) {
				t.Errorf("translate: kind %v detail %q, want kind %v and %q", registry.KindOf(err), registry.DetailOf(err), tc.wantKind, tc.want)
			}
		})
	}
}

// TestWaitReadyLockedOut: CouchDB 3.4+ locks an account after repeated
// failures and answers 403 with its reason; the message carries it.
func TestWaitReadyLockedOut(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `{"error":"forbidden","reason":"Account is temporarily locked due to multiple authentication failures"}`)
	}))
	defer srv.Close()
	c := openTest(t, srv.URL, "admin", "pw")
	start := time.Now()
	err := c.WaitReady(context.Background(), 30*time.Second)
	if err == nil || !strings.Contains(err.Error(), `user "admin" (403: Account is temporarily locked due to multiple authentication failures)`) {
		t.Errorf("WaitReady = %v, want the lockout named", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("WaitReady retried a refusal for %s", time.Since(start))
	}
}

// A password check names the client (X-Forwarded-For), so that CouchDB's
// lockout stops the guessing address only; without a valid address it
// names none.
func TestCheckPasswordSendsClientAddress(t *testing.T) {
	for _, tc := range []struct {
		name string
		from netip.Addr
		want string
	}{
		{"IPv4", netip.MustParseAddr("192.0.2.7"), "192.0.2.7"},
		{"IPv4 mapped in IPv6", netip.MustParseAddr("::ffff:192.0.2.8"), "192.0.2.8"},
		{"none", netip.Addr{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hits atomic.Int64
			up := fakeCouch(t, "admin", "pw", &hits)
			got := make(chan string, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodPost && r.URL.Path == "/_session" {
					got <- r.Header.Get("X-Forwarded-For")
					w.Header().Set("Content-Type", "application/json")
					io.WriteString(w, `{"ok":true,"name":"alice","roles":[]}`)
					return
				}
				up.Config.Handler.ServeHTTP(w, r)
			}))
			t.Cleanup(srv.Close)
			c := openTest(t, srv.URL, "admin", "pw")
			if err := c.Users().CheckPassword(t.Context(), "alice", "secret", tc.from); err != nil {
				t.Fatal(err)
			}
			if h := <-got; h != tc.want {
				t.Errorf("X-Forwarded-For = %q, want %q", h, tc.want)
			}
		})
	}
}
