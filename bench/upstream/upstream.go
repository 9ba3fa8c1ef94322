// Package upstream is a fake public registry for the mirror benchmarks: a
// deterministic set of packuments with a realistic size distribution, the
// paged _changes feed without include_docs that the public registry serves,
// its database info (update_seq), tarballs, and an optional round-trip
// delay. New changes can be published while it runs (steady-state lag).
package upstream

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha1" //nolint:gosec // npm's dist.shasum is sha1
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Config shapes the data set and the server.
type Config struct {
	Packages int           // how many packuments (default 10000)
	Big      int           // how many of them are over 5 MB (default 10)
	Seed     uint64        // data set seed
	Latency  time.Duration // added before every answer (a round trip to a far upstream)
	// Deps gives every package dependencies on lower-numbered packages
	// (pull-through: an install resolves a tree). 0: none.
	Deps int
	// TarballBytes is the size of each version's tarball (default 4 KiB).
	TarballBytes int
	// RealTarballs serves an installable tarball per version (package.json
	// and index.js) instead of shared random bytes: for npm installs.
	RealTarballs bool
}

// Server is the fake registry.
type Server struct {
	cfg Config

	mu        sync.RWMutex
	origin    string
	names     []string
	versions  []int             // versions per package
	docs      map[string][]byte // name → packument JSON
	revs      map[string]int    // name → revision generation
	changes   []change
	published map[string]time.Time // "name rev" → when Publish made it
	tarball   []byte
	tarballs  map[string][]byte // path → installable tarball (RealTarballs)
	integrity string
	shasum    string
	requests  map[string]int // kind → count
}

type change struct {
	Seq     int      `json:"seq"`
	ID      string   `json:"id"`
	Changes []revObj `json:"changes"`
}

type revObj struct {
	Rev string `json:"rev"`
}

// New plans the data set; Bind renders it (in memory; a few hundred MB
// for 10,000 packages).
func New(cfg Config) *Server {
	if cfg.Packages <= 0 {
		cfg.Packages = 10000
	}
	if cfg.Big < 0 {
		cfg.Big = 0
	} else if cfg.Big == 0 {
		cfg.Big = 10
	}
	if cfg.TarballBytes <= 0 {
		cfg.TarballBytes = 4 << 10
	}
	s := &Server{cfg: cfg, docs: map[string][]byte{}, revs: map[string]int{}, published: map[string]time.Time{}, requests: map[string]int{},
		tarballs: map[string][]byte{}}
	r := rand.New(rand.NewPCG(cfg.Seed, 42))
	s.tarball = make([]byte, cfg.TarballBytes)
	for i := range s.tarball {
		s.tarball[i] = byte(r.IntN(256))
	}
	h512 := sha512.Sum512(s.tarball)
	h1 := sha1.Sum(s.tarball) //nolint:gosec
	s.integrity = "sha512-" + base64.StdEncoding.EncodeToString(h512[:])
	s.shasum = hex.EncodeToString(h1[:])
	bigEvery := 0
	if cfg.Big > 0 {
		bigEvery = cfg.Packages / cfg.Big
	}
	for i := range cfg.Packages {
		name := fmt.Sprintf("pkg-%05d", i)
		if i%50 == 7 {
			name = fmt.Sprintf("@scope%d/pkg-%05d", i%13, i)
		}
		s.names = append(s.names, name)
		versions := versionCount(r)
		if bigEvery > 0 && i%bigEvery == bigEvery/2 {
			versions = 5000 + r.IntN(1500) // 5–7 MB
		}
		s.revs[name] = 1
		s.versions = append(s.versions, versions)
		s.changes = append(s.changes, change{Seq: len(s.changes) + 1, ID: name, Changes: []revObj{{Rev: rev(name, 1)}}})
	}
	return s
}

// versionCount draws a package's number of versions: most packages are
// small, a long tail is not (about 1 KB per version).
func versionCount(r *rand.Rand) int {
	switch p := r.Float64(); {
	case p < 0.80:
		return 1 + r.IntN(8)
	case p < 0.97:
		return 10 + r.IntN(50)
	default:
		return 60 + r.IntN(340)
	}
}

func rev(name string, gen int) string {
	h := sha1.Sum([]byte(name + strconv.Itoa(gen))) //nolint:gosec
	return fmt.Sprintf("%d-%s", gen, hex.EncodeToString(h[:16]))
}

const filler = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. "

// packument renders one package's document at revision generation gen.
func (s *Server) packument(name string, index, versions, gen int) []byte {
	type dist struct {
		Tarball   string `json:"tarball"`
		Shasum    string `json:"shasum"`
		Integrity string `json:"integrity"`
	}
	type person struct {
		Name  string `json:"name"`
		Email string `json:"email"`
	}
	type manifest struct {
		Name         string            `json:"name"`
		Version      string            `json:"version"`
		Description  string            `json:"description"`
		Main         string            `json:"main"`
		License      string            `json:"license"`
		Scripts      map[string]string `json:"scripts"`
		Dependencies map[string]string `json:"dependencies,omitempty"`
		Keywords     []string          `json:"keywords"`
		Repository   map[string]string `json:"repository"`
		Maintainers  []person          `json:"maintainers"`
		NpmUser      person            `json:"_npmUser"`
		Dist         dist              `json:"dist"`
		GitHead      string            `json:"gitHead"`
		NodeVersion  string            `json:"_nodeVersion"`
		NpmVersion   string            `json:"_npmVersion"`
	}
	base := strings.TrimPrefix(name[strings.LastIndex(name, "/")+1:], "@")
	vs := map[string]manifest{}
	times := map[string]string{"created": "2020-01-01T00:00:00.000Z"}
	t0 := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	latest := ""
	for v := range versions {
		ver := fmt.Sprintf("%d.%d.%d", v/100, (v/10)%10, v%10)
		m := manifest{
			Name: name, Version: ver, Description: "Package " + name + ": " + filler[:40+index%60],
			Main: "index.js", License: "MIT", Scripts: map[string]string{"test": "node test.js", "build": "tsc -p ."},
			Keywords:    []string{"bench", "fake", base},
			Repository:  map[string]string{"type": "git", "url": "git+https://git.example.invalid/" + base + ".git"},
			Maintainers: []person{{Name: "maintainer" + strconv.Itoa(index%97), Email: "m@example.invalid"}},
			NpmUser:     person{Name: "maintainer" + strconv.Itoa(index%97), Email: "m@example.invalid"},
			Dist: dist{Tarball: s.base() + "/" + name + "/-/" + base + "-" + ver + ".tgz",
				Shasum: s.shasum, Integrity: s.integrity},
			GitHead: fmt.Sprintf("%040x", index*1000+v), NodeVersion: "20.11.0", NpmVersion: "10.2.4",
		}
		if s.cfg.Deps > 0 && index > 0 {
			m.Dependencies = map[string]string{}
			for d := range s.cfg.Deps {
				m.Dependencies[s.names[mix(uint64(index*64+d))%uint64(index)]] = "*"
			}
		}
		if s.cfg.RealTarballs {
			tgz := installable(name, ver, m.Dependencies)
			h512, h1 := sha512.Sum512(tgz), sha1.Sum(tgz) //nolint:gosec
			m.Dist.Integrity = "sha512-" + base64.StdEncoding.EncodeToString(h512[:])
			m.Dist.Shasum = hex.EncodeToString(h1[:])
			u, _ := url.Parse(m.Dist.Tarball)
			s.tarballs[u.EscapedPath()] = tgz
		}
		vs[ver] = m
		times[ver] = t0.Add(time.Duration(v) * time.Hour).Format("2006-01-02T15:04:05.000Z")
		latest = ver
	}
	times["modified"] = t0.Add(time.Duration(versions+gen) * time.Hour).Format("2006-01-02T15:04:05.000Z")
	doc := map[string]any{
		"_id": name, "_rev": rev(name, gen), "name": name, "description": "Package " + name,
		"dist-tags": map[string]string{"latest": latest}, "versions": vs, "time": times,
		"maintainers": []person{{Name: "maintainer" + strconv.Itoa(index%97), Email: "m@example.invalid"}},
		"readme":      strings.Repeat(filler, 4+index%30), "readmeFilename": "README.md", "license": "MIT",
	}
	b, _ := json.Marshal(doc)
	return b
}

// base is the origin tarball URLs point at (Bind).
func (s *Server) base() string { return s.origin }

// Bind renders the data set for the origin the server is reached at (the
// tarball URLs in the packuments). Call it before serving.
func (s *Server) Bind(origin string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.origin = strings.TrimRight(origin, "/")
	for i, name := range s.names {
		s.docs[name] = s.packument(name, i, s.versions[i], s.revs[name])
	}
}

// Names lists the packages.
func (s *Server) Names() []string { return append([]string(nil), s.names...) }

// TotalBytes is the size of all packuments.
func (s *Server) TotalBytes() (total int64, largest int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, d := range s.docs {
		total += int64(len(d))
		largest = max(largest, len(d))
	}
	return total, largest
}

// Doc returns a packument's current JSON.
func (s *Server) Doc(name string) []byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.docs[name]
}

// Publish makes a new revision of package i (a new modified time) and
// appends its change; it returns the name and the new revision.
func (s *Server) Publish(i int) (name, newRev string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name = s.names[i%len(s.names)]
	s.revs[name]++
	gen := s.revs[name]
	s.docs[name] = s.packument(name, i%len(s.names), s.versions[i%len(s.names)], gen)
	newRev = rev(name, gen)
	s.changes = append(s.changes, change{Seq: len(s.changes) + 1, ID: name, Changes: []revObj{{Rev: newRev}}})
	s.published[name+" "+newRev] = time.Now()
	return name, newRev
}

// Requests returns the requests answered, by kind (packument, tarball,
// changes, info).
func (s *Server) Requests() map[string]int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := map[string]int{}
	for k, v := range s.requests {
		out[k] = v
	}
	return out
}

func (s *Server) count(kind string) {
	s.mu.Lock()
	s.requests[kind]++
	s.mu.Unlock()
}

// ServeHTTP answers GET / (database info), /_changes, /{name} and
// tarballs.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Latency > 0 {
		time.Sleep(s.cfg.Latency)
	}
	path := r.URL.EscapedPath()
	switch {
	case path == "/":
		s.count("info")
		s.mu.RLock()
		seq := len(s.changes)
		s.mu.RUnlock()
		writeJSON(w, map[string]any{"db_name": "registry", "update_seq": seq})
	case path == "/_changes":
		s.count("changes")
		s.serveChanges(w, r)
	case strings.HasPrefix(path, "/-/"): // registry endpoints (signing keys, search): none here
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"error":"not_found"}`))
	case strings.Contains(path, "/-/"):
		s.count("tarball")
		body := s.tarball
		if s.cfg.RealTarballs {
			s.mu.RLock()
			body = s.tarballs[path]
			s.mu.RUnlock()
			if body == nil {
				http.Error(w, `{"error":"not_found"}`, http.StatusNotFound)
				return
			}
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
	default:
		name, err := url.PathUnescape(strings.TrimPrefix(path, "/"))
		if err != nil {
			http.Error(w, `{"error":"bad name"}`, http.StatusBadRequest)
			return
		}
		s.count("packument")
		doc := s.Doc(name)
		if doc == nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":"not_found"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(doc)))
		_, _ = w.Write(doc)
	}
}

func (s *Server) serveChanges(w http.ResponseWriter, r *http.Request) {
	since, _ := strconv.Atoi(r.URL.Query().Get("since"))
	limit, err := strconv.Atoi(r.URL.Query().Get("limit"))
	if err != nil || limit <= 0 || limit > 10000 {
		limit = 10000
	}
	s.mu.RLock()
	end := min(len(s.changes), since+limit)
	var page []change
	if since < end {
		page = append(page, s.changes[since:end]...)
	}
	last := max(end, since)
	s.mu.RUnlock()
	if page == nil {
		page = []change{}
	}
	writeJSON(w, map[string]any{"results": page, "last_seq": last})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// PublishedAt says when Publish made name's revision rev.
func (s *Server) PublishedAt(name, rev string) time.Time {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.published[name+" "+rev]
}

// installable builds a package tarball npm can install: package.json and
// an index.js that exports the name and version.
func installable(name, version string, deps map[string]string) []byte {
	pj, _ := json.Marshal(map[string]any{"name": name, "version": version, "main": "index.js", "dependencies": deps})
	files := []struct{ name, body string }{
		{"package/package.json", string(pj)},
		{"package/index.js", fmt.Sprintf("module.exports = { name: %q, version: %q };\n", name, version)},
	}
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, f := range files {
		_ = tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), Typeflag: tar.TypeReg})
		_, _ = tw.Write([]byte(f.body))
	}
	_ = tw.Close()
	_ = gz.Close()
	return buf.Bytes()
}

// mix scatters n (splitmix64): dependencies spread over all lower-numbered
// packages, so an app's tree is wide, like a real one.
func mix(n uint64) uint64 {
	n += 0x9e3779b97f4a7c15
	n = (n ^ (n >> 30)) * 0xbf58476d1ce4e5b9
	n = (n ^ (n >> 27)) * 0x94d049bb133111eb
	return n ^ (n >> 31)
}
