package handlers

import (
	"bufio"
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"net/http/httptest"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/cache"
	"github.com/couchnpm/couchnpm/internal/testkit"
	"github.com/couchnpm/couchnpm/metrics"
	"github.com/couchnpm/couchnpm/registry"
	"github.com/couchnpm/couchnpm/registry/registrytest"
)

// pkgVarPattern is pkgVar's regular expression, anchored as mux anchors a
// path template "/"+pkgVar: the one definition packumentPath must equal.
var pkgVarPattern = regexp.MustCompile(`^/(?:` + strings.TrimSuffix(strings.TrimPrefix(pkgVar, "{pkg:"), "}") + `)$`)

func TestPackumentPath(t *testing.T) {
	tests := []struct {
		name, path, want string
		ok               bool
	}{
		{"unscoped", "/foo", "foo", true},
		{"dots and dashes", "/foo.bar-baz_1", "foo.bar-baz_1", true},
		{"a lone dash (no /-/ route)", "/-", "-", true},
		{"percent-encoded unscoped", "/foo%20bar", "foo%20bar", true},
		{"scoped with a slash", "/@acme/foo", "@acme/foo", true},
		{"scoped with %2f", "/@acme%2ffoo", "@acme%2ffoo", true},
		{"scoped with %2F", "/@acme%2Ffoo", "@acme%2Ffoo", true},
		{"scoped name holding a percent", "/@acme/foo%41", "@acme/foo%41", true},
		{"root", "/", "", false},
		{"empty", "", "", false},
		{"no leading slash", "foo", "", false},
		{"double slash", "//foo", "", false},
		{"trailing slash", "/foo/", "", false},
		{"version route", "/foo/1.0.0", "", false},
		{"tarball route", "/foo/-/foo-1.0.0.tgz", "", false},
		{"api route", "/-/ping", "", false},
		{"scope only", "/@acme", "", false},
		{"empty scope", "/@/foo", "", false},
		{"empty scoped name", "/@acme/", "", false},
		{"scoped with a trailing slash", "/@acme/foo/", "", false},
		{"scoped version route", "/@acme/foo/1.0.0", "", false},
		{"scoped %2f then a slash", "/@acme%2ffoo/1.0.0", "", false},
		{"percent in the scope", "/@ac%41me/foo", "", false},
		{"%2f cut short", "/@acme%2", "", false},
		{"%2 then a slash", "/@acme%2/foo", "", false},
		{"encoded @ is unscoped", "/%40acme", "%40acme", true},
		{"@ inside an unscoped name", "/foo@1", "foo@1", true},
		{"a dot segment", "/.", "", false},
		{"a dot-dot segment", "/..", "", false},
		{"dots in a name", "/..foo", "..foo", true},
		{"a scoped dot-dot segment", "/@acme/..", "", false},
		{"a scoped dot segment", "/@acme/.", "", false},
		{"dots after %2f are one segment", "/@acme%2f..", "@acme%2f..", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := packumentPath(tc.path)
			if ok != tc.ok || got != tc.want {
				t.Errorf("packumentPath(%q) = %q, %v; want %q, %v", tc.path, got, ok, tc.want, tc.ok)
			}
			if re := routesToPkgVar(tc.path); re != tc.ok {
				t.Errorf("the table disagrees with the router on %q: pkgVar and cleaning say %v", tc.path, re)
			}
		})
	}
}

// routesToPkgVar is what the router does with an escaped path: route it
// to "/"+pkgVar when it is clean and the pattern matches.
func routesToPkgVar(p string) bool {
	return cleanForMux(p) == p && pkgVarPattern.MatchString(p)
}

// FuzzPackumentPath: packumentPath accepts exactly the clean paths pkgVar's
// regular expression matches, and returns the whole name.
func FuzzPackumentPath(f *testing.F) {
	for _, s := range []string{"/foo", "/.", "/@a/..", "/@a%2f..", "/@a/b", "/@a%2fb", "/@a%2Fb/c", "/@a%2", "//x", "/-/x", "/@/x", "/\xff", "/@\xff/\xfe", "/a\nb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		got, ok := packumentPath(p)
		if want := routesToPkgVar(p); ok != want {
			t.Fatalf("packumentPath(%q) ok = %v, the route's pattern and cleaning say %v", p, ok, want)
		}
		if ok && got != p[1:] {
			t.Fatalf("packumentPath(%q) = %q", p, got)
		}
	})
}

// cleanForMux is what the router redirects to: the path cleaned (no empty,
// "." or ".." segments), a trailing slash kept. A path that cleaning
// changes is never routed.
func cleanForMux(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

// The fast path takes a request exactly when the router would send it to
// its GET /{pkg} route, with the same name: over many paths (scoped names,
// encoded slashes, /-/ routes, trailing and double slashes, tarballs,
// versions), every method, and browsers' Accept headers (the package page
// reads the router's variables, so those go to the router).
func TestPackumentFastPathRoutesAsTheRouter(t *testing.T) {
	s := &Server{cfg: Config{Metrics: http.NotFoundHandler()}} // every route registered
	router, fast := s.routes()
	names := []string{
		"foo", "Foo", "foo.bar", "-", "_x", "~x", "foo%20bar", "foo%2fbar", "foo%2Fbar", "foo%40", "%40acme",
		"@acme", "@", "@acme/foo", "@acme%2ffoo", "@acme%2Ffoo", "@acme%252ffoo", "@ac%41me/foo", "@acme/foo%41",
		"@acme/", "@/foo", ".", "..", "..foo", "@acme/.", "@acme/..", "@acme%2f..", "-rev", "favicon.ico", "foo:bar", "foo;bar", "foo,bar", "foo%3Fbar", "foo%23bar",
	}
	var paths []string
	for _, n := range names {
		paths = append(paths,
			"/"+n, "/"+n+"/", "//"+n, "/"+n+"//", "/"+n+"?write=true", "/"+n+"?a=b?c",
			"/"+n+"/1.0.0", "/"+n+"/latest", "/"+n+"/-/"+n+"-1.0.0.tgz", "/"+n+"/-rev/1-a",
			"/"+n+"/-/x.tgz/-rev/1-a", "/-/"+n, "/-/package/"+n+"/dist-tags", "/-/v1/search?text="+n,
			"/-/user/org.couchdb.user:"+n, "/@acme/"+n, "/@acme%2f"+n)
	}
	paths = append(paths, "/", "//", "/-", "/-/", "/-/ping", "/-/metrics", "/-/web/x", "/-/npm/v1/keys", "*")
	methods := []string{"GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS", "get"}
	accepts := []string{"", "application/json", corgiType, "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*",
		"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "application/json, TEXT/HTML;q=0"}
	fastCount, checked := 0, 0
	for _, p := range paths {
		for _, method := range methods {
			for _, accept := range accepts {
				raw := method + " " + p + " HTTP/1.1\r\nHost: registry.test\r\n"
				if accept != "" {
					raw += "Accept: " + accept + "\r\n"
				}
				req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw + "\r\n")))
				if err != nil {
					continue // net/http answers 400 itself
				}
				checked++
				var m mux.RouteMatch
				ep := req.URL.EscapedPath()
				routed := cleanForMux(ep) == ep && router.Match(req, &m) && m.Route == fast.route && !wantsHTML(req)
				name, ok := fast.match(req)
				switch {
				case ok && !routed:
					t.Errorf("%s %s (Accept %q): the fast path takes it, the router would not send it to GET /{pkg}", method, p, accept)
				case ok && name != m.Vars["pkg"]:
					t.Errorf("%s %s: fast path name %q, router %q", method, p, name, m.Vars["pkg"])
				case !ok && routed && !mentionsHTML(accept):
					t.Errorf("%s %s (Accept %q): the router's packument route, missed by the fast path", method, p, accept)
				}
				if ok {
					fastCount++
				}
			}
		}
	}
	if fastCount < 100 || checked < 10000 {
		t.Fatalf("the table exercises too little: %d requests checked, %d on the fast path", checked, fastCount)
	}
}

// fastPathServer is couchnpm serve's wiring (packument cache, body cache,
// metrics, request log) over an in-memory store holding the public "hot"
// and "@alice/secret", restricted, both alice's; bob is another user.
func fastPathServer(t *testing.T) (http.Handler, *syncBuffer, *metrics.Metrics) {
	t.Helper()
	store := registrytest.NewMemStore()
	c := cache.New(cache.Config{MaxBytes: 1 << 30, Heartbeat: 100 * time.Millisecond, Log: zerolog.Nop()})
	cs := c.Store("test", liveStore{store})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go c.Run(ctx)
	reg := newService(t, registry.Config{Store: cs, Tarballs: cache.NewTarballs(16<<20, 4<<20)})
	m := metrics.New()
	accounts := newFakeAccounts()
	accounts.tokens["cnpm_bob"] = registry.Identity{Name: "bob", Email: "bob@example.com"}
	logs := &syncBuffer{}
	h := mustNew(t, Config{PublicURL: "http://registry.test", MaxPublishBytes: 64 << 20, Bodies: c, Observer: m, Metrics: m.Handler()},
		realServices(reg, accounts, noTokens(t)), zerolog.New(logs))
	for _, p := range []struct{ name, version, access string }{
		{"hot", "1.0.0", "null"}, {"hot", "1.1.0", "null"}, {"@alice/secret", "1.0.0", `"restricted"`},
	} {
		tgz := testkit.Tarball(p.name, p.version)
		tgz = append(tgz, make([]byte, 4096)...) // a body worth gzipping
		body := strings.Replace(npmPublishBody(t, p.name, p.version, "latest", tgz), `"access":null`, `"access":`+p.access, 1)
		req := httptest.NewRequest("PUT", "/"+strings.Replace(p.name, "/", "%2f", 1), strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer cnpm_alice")
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusCreated {
			t.Fatalf("publish %s@%s: %d %s", p.name, p.version, rec.Code, rec.Body)
		}
	}
	time.Sleep(300 * time.Millisecond) // the changes feed is live: reads are cache hits
	return h, logs, m
}

// The fast path answers byte for byte as the router's route does: status,
// headers (ETag, Vary, Cache-Control, Content-Type, Content-Encoding,
// Content-Length, X-Modified, nosniff), body, 304s, HEAD, the write form
// for maintainers, a restricted package invisible to everyone else, bad
// credentials refused; each request logged and counted once, under the
// route's label.
func TestPackumentFastPathAnswersAsTheRouter(t *testing.T) {
	h, logs, m := fastPathServer(t)
	etag := func(accept, auth string) string {
		req := httptest.NewRequest("GET", "/hot", nil)
		req.Header.Set("Accept", accept)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Header().Get("ETag")
	}
	corgiETag := etag(corgiType, "")
	tests := []struct {
		name, method, path string
		headers            []string
		status             int
	}{
		{"abbreviated, gzip, anonymous", "GET", "/hot", []string{"Accept: " + corgiType, "Accept-Encoding: gzip"}, 200},
		{"abbreviated, npm's Accept", "GET", "/hot", []string{"Accept: application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*", "Accept-Encoding: gzip, deflate"}, 200},
		{"abbreviated, identity", "GET", "/hot", []string{"Accept: " + corgiType}, 200},
		{"full, gzip", "GET", "/hot", []string{"Accept: application/json", "Accept-Encoding: gzip"}, 200},
		{"no Accept", "GET", "/hot", nil, 200},
		{"HEAD", "HEAD", "/hot", []string{"Accept: " + corgiType, "Accept-Encoding: gzip"}, 200},
		{"revalidation", "GET", "/hot", []string{"Accept: " + corgiType, "Accept-Encoding: gzip", "If-None-Match: " + corgiETag}, 304},
		{"stale ETag", "GET", "/hot", []string{"Accept: " + corgiType, "If-None-Match: W/\"0-x-corgi\""}, 200},
		{"maintainer: the write form, private", "GET", "/hot", []string{"Authorization: Bearer cnpm_alice", "Accept-Encoding: gzip"}, 200},
		{"?write=true", "GET", "/hot?write=true", []string{"Authorization: Bearer cnpm_alice"}, 200},
		{"publish's pre-read", "GET", "/hot", []string{"Authorization: Bearer cnpm_alice", "Npm-Command: publish"}, 200},
		{"restricted, anonymous", "GET", "/@alice%2fsecret", []string{"Accept: " + corgiType}, 404},
		{"restricted, another user", "GET", "/@alice/secret", []string{"Accept: " + corgiType, "Authorization: Bearer cnpm_bob"}, 404},
		{"restricted, HEAD by another user", "HEAD", "/@alice%2Fsecret", []string{"Authorization: Bearer cnpm_bob"}, 404},
		{"restricted, its maintainer", "GET", "/@alice%2fsecret", []string{"Accept: " + corgiType, "Accept-Encoding: gzip", "Authorization: Bearer cnpm_alice"}, 200},
		{"bad token", "GET", "/hot", []string{"Accept: " + corgiType, "Authorization: Bearer cnpm_nobody"}, 401},
		{"missing package", "GET", "/nope", []string{"Accept: " + corgiType}, 404},
		{"invalid name", "GET", "/..foo", []string{"Accept: " + corgiType}, 400},
	}
	do := func(method, target string, headers []string) (*httptest.ResponseRecorder, *http.Request) {
		req := httptest.NewRequest(method, target, nil)
		for _, hv := range headers {
			k, v, _ := strings.Cut(hv, ": ")
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec, req
	}
	// A miss's first answer names the package, later ones come from the
	// packument cache's negative entry ("not_found"): read it once first.
	do("GET", "/nope", nil)
	before := len(logs.requestLines(t))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fastRec, fastReq := do(tc.method, tc.path, tc.headers)
			if _, ok := packumentPath(fastReq.URL.EscapedPath()); !ok || mentionsHTML(fastReq.Header.Get("Accept")) {
				t.Fatalf("%s %s does not take the fast path", tc.method, tc.path)
			}
			// The same request through the router: an Accept that names
			// HTML at weight 0 is no browser's, but keeps the fast path off.
			routed := append([]string{}, tc.headers...)
			accept := "text/html;q=0"
			for i, hv := range routed {
				if v, ok := strings.CutPrefix(hv, "Accept: "); ok {
					accept = v + ", text/html;q=0"
					routed = append(routed[:i], routed[i+1:]...)
					break
				}
			}
			routerRec, _ := do(tc.method, tc.path, append(routed, "Accept: "+accept))
			if fastRec.Code != tc.status {
				t.Errorf("status %d, want %d: %s", fastRec.Code, tc.status, fastRec.Body)
			}
			if fastRec.Code != routerRec.Code || fastRec.Body.String() != routerRec.Body.String() {
				t.Errorf("fast path %d %q, router %d %q", fastRec.Code, fastRec.Body, routerRec.Code, routerRec.Body)
			}
			fh, rh := fastRec.Header().Clone(), routerRec.Header().Clone()
			for _, hdr := range []http.Header{fh, rh} {
				if hdr.Get("X-Request-Id") == "" || hdr.Get("X-Content-Type-Options") != "nosniff" {
					t.Errorf("request id or nosniff missing: %v", hdr)
				}
				hdr.Del("X-Request-Id")
			}
			if len(fh) != len(rh) {
				t.Errorf("headers differ:\n fast   %v\n router %v", fh, rh)
			}
			for k, v := range rh {
				if strings.Join(fh[k], "\n") != strings.Join(v, "\n") {
					t.Errorf("%s: fast path %q, router %q", k, fh[k], v)
				}
			}
			if tc.status == 200 && tc.method == "GET" && fastRec.Header().Get("Content-Length") == "" {
				t.Errorf("no Content-Length")
			}
		})
	}
	lines := logs.requestLines(t)[before:]
	if len(lines) != 2*len(tests) {
		t.Fatalf("%d request log lines for %d requests", len(lines), 2*len(tests))
	}
	for i := 0; i+1 < len(lines); i += 2 {
		f, r := lines[i], lines[i+1]
		for _, k := range []string{"method", "path", "status", "bytes", "user"} {
			if f[k] != r[k] {
				t.Errorf("log line %s: fast path %v, router %v", k, f[k], r[k])
			}
		}
		if f["req_id"] == nil || f["duration_ms"] == nil {
			t.Errorf("log line without request id or duration: %v", f)
		}
	}
	out := scrape(t, m)
	for _, want := range []string{
		`couchnpm_http_requests_total{method="GET",route="/{pkg}",status="200"}`,
		`couchnpm_http_requests_total{method="GET",route="/{pkg}",status="304"} 2`,
		`couchnpm_http_requests_total{method="HEAD",route="/{pkg}",status="404"} 2`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// The recorder offers Flush, Hijack and ReadFrom over a writer that has
// none of them without failing, and counts what goes through ReadFrom.
func TestRecorderOverAPlainWriter(t *testing.T) {
	ex := &exchange{}
	plain := &discardWriter{h: http.Header{}}
	w := ex.wrap(plain)
	w.(http.Flusher).Flush()
	if _, _, err := w.(http.Hijacker).Hijack(); err == nil {
		t.Errorf("Hijack over a writer that cannot: no error")
	}
	plain.h.Set("Content-Type", "application/octet-stream")
	n, err := w.(io.ReaderFrom).ReadFrom(strings.NewReader("twelve bytes"))
	if err != nil || n != 12 || plain.n != 12 || ex.bytes != 12 || ex.status != http.StatusOK {
		t.Errorf("ReadFrom: %d, %v; written %d, counted %d, status %d", n, err, plain.n, ex.bytes, ex.status)
	}
}

// headerValue is only ever given keys in canonical form: every call in
// the package's source names a constant that CanonicalHeaderKey keeps.
func TestHeaderValueKeysAreCanonical(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			if id, ok := call.Fun.(*ast.Ident); !ok || id.Name != "headerValue" || len(call.Args) != 2 {
				return true
			}
			calls++
			lit, ok := call.Args[1].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				t.Errorf("%s: headerValue with a key that is no string constant", fset.Position(call.Pos()))
				return true
			}
			if k, _ := strconv.Unquote(lit.Value); http.CanonicalHeaderKey(k) != k {
				t.Errorf("%s: headerValue key %q is not canonical", fset.Position(call.Pos()), k)
			}
			return true
		})
	}
	if calls < 5 {
		t.Fatalf("found %d calls of headerValue", calls)
	}
	h := http.Header{}
	h.Set("accept-encoding", "gzip")
	if headerValue(h, "Accept-Encoding") != "gzip" || headerValue(h, "Accept") != "" {
		t.Errorf("headerValue disagrees with Header.Set")
	}
}
