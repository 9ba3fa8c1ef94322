//go:build integration

package integration

import (
	"crypto/sha1"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/couchnpm/couchnpm/internal/testkit"
)

// fakeUpstream is a small public-registry stand-in the mirror tests run:
// packuments, tarballs, and a paged _changes feed without include_docs (the
// shape of the public feed since 2025). Its failure switches let tests
// inject faults per package.
type fakeUpstream struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	pkgs     map[string]*fakePkg
	changes  []fakeChange
	seq      int
	down     bool            // every request answers 503
	failPkg  map[string]int  // package → status its packument answers
	tamper   map[string]bool // "name@version" → serve other bytes
	sinceLog []string        // the since values _changes was asked for
	hits     map[string]int  // path → requests

	faults   map[string]*upstreamFault // request path → fault injected there
	latency  map[string]time.Duration  // request path → delay before answering
	reqLog   []upstreamRequest         // every request, in arrival order
	inflight int                       // package and tarball requests being answered now
	peak     int                       // the most of them at once
	closing  chan struct{}             // closed at cleanup: dripping handlers stop
	signing  *upstreamSigning          // signs published versions, serves keys (signatures_test.go); nil: none
}

// faultKind is a way the fake upstream misbehaves.
type faultKind string

const (
	fault500      faultKind = "500"      // 500 Internal Server Error
	fault429      faultKind = "429"      // 429 with Retry-After
	faultTruncate faultKind = "truncate" // Content-Length of the whole body, half of it sent, connection closed
	faultDrip     faultKind = "drip"     // the right body, one byte a second
	faultGarbage  faultKind = "garbage"  // 200 with wrong content: other tarball bytes, or a packument that is not JSON
	faultReset    faultKind = "reset"    // connection reset before any answer (hijacked, closed with RST)
)

// upstreamFault is one injected fault: answers left (< 0: until cleared)
// and, for 429, the Retry-After seconds.
type upstreamFault struct {
	kind       faultKind
	left       int
	retryAfter int
}

// upstreamRequest is one request the fake upstream received.
type upstreamRequest struct {
	path  string
	at    time.Time
	fault faultKind // "" when answered normally
}

type fakePkg struct {
	rev      int
	versions map[string]map[string]any
	tarballs map[string][]byte // file name → bytes
	time     map[string]string
}

type fakeChange struct {
	seq     int
	id      string
	rev     string
	deleted bool
}

func newFakeUpstream(t *testing.T) *fakeUpstream {
	u := &fakeUpstream{t: t, pkgs: map[string]*fakePkg{}, failPkg: map[string]int{}, tamper: map[string]bool{}, hits: map[string]int{},
		faults: map[string]*upstreamFault{}, latency: map[string]time.Duration{}, closing: make(chan struct{})}
	u.srv = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.srv.Close)
	t.Cleanup(func() { close(u.closing) }) // runs first: slow handlers give up, Close returns
	return u
}

// URL is the upstream registry's base URL; ChangesURL its feed.
func (u *fakeUpstream) URL() string        { return u.srv.URL }
func (u *fakeUpstream) ChangesURL() string { return u.srv.URL + "/_changes" }

func (u *fakeUpstream) setDown(down bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.down = down
}

func (u *fakeUpstream) setFail(name string, status int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.failPkg[name] = status
}

func (u *fakeUpstream) setTamper(name, version string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.tamper[name+"@"+version] = true
}

// setFault makes requests for path (as sent: "/name", "/name/-/name-1.0.0.tgz",
// "/_changes"; see pkgPath and tarballPath) misbehave the next times
// times, or until clearFault when times < 0. retryAfter is the 429's
// Retry-After in seconds.
func (u *fakeUpstream) setFault(path string, kind faultKind, times, retryAfter int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.faults[path] = &upstreamFault{kind: kind, left: times, retryAfter: retryAfter}
}

func (u *fakeUpstream) clearFault(path string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.faults, path)
}

// setLatency delays every answer for path by d (0 removes the delay).
func (u *fakeUpstream) setLatency(path string, d time.Duration) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.latency[path] = d
}

// requests returns the requests received for path so far.
func (u *fakeUpstream) requests(path string) []upstreamRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []upstreamRequest
	for _, r := range u.reqLog {
		if r.path == path {
			out = append(out, r)
		}
	}
	return out
}

// peakInflight is the most package and tarball requests (not "/" or
// "/_changes") answered at once; resetPeak starts a new measurement.
func (u *fakeUpstream) peakInflight() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.peak
}

func (u *fakeUpstream) resetPeak() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.peak = u.inflight
}

// pkgPath and tarballPath are the request paths of a packument and of a
// version's tarball.
func pkgPath(name string) string { return "/" + strings.Replace(name, "/", "%2F", 1) }

func tarballPath(name, version string) string {
	return "/" + name + "/-/" + unscoped(name) + "-" + version + ".tgz"
}

// tarballOf returns the bytes upstream serves for name@version (untampered).
func (u *fakeUpstream) tarballOf(name, version string) []byte {
	u.mu.Lock()
	defer u.mu.Unlock()
	p := u.pkgs[name]
	if p == nil {
		return nil
	}
	return p.tarballs[unscoped(name)+"-"+version+".tgz"]
}

func (u *fakeUpstream) sinces() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.sinceLog...)
}

// lastSeq is the sequence number of the newest change.
func (u *fakeUpstream) lastSeq() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.seq
}

// waitFollowerPast waits until a follower has asked for the changes after
// seq: it has handled every change up to seq.
func (u *fakeUpstream) waitFollowerPast(t *testing.T, seq int, limit time.Duration) {
	t.Helper()
	eventually(t, limit, fmt.Sprintf("follower past change %d", seq), func() (bool, string) {
		sinces := u.sinces()
		for _, s := range sinces {
			if n, err := strconv.Atoi(s); err == nil && n >= seq {
				return true, ""
			}
		}
		return false, fmt.Sprintf("sinces asked: %v", sinces)
	})
}

func (u *fakeUpstream) hitCount(path string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.hits[path]
}

// publish adds version of name (with dependencies) and records a change.
func (u *fakeUpstream) publish(name, version string, deps map[string]string) {
	u.t.Helper()
	tgz := makeTarballBytes(name, version, "upstream", deps)
	u.mu.Lock()
	defer u.mu.Unlock()
	p := u.pkgs[name]
	if p == nil {
		p = &fakePkg{versions: map[string]map[string]any{}, tarballs: map[string][]byte{}, time: map[string]string{"created": time.Now().UTC().Format(time.RFC3339)}}
		u.pkgs[name] = p
	}
	file := unscoped(name) + "-" + version + ".tgz"
	sha1sum := sha1.Sum(tgz)
	sha512sum := sha512.Sum512(tgz)
	dist := map[string]any{
		"tarball":   u.srv.URL + "/" + name + "/-/" + file,
		"shasum":    hex.EncodeToString(sha1sum[:]),
		"integrity": "sha512-" + base64.StdEncoding.EncodeToString(sha512sum[:]),
	}
	if u.signing != nil {
		u.signing.sign(u.srv.URL, name, version, dist)
	}
	p.versions[version] = map[string]any{
		"name": name, "version": version, "main": "index.js", "dependencies": deps, "dist": dist,
	}
	p.tarballs[file] = tgz
	p.time[version] = time.Now().UTC().Format(time.RFC3339)
	p.rev++
	u.seq++
	u.changes = append(u.changes, fakeChange{seq: u.seq, id: name, rev: fmt.Sprintf("%d-abc", p.rev)})
}

// remove deletes a package upstream and records the deletion.
func (u *fakeUpstream) remove(name string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	p := u.pkgs[name]
	delete(u.pkgs, name)
	u.seq++
	rev := "1-x"
	if p != nil {
		rev = fmt.Sprintf("%d-del", p.rev+1)
	}
	u.changes = append(u.changes, fakeChange{seq: u.seq, id: name, rev: rev, deleted: true})
}

func unscoped(name string) string {
	if i := strings.LastIndex(name, "/"); i >= 0 {
		return name[i+1:]
	}
	return name
}

// answer is a response computed under the lock, written after it.
type answer struct {
	status int
	header http.Header
	body   []byte
}

func (u *fakeUpstream) serve(w http.ResponseWriter, r *http.Request) {
	path := r.URL.EscapedPath()
	u.mu.Lock()
	u.hits[path]++
	var fault *upstreamFault
	if f := u.faults[path]; f != nil && f.left != 0 {
		fault = &upstreamFault{kind: f.kind, retryAfter: f.retryAfter}
		if f.left > 0 {
			f.left--
		}
	}
	rec := upstreamRequest{path: path, at: time.Now()}
	if fault != nil {
		rec.fault = fault.kind
	}
	u.reqLog = append(u.reqLog, rec)
	counted := path != "/" && path != "/_changes"
	if counted {
		u.inflight++
		u.peak = max(u.peak, u.inflight)
	}
	delay := u.latency[path]
	a := u.respond(r, path, fault != nil && fault.kind == faultGarbage)
	u.mu.Unlock()
	if counted {
		defer func() {
			u.mu.Lock()
			u.inflight--
			u.mu.Unlock()
		}()
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		case <-u.closing:
			return
		}
	}
	if fault == nil || fault.kind == faultGarbage {
		a.write(w)
		return
	}
	switch fault.kind {
	case fault500:
		http.Error(w, `{"error":"injected internal error"}`, http.StatusInternalServerError)
	case fault429:
		w.Header().Set("Retry-After", strconv.Itoa(fault.retryAfter))
		http.Error(w, `{"error":"too many requests"}`, http.StatusTooManyRequests)
	case faultTruncate:
		// Promise the whole body, send half, hang up.
		a.header.Set("Content-Length", strconv.Itoa(len(a.body)))
		copyHeader(w.Header(), a.header)
		w.WriteHeader(a.status)
		w.Write(a.body[:len(a.body)/2])
		w.(http.Flusher).Flush()
		hangUp(w, false)
	case faultDrip:
		a.header.Set("Content-Length", strconv.Itoa(len(a.body)))
		copyHeader(w.Header(), a.header)
		w.WriteHeader(a.status)
		for i := range a.body {
			if _, err := w.Write(a.body[i : i+1]); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-time.After(time.Second):
			case <-r.Context().Done():
				return
			case <-u.closing:
				return
			}
		}
	case faultReset:
		hangUp(w, true)
	}
}

// respond computes the normal answer to a request (u.mu held). garbage
// replaces a 200's body with wrong content: other tarball bytes, or text
// that is not JSON.
func (u *fakeUpstream) respond(r *http.Request, path string, garbage bool) answer {
	a := answer{status: 200, header: http.Header{}}
	jsonBody := func(v any) {
		a.header.Set("Content-Type", "application/json")
		a.body, _ = json.Marshal(v)
		a.body = append(a.body, '\n')
		if garbage {
			a.body = []byte("<html><body>Service temporarily rewritten {\"versions\": [")
		}
	}
	fail := func(status int, msg string) {
		a.status = status
		a.header.Set("Content-Type", "application/json")
		a.body = []byte(msg + "\n")
	}
	if u.down {
		fail(http.StatusServiceUnavailable, `{"error":"down"}`)
		return a
	}
	switch {
	case path == "/":
		jsonBody(map[string]any{"db_name": "registry", "update_seq": u.seq})
	case path == "/_changes":
		st, v := u.serveChanges(r)
		if st != 200 {
			fail(st, v.(string))
			return a
		}
		jsonBody(v)
	case u.signing != nil && strings.HasPrefix(path, "/-/npm/v1/"):
		st, v := u.signing.serve(path)
		if st != 200 {
			fail(st, `{"error":"not_found"}`)
			return a
		}
		jsonBody(v)
	case strings.Contains(path, "/-/"):
		i := strings.Index(path, "/-/")
		name, _ := url.PathUnescape(strings.TrimPrefix(path[:i], "/"))
		file := path[i+3:]
		p := u.pkgs[name]
		if p == nil || p.tarballs[file] == nil {
			fail(http.StatusNotFound, `{"error":"not_found"}`)
			return a
		}
		body := p.tarballs[file]
		for v := range p.versions {
			if unscoped(name)+"-"+v+".tgz" == file && (u.tamper[name+"@"+v] || garbage) {
				body = makeTarballBytes(name, v, "tampered")
			}
		}
		a.header.Set("Content-Type", "application/octet-stream")
		a.header.Set("Content-Length", strconv.Itoa(len(body)))
		a.body = body
	default:
		name, _ := url.PathUnescape(strings.TrimPrefix(path, "/"))
		if st := u.failPkg[name]; st != 0 {
			fail(st, `{"error":"injected failure"}`)
			return a
		}
		p := u.pkgs[name]
		if p == nil {
			fail(http.StatusNotFound, `{"error":"not_found"}`)
			return a
		}
		versions := make([]string, 0, len(p.versions))
		for v := range p.versions {
			versions = append(versions, v)
		}
		sort.Strings(versions)
		jsonBody(map[string]any{
			"_id": name, "_rev": fmt.Sprintf("%d-abc", p.rev), "name": name,
			"dist-tags": map[string]string{"latest": versions[len(versions)-1]},
			"versions":  p.versions, "time": p.time, "description": "upstream " + name,
		})
	}
	return a
}

func (a answer) write(w http.ResponseWriter) {
	copyHeader(w.Header(), a.header)
	w.WriteHeader(a.status)
	w.Write(a.body)
}

func copyHeader(dst, src http.Header) {
	for k, vs := range src {
		dst[k] = vs
	}
}

// hangUp takes the connection from the HTTP server and closes it; reset
// closes it with a TCP RST instead of a FIN.
func hangUp(w http.ResponseWriter, reset bool) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok && reset {
		tc.SetLinger(0)
	}
	conn.Close()
}

// serveChanges answers a _changes page (u.mu held): a status and either the
// page or an error body.
func (u *fakeUpstream) serveChanges(r *http.Request) (int, any) {
	if r.URL.Query().Get("include_docs") != "" {
		return http.StatusBadRequest, `{"error":"include_docs is not supported"}`
	}
	since, _ := strconv.Atoi(r.URL.Query().Get("since"))
	u.sinceLog = append(u.sinceLog, r.URL.Query().Get("since"))
	limit, err := strconv.Atoi(r.URL.Query().Get("limit"))
	if err != nil || limit <= 0 || limit > 10000 {
		limit = 1000
	}
	results := []map[string]any{}
	last := since
	for _, c := range u.changes {
		if c.seq <= since {
			continue
		}
		if len(results) == limit {
			break
		}
		res := map[string]any{"seq": c.seq, "id": c.id, "changes": []map[string]string{{"rev": c.rev}}}
		if c.deleted {
			res["deleted"] = true
		}
		results = append(results, res)
		last = c.seq
	}
	return 200, map[string]any{"results": results, "last_seq": last}
}

// makeTarballBytes builds a real npm package tarball: package/package.json
// and package/index.js exporting {name, version, marker}.
func makeTarballBytes(name, version, marker string, deps ...map[string]string) []byte {
	manifest := map[string]any{"main": "index.js"}
	if len(deps) > 0 && deps[0] != nil {
		manifest["dependencies"] = deps[0]
	}
	return testkit.Package{Name: name, Version: version, Manifest: manifest,
		Index: fmt.Sprintf("module.exports = { name: %q, version: %q, marker: %q };\n", name, version, marker)}.Tarball()
}
