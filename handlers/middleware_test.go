package handlers

import (
	"net/http"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func TestRequestLogLine(t *testing.T) {
	tests := []struct {
		name, method, path string
		headers            []string
		status             int
		logPath            string
	}{
		{"packument", "GET", "/foo", nil, 200, "/foo"},
		{"scoped encoded", "GET", "/@s%2fp", nil, 200, "/@s%2fp"},
		{"tarball", "GET", "/foo/-/foo-1.0.0.tgz", nil, 200, "/foo/-/foo-1.0.0.tgz"},
		{"not found", "GET", "/nope", nil, 404, "/nope"},
		{"no route", "GET", "/a/b/c", nil, 404, "/a/b/c"},
		{"method not allowed", "DELETE", "/foo/1.0.0", nil, 405, "/foo/1.0.0"},
		{"unauthorized", "GET", "/-/whoami", nil, 401, "/-/whoami"},
		{"whoami", "GET", "/-/whoami", []string{"Authorization: Bearer cnpm_alice"}, 200, "/-/whoami"},
		{"not modified", "GET", "/foo", []string{`If-None-Match: W/"3-abc-full"`}, 304, "/foo"},
		{"head", "HEAD", "/foo/-/foo-1.0.0.tgz", nil, 200, "/foo/-/foo-1.0.0.tgz"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, zerolog.DebugLevel)
			rec := e.do(t, tc.method, tc.path, nil, tc.headers...)
			wantStatus(t, rec, tc.status)
			lines := e.logs.requestLines(t)
			if len(lines) != 1 {
				t.Fatalf("%d request lines, want exactly 1:\n%s", len(lines), e.logs.String())
			}
			l := lines[0]
			if l["method"] != tc.method || l["path"] != tc.logPath || l["status"] != float64(tc.status) {
				t.Errorf("method/path/status = %v %v %v", l["method"], l["path"], l["status"])
			}
			if l["bytes"] != float64(rec.Body.Len()) {
				t.Errorf("bytes = %v, want %d", l["bytes"], rec.Body.Len())
			}
			if d, ok := l["duration_ms"].(float64); !ok || d < 0 {
				t.Errorf("duration_ms = %v", l["duration_ms"])
			}
			id, _ := l["req_id"].(string)
			if id == "" || id != rec.Header().Get("X-Request-Id") {
				t.Errorf("req_id = %q, X-Request-Id = %q", id, rec.Header().Get("X-Request-Id"))
			}
			// Every line of the request carries its id.
			for _, other := range e.logs.lines(t) {
				if other["req_id"] != id {
					t.Errorf("log line without the request id: %v", other)
				}
			}
		})
	}
}

func TestRequestIDs(t *testing.T) {
	tests := []struct {
		name, sent string
		kept       bool
	}{
		{"valid id kept", "abc-123_X.y", true},
		{"none", "", false},
		{"with spaces", "abc def", false},
		{"log injection", "x\",\"status\":200", false},
		{"too long", strings.Repeat("a", 65), false},
	}
	seen := map[string]bool{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, zerolog.InfoLevel)
			var headers []string
			if tc.sent != "" {
				headers = append(headers, "X-Request-Id: "+tc.sent)
			}
			rec := e.do(t, "GET", "/foo", nil, headers...)
			got := rec.Header().Get("X-Request-Id")
			if tc.kept && got != tc.sent {
				t.Errorf("X-Request-Id = %q, want %q", got, tc.sent)
			}
			if !tc.kept && (got == "" || got == tc.sent || !validRequestID(got)) {
				t.Errorf("X-Request-Id = %q: want a fresh id", got)
			}
			if !tc.kept && seen[got] {
				t.Errorf("id %q reused", got)
			}
			seen[got] = true
		})
	}
}

func TestLogoutPathIsRedacted(t *testing.T) {
	const secret = "cnpm_SuperSecretTokenValue123"
	e := newEnv(t, zerolog.DebugLevel)
	e.accounts.tokens[secret] = e.accounts.tokens["cnpm_alice"]
	rec := e.do(t, "DELETE", "/-/user/token/"+secret, nil, "Authorization: Bearer "+secret)
	wantStatus(t, rec, http.StatusOK)
	if body := decodeJSON(t, rec); body["ok"] != true {
		t.Errorf("body = %v", body)
	}
	if len(e.accounts.loggedOut) != 1 || e.accounts.loggedOut[0] != secret {
		t.Errorf("Logout got %v", e.accounts.loggedOut)
	}
	lines := e.logs.requestLines(t)
	if len(lines) != 1 || lines[0]["path"] != "/-/user/token/[redacted]" {
		t.Errorf("request lines = %v", lines)
	}
	if strings.Contains(e.logs.String(), secret) || strings.Contains(e.logs.String(), "SuperSecret") {
		t.Errorf("the token reached the log:\n%s", e.logs.String())
	}
}

func TestLogoutUnknownTokenSucceeds(t *testing.T) {
	e := newEnv(t, zerolog.InfoLevel)
	wantStatus(t, e.do(t, "DELETE", "/-/user/token/cnpm_never_issued", nil), http.StatusOK)
}

func TestRedactPath(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/-/user/token/abc", "/-/user/token/[redacted]"},
		{"/-/user/token/abc/def", "/-/user/token/[redacted]"},
		{"/-/npm/v1/tokens/token/abc", "/-/npm/v1/tokens/token/[redacted]"},
		{"/foo", "/foo"},
		{"/-/whoami", "/-/whoami"},
	}
	for _, tc := range tests {
		if got := redactPath(tc.in); got != tc.want {
			t.Errorf("redactPath(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// A token in a path that does not hit the logout route falls through to
// notFound (a wrong method, or no route yet), whose reason quotes
// r.URL.Path; writeError logs that reason at debug level, so the token
// lands in the log even though the access line redacts it.
func TestTokenPathsNeverLogged(t *testing.T) {
	const secret = "cnpm_LeakyTokenValue456"
	for _, tc := range []struct{ method, path string }{
		{"DELETE", "/-/npm/v1/tokens/token/" + secret},
		{"GET", "/-/npm/v1/tokens/token/" + secret},
		{"GET", "/-/user/token/" + secret},
		{"PUT", "/-/user/token/" + secret},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			e := newEnv(t, zerolog.DebugLevel)
			e.do(t, tc.method, tc.path, nil)
			if strings.Contains(e.logs.String(), secret) {
				t.Errorf("the token reached the log:\n%s", e.logs.String())
			}
		})
	}
}

// authenticate adds the user to the request's logger (zerolog's
// UpdateContext), but frontDoor writes the access line with its own copy
// of the logger, so the line never names the user.
func TestRequestLogNamesUser(t *testing.T) {
	e := newEnv(t, zerolog.InfoLevel)
	wantStatus(t, e.do(t, "GET", "/-/whoami", nil, "Authorization: Bearer cnpm_alice"), http.StatusOK)
	lines := e.logs.requestLines(t)
	if len(lines) != 1 || lines[0]["user"] != "alice" {
		t.Errorf("request line = %v, want user alice", lines)
	}
}

// Auth schemes are case-insensitive (RFC 9110 §11.1); Basic already is
// (net/http), Bearer is not.
func TestBearerSchemeCaseInsensitive(t *testing.T) {
	e := newEnv(t, zerolog.InfoLevel)
	rec := e.do(t, "GET", "/-/whoami", nil, "Authorization: bearer cnpm_alice")
	wantStatus(t, rec, http.StatusOK)
}
