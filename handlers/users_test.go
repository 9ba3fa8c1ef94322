package handlers

import (
	"net/http"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/registry"
)

func TestLogin(t *testing.T) {
	tests := []struct {
		name    string
		path    string
		body    string
		headers []string
		signup  bool
		status  int
	}{
		{"existing user", "/-/user/org.couchdb.user:alice", `{"_id":"org.couchdb.user:alice","name":"alice","password":"secret","type":"user","roles":[],"date":"2024-01-01T00:00:00Z"}`, nil, true, 201},
		{"adduser", "/-/user/org.couchdb.user:bob", `{"name":"bob","password":"pw","email":"bob@example.com"}`, nil, true, 201},
		{"name only in the URL", "/-/user/org.couchdb.user:alice", `{"password":"secret"}`, nil, true, 201},
		{"rev retry with basic auth", "/-/user/org.couchdb.user:alice/-rev/1-abc", `{"name":"alice"}`, []string{"Authorization: " + basicAuth("alice", "secret")}, true, 201},
		{"wrong password", "/-/user/org.couchdb.user:alice", `{"name":"alice","password":"nope"}`, nil, true, 401},
		{"sign-up off", "/-/user/org.couchdb.user:bob", `{"name":"bob","password":"pw"}`, nil, false, 403},
		{"name mismatch", "/-/user/org.couchdb.user:alice", `{"name":"mallory","password":"secret"}`, nil, true, 400},
		{"malformed JSON", "/-/user/org.couchdb.user:alice", `{"name":`, nil, true, 400},
		{"no password", "/-/user/org.couchdb.user:alice", `{"name":"alice"}`, nil, true, 400},
		{"basic auth for another user", "/-/user/org.couchdb.user:alice/-rev/1-abc", `{"name":"alice"}`, []string{"Authorization: " + basicAuth("bob", "secret")}, true, 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, zerolog.InfoLevel)
			e.accounts.signup = tc.signup
			if tc.name == "basic auth for another user" {
				e.accounts.passwords["bob"] = "secret"
			}
			rec := e.do(t, "PUT", tc.path, strings.NewReader(tc.body), append([]string{"Content-Type: application/json"}, tc.headers...)...)
			wantStatus(t, rec, tc.status)
			body := decodeJSON(t, rec)
			if tc.status != http.StatusCreated {
				if _, ok := body["token"]; ok {
					t.Errorf("a token in a failed login: %v", body)
				}
				if tc.status == http.StatusUnauthorized && rec.Header().Get("WWW-Authenticate") == "" {
					t.Errorf("401 without WWW-Authenticate")
				}
				return
			}
			tok, _ := body["token"].(string)
			if tok == "" || body["ok"] != true {
				t.Fatalf("body = %v", body)
			}
			user := strings.TrimPrefix(strings.SplitN(strings.TrimPrefix(tc.path, "/-/user/"), "/", 2)[0], "org.couchdb.user:")
			if body["id"] != "org.couchdb.user:"+user {
				t.Errorf("id = %v", body["id"])
			}
			if rec.Header().Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type = %q", rec.Header().Get("Content-Type"))
			}
			// The new token works.
			who := e.do(t, "GET", "/-/whoami", nil, "Authorization: Bearer "+tok)
			wantStatus(t, who, http.StatusOK)
			if got := decodeJSON(t, who)["username"]; got != user {
				t.Errorf("whoami = %v, want %s", got, user)
			}
		})
	}
}

func TestLoginPasswordNeverLogged(t *testing.T) {
	e := newEnv(t, zerolog.DebugLevel)
	e.do(t, "PUT", "/-/user/org.couchdb.user:alice", strings.NewReader(`{"name":"alice","password":"Pa55-not-logged"}`))
	e.do(t, "PUT", "/-/user/org.couchdb.user:alice", strings.NewReader(`{"name":"alice","password":"secret"}`))
	if strings.Contains(e.logs.String(), "Pa55-not-logged") || strings.Contains(e.logs.String(), `"secret"`) {
		t.Errorf("a password reached the log:\n%s", e.logs.String())
	}
	if strings.Contains(e.logs.String(), "cnpm_issued") {
		t.Errorf("an issued token reached the log:\n%s", e.logs.String())
	}
}

func TestWhoami(t *testing.T) {
	tests := []struct {
		name, auth string
		status     int
		user       string
	}{
		{"token", "Bearer cnpm_alice", 200, "alice"},
		{"read-only token", "Bearer cnpm_readonly", 200, "alice"},
		{"basic", basicAuth("alice", "secret"), 200, "alice"},
		{"anonymous", "", 401, ""},
		{"revoked token", "Bearer cnpm_revoked", 401, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, zerolog.InfoLevel)
			var headers []string
			if tc.auth != "" {
				headers = append(headers, "Authorization: "+tc.auth)
			}
			rec := e.do(t, "GET", "/-/whoami", nil, headers...)
			wantStatus(t, rec, tc.status)
			if tc.status == 200 {
				if got := decodeJSON(t, rec)["username"]; got != tc.user {
					t.Errorf("username = %v", got)
				}
			} else if rec.Header().Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
		})
	}
}

func TestGetUser(t *testing.T) {
	e := newEnv(t, zerolog.InfoLevel)
	wantStatus(t, e.do(t, "GET", "/-/user/org.couchdb.user:alice", nil), http.StatusUnauthorized)
	rec := e.do(t, "GET", "/-/user/org.couchdb.user:alice", nil, "Authorization: Bearer cnpm_alice")
	wantStatus(t, rec, http.StatusOK)
	body := decodeJSON(t, rec)
	if body["name"] != "alice" || body["_id"] != "org.couchdb.user:alice" || body["type"] != "user" {
		t.Errorf("body = %v", body)
	}
	if _, ok := body["password"]; ok {
		t.Errorf("password field in a user document")
	}
	wantStatus(t, e.do(t, "GET", "/-/user/org.couchdb.user:nobody", nil, "Authorization: Bearer cnpm_alice"), http.StatusNotFound)
}

func TestWebLoginDeclined(t *testing.T) {
	e := newEnv(t, zerolog.InfoLevel)
	rec := e.do(t, "POST", "/-/v1/login", strings.NewReader(`{"hostname":"laptop"}`), "Content-Type: application/json")
	if rec.Code < 400 || rec.Code >= 500 {
		t.Fatalf("status = %d, want a 4xx so that npm falls back to the couch login", rec.Code)
	}
	if _, ok := decodeJSON(t, rec)["loginUrl"]; ok {
		t.Errorf("web login offered: %s", rec.Body.String())
	}
}

func TestLogoutErrors(t *testing.T) {
	e := newEnv(t, zerolog.InfoLevel)
	e.accounts.err = registry.E(registry.KindUnavailable, "tokens db down")
	rec := e.do(t, "DELETE", "/-/user/token/cnpm_alice", nil)
	wantStatus(t, rec, http.StatusServiceUnavailable)
}
