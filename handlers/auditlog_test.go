package handlers

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/auditlog"
	"github.com/couchnpm/couchnpm/registry"
)

type memRecorder struct {
	mu     sync.Mutex
	events []auditlog.Event
}

func (m *memRecorder) Record(_ context.Context, ev auditlog.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events = append(m.events, ev)
}

func TestAuditLogRecordsWritesAndSecurityEvents(t *testing.T) {
	const secret = "secret"
	tests := []struct {
		name    string
		method  string
		path    string
		body    string
		headers []string
		want    *auditlog.Event // nil: nothing recorded
	}{
		{name: "publish", method: "PUT", path: "/foo", body: smallPublish, headers: []string{"Authorization: Bearer cnpm_alice"},
			want: &auditlog.Event{Actor: "alice", Action: "publish", Package: "foo", Target: "1.1.0", Outcome: auditlog.OutcomeOK, Status: 201}},
		{name: "publish refused for an anonymous caller", method: "PUT", path: "/foo", body: smallPublish,
			want: &auditlog.Event{Action: "publish", Package: "foo", Outcome: auditlog.OutcomeRefused, Status: 401, Reason: "you must be logged in (npm login) to do this"}},
		{name: "a star is not recorded", method: "PUT", path: "/foo", body: `{"_id":"foo","_rev":"3-abc","users":{"alice":true}}`,
			headers: []string{"Authorization: Bearer cnpm_alice"}},
		{name: "deprecate sends the whole document back, maintainers included", method: "PUT", path: "/foo",
			body:    `{"_id":"foo","name":"foo","maintainers":[{"name":"alice"}],"versions":{"1.0.0":{"name":"foo","version":"1.0.0","deprecated":"old"},"2.0.0-beta.1":{"name":"foo","version":"2.0.0-beta.1"}}}`,
			headers: []string{"Authorization: Bearer cnpm_alice", "Npm-Command: deprecate"},
			// The command surface's registry is empty: refused, and recorded so.
			want: &auditlog.Event{Actor: "alice", Action: "deprecate", Package: "foo", Target: "deprecated: 1.0.0", Outcome: auditlog.OutcomeRefused, Status: 404, Reason: "no package foo"}},
		{name: "an owner change that calls itself a star is recorded", method: "PUT", path: "/foo",
			body:    `{"_id":"foo","_rev":"3-abc","users":{"alice":true},"maintainers":[{"name":"mallory"}]}`,
			headers: []string{"Authorization: Bearer cnpm_alice", "Npm-Command: star"},
			want:    &auditlog.Event{Actor: "alice", Action: "owner.set", Package: "foo", Target: "mallory", Outcome: auditlog.OutcomeRefused, Status: 404, Reason: `cannot make "mallory" a maintainer: no such user`}},
		{name: "a read is not recorded", method: "GET", path: "/foo", headers: []string{"Authorization: Bearer cnpm_alice"}},
		{name: "a failed login names the user tried, never the password", method: "PUT", path: "/-/user/org.couchdb.user:alice",
			body: `{"name":"alice","password":"wrong-` + secret + `"}`,
			want: &auditlog.Event{Actor: "alice", Action: "login", Outcome: auditlog.OutcomeRefused, Status: 401, Reason: "name or password is incorrect"}},
		{name: "a login of a new name is an adduser", method: "PUT", path: "/-/user/org.couchdb.user:bob",
			body: `{"name":"bob","password":"` + secret + `"}`,
			want: &auditlog.Event{Actor: "bob", Action: "adduser", Outcome: auditlog.OutcomeOK, Status: 201}},
		{name: "wrong Basic credentials on a read are an auth failure", method: "GET", path: "/foo",
			headers: []string{"Authorization: " + basicAuth("alice", "wrong-"+secret)},
			want:    &auditlog.Event{Actor: "alice", Action: "auth", Target: "password", Outcome: auditlog.OutcomeRefused, Status: 401, Reason: "name or password is incorrect"}},
		{name: "a revoked token is named by its key prefix", method: "GET", path: "/foo",
			headers: []string{"Authorization: Bearer cnpm_revoked" + secret},
			want: &auditlog.Event{Action: "auth", Target: "token " + auditlog.TokenRef(registry.TokenKey("cnpm_revoked"+secret)),
				Outcome: auditlog.OutcomeRefused, Status: 401, Reason: "invalid or revoked token"}},
		{name: "refused credentials on an unknown path", method: "GET", path: "/no/such/route",
			headers: []string{"Authorization: Bearer cnpm_gone" + secret},
			want: &auditlog.Event{Action: "auth", Target: "token " + auditlog.TokenRef(registry.TokenKey("cnpm_gone"+secret)),
				Outcome: auditlog.OutcomeRefused, Status: 401, Reason: "invalid or revoked token"}},
		{name: "logout names the token by its key prefix", method: "DELETE", path: "/-/user/token/cnpm_alice",
			want: &auditlog.Event{Action: "logout", Target: "token " + auditlog.TokenRef(registry.TokenKey("cnpm_alice")), Outcome: auditlog.OutcomeOK, Status: 200}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, zerolog.Disabled)
			rec := &memRecorder{}
			e.h = mustNew(t, Config{PublicURL: publicURL, MaxPublishBytes: 4096, AuditLog: rec}, fakeServices(t, e.reg, e.accounts, e.pinger), zerolog.Nop())
			req := httpRequestWithBody(t, tc.method, tc.path, tc.body)
			for _, h := range tc.headers {
				k, v, _ := strings.Cut(h, ": ")
				req.Header.Set(k, v)
			}
			resp := serve(e, req)
			if tc.want == nil {
				if len(rec.events) != 0 {
					t.Fatalf("recorded %+v", rec.events)
				}
				return
			}
			if len(rec.events) != 1 {
				t.Fatalf("recorded %d events, want 1 (answer %d %s): %+v", len(rec.events), resp.Code, resp.Body, rec.events)
			}
			got := rec.events[0]
			if got.Address != "192.0.2.1" || got.RequestID == "" || got.RequestID != resp.Header().Get("X-Request-Id") {
				t.Errorf("address %q, request id %q", got.Address, got.RequestID)
			}
			got.Address, got.RequestID = "", ""
			if got != *tc.want {
				t.Errorf("recorded\n %+v\nwant\n %+v", got, *tc.want)
			}
			for _, ev := range rec.events {
				if strings.Contains(ev.Reason+ev.Target+ev.Actor, secret) {
					t.Errorf("a secret reached the audit log: %+v", ev)
				}
			}
		})
	}
}

func httpRequestWithBody(t *testing.T, method, target, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, "http://registry.test"+target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.RemoteAddr, req.RequestURI = "192.0.2.1:1234", target
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

// The web login page: showing it is not recorded, each posted form is a
// login.web entry naming the user tried, with the page's reason.
func TestAuditLogWebLogin(t *testing.T) {
	e, wl := newWebLoginTestEnv(t)
	rec := &memRecorder{}
	e.h = mustNew(t, Config{PublicURL: publicURL, MaxPublishBytes: 4096, WebLogin: wl, AuditLog: rec}, fakeServices(t, e.reg, e.accounts, e.pinger), zerolog.Nop())
	login, _ := startWebLogin(t, e, `{}`)
	if r := e.do(t, "GET", login, nil); r.Code != http.StatusOK {
		t.Fatalf("GET the login page: %d", r.Code)
	}
	if st, _, _ := postForm(t, e, login, url.Values{"name": {"alice"}, "password": {"wrong-secret"}}); st != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", st)
	}
	if st, _, _ := postForm(t, e, login, url.Values{"name": {"alice"}, "password": {"secret"}}); st != http.StatusOK {
		t.Fatalf("right password: %d", st)
	}
	want := []auditlog.Event{
		{Actor: "alice", Action: "login.web", Outcome: auditlog.OutcomeRefused, Status: 401, Reason: "name or password is incorrect"},
		{Actor: "alice", Action: "login.web", Outcome: auditlog.OutcomeOK, Status: 200},
	}
	if len(rec.events) != len(want) {
		t.Fatalf("recorded %+v, want %+v", rec.events, want)
	}
	for i, ev := range rec.events {
		ev.Address, ev.RequestID = "", ""
		if ev != want[i] {
			t.Errorf("entry %d: %+v, want %+v", i, ev, want[i])
		}
		if strings.Contains(ev.Reason+ev.Target, "secret") {
			t.Errorf("a password reached the audit log: %+v", ev)
		}
	}
}
