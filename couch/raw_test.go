package couch

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/registry"
)

// couchAnswer is one answer of a fake CouchDB 3: status and body, with
// CouchDB's headers.
func couchAnswer(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Server", "CouchDB/3.5.0 (Erlang OTP/26)")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// answering is a fake CouchDB that answers every request with status and
// body.
func answering(t *testing.T, status int, body string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		couchAnswer(w, status, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// The answers CouchDB 3 gives, as they reach the registry: the same kind
// and message whether kivik or the raw helper made the request.
func TestTranslateCouchAnswers(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		body     string
		wantKind registry.Kind
		want     string
	}{
		{"bad request", 400, `{"error":"bad_request","reason":"Invalid rev format"}`, registry.KindInvalid, "op: Invalid rev format"},
		{"bad request without reason", 400, `{"error":"bad_request"}`, registry.KindInvalid, "op: CouchDB refused the request"},
		{"service credentials refused", 401, `{"error":"unauthorized","reason":"Name or password is incorrect."}`, registry.KindUnavailable, "refused the service's credentials"},
		{"validate_doc_update refusal", 403, `{"error":"forbidden","reason":"time[1.0.0] may not be removed"}`, registry.KindForbidden, "op: time[1.0.0] may not be removed"},
		{"missing", 404, `{"error":"not_found","reason":"missing"}`, registry.KindNotFound, "not_found"},
		{"deleted", 404, `{"error":"not_found","reason":"deleted"}`, registry.KindNotFound, "not_found"},
		{"update conflict", 409, `{"error":"conflict","reason":"Document update conflict."}`, registry.KindConflict, "op: document update conflict"},
		{"precondition failed", 412, `{"error":"file_exists","reason":"The database could not be created, the file already exists."}`, registry.KindConflict, "op: document update conflict"},
		{"too large", 413, `{"error":"document_too_large","reason":"foo"}`, registry.KindTooLarge, "raise CouchDB's max_document_size"},
		{"unsupported media type", 415, `{"error":"bad_content_type","reason":"Content-Type must be application/json"}`, registry.KindUnavailable, "op: CouchDB answered 415 (Content-Type must be application/json)"},
		{"server error", 500, `{"error":"unknown_error","reason":"function_clause"}`, registry.KindUnavailable, "op: CouchDB answered 500 (function_clause)"},
		{"server error without a body", 500, ``, registry.KindUnavailable, "op: CouchDB answered 500 (Internal Server Error)"},
		{"node down", 503, `{"error":"service_unavailable","reason":"nodedown"}`, registry.KindUnavailable, "op: CouchDB answered 503 (nodedown)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := openTest(t, answering(t, tc.status, tc.body).URL, "admin", "pw")
			kerr := c.k.DB("db").Get(context.Background(), "doc").Err()
			viaRaw, rerr := c.do(context.Background(), rawRequest{method: http.MethodGet, path: "/db/doc", op: "op"})
			if viaRaw != nil {
				t.Fatalf("raw: status %d accepted", viaRaw.StatusCode)
			}
			for via, err := range map[string]error{"kivik": translate(kerr, "op"), "raw": rerr} {
				if registry.KindOf(err) != tc.wantKind || !strings.Contains(registry.DetailOf(err), tc.want) {
					t.Errorf("%s: kind %v detail %q, want kind %v and %q", via, registry.KindOf(err), registry.DetailOf(err), tc.wantKind, tc.want)
				}
				// What CouchDB said about itself, and the service's
				// configuration, are the operator's: clients get a plain
				// "unavailable".
				if pub := registry.ReasonOf(err); tc.wantKind == registry.KindUnavailable && pub != "op: the registry's database is unavailable; retry later" {
					t.Errorf("%s: client-facing reason %q, want the plain unavailable message", via, pub)
				}
			}
		})
	}
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// No answer is no status: a request that got none says what happened and
// never "status 500" or any other number nobody sent.
func TestTranslateNoAnswer(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	t.Cleanup(slow.Close)
	hangUp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	t.Cleanup(hangUp.Close)
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err == nil {
			buf.WriteString("this is not HTTP\r\n\r\n")
			buf.Flush()
			conn.Close()
		}
	}))
	t.Cleanup(garbage.Close)
	tests := []struct {
		name, url string
		want      string
	}{
		{"connection refused", closedPort(t), "cannot reach CouchDB at http://127.0.0.1:"},
		{"no answer in time", slow.URL, "op: "},
		{"connection closed", hangUp.URL, "the connection closed without an answer"},
		{"not HTTP", garbage.URL, "cannot reach CouchDB"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Open(Config{URL: tc.url, User: "admin", Password: "pw", Timeout: 200 * time.Millisecond}, zerolog.Nop())
			if err != nil {
				t.Fatal(err)
			}
			kerr := c.k.DB("db").Get(context.Background(), "doc").Err()
			_, rerr := c.do(context.Background(), rawRequest{method: http.MethodGet, path: "/db/doc", op: "op"})
			for via, err := range map[string]error{"kivik": translate(kerr, "op"), "raw": rerr} {
				r := registry.DetailOf(err)
				if !registry.IsKind(err, registry.KindUnavailable) || !strings.Contains(r, tc.want) {
					t.Errorf("%s: kind %v detail %q, want unavailable and %q", via, registry.KindOf(err), r, tc.want)
				}
				// Clients never learn where CouchDB lives.
				if pub := registry.ReasonOf(err); strings.Contains(pub, "127.0.0.1") || strings.Contains(pub, "CouchDB at") {
					t.Errorf("%s: client-facing reason %q names CouchDB's address", via, pub)
				}
				if strings.Contains(r, "answered") || strings.Contains(r, "500") {
					t.Errorf("%s: reason %q names a status nobody sent", via, r)
				}
			}
		})
	}
	t.Run("the caller hung up", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		c := openTest(t, slow.URL, "", "")
		_, err := c.do(ctx, rawRequest{method: http.MethodGet, path: "/db/doc", op: "op"})
		if !registry.IsKind(err, registry.KindUnavailable) || !strings.Contains(registry.ReasonOf(err), "op: the request was cancelled") {
			t.Errorf("kind %v reason %q", registry.KindOf(err), registry.ReasonOf(err))
		}
	})
}

// The raw helper builds every raw request the same way: the service's
// credentials (not for a user's own login), JSON, no compression, the
// path escaped as given, the client's timeout until the body is closed.
func TestRawRequest(t *testing.T) {
	type seen struct {
		method, rawPath, query, auth, accept, encoding, ctype, xff, body string
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{
			method: r.Method, rawPath: r.URL.EscapedPath(), query: r.URL.RawQuery, auth: r.Header.Get("Authorization"),
			accept: r.Header.Get("Accept"), encoding: r.Header.Get("Accept-Encoding"), ctype: r.Header.Get("Content-Type"),
			xff: r.Header.Get("X-Forwarded-For"), body: string(b),
		}
		couchAnswer(w, http.StatusCreated, `{"ok":true}`)
	}))
	t.Cleanup(srv.Close)
	c := openTest(t, srv.URL+"/couch/", "admin", "s3cret")

	resp, err := c.do(context.Background(), rawRequest{
		method: http.MethodPut, path: dbPath("reg", "/@s%2Fp"), query: "new_edits=false", body: []byte(`{"a":1}`),
		header: http.Header{"X-Forwarded-For": {"192.0.2.7"}}, op: "op",
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := resp.Request.Context().Deadline(); !ok {
		t.Error("no timeout on the request")
	}
	resp.Body.Close()
	if resp.Request.Context().Err() == nil {
		t.Error("closing the body did not release the request's context")
	}
	s := <-got
	want := seen{
		method: "PUT", rawPath: "/couch/reg/@s%2Fp", query: "new_edits=false", auth: "Basic YWRtaW46czNjcmV0",
		accept: "application/json", encoding: "identity", ctype: "application/json", xff: "192.0.2.7", body: `{"a":1}`,
	}
	if s != want {
		t.Errorf("request\n got %+v\nwant %+v", s, want)
	}

	// A user's own login carries no service credentials.
	resp, err = c.do(context.Background(), rawRequest{method: http.MethodPost, path: "/_session", body: []byte(`{}`), asUser: true, op: "op"})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if s := <-got; s.auth != "" {
		t.Errorf("asUser request sent Authorization %q", s.auth)
	}

	// A stream has no timeout of its own.
	resp, err = c.do(context.Background(), rawRequest{method: http.MethodGet, path: "/db/_changes", op: "op", stream: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := resp.Request.Context().Deadline(); ok {
		t.Error("a stream got a deadline")
	}
	resp.Body.Close()
	<-got
}

// The caller may take statuses it handles itself (PouchDB Server's
// missing endpoints, a wrong password); the rest stay errors.
func TestRawAccept(t *testing.T) {
	c := openTest(t, answering(t, http.StatusNotFound, `{"error":"not_found","reason":"missing"}`).URL, "", "")
	resp, err := c.do(context.Background(), rawRequest{method: http.MethodGet, path: "/_scheduler/jobs", op: "op", accept: anyStatus})
	if err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("accept any: %v, %v", resp, err)
	}
	resp.Body.Close()
	_, err = c.do(context.Background(), rawRequest{method: http.MethodGet, path: "/_scheduler/jobs", op: "op",
		accept: func(s int) bool { return s == http.StatusOK }})
	if !registry.IsKind(err, registry.KindNotFound) {
		t.Errorf("404 not accepted: %v", err)
	}
}

// CheckPassword tells a wrong password (401) from CouchDB's lockout (403)
// from an outage, and sends the user's credentials, never the service's.
func TestCheckPassword(t *testing.T) {
	for _, tc := range []struct {
		status   int
		body     string
		wantKind registry.Kind
	}{
		{200, `{"ok":true,"name":"alice","roles":[]}`, 0},
		{401, `{"error":"unauthorized","reason":"Name or password is incorrect."}`, registry.KindUnauthorized},
		{403, `{"error":"forbidden","reason":"Account is temporarily locked due to multiple authentication failures"}`, registry.KindTooManyRequests},
		{500, `{"error":"unknown_error","reason":"badarg"}`, registry.KindUnavailable},
		{503, `{"error":"service_unavailable","reason":"nodedown"}`, registry.KindUnavailable},
	} {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var b struct{ Name, Password string }
				_ = json.NewDecoder(r.Body).Decode(&b)
				if r.Method != http.MethodPost || r.URL.Path != "/_session" || r.Header.Get("Authorization") != "" || b.Name != "alice" || b.Password != "pw" {
					couchAnswer(w, http.StatusTeapot, `{"error":"test","reason":"unexpected request"}`)
					return
				}
				couchAnswer(w, tc.status, tc.body)
			}))
			t.Cleanup(srv.Close)
			c := openTest(t, srv.URL, "admin", "service-secret")
			err := c.Users().CheckPassword(context.Background(), "alice", "pw", netip.Addr{})
			if tc.wantKind == 0 {
				if err != nil {
					t.Errorf("err %v", err)
				}
				return
			}
			if registry.KindOf(err) != tc.wantKind {
				t.Errorf("kind %v (%v), want %v", registry.KindOf(err), err, tc.wantKind)
			}
		})
	}
}

// fakeDocs is a fake CouchDB 3 database "t" (openTest's prefix) holding
// one document, answering writes with status.
func fakeDocs(t *testing.T, status int, doc string, att string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPut && r.URL.EscapedPath() == "/t/foo":
			if status >= 400 {
				couchAnswer(w, status, `{"error":"conflict","reason":"Document update conflict."}`)
				return
			}
			couchAnswer(w, status, `{"ok":true,"id":"foo","rev":"2-abc"}`)
		case r.Method == http.MethodGet && r.URL.EscapedPath() == "/t/foo" && r.URL.Query().Get("conflicts") == "true":
			couchAnswer(w, http.StatusOK, doc)
		case r.Method == http.MethodGet && r.URL.EscapedPath() == "/t/foo/foo-1.0.0.tgz":
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Length", "9")
			w.Header().Set("Content-MD5", "V0BpuFNZ0qOMbdfSdI4kXA==")
			w.Header().Set("ETag", `"V0BpuFNZ0qOMbdfSdI4kXA=="`)
			io.WriteString(w, att)
		default:
			couchAnswer(w, http.StatusNotFound, `{"error":"not_found","reason":"missing"}`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// PutPackument reads the write quorum off the status: 201 reached it, 202
// stored the document on fewer nodes.
func TestPutPackumentQuorum(t *testing.T) {
	for _, tc := range []struct {
		status     int
		wantQuorum bool
		wantKind   registry.Kind
	}{
		{http.StatusCreated, true, 0},
		{http.StatusAccepted, false, 0},
		{http.StatusConflict, false, registry.KindConflict},
	} {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			c := openTest(t, fakeDocs(t, tc.status, "", "").URL, "", "")
			p := registry.NewPackument("foo")
			w, err := c.Packuments(RolePackages).PutPackument(context.Background(), p)
			if tc.wantKind != 0 {
				if registry.KindOf(err) != tc.wantKind {
					t.Errorf("err %v, want kind %v", err, tc.wantKind)
				}
				return
			}
			if err != nil || w.Rev != "2-abc" || w.Quorum != tc.wantQuorum {
				t.Errorf("written %+v, %v; want rev 2-abc, quorum %v", w, err, tc.wantQuorum)
			}
		})
	}
}

// GetPackument asks for _conflicts and hands them on.
func TestGetPackumentConflicts(t *testing.T) {
	doc := `{"_id":"foo","_rev":"3-aaa","name":"foo","versions":{},"_conflicts":["3-bbb","2-ccc"]}`
	c := openTest(t, fakeDocs(t, 0, doc, "").URL, "", "")
	p, err := c.Packuments(RolePackages).GetPackument(context.Background(), "foo")
	if err != nil {
		t.Fatal(err)
	}
	if p.Rev != "3-aaa" || strings.Join(p.Conflicts, ",") != "3-bbb,2-ccc" {
		t.Errorf("rev %q conflicts %v", p.Rev, p.Conflicts)
	}
	if _, err := c.Packuments(RolePackages).GetPackument(context.Background(), "bar"); !registry.IsKind(err, registry.KindNotFound) {
		t.Errorf("missing document: %v", err)
	}
}

// OpenTarball streams the attachment with its size and digest; a missing
// one is KindNotFound.
func TestOpenTarball(t *testing.T) {
	c := openTest(t, fakeDocs(t, 0, "", "tarball!!").URL, "", "")
	tb, err := c.Packuments(RolePackages).OpenTarball(context.Background(), "foo", "foo-1.0.0.tgz")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(bufio.NewReader(tb.Body))
	tb.Body.Close()
	if err != nil || string(b) != "tarball!!" || tb.Size != 9 {
		t.Errorf("body %q (%v), size %d", b, err, tb.Size)
	}
	_, err = c.Packuments(RolePackages).OpenTarball(context.Background(), "foo", "foo-2.0.0.tgz")
	if !registry.IsKind(err, registry.KindNotFound) {
		t.Errorf("missing attachment: %v", err)
	}
	var he interface{ HTTPStatus() int }
	if !errors.As(err, &he) || he.HTTPStatus() != http.StatusNotFound {
		t.Errorf("the cause is not kept: %v", err)
	}
}
