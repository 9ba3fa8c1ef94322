package designdoc

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
)

// ---------------------------------------------------------------- helpers

// nodePath finds node; without it the JavaScript tests skip, unless CI is
// set, where a missing node is a broken build machine.
func nodePath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("node is required for these tests in CI: %v", err)
		}
		t.Skipf("node not found, skipping the JavaScript tests: %v", err)
	}
	return p
}

func docFor(t *testing.T, db string) Doc {
	t.Helper()
	for _, d := range All() {
		if d.DB == db {
			return d
		}
	}
	t.Fatalf("no design document for database %q", db)
	return Doc{}
}

func viewMap(t *testing.T, db, view string) string {
	t.Helper()
	views, ok := docFor(t, db).Body["views"].(map[string]any)
	if !ok {
		t.Fatalf("%s: views is %T", db, docFor(t, db).Body["views"])
	}
	v, ok := views[view].(map[string]any)
	if !ok {
		t.Fatalf("%s: no view %q", db, view)
	}
	src, ok := v["map"].(string)
	if !ok {
		t.Fatalf("%s/%s: map is %T", db, view, v["map"])
	}
	return src
}

func vduSource(t *testing.T) string {
	t.Helper()
	src, ok := docFor(t, "packages").Body["validate_doc_update"].(string)
	if !ok {
		t.Fatal("packages: validate_doc_update missing")
	}
	return src
}

// allFunctions returns every JavaScript function of every design document,
// keyed by "db/views/name" or "db/validate_doc_update".
func allFunctions(t *testing.T) map[string]string {
	t.Helper()
	fns := map[string]string{}
	for _, d := range All() {
		if s, ok := d.Body["validate_doc_update"].(string); ok {
			fns[d.DB+"/validate_doc_update"] = s
		}
		views, _ := d.Body["views"].(map[string]any)
		for name, v := range views {
			vm, _ := v.(map[string]any)
			for kind, s := range vm {
				src, ok := s.(string)
				if !ok {
					t.Fatalf("%s/views/%s/%s is %T", d.DB, name, kind, s)
				}
				if kind == "map" {
					fns[d.DB+"/views/"+name] = src
				}
			}
		}
	}
	return fns
}

// jsRunner is the one Node process (testdata/run.js) that runs every
// JavaScript case of the package: a request per line on its stdin, an
// answer per line on its stdout. Requests are serialised; each takes a
// millisecond or so, where a process per case took a tenth of a second.
type jsRunner struct {
	mu     sync.Mutex
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
	stderr bytes.Buffer // written by exec's copier; read only after Wait
	broken error
}

var (
	runnerOnce sync.Once
	runner     *jsRunner
	runnerErr  error
)

func startRunner(node string) (*jsRunner, error) {
	r := &jsRunner{cmd: exec.Command(node, filepath.Join("testdata", "run.js"))}
	r.cmd.Stderr = &r.stderr
	in, err := r.cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := r.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := r.cmd.Start(); err != nil {
		return nil, err
	}
	r.stdin, r.stdout = in, bufio.NewReader(out)
	return r, nil
}

// stop ends the process (closing stdin ends run.js's read loop).
func (r *jsRunner) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	_ = r.stdin.Close()
	_ = r.cmd.Wait()
}

func (r *jsRunner) call(req map[string]any) (map[string]any, error) {
	line, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.broken != nil {
		return nil, r.broken
	}
	var answer []byte
	if _, err = r.stdin.Write(append(line, '\n')); err == nil {
		answer, err = r.stdout.ReadBytes('\n')
	}
	if err != nil {
		// The process is gone or out of step: every later case fails too.
		_ = r.stdin.Close()
		_ = r.cmd.Wait()
		r.broken = fmt.Errorf("run.js: %v (stderr %q)", err, r.stderr.String())
		return nil, r.broken
	}
	var res map[string]any
	if err := json.Unmarshal(answer, &res); err != nil {
		return nil, fmt.Errorf("run.js: bad answer %q: %v", answer, err)
	}
	return res, nil
}

func TestMain(m *testing.M) {
	code := m.Run()
	if runner != nil {
		runner.stop()
	}
	os.Exit(code)
}

// runJS runs src in the given mode (testdata/run.js) with input as JSON.
func runJS(t *testing.T, mode, src string, input any) map[string]any {
	t.Helper()
	node := nodePath(t)
	runnerOnce.Do(func() { runner, runnerErr = startRunner(node) })
	if runnerErr != nil {
		t.Fatalf("starting run.js: %v", runnerErr)
	}
	req := map[string]any{"mode": mode, "src": src}
	if input != nil {
		in, err := json.Marshal(input)
		if err != nil {
			t.Fatal(err)
		}
		req["input"] = string(in)
	}
	res, err := runner.call(req)
	if err != nil {
		t.Fatal(err)
	}
	if res["error"] != nil {
		t.Fatalf("run.js %s failed: %v", mode, res["error"])
	}
	return res
}

// clone deep-copies a JSON-like value.
func clone[T any](t *testing.T, v T) T {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var c T
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// ------------------------------------------------------- structure, hashes

func TestAllStableAndComplete(t *testing.T) {
	a, b := All(), All()
	if len(a) != 4 || len(b) != 4 {
		t.Fatalf("All() returned %d and %d docs, want 4", len(a), len(b))
	}
	wantDB := []string{"packages", "mirror", "tokens", "audit"}
	hexRe := regexp.MustCompile(`^[0-9a-f]{64}$`)
	for i := range a {
		if a[i].DB != wantDB[i] || b[i].DB != wantDB[i] {
			t.Errorf("doc %d: DB %q/%q, want %q", i, a[i].DB, b[i].DB, wantDB[i])
		}
		if a[i].ID != "_design/couchnpm" {
			t.Errorf("doc %d: ID %q", i, a[i].ID)
		}
		if a[i].Hash != b[i].Hash {
			t.Errorf("%s: hash differs between calls: %s vs %s", a[i].DB, a[i].Hash, b[i].Hash)
		}
		if !hexRe.MatchString(a[i].Hash) {
			t.Errorf("%s: hash %q is not hex sha256", a[i].DB, a[i].Hash)
		}
		ja, _ := canonicalJSON(a[i].Body)
		jb, _ := canonicalJSON(b[i].Body)
		if !bytes.Equal(ja, jb) {
			t.Errorf("%s: body differs between calls", a[i].DB)
		}
		if got := a[i].Body[hashField]; got != a[i].Hash {
			t.Errorf("%s: body couchnpm_hash %v != Hash %s", a[i].DB, got, a[i].Hash)
		}
		if got := hashBody(a[i].Body); got != a[i].Hash {
			t.Errorf("%s: recomputed hash %s != Hash %s", a[i].DB, got, a[i].Hash)
		}
		for _, k := range []string{"_id", "_rev"} {
			if _, ok := a[i].Body[k]; ok {
				t.Errorf("%s: body has %s", a[i].DB, k)
			}
		}
		if a[i].Body["language"] != "javascript" {
			t.Errorf("%s: language %v", a[i].DB, a[i].Body["language"])
		}
	}
	if a[0].Hash == a[1].Hash || a[1].Hash == a[2].Hash || a[2].Hash == a[3].Hash {
		t.Error("different bodies have the same hash")
	}
}

func TestHashFollowsBody(t *testing.T) {
	d := docFor(t, "packages")
	body := clone(t, d.Body)
	if hashBody(body) != d.Hash {
		t.Fatal("a JSON round trip of the body changed its hash")
	}
	body[hashField] = "something else"
	if hashBody(body) != d.Hash {
		t.Error("the hash depends on the couchnpm_hash field")
	}
	delete(body, hashField)
	if hashBody(body) != d.Hash {
		t.Error("the hash depends on the presence of couchnpm_hash")
	}
	views := body["views"].(map[string]any)
	views["byName"].(map[string]any)["map"] = viewMap(t, "packages", "byName") + " "
	if hashBody(body) == d.Hash {
		t.Error("hash did not change when a view changed")
	}
	body = clone(t, d.Body)
	body["validate_doc_update"] = "function (n, o) {}"
	if hashBody(body) == d.Hash {
		t.Error("hash did not change when validate_doc_update changed")
	}

	// All() hands out fresh maps: changing one result does not leak.
	a := All()
	a[0].Body["views"].(map[string]any)["byName"].(map[string]any)["map"] = "x"
	a[0].Body["language"] = "erlang"
	if All()[0].Hash != d.Hash || All()[0].Body["language"] != "javascript" {
		t.Error("modifying a returned Doc changed later results")
	}
}

func TestDesignDocumentContents(t *testing.T) {
	packumentViewNames := []string{"byKeyword", "byMaintainer", "byName", "conflicts", "largest", "modified", "search", "starredByUser"}
	want := map[string][]string{
		"packages": {"byKeyword", "byMaintainer", "byName", "conflicts", "dependents", "largest", "modified", "search", "starredByUser"},
		"mirror":   packumentViewNames,
		"tokens":   {"byUser"},
		"audit":    nil, // read by id ranges only
	}
	for _, d := range All() {
		views, ok := d.Body["views"].(map[string]any)
		if !ok && want[d.DB] != nil {
			t.Fatalf("%s: no views", d.DB)
		}
		var names []string
		for name, v := range views {
			names = append(names, name)
			vm := v.(map[string]any)
			if _, ok := vm["reduce"]; ok {
				t.Errorf("%s/%s has a reduce", d.DB, name)
			}
			if len(vm) != 1 {
				t.Errorf("%s/%s: unexpected fields %v", d.DB, name, vm)
			}
		}
		sort.Strings(names)
		if !reflect.DeepEqual(names, want[d.DB]) {
			t.Errorf("%s: views %v, want %v", d.DB, names, want[d.DB])
		}
		_, hasVDU := d.Body["validate_doc_update"]
		if hasVDU != (d.DB == "packages" || d.DB == "audit") {
			t.Errorf("%s: has validate_doc_update = %v", d.DB, hasVDU)
		}
	}
	// packages and mirror share the same map functions
	for _, v := range packumentViewNames {
		if viewMap(t, "packages", v) != viewMap(t, "mirror", v) {
			t.Errorf("view %s differs between packages and mirror", v)
		}
	}
}

func TestEveryEmbeddedFileIsUsed(t *testing.T) {
	entries, err := jsFS.ReadDir("js")
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, src := range allFunctions(t) {
		used[src] = true
	}
	for _, e := range entries {
		if !used[source(e.Name())] {
			t.Errorf("js/%s is embedded but not part of any design document", e.Name())
		}
	}
}

// ------------------------------------------------------------- JavaScript

func TestJavaScriptIsValid(t *testing.T) {
	fns := allFunctions(t)
	// The packument views twice (packages, mirror), packages/dependents,
	// the packages VDU, tokens/byUser, the audit VDU.
	if want := 2*len(packumentViews) + 4; len(fns) != want {
		t.Errorf("got %d functions, want %d", len(fns), want)
	}
	for name, src := range fns {
		if !strings.HasPrefix(src, "function") || !strings.HasSuffix(src, "}") {
			t.Errorf("%s: source must be a single function expression", name)
		}
		if res := runJS(t, "syntax", src, nil); res["ok"] != true {
			t.Errorf("%s: %v", name, res)
			continue
		}
		if res := runJS(t, "check", src, nil); res["ok"] != true {
			t.Errorf("%s: %v", name, res)
		}
	}
}

var es6Patterns = []struct {
	name string
	re   *regexp.Regexp
}{
	{"arrow function", regexp.MustCompile(`=>`)},
	{"let", regexp.MustCompile(`\blet\s`)},
	{"const", regexp.MustCompile(`\bconst\s`)},
	{"template string", regexp.MustCompile("`")},
	{"spread/rest", regexp.MustCompile(`\.\.\.`)},
	{"class", regexp.MustCompile(`\bclass\s`)},
	{"for...of", regexp.MustCompile(`for\s*\([^)]*\sof\s`)},
}

func es6Findings(src string) []string {
	var found []string
	for _, p := range es6Patterns {
		if p.re.MatchString(src) {
			found = append(found, p.name)
		}
	}
	return found
}

func TestNoES6Syntax(t *testing.T) {
	// the checker itself must be able to fail
	for _, bad := range []string{
		"function (doc) { var f = (x) => x; }",
		"function (doc) { let x = 1; }",
		"function (doc) { const x = 1; }",
		"function (doc) { emit(`${doc.name}`, null); }",
		"function (doc) { emit([...doc.a], null); }",
		"function (doc) { for (var x of doc.a) {} }",
	} {
		if len(es6Findings(bad)) == 0 {
			t.Errorf("ES6 check missed %q", bad)
		}
	}
	for name, src := range allFunctions(t) {
		if f := es6Findings(src); len(f) > 0 {
			t.Errorf("%s uses ES6 syntax: %v", name, f)
		}
	}
}

// ------------------------------------------------------- packument fixtures

const created = "2024-01-01T00:00:00.000Z"

var versionTimes = map[string]string{
	"1.0.0": "2024-01-02T00:00:00.000Z",
	"1.1.0": "2024-01-03T00:00:00.000Z",
	"2.0.0": "2024-01-04T00:00:00.000Z",
}

func manifest(name, ver string) map[string]any {
	alice := map[string]any{"name": "alice", "email": "alice@example.com"}
	unscoped := name[strings.LastIndex(name, "/")+1:]
	return map[string]any{
		"_id":          name + "@" + ver,
		"name":         name,
		"version":      ver,
		"description":  "Pad the left side of a string",
		"keywords":     []any{"pad", "string"},
		"license":      "MIT",
		"dependencies": map[string]any{"foo": "^1.0.0", "bar": "~2.1.0"},
		"_npmUser":     alice,
		"maintainers":  []any{alice},
		"dist": map[string]any{
			"tarball":   "http://localhost:5984/" + name + "/-/" + unscoped + "-" + ver + ".tgz",
			"shasum":    "0123456789abcdef0123456789abcdef01234567",
			"integrity": "sha512-" + strings.Repeat("A", 86) + "==",
		},
	}
}

// packument returns a stored packument with the given versions (the last is
// latest) and attachment stubs for all of them.
func packument(name string, vers ...string) map[string]any {
	versions := map[string]any{}
	tm := map[string]any{"created": created, "modified": created}
	atts := map[string]any{}
	unscoped := name[strings.LastIndex(name, "/")+1:]
	for _, v := range vers {
		versions[v] = manifest(name, v)
		tm[v] = versionTimes[v]
		tm["modified"] = versionTimes[v]
		atts[unscoped+"-"+v+".tgz"] = map[string]any{
			"content_type": "application/octet-stream",
			"digest":       "md5-" + v + "AAAAAAAAAAAAAAAA==",
			"length":       float64(100 + len(versions)),
			"revpos":       float64(len(versions)),
			"stub":         true,
		}
	}
	doc := map[string]any{
		"_id":          name,
		"_rev":         "1-abc",
		"name":         name,
		"description":  "Pad the left side of a string",
		"readme":       "# left-pad",
		"versions":     versions,
		"dist-tags":    map[string]any{},
		"time":         tm,
		"maintainers":  []any{map[string]any{"name": "alice", "email": "alice@example.com"}},
		"users":        map[string]any{},
		"license":      "MIT",
		"_attachments": atts,
	}
	if len(vers) > 0 {
		doc["dist-tags"] = map[string]any{"latest": vers[len(vers)-1]}
	}
	return doc
}

// publishing returns the document a client sends to add version v to old
// (nil: first publish): the new version, its time entry and an inline attachment.
func publishing(name string, old map[string]any, v string) map[string]any {
	var doc map[string]any
	if old == nil {
		doc = packument(name)
		doc["_attachments"] = map[string]any{}
		delete(doc, "_rev")
		doc["time"].(map[string]any)["created"] = versionTimes[v]
	} else {
		doc = old
	}
	doc["versions"].(map[string]any)[v] = manifest(name, v)
	doc["time"].(map[string]any)[v] = versionTimes[v]
	doc["time"].(map[string]any)["modified"] = versionTimes[v]
	doc["dist-tags"].(map[string]any)["latest"] = v
	unscoped := name[strings.LastIndex(name, "/")+1:]
	if doc["_attachments"] == nil {
		doc["_attachments"] = map[string]any{}
	}
	doc["_attachments"].(map[string]any)[unscoped+"-"+v+".tgz"] = map[string]any{
		"content_type": "application/octet-stream",
		"data":         "H4sIAAAAAAAAA+3OMQ6CQBCF4a05xV4AmV1gOY+JhYWJBV7f3VhIY+WS+H/Ne5lX5F7Pu7PFp/v9bB1JUauzlpdMzdBPxXe6Ml/ibrZWJjHhMPnR++Ikjdb5/e8/wDzt+nB4vfp1AAAA==",
	}
	return doc
}

// tombstone turns a stored packument into its unpublished tombstone.
func tombstone(doc map[string]any, now string) map[string]any {
	var vers []any
	for v := range doc["versions"].(map[string]any) {
		vers = append(vers, v)
	}
	sort.Slice(vers, func(i, j int) bool { return vers[i].(string) < vers[j].(string) })
	doc["versions"] = map[string]any{}
	doc["dist-tags"] = map[string]any{}
	tm := doc["time"].(map[string]any)
	tm["modified"] = now
	tm["unpublished"] = map[string]any{"name": "alice", "time": now, "versions": vers}
	delete(doc, "_attachments")
	return doc
}

// ------------------------------------------------------- validate_doc_update

func TestValidateDocUpdate(t *testing.T) {
	const name = "left-pad"
	user := map[string]any{"db": "packages", "name": "couchnpm", "roles": []any{"couchnpm"}}
	admin := map[string]any{"db": "packages", "name": "root", "roles": []any{"_admin"}}
	stored := func(vers ...string) map[string]any { return packument(name, vers...) }
	versionOf := func(doc map[string]any, v string) map[string]any {
		return doc["versions"].(map[string]any)[v].(map[string]any)
	}

	cases := []struct {
		name    string
		newDoc  func() map[string]any
		oldDoc  func() map[string]any // nil: no old document
		userCtx map[string]any
		want    string // "" = allowed, otherwise a substring of the forbidden message
	}{
		{
			name:   "valid first publish",
			newDoc: func() map[string]any { return publishing(name, nil, "1.0.0") },
		},
		{
			name:   "second version",
			oldDoc: func() map[string]any { return stored("1.0.0") },
			newDoc: func() map[string]any { return publishing(name, stored("1.0.0"), "1.1.0") },
		},
		{
			name:   "deprecate only",
			oldDoc: func() map[string]any { return stored("1.0.0", "1.1.0") },
			newDoc: func() map[string]any {
				d := stored("1.0.0", "1.1.0")
				versionOf(d, "1.0.0")["deprecated"] = "use 1.1.0"
				d["time"].(map[string]any)["modified"] = "2024-02-01T00:00:00.000Z"
				return d
			},
		},
		{
			name: "un-deprecate",
			oldDoc: func() map[string]any {
				d := stored("1.0.0")
				versionOf(d, "1.0.0")["deprecated"] = "old"
				return d
			},
			newDoc: func() map[string]any { return stored("1.0.0") },
		},
		{
			name:   "unchanged version with reordered keys",
			oldDoc: func() map[string]any { return stored("1.0.0") },
			newDoc: func() map[string]any {
				// JSON object order is irrelevant to deepEqual; also re-marshal
				return clone(t, stored("1.0.0"))
			},
		},
		{
			name:   "change an existing version's dependencies",
			oldDoc: func() map[string]any { return stored("1.0.0", "1.1.0") },
			newDoc: func() map[string]any {
				d := stored("1.0.0", "1.1.0")
				versionOf(d, "1.0.0")["dependencies"] = map[string]any{"foo": "^2.0.0", "bar": "~2.1.0"}
				return d
			},
			want: "only its \"deprecated\" field may change",
		},
		{
			name:   "a version published before signatures is signed once",
			oldDoc: func() map[string]any { return stored("1.0.0", "1.1.0") },
			newDoc: func() map[string]any {
				d := stored("1.0.0", "1.1.0")
				versionOf(d, "1.0.0")["dist"].(map[string]any)["signatures"] = []any{map[string]any{"keyid": "SHA256:k", "sig": "MEUC"}}
				return d
			},
		},
		{
			name: "a signature cannot change",
			oldDoc: func() map[string]any {
				d := stored("1.0.0")
				versionOf(d, "1.0.0")["dist"].(map[string]any)["signatures"] = []any{map[string]any{"keyid": "SHA256:k", "sig": "MEUC"}}
				return d
			},
			newDoc: func() map[string]any {
				d := stored("1.0.0")
				versionOf(d, "1.0.0")["dist"].(map[string]any)["signatures"] = []any{map[string]any{"keyid": "SHA256:k", "sig": "OTHER"}}
				return d
			},
			userCtx: admin,
			want:    "only its \"deprecated\" field may change",
		},
		{
			name: "a signature cannot be removed",
			oldDoc: func() map[string]any {
				d := stored("1.0.0")
				versionOf(d, "1.0.0")["dist"].(map[string]any)["signatures"] = []any{map[string]any{"keyid": "SHA256:k", "sig": "MEUC"}}
				return d
			},
			newDoc: func() map[string]any { return stored("1.0.0") },
			want:   "only its \"deprecated\" field may change",
		},
		{
			name:   "signing an old version changes nothing else",
			oldDoc: func() map[string]any { return stored("1.0.0") },
			newDoc: func() map[string]any {
				d := stored("1.0.0")
				dist := versionOf(d, "1.0.0")["dist"].(map[string]any)
				dist["signatures"] = []any{map[string]any{"keyid": "SHA256:k", "sig": "MEUC"}}
				dist["integrity"] = "sha512-other"
				return d
			},
			want: "only its \"deprecated\" field may change",
		},
		{
			name:   "a merge replaces a version published twice by the earlier publish and reports it",
			oldDoc: func() map[string]any { return stored("1.0.0") },
			newDoc: func() map[string]any {
				old := stored("1.0.0")
				d := stored("1.0.0")
				dist := versionOf(d, "1.0.0")["dist"].(map[string]any)
				dist["shasum"], dist["integrity"] = "ffffffffffffffffffffffffffffffffffffffff", "sha512-earlier"
				d["time"].(map[string]any)["1.0.0"] = "2000-01-01T00:00:00.000Z"
				d["couchnpm"] = map[string]any{"conflicts": []any{map[string]any{
					"version": "1.0.0", "kept": "sha512-earlier", "dropped": versionOf(old, "1.0.0")["dist"].(map[string]any)["integrity"],
				}}}
				return d
			},
		},
		{
			name:   "a merge may not replace a version with a later publish",
			oldDoc: func() map[string]any { return stored("1.0.0") },
			newDoc: func() map[string]any {
				old := stored("1.0.0")
				d := stored("1.0.0")
				dist := versionOf(d, "1.0.0")["dist"].(map[string]any)
				dist["integrity"] = "sha512-later"
				d["time"].(map[string]any)["1.0.0"] = "2999-01-01T00:00:00.000Z"
				d["couchnpm"] = map[string]any{"conflicts": []any{map[string]any{
					"version": "1.0.0", "kept": "sha512-later", "dropped": versionOf(old, "1.0.0")["dist"].(map[string]any)["integrity"],
				}}}
				return d
			},
			want: "may not change",
		},
		{
			name:   "replacing a version without reporting it is refused",
			oldDoc: func() map[string]any { return stored("1.0.0") },
			newDoc: func() map[string]any {
				d := stored("1.0.0")
				versionOf(d, "1.0.0")["dist"].(map[string]any)["integrity"] = "sha512-other"
				d["time"].(map[string]any)["1.0.0"] = "2000-01-01T00:00:00.000Z"
				return d
			},
			want: "may not change",
		},
		{
			name:   "change an existing version's dist",
			oldDoc: func() map[string]any { return stored("1.0.0") },
			newDoc: func() map[string]any {
				d := stored("1.0.0")
				versionOf(d, "1.0.0")["dist"].(map[string]any)["shasum"] = "ffffffffffffffffffffffffffffffffffffffff"
				return d
			},
			want: "already published",
		},
		{
			name:   "remove latest",
			oldDoc: func() map[string]any { return stored("1.0.0") },
			newDoc: func() map[string]any {
				d := stored("1.0.0")
				d["dist-tags"] = map[string]any{"next": "1.0.0"}
				return d
			},
			want: "must contain \"latest\"",
		},
		{
			name:   "tag to a missing version",
			oldDoc: func() map[string]any { return stored("1.0.0") },
			newDoc: func() map[string]any {
				d := stored("1.0.0")
				d["dist-tags"].(map[string]any)["beta"] = "9.9.9"
				return d
			},
			want: "not a version of left-pad",
		},
		{
			name:   "change time.created",
			oldDoc: func() map[string]any { return stored("1.0.0") },
			newDoc: func() map[string]any {
				d := stored("1.0.0")
				d["time"].(map[string]any)["created"] = "2025-01-01T00:00:00.000Z"
				return d
			},
			want: "time.created can never change",
		},
		{
			name:   "remove a time entry",
			oldDoc: func() map[string]any { return stored("1.0.0", "1.1.0") },
			newDoc: func() map[string]any {
				d := stored("1.0.0", "1.1.0")
				delete(d["time"].(map[string]any), "1.0.0")
				return d
			},
			want: "may not be removed",
		},
		{
			name:   "tombstone write",
			oldDoc: func() map[string]any { return stored("1.0.0", "1.1.0") },
			newDoc: func() map[string]any { return tombstone(stored("1.0.0", "1.1.0"), "2024-03-01T00:00:00.000Z") },
		},
		{
			name:   "unpublish one version",
			oldDoc: func() map[string]any { return stored("1.0.0", "1.1.0") },
			newDoc: func() map[string]any {
				d := stored("1.0.0", "1.1.0")
				delete(d["versions"].(map[string]any), "1.1.0")
				delete(d["_attachments"].(map[string]any), "left-pad-1.1.0.tgz")
				d["dist-tags"] = map[string]any{"latest": "1.0.0"}
				return d
			},
		},
		{
			name:   "re-use a burned version after unpublish",
			oldDoc: func() map[string]any { return tombstone(stored("1.0.0"), "2024-03-01T00:00:00.000Z") },
			newDoc: func() map[string]any {
				d := tombstone(stored("1.0.0"), "2024-03-01T00:00:00.000Z")
				delete(d["time"].(map[string]any), "unpublished")
				d = publishing(name, d, "1.0.0")
				d["time"].(map[string]any)["1.0.0"] = "2024-04-01T00:00:00.000Z"
				return d
			},
			want: "time[\"1.0.0\"] may not change",
		},
		{
			name:   "re-use a burned version keeping its old time",
			oldDoc: func() map[string]any { return tombstone(stored("1.0.0"), "2024-03-01T00:00:00.000Z") },
			newDoc: func() map[string]any {
				d := tombstone(stored("1.0.0"), "2024-03-01T00:00:00.000Z")
				return publishing(name, d, "1.0.0")
			},
			want: "can never be reused",
		},
		{
			name:   "publish a new version after unpublish",
			oldDoc: func() map[string]any { return tombstone(stored("1.0.0"), "2024-03-01T00:00:00.000Z") },
			newDoc: func() map[string]any {
				d := tombstone(stored("1.0.0"), "2024-03-01T00:00:00.000Z")
				delete(d["time"].(map[string]any), "unpublished")
				return publishing(name, d, "2.0.0")
			},
		},
		{
			name:   "uppercase new name",
			newDoc: func() map[string]any { return publishing("Left-Pad", nil, "1.0.0") },
			want:   "must be lowercase",
		},
		{
			name:   "uppercase legacy name may be updated",
			oldDoc: func() map[string]any { return packument("Legacy", "1.0.0") },
			newDoc: func() map[string]any { return publishing("Legacy", packument("Legacy", "1.0.0"), "1.1.0") },
		},
		{
			name: "name differs from _id",
			newDoc: func() map[string]any {
				d := publishing(name, nil, "1.0.0")
				d["name"] = "right-pad"
				return d
			},
			want: "name must equal _id",
		},
		{
			name: "name longer than 214",
			newDoc: func() map[string]any {
				return publishing(strings.Repeat("a", 215), nil, "1.0.0")
			},
			want: "longer than 214",
		},
		{
			name:    "delete by non-admin",
			oldDoc:  func() map[string]any { return stored("1.0.0") },
			newDoc:  func() map[string]any { return map[string]any{"_id": name, "_rev": "2-x", "_deleted": true} },
			userCtx: user,
			want:    "only a server admin may delete",
		},
		{
			name:    "delete by admin",
			oldDoc:  func() map[string]any { return stored("1.0.0") },
			newDoc:  func() map[string]any { return map[string]any{"_id": name, "_rev": "2-x", "_deleted": true} },
			userCtx: admin,
		},
		{
			name:   "design document",
			newDoc: func() map[string]any { return map[string]any{"_id": "_design/other", "views": map[string]any{}} },
		},
		{
			name:   "changed attachment digest",
			oldDoc: func() map[string]any { return stored("1.0.0") },
			newDoc: func() map[string]any {
				d := stored("1.0.0")
				d["_attachments"].(map[string]any)["left-pad-1.0.0.tgz"].(map[string]any)["digest"] = "md5-BBBBBBBBBBBBBBBBBBBBBB=="
				return d
			},
			want: "may not change (digest",
		},
		{
			name:   "re-sent attachment data under an old name",
			oldDoc: func() map[string]any { return stored("1.0.0") },
			newDoc: func() map[string]any {
				d := stored("1.0.0")
				d["_attachments"].(map[string]any)["left-pad-1.0.0.tgz"] = map[string]any{"content_type": "application/octet-stream", "data": "AAAA"}
				return d
			},
			want: "may not be uploaded again",
		},
		{
			name:   "re-sent attachment data as CouchDB 3 shows it to the validator",
			oldDoc: func() map[string]any { return stored("1.0.0") },
			newDoc: func() map[string]any {
				d := stored("1.0.0")
				att := d["_attachments"].(map[string]any)["left-pad-1.0.0.tgz"].(map[string]any)
				delete(att, "digest")
				att["revpos"] = float64(0)
				return d
			},
			want: "may not be uploaded again",
		},
		{
			name:   "changed attachment length",
			oldDoc: func() map[string]any { return stored("1.0.0") },
			newDoc: func() map[string]any {
				d := stored("1.0.0")
				d["_attachments"].(map[string]any)["left-pad-1.0.0.tgz"].(map[string]any)["length"] = float64(5)
				return d
			},
			want: "may not change (length",
		},
		{
			name:   "minimal attachment stubs",
			oldDoc: func() map[string]any { return stored("1.0.0") },
			newDoc: func() map[string]any {
				d := stored("1.0.0")
				d["_attachments"] = map[string]any{"left-pad-1.0.0.tgz": map[string]any{"stub": true}}
				return d
			},
		},
		{
			name:   "boolean stars",
			oldDoc: func() map[string]any { return stored("1.0.0") },
			newDoc: func() map[string]any {
				d := stored("1.0.0")
				d["users"] = map[string]any{"bob": true, "carol": false}
				return d
			},
		},
		{
			name:   "non-boolean star",
			oldDoc: func() map[string]any { return stored("1.0.0") },
			newDoc: func() map[string]any {
				d := stored("1.0.0")
				d["users"] = map[string]any{"bob": "yes"}
				return d
			},
			want: "users[\"bob\"] must be true or false",
		},
		{
			name: "invalid semver",
			newDoc: func() map[string]any {
				d := publishing(name, nil, "1.0.0")
				m := manifest(name, "1.0")
				d["versions"].(map[string]any)["1.0"] = m
				d["time"].(map[string]any)["1.0"] = created
				return d
			},
			want: "not a valid semver",
		},
		{
			name: "prerelease and build metadata are valid semver",
			newDoc: func() map[string]any {
				d := publishing(name, nil, "1.0.0")
				for _, v := range []string{"1.0.0-rc.1", "1.0.0-alpha-1.0+build.7"} {
					d["versions"].(map[string]any)[v] = manifest(name, v)
					d["time"].(map[string]any)[v] = created
				}
				return d
			},
		},
		{
			name: "version field mismatch",
			newDoc: func() map[string]any {
				d := publishing(name, nil, "1.0.0")
				versionOf(d, "1.0.0")["version"] = "1.0.1"
				return d
			},
			want: ".version must be",
		},
		{
			name: "version name mismatch",
			newDoc: func() map[string]any {
				d := publishing(name, nil, "1.0.0")
				versionOf(d, "1.0.0")["name"] = "other"
				return d
			},
			want: ".name must be",
		},
		{
			name: "new version without integrity",
			newDoc: func() map[string]any {
				d := publishing(name, nil, "1.0.0")
				delete(versionOf(d, "1.0.0")["dist"].(map[string]any), "integrity")
				return d
			},
			want: "must have dist.integrity",
		},
		{
			name: "new version without shasum",
			newDoc: func() map[string]any {
				d := publishing(name, nil, "1.0.0")
				delete(versionOf(d, "1.0.0")["dist"].(map[string]any), "shasum")
				return d
			},
			want: "tarball and a shasum",
		},
		{
			name: "new version without time entry",
			newDoc: func() map[string]any {
				d := publishing(name, nil, "1.0.0")
				delete(d["time"].(map[string]any), "1.0.0")
				return d
			},
			want: "must have a time[\"1.0.0\"] entry",
		},
		{
			name: "no maintainers",
			newDoc: func() map[string]any {
				d := publishing(name, nil, "1.0.0")
				d["maintainers"] = []any{}
				return d
			},
			want: "at least one maintainer",
		},
		{
			name: "maintainer without name",
			newDoc: func() map[string]any {
				d := publishing(name, nil, "1.0.0")
				d["maintainers"] = []any{map[string]any{"email": "x@example.com"}}
				return d
			},
			want: "non-empty string name",
		},
		{
			name: "versions not an object",
			newDoc: func() map[string]any {
				d := publishing(name, nil, "1.0.0")
				d["versions"] = []any{}
				return d
			},
			want: "versions must be an object",
		},
	}

	src := vduSource(t)
	for _, tc := range cases {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			t.Parallel()
			input := map[string]any{"newDoc": tc.newDoc(), "oldDoc": nil}
			if tc.oldDoc != nil {
				input["oldDoc"] = tc.oldDoc()
			}
			if tc.userCtx != nil {
				input["userCtx"] = tc.userCtx
			} else {
				input["userCtx"] = user
			}
			res := runJS(t, "vdu", src, input)
			if tc.want == "" {
				if res["ok"] != true {
					t.Fatalf("want allowed, got %v", res)
				}
				return
			}
			msg, ok := res["forbidden"].(string)
			if !ok {
				t.Fatalf("want forbidden containing %q, got %v", tc.want, res)
			}
			if !strings.Contains(msg, tc.want) {
				t.Fatalf("forbidden message %q does not contain %q", msg, tc.want)
			}
		})
	}
}

// ----------------------------------------------------------------- views

func emitsOf(t *testing.T, db, view string, doc any) [][2]any {
	t.Helper()
	res := runJS(t, "map", viewMap(t, db, view), doc)
	raw, ok := res["emits"].([]any)
	if !ok {
		t.Fatalf("%s/%s: no emits in %v", db, view, res)
	}
	rows := make([][2]any, 0, len(raw))
	for _, r := range raw {
		kv := r.([]any)
		rows = append(rows, [2]any{kv[0], kv[1]})
	}
	return rows
}

func sampleDoc() map[string]any {
	const name = "@acme/left-pad"
	doc := packument(name, "1.0.0", "2.0.0")
	doc["maintainers"] = []any{
		map[string]any{"name": "alice", "email": "alice@example.com"},
		map[string]any{"name": "bob", "email": "bob@example.com"},
	}
	doc["users"] = map[string]any{"bob": true, "carol": false, "dave": true}
	doc["keywords"] = []any{"pad", "String", "left"}
	doc["description"] = "Left-pad your strings, quickly!"
	doc["author"] = "Alice Smith <alice@example.com> (https://example.com)"
	latest := doc["versions"].(map[string]any)["2.0.0"].(map[string]any)
	latest["keywords"] = []any{"Pad", "string"}
	latest["deprecated"] = "use right-pad"
	return doc
}

func TestViews(t *testing.T) {
	const name = "@acme/left-pad"
	doc := sampleDoc()
	modified := versionTimes["2.0.0"]
	for _, db := range []string{"packages", "mirror"} {
		t.Run(db, func(t *testing.T) {
			check := func(view string, doc any, want [][2]any) {
				t.Helper()
				got := emitsOf(t, db, view, doc)
				if len(got) == 0 && len(want) == 0 {
					return
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s: got %v, want %v", view, got, want)
				}
			}
			check("byName", doc, [][2]any{{name, nil}})
			check("modified", doc, [][2]any{{modified, name}})
			check("byMaintainer", doc, [][2]any{{"alice", name}, {"bob", name}})
			check("byKeyword", doc, [][2]any{{"pad", name}, {"string", name}, {"left", name}})

			stars := emitsOf(t, db, "starredByUser", doc)
			sort.Slice(stars, func(i, j int) bool { return stars[i][0].(string) < stars[j][0].(string) })
			if want := [][2]any{{"bob", name}, {"dave", name}}; !reflect.DeepEqual(stars, want) {
				t.Errorf("starredByUser: got %v, want %v", stars, want)
			}

			rows := emitsOf(t, db, "search", doc)
			var terms []string
			wantValue := map[string]any{
				"name":        name,
				"version":     "2.0.0",
				"description": "Left-pad your strings, quickly!",
				"keywords":    []any{"pad", "string", "left"},
				"date":        modified,
				"maintainers": []any{
					map[string]any{"name": "alice", "email": "alice@example.com"},
					map[string]any{"name": "bob", "email": "bob@example.com"},
				},
				"deprecated": true,
			}
			for _, r := range rows {
				terms = append(terms, r[0].(string))
				if !reflect.DeepEqual(r[1], wantValue) {
					t.Errorf("search %q: value %v, want %v", r[0], r[1], wantValue)
				}
			}
			sort.Strings(terms)
			wantTerms := []string{
				"@acme/left-pad", "acme", "author:alice smith", "left", "maintainer:alice", "maintainer:bob",
				"pad", "quickly", "scope:acme", "string", "strings", "your",
			}
			if !reflect.DeepEqual(terms, wantTerms) {
				t.Errorf("search terms %q, want %q", terms, wantTerms)
			}

			// conflicts: only documents with losing leaves
			check("conflicts", doc, nil)
			conflicted := sampleDoc()
			conflicted["_conflicts"] = []any{"2-aaaa", "2-bbbb"}
			check("conflicts", conflicted, [][2]any{{conflicted["_id"], float64(2)}})

			// largest: only documents of 256 KB and more, keyed by the size
			// of their body without attachments
			check("largest", doc, nil)
			big := sampleDoc()
			delete(big, "_attachments")
			big["readme"] = strings.Repeat("x", 300000)
			var body bytes.Buffer
			enc := json.NewEncoder(&body)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(big); err != nil {
				t.Fatal(err)
			}
			want := float64(body.Len() - 1) // without the encoder's newline
			check("largest", big, [][2]any{{want, nil}})
			big["_attachments"] = map[string]any{"left-pad-2.0.0.tgz": map[string]any{"stub": true, "length": 1234, "digest": "md5-abc", "content_type": "application/octet-stream"}}
			check("largest", big, [][2]any{{want, nil}})

			// tombstones: only "modified" still sees them
			tomb := tombstone(sampleDoc(), "2024-05-01T00:00:00.000Z")
			for _, v := range []string{"byName", "byMaintainer", "starredByUser", "byKeyword", "search"} {
				check(v, tomb, nil)
			}
			check("modified", tomb, [][2]any{{"2024-05-01T00:00:00.000Z", name}})

			// design documents are ignored
			ddoc := map[string]any{"_id": "_design/couchnpm", "name": "x", "versions": map[string]any{"1.0.0": map[string]any{}}, "time": map[string]any{"modified": created}}
			for _, v := range []string{"byName", "modified", "byMaintainer", "starredByUser", "byKeyword", "search"} {
				check(v, ddoc, nil)
			}

			// no dist-tags.latest, string keywords, object author, long description
			odd := packument("plain", "1.0.0", "1.1.0")
			odd["dist-tags"] = map[string]any{}
			odd["keywords"] = "Foo, bar baz"
			odd["author"] = map[string]any{"name": "Zed"}
			var words []string
			for i := 0; i < 40; i++ {
				words = append(words, "word"+string(rune('a'+i%26))+string(rune('a'+i/26)))
			}
			odd["description"] = strings.Join(words, " ")
			rows = emitsOf(t, db, "search", odd)
			if len(rows) == 0 {
				t.Fatal("search: no rows for a package without dist-tags")
			}
			v := rows[0][1].(map[string]any)
			if v["version"] != "1.1.0" || v["deprecated"] != false {
				t.Errorf("search value without latest tag: %v", v)
			}
			nDesc, hasAuthor := 0, false
			for _, r := range rows {
				term := r[0].(string)
				if strings.HasPrefix(term, "word") {
					nDesc++
				}
				if term == "author:zed" {
					hasAuthor = true
				}
			}
			if nDesc != 30 {
				t.Errorf("search: %d description terms, want 30", nDesc)
			}
			if !hasAuthor {
				t.Error("search: no author:zed term")
			}
			check("byKeyword", odd, [][2]any{{"pad", "plain"}, {"string", "plain"}, {"foo", "plain"}, {"bar", "plain"}, {"baz", "plain"}})
		})
	}
}

func TestTokensByUser(t *testing.T) {
	tok := map[string]any{"_id": "tok-123", "type": "token", "user": "alice", "created": "2024-01-01T00:00:00.000Z", "readonly": true, "hash": "secret"}
	got := emitsOf(t, "tokens", "byUser", tok)
	want := [][2]any{{"alice", map[string]any{"key": "tok-123", "created": "2024-01-01T00:00:00.000Z", "readonly": true}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("byUser: got %v, want %v", got, want)
	}
	if got := emitsOf(t, "tokens", "byUser", map[string]any{"_id": "x", "type": "user", "user": "alice"}); len(got) != 0 {
		t.Errorf("byUser emitted for a non-token: %v", got)
	}
}

// The audit database's validate_doc_update: entries are created once,
// well-formed, and never changed or deleted, not even by an admin.
func TestAuditValidateDocUpdate(t *testing.T) {
	src, ok := docFor(t, "audit").Body["validate_doc_update"].(string)
	if !ok {
		t.Fatal("audit: validate_doc_update missing")
	}
	hash := strings.Repeat("ab", 32)
	entry := func() map[string]any {
		return map[string]any{"_id": "host-1@20260101T000000.000000Z:000000000007", "chain": "host-1@20260101T000000.000000Z",
			"seq": 7, "instance": "host-1", "at": "2026-01-01T00:00:00Z", "action": "publish", "outcome": "ok",
			"prev": strings.Repeat("cd", 32), "hash": hash}
	}
	admin := map[string]any{"db": "registry-audit", "name": "admin", "roles": []any{"_admin"}}
	cases := []struct {
		name   string
		newDoc func() map[string]any
		oldDoc map[string]any
		want   string // "" = allowed, else a substring of the refusal
	}{
		{name: "a new entry", newDoc: entry},
		{name: "a chain's first entry has an empty prev", newDoc: func() map[string]any { e := entry(); e["prev"] = ""; return e }},
		{name: "an edit is refused", oldDoc: entry(), newDoc: func() map[string]any { e := entry(); e["actor"] = "mallory"; return e }, want: "append-only"},
		{name: "a delete is refused", oldDoc: entry(), newDoc: func() map[string]any {
			return map[string]any{"_id": entry()["_id"], "_deleted": true}
		}, want: "append-only"},
		{name: "a deleted new document is refused", newDoc: func() map[string]any {
			return map[string]any{"_id": "x", "_deleted": true}
		}, want: "cannot be deleted"},
		{name: "an id that is not chain:seq is refused", newDoc: func() map[string]any { e := entry(); e["_id"] = "elsewhere"; return e }, want: "zero-padded seq"},
		{name: "a fractional seq is refused", newDoc: func() map[string]any { e := entry(); e["seq"] = 1.5; return e }, want: "whole seq"},
		{name: "a missing hash is refused", newDoc: func() map[string]any { e := entry(); delete(e, "hash"); return e }, want: "hash"},
		{name: "a bad prev is refused", newDoc: func() map[string]any { e := entry(); e["prev"] = "x"; return e }, want: "prev"},
		{name: "a missing action is refused", newDoc: func() map[string]any { e := entry(); e["action"] = ""; return e }, want: "action"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := map[string]any{"newDoc": tc.newDoc(), "userCtx": admin}
			if tc.oldDoc != nil {
				in["oldDoc"] = tc.oldDoc
			}
			res := runJS(t, "vdu", src, in)
			if tc.want == "" {
				if res["ok"] != true {
					t.Fatalf("refused: %v", res)
				}
				return
			}
			msg, _ := res["forbidden"].(string)
			if !strings.Contains(msg, tc.want) {
				t.Fatalf("want a refusal containing %q, got %v", tc.want, res)
			}
		})
	}
}

func TestDependentsView(t *testing.T) {
	doc := packument("app", "1.0.0", "2.0.0")
	vs := doc["versions"].(map[string]any)
	vs["1.0.0"].(map[string]any)["dependencies"] = map[string]any{"old-dep": "^1"}
	vs["2.0.0"].(map[string]any)["dependencies"] = map[string]any{"left-pad": "^1", "@acme/util": "2.x"}
	vs["2.0.0"].(map[string]any)["peerDependencies"] = map[string]any{"react": ">=18", "left-pad": "*"}
	vs["2.0.0"].(map[string]any)["optionalDependencies"] = map[string]any{"fsevents": "*"}
	vs["2.0.0"].(map[string]any)["devDependencies"] = map[string]any{"jest": "*"}
	public := map[string]any{"name": "app", "restricted": false}
	sorted := func(rows [][2]any) [][2]any {
		sort.Slice(rows, func(i, j int) bool { return rows[i][0].(string) < rows[j][0].(string) })
		return rows
	}
	for _, tc := range []struct {
		name string
		doc  map[string]any
		want [][2]any
	}{
		{"latest version's runtime, optional and peer dependencies, once each", doc,
			[][2]any{{"@acme/util", public}, {"fsevents", public}, {"left-pad", public}, {"react", public}}},
		{"restricted is marked", func() map[string]any {
			d := packument("app", "1.0.0", "2.0.0")
			d["access"] = "restricted"
			d["versions"] = vs
			return d
		}(),
			[][2]any{{"@acme/util", map[string]any{"name": "app", "restricted": true}}, {"fsevents", map[string]any{"name": "app", "restricted": true}},
				{"left-pad", map[string]any{"name": "app", "restricted": true}}, {"react", map[string]any{"name": "app", "restricted": true}}}},
		{"latest tag wins over the newest version", func() map[string]any {
			d := packument("app", "1.0.0", "2.0.0")
			d["versions"] = vs
			d["dist-tags"] = map[string]any{"latest": "1.0.0"}
			return d
		}(),
			[][2]any{{"old-dep", public}}},
		{"tombstone", tombstone(packument("app", "1.0.0"), "2024-05-01T00:00:00.000Z"), nil},
		{"design document", map[string]any{"_id": "_design/x", "name": "x", "versions": vs}, nil},
		{"dependencies as an array", func() map[string]any {
			d := packument("odd", "1.0.0")
			d["versions"].(map[string]any)["1.0.0"].(map[string]any)["dependencies"] = []any{"a", "b"}
			return d
		}(), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := sorted(emitsOf(t, "packages", "dependents", tc.doc))
			if len(got) == 0 && len(tc.want) == 0 {
				return
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
