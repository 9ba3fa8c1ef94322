package integration

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha1"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
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
}

type fakePkg struct {
	rev      int
	versions map[string]map[string]any
	tarballs map[string][]byte // file name → bytes
	time     map[string]string
	deps     map[string]map[string]string
}

type fakeChange struct {
	seq     int
	id      string
	rev     string
	deleted bool
}

func newFakeUpstream(t *testing.T) *fakeUpstream {
	u := &fakeUpstream{t: t, pkgs: map[string]*fakePkg{}, failPkg: map[string]int{}, tamper: map[string]bool{}, hits: map[string]int{}}
	u.srv = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.srv.Close)
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

func (u *fakeUpstream) sinces() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.sinceLog...)
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
	p.versions[version] = map[string]any{
		"name": name, "version": version, "main": "index.js", "dependencies": deps,
		"dist": map[string]any{
			"tarball":   u.srv.URL + "/" + name + "/-/" + file,
			"shasum":    hex.EncodeToString(sha1sum[:]),
			"integrity": "sha512-" + base64.StdEncoding.EncodeToString(sha512sum[:]),
		},
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

func (u *fakeUpstream) serve(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	defer u.mu.Unlock()
	path := r.URL.EscapedPath()
	u.hits[path]++
	if u.down {
		http.Error(w, `{"error":"down"}`, http.StatusServiceUnavailable)
		return
	}
	switch {
	case path == "/":
		writeJSONResp(w, map[string]any{"db_name": "registry", "update_seq": u.seq})
	case path == "/_changes":
		u.serveChanges(w, r)
	case strings.Contains(path, "/-/"):
		i := strings.Index(path, "/-/")
		name, _ := url.PathUnescape(strings.TrimPrefix(path[:i], "/"))
		file := path[i+3:]
		p := u.pkgs[name]
		if p == nil || p.tarballs[file] == nil {
			http.Error(w, `{"error":"not_found"}`, http.StatusNotFound)
			return
		}
		body := p.tarballs[file]
		for v := range p.versions {
			if unscoped(name)+"-"+v+".tgz" == file && u.tamper[name+"@"+v] {
				body = makeTarballBytes(name, v, "tampered")
			}
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	default:
		name, _ := url.PathUnescape(strings.TrimPrefix(path, "/"))
		if st := u.failPkg[name]; st != 0 {
			http.Error(w, `{"error":"injected failure"}`, st)
			return
		}
		p := u.pkgs[name]
		if p == nil {
			http.Error(w, `{"error":"not_found"}`, http.StatusNotFound)
			return
		}
		versions := make([]string, 0, len(p.versions))
		for v := range p.versions {
			versions = append(versions, v)
		}
		sort.Strings(versions)
		writeJSONResp(w, map[string]any{
			"_id": name, "_rev": fmt.Sprintf("%d-abc", p.rev), "name": name,
			"dist-tags": map[string]string{"latest": versions[len(versions)-1]},
			"versions":  p.versions, "time": p.time, "description": "upstream " + name,
		})
	}
}

func (u *fakeUpstream) serveChanges(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("include_docs") != "" {
		http.Error(w, `{"error":"include_docs is not supported"}`, http.StatusBadRequest)
		return
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
	writeJSONResp(w, map[string]any{"results": results, "last_seq": last})
}

func writeJSONResp(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// makeTarballBytes builds a real npm package tarball: package/package.json
// and package/index.js exporting {name, version, marker}.
func makeTarballBytes(name, version, marker string, deps ...map[string]string) []byte {
	pkg := map[string]any{"name": name, "version": version, "main": "index.js"}
	if len(deps) > 0 && deps[0] != nil {
		pkg["dependencies"] = deps[0]
	}
	pj, _ := json.Marshal(pkg)
	files := []struct{ name, body string }{
		{"package/package.json", string(pj)},
		{"package/index.js", fmt.Sprintf("module.exports = { name: %q, version: %q, marker: %q };\n", name, version, marker)},
	}
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, f := range files {
		tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), ModTime: time.Unix(499162500, 0)})
		tw.Write([]byte(f.body))
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}
