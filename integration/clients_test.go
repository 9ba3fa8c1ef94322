//go:build integration

package integration

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha1"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Other package managers against couchnpm (issue 4 item 11): npm 10, npm 12, pnpm,
// yarn 1 and yarn berry, pinned in clients/ (package.json + package-lock.json,
// installed with `npm ci --prefix clients` when clients/node_modules is missing) and
// run by absolute path beside the machine's npm 11.
//
// Each client gets its own HOME, config file(s) and cache, and talks to its own
// couchnpm instance on the shared db prefix, so that instance's request log shows
// exactly what that client asked for (logged with -v). Each one installs a tree
// of private packages published with npm 11 (a restricted scoped package
// depending on an unscoped one, through a caret range that must not pick the
// latest major), runs it, then publishes a scoped and an unscoped package; the
// published versions are checked with raw GETs (dist, tarball bytes against
// integrity and shasum, the tarball's package.json), with `npm view`, and at the
// end by installing all of them with npm 11 and running them.

// clientTools are the absolute paths of the pinned clients' entry points.
type clientTools struct {
	npm10, npm12 string // npm-cli.js, run with node
	yarn1, berry string // bin/yarn.js, run with node
	pnpm         string // the native binary ("" where clients/ has none for this platform)
}

var clientsInstall struct {
	once  sync.Once
	tools clientTools
	err   error
}

// pinnedClients returns the pinned clients, running `npm ci --prefix clients` first
// when one of them is missing.
func pinnedClients(t *testing.T) clientTools {
	t.Helper()
	clientsInstall.once.Do(func() {
		dir := filepath.Join(suite.repoRoot, "clients")
		nm := filepath.Join(dir, "node_modules")
		tools := clientTools{
			npm10: filepath.Join(nm, "npm10", "bin", "npm-cli.js"),
			npm12: filepath.Join(nm, "npm12", "bin", "npm-cli.js"),
			yarn1: filepath.Join(nm, "yarn", "bin", "yarn.js"),
			berry: filepath.Join(nm, "@yarnpkg", "cli-dist", "bin", "yarn.js"),
			pnpm:  filepath.Join(nm, "@pnpm", "exe."+runtime.GOOS+"-"+pnpmArch(), "pnpm"),
		}
		missing := false
		for _, p := range []string{tools.npm10, tools.npm12, tools.yarn1, tools.berry} {
			if _, err := os.Stat(p); err != nil {
				missing = true
			}
		}
		if missing {
			fmt.Fprintln(os.Stderr, "integration: installing the pinned clients (npm ci --prefix clients)...")
			cmd := exec.Command("npm", "ci", "--prefix", dir, "--no-audit", "--no-fund", "--loglevel=error")
			cmd.Env = npmEnv(os.Getenv("HOME"))
			if out, err := cmd.CombinedOutput(); err != nil {
				clientsInstall.err = fmt.Errorf("npm ci --prefix clients: %v\n%s", err, out)
				return
			}
		}
		for _, p := range []string{tools.npm10, tools.npm12, tools.yarn1, tools.berry} {
			if _, err := os.Stat(p); err != nil {
				clientsInstall.err = fmt.Errorf("after npm ci --prefix clients: %v", err)
				return
			}
		}
		if _, err := os.Stat(tools.pnpm); err != nil {
			if runtime.GOOS == "linux" && runtime.GOARCH == "amd64" {
				clientsInstall.err = fmt.Errorf("after npm ci --prefix clients: %v", err)
				return
			}
			tools.pnpm = "" // clients/ pins only the linux-x64 binary
		}
		clientsInstall.tools = tools
	})
	if clientsInstall.err != nil {
		t.Fatal(clientsInstall.err)
	}
	return clientsInstall.tools
}

func pnpmArch() string {
	if runtime.GOARCH == "amd64" {
		return "x64"
	}
	return runtime.GOARCH
}

// pmClient is one package manager with its own HOME, config and cache, talking to reg.
type pmClient struct {
	t     *testing.T
	reg   *registry
	label string   // "npm10", "pnpm", ...
	argv  []string // the command, e.g. node /abs/npm-cli.js
	extra []string // appended to every command (npm's --registry, --userconfig, ...)
	home  string
	env   []string
}

// in returns the client bound to test t (a subtest's Fatal must not stop its parent).
func (c *pmClient) in(t *testing.T) *pmClient {
	cc := *c
	cc.t = t
	return &cc
}

func newPMClient(t *testing.T, reg *registry, label string, argv ...string) *pmClient {
	t.Helper()
	home := t.TempDir()
	env := envWithout(npmEnv(home), "YARN_", "PNPM_", "COREPACK_", "XDG_", "BERRY_")
	// The clients drive interactive logins like a person at a terminal; a
	// CI marker inherited from the test run (CI=true in CI) makes yarn 1
	// refuse to prompt.
	env = slices.DeleteFunc(env, func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		return name == "CI" || name == "CONTINUOUS_INTEGRATION" || name == "BUILD_NUMBER" || name == "RUN_ID"
	})
	env = append(env,
		"XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"XDG_CACHE_HOME="+filepath.Join(home, ".cache"),
		"XDG_DATA_HOME="+filepath.Join(home, ".local", "share"),
		"XDG_STATE_HOME="+filepath.Join(home, ".local", "state"),
		"COREPACK_ENABLE_STRICT=0",
		"FORCE_COLOR=0", "NO_COLOR=1",
	)
	return &pmClient{t: t, reg: reg, label: label, argv: argv, home: home, env: env}
}

// pmResult is the outcome of one client command.
type pmResult struct {
	Label  string
	Args   []string
	Stdout string
	Stderr string
	Err    error
}

func (r pmResult) String() string {
	return fmt.Sprintf("%s %s: err=%v\n--- stdout:\n%s\n--- stderr:\n%s", r.Label, strings.Join(r.Args, " "), r.Err, tail(r.Stdout, 4000), tail(r.Stderr, 6000))
}

func (c *pmClient) command(ctx context.Context, dir string, args ...string) *exec.Cmd {
	full := append(append(append([]string{}, c.argv[1:]...), args...), c.extra...)
	cmd := exec.CommandContext(ctx, c.argv[0], full...)
	cmd.Dir = dir
	if cmd.Dir == "" {
		cmd.Dir = c.home
	}
	cmd.Env = c.env
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

func (c *pmClient) run(dir string, args ...string) pmResult {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), npmTimeout)
	defer cancel()
	cmd := c.command(ctx, dir, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s %s: timed out after %v (%v)", c.label, args[0], npmTimeout, err)
	}
	return pmResult{Label: c.label, Args: args, Stdout: stdout.String(), Stderr: stderr.String(), Err: err}
}

func (c *pmClient) mustRun(dir string, args ...string) pmResult {
	c.t.Helper()
	res := c.run(dir, args...)
	if res.Err != nil {
		c.t.Fatalf("%s", res)
	}
	return res
}

// writeFile writes content to home-relative or absolute path p.
func (c *pmClient) writeFile(p, content string) {
	c.t.Helper()
	if !filepath.IsAbs(p) {
		p = filepath.Join(c.home, p)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		c.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		c.t.Fatal(err)
	}
}

// npmrcToken returns the _authToken an .npmrc-style file holds for the registry.
func npmrcToken(t *testing.T, path string, reg *registry) string {
	t.Helper()
	b, _ := os.ReadFile(path)
	key := fmt.Sprintf("//127.0.0.1:%d/:_authToken=", reg.Port)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), key); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// requestLine is one request of couchnpm's JSON request log.
type requestLine struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	Status int    `json:"status"`
	Msg    string `json:"message"`
}

func (l requestLine) String() string { return fmt.Sprintf("%s %s %d", l.Method, l.Path, l.Status) }

// requests returns the requests in reg's log from line from on, and the log's length.
func (r *registry) requests(from int) ([]requestLine, int) {
	lines := r.Stderr.Lines()
	var out []requestLine
	for i := from; i < len(lines); i++ {
		var l requestLine
		if json.Unmarshal([]byte(lines[i]), &l) == nil && l.Method != "" && l.Status != 0 {
			out = append(out, l)
		}
	}
	return out, len(lines)
}

// logRequests logs what the client asked couchnpm for since mark, and returns a new mark.
func (c *pmClient) logRequests(step string, mark int) int {
	reqs, n := c.reg.requests(mark)
	var b strings.Builder
	for _, r := range reqs {
		b.WriteString("\n  " + r.String())
	}
	c.t.Logf("%s %s: %d requests%s", c.label, step, len(reqs), b.String())
	return n
}

// hasRequest reports whether reqs holds a request with method, a path matching re and status.
func hasRequest(reqs []requestLine, method string, re *regexp.Regexp, status int) bool {
	for _, r := range reqs {
		if r.Method == method && re.MatchString(r.Path) && r.Status == status {
			return true
		}
	}
	return false
}

// writePackageWithDeps writes a package whose index.js exports {name, version,
// marker, deps: {dep: "version marker"}} for its dependencies.
func writePackageWithDeps(t *testing.T, name, version, marker string, deps map[string]string) string {
	t.Helper()
	dir := writePackage(t, name, version, marker)
	pkg := map[string]any{
		"name":         name,
		"version":      version,
		"description":  "couchnpm integration test package " + name,
		"main":         "index.js",
		"license":      "MIT",
		"dependencies": deps,
	}
	var req strings.Builder
	for d := range deps {
		fmt.Fprintf(&req, "  %s: (() => { const m = require(%s); return m.version + ' ' + m.marker })(),\n", mustJSON(d), mustJSON(d))
	}
	index := fmt.Sprintf("module.exports = { name: %s, version: %s, marker: %s, deps: {\n%s} };\n",
		mustJSON(name), mustJSON(version), mustJSON(marker), req.String())
	if err := os.WriteFile(filepath.Join(dir, "package.json"), append(mustJSON(pkg), '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.js"), []byte(index), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// The fixture every client installs: appLib (restricted) depends on plainDep ^1.0.0,
// which has 1.0.0, 1.1.0 and, as latest, 2.0.0; the tree must hold plain-dep 1.1.0.
const (
	fixtureAppLib   = "@acme/app-lib"
	fixturePlainDep = "plain-dep"
	appLibMarker    = "app-lib-1.0.0"
	wantDepExport   = "1.1.0 plain-dep-1.1.0"
)

// mustRunAppLib checks that the project in dir runs @acme/app-lib 1.0.0 with plain-dep 1.1.0.
func mustRunAppLib(t *testing.T, label, dir string) {
	t.Helper()
	v, err := requireInProject(t, dir, fixtureAppLib)
	if err != nil {
		t.Fatalf("%s: %v", label, err)
	}
	deps, _ := v["deps"].(map[string]any)
	if v["name"] != fixtureAppLib || v["version"] != "1.0.0" || v["marker"] != appLibMarker || deps[fixturePlainDep] != wantDepExport {
		t.Fatalf("%s: require(%q) = %v, want version 1.0.0, marker %s, deps {%s: %q}", label, fixtureAppLib, v, appLibMarker, fixturePlainDep, wantDepExport)
	}
}

// publishedPkg is a package a client published, for the final npm 11 check.
type publishedPkg struct{ name, version, marker string }

// checkPublished checks with raw requests that name@version is in couchnpm with a
// correct dist: latest tag, tarball URL on the registry, tarball bytes matching
// integrity and shasum, and the tarball's package.json and index.js.
func checkPublished(t *testing.T, reg *registry, token, label string, p publishedPkg) {
	t.Helper()
	path := "/" + strings.Replace(p.name, "/", "%2f", 1)
	res := reg.do("GET", path, token, nil)
	if res.Status != 200 {
		t.Fatalf("%s published %s@%s: GET %s: %s", label, p.name, p.version, path, res)
	}
	var doc struct {
		Name     string            `json:"name"`
		DistTags map[string]string `json:"dist-tags"`
		Versions map[string]struct {
			Name    string `json:"name"`
			Version string `json:"version"`
			ID      string `json:"_id"`
			Dist    struct {
				Tarball   string `json:"tarball"`
				Integrity string `json:"integrity"`
				Shasum    string `json:"shasum"`
			} `json:"dist"`
		} `json:"versions"`
		Time map[string]string `json:"time"`
	}
	if err := json.Unmarshal(res.Body, &doc); err != nil {
		t.Fatalf("%s: GET %s: %v: %s", label, path, err, res)
	}
	v, ok := doc.Versions[p.version]
	if doc.Name != p.name || !ok || len(doc.Versions) != 1 || doc.DistTags["latest"] != p.version || doc.Time[p.version] == "" {
		t.Fatalf("%s: GET %s: want exactly %s@%s tagged latest, with a time: %s", label, path, p.name, p.version, res)
	}
	if v.Name != p.name || v.Version != p.version || v.ID != p.name+"@"+p.version {
		t.Errorf("%s: GET %s: version %s has name %q version %q _id %q", label, path, p.version, v.Name, v.Version, v.ID)
	}
	base := p.name[strings.LastIndex(p.name, "/")+1:]
	wantTarball := reg.URL + "/" + p.name + "/-/" + base + "-" + p.version + ".tgz"
	if v.Dist.Tarball != wantTarball {
		t.Errorf("%s: %s@%s dist.tarball = %q, want %q", label, p.name, p.version, v.Dist.Tarball, wantTarball)
	}
	u, err := url.Parse(v.Dist.Tarball)
	if err != nil || !strings.HasPrefix(v.Dist.Tarball, reg.URL+"/") {
		t.Fatalf("%s: %s@%s dist.tarball %q is not on %s", label, p.name, p.version, v.Dist.Tarball, reg.URL)
	}
	tgz := reg.do("GET", u.EscapedPath(), token, nil)
	if tgz.Status != 200 {
		t.Fatalf("%s: GET %s: status %d", label, u.EscapedPath(), tgz.Status)
	}
	s512 := sha512.Sum512(tgz.Body)
	s1 := sha1.Sum(tgz.Body)
	if want := "sha512-" + base64.StdEncoding.EncodeToString(s512[:]); v.Dist.Integrity != want {
		t.Errorf("%s: %s@%s dist.integrity = %q, the tarball's sha512 is %q", label, p.name, p.version, v.Dist.Integrity, want)
	}
	if want := hex.EncodeToString(s1[:]); v.Dist.Shasum != want {
		t.Errorf("%s: %s@%s dist.shasum = %q, the tarball's sha1 is %q", label, p.name, p.version, v.Dist.Shasum, want)
	}
	files, err := readTarball(tgz.Body)
	if err != nil {
		t.Fatalf("%s: %s@%s tarball: %v", label, p.name, p.version, err)
	}
	var pj struct{ Name, Version string }
	if err := json.Unmarshal(files["package/package.json"], &pj); err != nil || pj.Name != p.name || pj.Version != p.version {
		t.Errorf("%s: %s@%s tarball package/package.json: %v %s", label, p.name, p.version, err, files["package/package.json"])
	}
	if !bytes.Contains(files["package/index.js"], []byte(mustJSON(p.marker))) {
		t.Errorf("%s: %s@%s tarball package/index.js lacks marker %s: %s", label, p.name, p.version, p.marker, files["package/index.js"])
	}
}

// readTarball returns the regular files of a .tgz by name.
func readTarball(b []byte) (map[string][]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(zr)
	files := map[string][]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files, nil
		}
		if err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeReg {
			data, err := io.ReadAll(tr)
			if err != nil {
				return nil, err
			}
			files[h.Name] = data
		}
	}
}

// clientFixture is what the client subtests share.
type clientFixture struct {
	tools     clientTools
	base      *registry // the instance the fixture was published through
	publisher *npmUser  // npm 11, logged in as user
	user      string
	password  string

	mu        sync.Mutex
	published []publishedPkg
}

// npm11 returns the publisher (the machine's npm 11) bound to test t.
func (f *clientFixture) npm11(t *testing.T) *npmUser {
	u := *f.publisher
	u.t = t
	return &u
}

func (f *clientFixture) addPublished(p publishedPkg) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.published = append(f.published, p)
}

// instance starts a couchnpm instance of its own for one client, on the fixture's data.
func (f *clientFixture) instance(t *testing.T) *registry {
	t.Helper()
	reg := startRegistry(t, registryOpts{Prefix: f.base.Prefix})
	reg.addSecret(f.password)
	return reg
}

// consumer writes a project depending on the fixture.
func consumer(t *testing.T) string {
	return writeProject(t, map[string]string{fixtureAppLib: "^1.0.0"})
}

func TestClients(t *testing.T) {
	t.Parallel()
	tools := pinnedClients(t)
	base := startRegistry(t, registryOpts{})
	f := &clientFixture{tools: tools, base: base, user: base.user("carol"), password: "Pw-carol-6e1f3a90"}
	f.publisher = newNPMUser(t, base, "carol")
	f.publisher.mustLogin(f.user, f.password, "carol@example.com")

	for _, v := range []string{"1.0.0", "1.1.0", "2.0.0"} {
		f.publisher.mustRunIn(writePackage(t, fixturePlainDep, v, "plain-dep-"+v), "publish")
	}
	f.publisher.mustOwnOrg("acme", f.user) // a scope belongs to an org or a user
	f.publisher.mustRunIn(writePackageWithDeps(t, fixtureAppLib, "1.0.0", appLibMarker, map[string]string{fixturePlainDep: "^1.0.0"}),
		"publish", "--access", "restricted")
	if res := base.do("GET", "/@acme%2fapp-lib", "", nil); res.Status != 404 {
		t.Fatalf("anonymous GET of the restricted %s: %s, want 404", fixtureAppLib, res)
	}

	t.Run("each", func(t *testing.T) {
		t.Run("npm10", func(t *testing.T) { t.Parallel(); testClientNPM(t, f, "npm10", tools.npm10, 10) })
		t.Run("npm12", func(t *testing.T) { t.Parallel(); testClientNPM(t, f, "npm12", tools.npm12, 12) })
		t.Run("pnpm", func(t *testing.T) {
			if tools.pnpm == "" {
				t.Skipf("clients/ pins pnpm's native binary for linux-x64 only, not %s-%s", runtime.GOOS, runtime.GOARCH)
			}
			t.Parallel()
			testClientPNPM(t, f)
		})
		t.Run("yarn1", func(t *testing.T) { t.Parallel(); testClientYarn1(t, f) })
		t.Run("berry", func(t *testing.T) { t.Parallel(); testClientBerry(t, f) })
	})

	// Everything the clients published, installed and run by npm 11.
	t.Run("npm11 installs what they published", func(t *testing.T) {
		f.mu.Lock()
		pkgs := append([]publishedPkg(nil), f.published...)
		f.mu.Unlock()
		if len(pkgs) == 0 {
			t.Skip("no client published anything")
		}
		deps := map[string]string{}
		for _, p := range pkgs {
			deps[p.name] = p.version
		}
		proj := writeProject(t, deps)
		f.npm11(t).mustRunIn(proj, "install")
		for _, p := range pkgs {
			mustRequire(t, proj, p.name, p.version, p.marker)
		}
	})
}

// publishBoth has the client publish a scoped and an unscoped package at version
// (through publish), then checks both with raw GETs and `npm view`.
func (f *clientFixture) publishBoth(t *testing.T, c *pmClient, token, version string, publish func(c *pmClient, dir string)) {
	t.Helper()
	c = c.in(t)
	for _, name := range []string{"@acme/made-by-" + c.label, "made-by-" + c.label} {
		p := publishedPkg{name: name, version: version, marker: name + "-" + version + "-" + randomHex(3)}
		mark := len(c.reg.Stderr.Lines())
		publish(c, writePackage(t, name, version, p.marker))
		c.logRequests("publish "+name, mark)
		checkPublished(t, c.reg, token, c.label, p)
		// The access each client asks for: npm 10, npm 12 and pnpm send
		// "access": null and yarn 1 none (couchnpm's default, public); yarn berry
		// sends "restricted" for a scoped package (npmjs semantics), and
		// restricted packages are hidden from anonymous callers.
		wantAnon := 200
		if c.label == "berry" && strings.HasPrefix(name, "@") {
			wantAnon = 404
		}
		if res := c.reg.do("GET", "/"+strings.Replace(name, "/", "%2f", 1), "", nil); res.Status != wantAnon {
			t.Errorf("%s published %s: anonymous GET answered %d, want %d", c.label, name, res.Status, wantAnon)
		}
		res := f.npm11(t).mustRunIn("", "view", name+"@"+version, "version", "--prefer-online")
		if got := strings.TrimSpace(res.Stdout); got != version {
			t.Errorf("npm view %s@%s version = %q\n%s", name, version, got, res)
		}
		f.addPublished(p)
	}
}

// converseOpts tune converse.
type converseOpts struct {
	dir     string // working folder ("" = HOME)
	tty     bool   // run under script(1): the client sees a terminal (pnpm login, yarn 1 login)
	eol     string // what ends an answer ("\n"; "\r" for prompt libraries in raw mode)
	web     bool   // accept a web login: play the browser on the loginUrl the client prints
	user    string // for the web login form
	pass    string
	prompts []string
	answers []string
}

// converse runs the client with args and types each answer once its prompt has
// appeared on stdout (lines sent early get lost, see npmUser.answerPrompts). With
// web set, a couchnpm loginUrl in the output (web login) is completed as a
// browser would instead, and no more prompts are answered. It returns the result
// and which flow ran: "prompts", "web" or "" (neither showed up).
func (c *pmClient) converse(o converseOpts, args ...string) (pmResult, string) {
	t := c.t
	t.Helper()
	if o.eol == "" {
		o.eol = "\n"
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := c.command(ctx, o.dir, args...)
	if o.tty {
		if _, err := exec.LookPath("script"); err != nil {
			t.Fatalf("%s %s needs a terminal: script(1) from util-linux (Debian: bsdutils) is missing: %v", c.label, args[0], err)
		}
		quoted := make([]string, len(cmd.Args))
		for i, a := range cmd.Args {
			quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		script := exec.CommandContext(ctx, "script", "-qfec", strings.Join(quoted, " "), "/dev/null")
		script.Dir, script.Env, script.WaitDelay = cmd.Dir, cmd.Env, cmd.WaitDelay
		cmd = script
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out := &promptWriter{notify: make(chan struct{}, 1)}
	var stderr bytes.Buffer
	cmd.Stdout = out
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()

	webRE := regexp.MustCompile(regexp.QuoteMeta(c.reg.URL) + `/-/v1/login/web/[A-Za-z0-9_\-]+`)
	seen := 0
	// next waits for prompt (after what was already seen) or a loginUrl.
	next := func(prompt string) (found bool, loginURL string) {
		for {
			s := ansiRE.ReplaceAllString(out.String(), "")
			if o.web {
				if m := webRE.FindString(s); m != "" {
					return false, m
				}
			}
			if seen > len(s) {
				seen = len(s)
			}
			if j := strings.Index(s[seen:], prompt); j >= 0 {
				seen += j + len(prompt)
				return true, ""
			}
			select {
			case <-out.notify:
			case <-exited:
				return false, ""
			case <-ctx.Done():
				return false, ""
			}
		}
	}
	mode := ""
	for i, prompt := range o.prompts {
		found, loginURL := next(prompt)
		if loginURL != "" {
			mode = "web"
			c.browserLogin(loginURL, o.user, o.pass)
			break
		}
		if !found {
			break
		}
		mode = "prompts"
		io.WriteString(stdin, o.answers[i]+o.eol)
	}
	<-exited
	stdin.Close()
	err = waitErr
	if ctx.Err() != nil {
		err = fmt.Errorf("%s %s: timed out (%v)", c.label, args[0], err)
	}
	return pmResult{Label: c.label, Args: args, Stdout: out.String(), Stderr: stderr.String(), Err: err}, mode
}

// browserLogin does what a person does with npm's loginUrl: open the page, send
// the form with name and password, and see the "Logged in" page.
func (c *pmClient) browserLogin(loginURL, user, password string) {
	t := c.t
	t.Helper()
	if !strings.HasPrefix(loginURL, c.reg.URL+"/") {
		t.Fatalf("%s: loginUrl %q is not on the registry %s", c.label, loginURL, c.reg.URL)
	}
	path := strings.TrimPrefix(loginURL, c.reg.URL)
	page, err := c.reg.tryDo("GET", path, "", nil, 10*time.Second)
	if err != nil || page.Status != 200 || !bytes.Contains(page.Body, []byte(`name="password"`)) {
		t.Fatalf("%s: GET loginUrl %s: %v %s", c.label, path, err, page)
	}
	form := url.Values{"name": {user}, "password": {password}}.Encode()
	req, err := http.NewRequest("POST", loginURL, strings.NewReader(form))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s: POST loginUrl: %v", c.label, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`id="user">`+user+`<`)) {
		t.Fatalf("%s: POST loginUrl: status %d: %s", c.label, resp.StatusCode, tail(string(body), 2000))
	}
}

// checkLoginRequests checks the requests of a login that took mode: prompts
// (couchnpm's legacy login, PUT /-/user/org.couchdb.user:NAME 201; a web-first
// client first got 404 or another 4xx from POST /-/v1/login) or web
// (POST /-/v1/login 200, then the doneUrl until 200).
func checkLoginRequests(t *testing.T, what string, reg *registry, mark int, mode string) {
	t.Helper()
	reqs, _ := reg.requests(mark)
	putUser := regexp.MustCompile(`^/-/user/org\.couchdb\.user:`)
	webLogin := regexp.MustCompile(`^/-/v1/login$`)
	done := regexp.MustCompile(`^/-/v1/login/done/`)
	switch mode {
	case "prompts":
		if !hasRequest(reqs, "PUT", putUser, 201) || hasRequest(reqs, "POST", webLogin, 200) {
			t.Errorf("%s (prompts): want PUT /-/user/org.couchdb.user:NAME 201 and no started web login: %v", what, reqs)
		}
	case "web":
		if !hasRequest(reqs, "POST", webLogin, 200) || !hasRequest(reqs, "GET", done, 200) || hasRequest(reqs, "PUT", putUser, 201) {
			t.Errorf("%s (web): want POST /-/v1/login 200, GET doneUrl until 200, no legacy PUT: %v", what, reqs)
		}
	default:
		t.Errorf("%s: neither prompts nor a loginUrl showed up: %v", what, reqs)
	}
}

// testClientNPM: npm 10 or npm 12 logs in through its real prompts (or, for npm
// 12, the web login when couchnpm offers it), installs the fixture (install, then
// ci from the lockfile with an empty cache), publishes.
func testClientNPM(t *testing.T, f *clientFixture, label, cli string, major int) {
	reg := f.instance(t)
	c := newPMClient(t, reg, label, "node", cli)
	userconfig := filepath.Join(c.home, "npmrc")
	c.writeFile(userconfig, "")
	c.extra = []string{"--registry=" + reg.URL + "/", "--userconfig=" + userconfig,
		"--cache=" + filepath.Join(c.home, "npm-cache"), "--no-audit", "--no-fund", "--no-update-notifier"}

	res := c.mustRun("", "--version")
	if got := strings.TrimSpace(res.Stdout); !strings.HasPrefix(got, fmt.Sprintf("%d.", major)) {
		t.Fatalf("%s --version = %q", label, got)
	}

	t.Run("login", func(t *testing.T) {
		c := c.in(t)
		mark := len(reg.Stderr.Lines())
		args := []string{"login", "--auth-type=legacy"}
		if major == 12 {
			args = []string{"login"} // web-first: POST /-/v1/login; on a 4xx the legacy prompts
		}
		res, mode := c.converse(converseOpts{web: major == 12, user: f.user, pass: f.password,
			prompts: []string{"Username:", "Password:"}, answers: []string{f.user, f.password}}, args...)
		c.logRequests("login ("+mode+")", mark)
		if res.Err != nil {
			t.Fatalf("%s", res)
		}
		token := npmrcToken(t, userconfig, reg)
		if token == "" {
			t.Fatalf("%s login: no _authToken in its userconfig:\n%s", label, res)
		}
		reg.addSecret(token)
		checkLoginRequests(t, label+" "+strings.Join(args, " "), reg, mark, mode)
		reqs, _ := reg.requests(mark)
		webLogin := regexp.MustCompile(`^/-/v1/login$`)
		if major == 10 && (mode != "prompts" || hasRequest(reqs, "POST", webLogin, 404)) {
			t.Errorf("%s login --auth-type=legacy: mode %q, want the prompts and no web login attempt: %v", label, mode, reqs)
		}
		if major == 12 && mode == "prompts" && !hasRequest(reqs, "POST", webLogin, 404) {
			// couchnpm without web login answers 404, and npm 12 falls back to the prompts.
			t.Errorf("%s login (legacy fallback): want POST /-/v1/login 404 before the prompts: %v", label, reqs)
		}
		t.Logf("%s login took the %s flow", label, mode)
		who := c.mustRun("", "whoami")
		if got := strings.TrimSpace(who.Stdout); got != f.user {
			t.Errorf("%s whoami after login = %q, want %q", label, got, f.user)
		}
		if mode == "web" {
			// couchnpm offers web login, so the fallback is out of reach: drive
			// npm 12's legacy login explicitly as well.
			mark := len(reg.Stderr.Lines())
			res, mode := c.converse(converseOpts{prompts: []string{"Username:", "Password:"}, answers: []string{f.user, f.password}},
				"login", "--auth-type=legacy")
			c.logRequests("login --auth-type=legacy", mark)
			if res.Err != nil {
				t.Fatalf("%s", res)
			}
			checkLoginRequests(t, label+" login --auth-type=legacy", reg, mark, mode)
			tok := npmrcToken(t, userconfig, reg)
			if tok == "" || tok == token {
				t.Fatalf("%s login --auth-type=legacy: no new _authToken in its userconfig:\n%s", label, res)
			}
			reg.addSecret(tok)
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	token := npmrcToken(t, userconfig, reg)

	if major == 12 {
		t.Run("no adduser", func(t *testing.T) {
			// npm 12 has no adduser command (an npm fact the report relies on).
			res := c.in(t).run("", "adduser")
			if res.Err == nil {
				t.Errorf("npm 12 adduser succeeded; it was expected to be gone:\n%s", res)
			}
		})
	}

	t.Run("install", func(t *testing.T) {
		c := c.in(t)
		proj := consumer(t)
		mark := len(reg.Stderr.Lines())
		c.mustRun(proj, "install")
		mark = c.logRequests("install", mark)
		mustRunAppLib(t, label, proj)
		lock, err := os.ReadFile(filepath.Join(proj, "package-lock.json"))
		if err != nil || !bytes.Contains(lock, []byte(`"node_modules/plain-dep": {
      "version": "1.1.0"`)) {
			t.Fatalf("%s install: package-lock.json lacks plain-dep 1.1.0 (%v):\n%s", label, err, lock)
		}
		os.RemoveAll(filepath.Join(proj, "node_modules"))
		os.RemoveAll(filepath.Join(c.home, "npm-cache"))
		c.mustRun(proj, "ci")
		c.logRequests("ci", mark)
		mustRunAppLib(t, label+" ci", proj)
	})

	t.Run("publish", func(t *testing.T) {
		version := fmt.Sprintf("%d.0.1", major)
		f.publishBoth(t, c, token, version, func(c *pmClient, dir string) { c.mustRun(dir, "publish") })
	})
}

// testClientPNPM: pnpm with ~/.npmrc holding the registry and the publisher's
// token, and its global config.yaml turning off the default one-day
// minimumReleaseAge (the fixture is minutes old).
func testClientPNPM(t *testing.T, f *clientFixture) {
	reg := f.instance(t)
	c := newPMClient(t, reg, "pnpm", f.tools.pnpm)
	token := f.publisher.token()
	c.writeFile(".npmrc", fmt.Sprintf("registry=%s/\n//127.0.0.1:%d/:_authToken=%s\n", reg.URL, reg.Port, token))
	c.writeFile(".config/pnpm/config.yaml", "minimumReleaseAge: 0\n")

	res := c.mustRun("", "--version")
	if got := strings.TrimSpace(res.Stdout); !strings.HasPrefix(got, "12.") {
		t.Fatalf("pnpm --version = %q", got)
	}
	t.Run("install", func(t *testing.T) {
		c := c.in(t)
		proj := consumer(t)
		mark := len(reg.Stderr.Lines())
		c.mustRun(proj, "install", "--no-frozen-lockfile")
		mark = c.logRequests("install", mark)
		mustRunAppLib(t, "pnpm", proj)
		lock, err := os.ReadFile(filepath.Join(proj, "pnpm-lock.yaml"))
		if err != nil || !bytes.Contains(lock, []byte("plain-dep@1.1.0")) {
			t.Fatalf("pnpm install: pnpm-lock.yaml lacks plain-dep@1.1.0 (%v):\n%s", err, lock)
		}
		os.RemoveAll(filepath.Join(proj, "node_modules"))
		os.RemoveAll(filepath.Join(c.home, ".local", "share", "pnpm"))
		os.RemoveAll(filepath.Join(c.home, ".cache", "pnpm"))
		c.mustRun(proj, "install", "--frozen-lockfile")
		c.logRequests("install --frozen-lockfile", mark)
		mustRunAppLib(t, "pnpm frozen", proj)
	})
	t.Run("login", func(t *testing.T) {
		// A second pnpm user, with only the registry configured. pnpm 12's login is
		// web-first (POST /-/v1/login) and prompts only on a terminal.
		l := newPMClient(t, reg, "pnpm", f.tools.pnpm)
		l.writeFile(".npmrc", fmt.Sprintf("registry=%s/\n", reg.URL))
		mark := len(reg.Stderr.Lines())
		res, mode := l.converse(converseOpts{tty: true, eol: "\r", web: true, user: f.user, pass: f.password,
			prompts: []string{"Username:", "Password:", "Email"}, answers: []string{f.user, f.password, "carol@example.com"}}, "login")
		l.logRequests("login ("+mode+")", mark)
		if res.Err != nil {
			t.Fatalf("%s", res)
		}
		checkLoginRequests(t, "pnpm login", reg, mark, mode)
		// pnpm keeps the token in its own auth.ini, not in .npmrc.
		authIni := filepath.Join(l.home, ".config", "pnpm", "auth.ini")
		tok := npmrcToken(t, authIni, reg)
		if tok == "" {
			b, _ := os.ReadFile(authIni)
			t.Fatalf("pnpm login: no _authToken for the registry in %s: %q\n%s", authIni, b, res)
		}
		reg.addSecret(tok)
		who := l.mustRun("", "whoami")
		if got := strings.TrimSpace(who.Stdout); got != f.user {
			t.Errorf("pnpm whoami after login = %q, want %q", got, f.user)
		}
	})
	t.Run("publish", func(t *testing.T) {
		f.publishBoth(t, c, token, "12.0.2", func(c *pmClient, dir string) { c.mustRun(dir, "publish", "--no-git-checks") })
	})
}

// newYarn1 returns a yarn 1 client. Run as root, yarn 1 takes /usr/local/share
// instead of HOME as its home: it reads and writes /usr/local/share/.yarnrc
// (its login saves the user name there) and reads /usr/local/share/.npmrc, a
// machine-wide state no isolated HOME avoids. A preload that reports a
// non-root uid keeps it in HOME, as it is for an ordinary user.
func newYarn1(t *testing.T, reg *registry, cli string) *pmClient {
	t.Helper()
	c := newPMClient(t, reg, "yarn1", "node", cli)
	if os.Getuid() == 0 {
		preload := filepath.Join(c.home, "yarn1-not-root.js")
		c.writeFile(preload, "process.getuid = () => 65534;\n")
		c.argv = []string{"node", "--require", preload, cli}
	}
	return c
}

// testClientYarn1: yarn classic with ~/.npmrc holding the registry and the token.
func testClientYarn1(t *testing.T, f *clientFixture) {
	reg := f.instance(t)
	c := newYarn1(t, reg, f.tools.yarn1)
	token := f.publisher.token()
	c.writeFile(".npmrc", fmt.Sprintf("registry=%s/\n//127.0.0.1:%d/:_authToken=%s\n", reg.URL, reg.Port, token))
	c.writeFile(".yarnrc", "disable-self-update-check true\n")
	c.env = append(c.env, "YARN_CACHE_FOLDER="+filepath.Join(c.home, "yarn-cache"))

	res := c.mustRun("", "--version")
	if got := strings.TrimSpace(res.Stdout); !strings.HasPrefix(got, "1.22.") {
		t.Fatalf("yarn --version = %q", got)
	}
	t.Run("install", func(t *testing.T) {
		c := c.in(t)
		proj := consumer(t)
		mark := len(reg.Stderr.Lines())
		c.mustRun(proj, "install", "--non-interactive")
		mark = c.logRequests("install", mark)
		mustRunAppLib(t, "yarn1", proj)
		lock, err := os.ReadFile(filepath.Join(proj, "yarn.lock"))
		if err != nil || !bytes.Contains(lock, []byte(reg.URL+"/plain-dep/-/plain-dep-1.1.0.tgz#")) {
			t.Fatalf("yarn install: yarn.lock lacks plain-dep 1.1.0 from %s (%v):\n%s", reg.URL, err, lock)
		}
		os.RemoveAll(filepath.Join(proj, "node_modules"))
		os.RemoveAll(filepath.Join(c.home, "yarn-cache"))
		c.mustRun(proj, "install", "--frozen-lockfile", "--non-interactive")
		c.logRequests("install --frozen-lockfile", mark)
		mustRunAppLib(t, "yarn1 frozen", proj)
	})
	t.Run("publish", func(t *testing.T) {
		f.publishBoth(t, c, token, "1.22.3", func(c *pmClient, dir string) {
			c.mustRun(dir, "publish", "--new-version", "1.22.3", "--no-git-tag-version", "--non-interactive")
		})
	})
	t.Run("login", func(t *testing.T) {
		// yarn 1's `yarn login` only stores a name; its real login is inside
		// `yarn publish` without a token: on a terminal it asks for name, email and
		// password, gets a token, publishes and revokes the token.
		l := newYarn1(t, reg, f.tools.yarn1)
		l.writeFile(".npmrc", fmt.Sprintf("registry=%s/\n", reg.URL))
		l.writeFile(".yarnrc", "disable-self-update-check true\n")
		l.env = append(l.env, "YARN_CACHE_FOLDER="+filepath.Join(l.home, "yarn-cache"))
		p := publishedPkg{name: "made-by-yarn1-login", version: "1.22.4", marker: "yarn1-login-" + randomHex(3)}
		dir := writePackage(t, p.name, p.version, p.marker)
		mark := len(reg.Stderr.Lines())
		res, mode := l.converse(converseOpts{dir: dir, tty: true, eol: "\r",
			prompts: []string{"npm username:", "npm email:", "npm password:"}, answers: []string{f.user, "carol@example.com", f.password}},
			"publish", "--new-version", p.version, "--no-git-tag-version")
		l.logRequests("publish with login ("+mode+")", mark)
		if res.Err != nil || mode != "prompts" || !strings.Contains(res.Stdout, "Revoked login token") {
			t.Fatalf("yarn publish with its login prompts (mode %q):\n%s", mode, res)
		}
		reqs, _ := reg.requests(mark)
		if !hasRequest(reqs, "PUT", regexp.MustCompile(`^/-/user/org\.couchdb\.user:`), 201) ||
			!hasRequest(reqs, "PUT", regexp.MustCompile(`^/`+p.name+`$`), 201) ||
			!hasRequest(reqs, "DELETE", regexp.MustCompile(`^/-/user/token/`), 200) {
			t.Errorf("yarn publish with login: want PUT /-/user/org.couchdb.user:NAME 201, PUT /%s 201, DELETE /-/user/token/TOKEN 200: %v", p.name, reqs)
		}
		checkPublished(t, reg, token, "yarn1", p)
		f.addPublished(p)
	})
}

// testClientBerry: yarn 4 with ~/.yarnrc.yml holding the registry and the token.
// Its default npmMinimalAgeGate (one day) quarantines the minutes-old fixture:
// checked once, then turned off.
func testClientBerry(t *testing.T, f *clientFixture) {
	reg := f.instance(t)
	c := newPMClient(t, reg, "berry", "node", f.tools.berry)
	token := f.publisher.token()
	yarnrc := fmt.Sprintf(`npmRegistryServer: %q
npmAuthToken: %q
unsafeHttpWhitelist: ["127.0.0.1"]
enableTelemetry: false
enableGlobalCache: false
enableImmutableInstalls: false
nodeLinker: node-modules
globalFolder: %q
`, reg.URL, token, filepath.Join(c.home, "berry-global"))
	c.writeFile(".yarnrc.yml", yarnrc)

	res := c.mustRun("", "--version")
	if got := strings.TrimSpace(res.Stdout); !strings.HasPrefix(got, "4.") {
		t.Fatalf("yarn --version = %q", got)
	}
	t.Run("install", func(t *testing.T) {
		c := c.in(t)
		proj := consumer(t)
		// The age gate reads couchnpm's packument `time`: everything is minutes old.
		res := c.run(proj, "install")
		if res.Err == nil || !strings.Contains(res.Stdout, "quarantined") {
			t.Errorf("yarn install with the default npmMinimalAgeGate: want a quarantine error for the minutes-old %s:\n%s", fixtureAppLib, res)
		}
		c.writeFile(".yarnrc.yml", yarnrc+"npmMinimalAgeGate: 0\n")
		os.RemoveAll(filepath.Join(proj, ".yarn"))
		os.Remove(filepath.Join(proj, "yarn.lock"))

		mark := len(reg.Stderr.Lines())
		c.mustRun(proj, "install")
		mark = c.logRequests("install", mark)
		mustRunAppLib(t, "berry", proj)
		lock, err := os.ReadFile(filepath.Join(proj, "yarn.lock"))
		if err != nil || !bytes.Contains(lock, []byte(`"plain-dep@npm:^1.0.0":
  version: 1.1.0`)) {
			t.Fatalf("yarn install: yarn.lock lacks plain-dep 1.1.0 (%v):\n%s", err, lock)
		}
		os.RemoveAll(filepath.Join(proj, "node_modules"))
		os.RemoveAll(filepath.Join(proj, ".yarn"))
		os.RemoveAll(filepath.Join(c.home, "berry-global")) // the global mirror and metadata cache
		c.mustRun(proj, "install", "--immutable")
		c.logRequests("install --immutable", mark)
		mustRunAppLib(t, "berry immutable", proj)
	})
	t.Run("login", func(t *testing.T) {
		// A second berry user, with only the registry configured: yarn npm login
		// (enquirer prompts; Enter is "\r") stores the token in ~/.yarnrc.yml.
		l := newPMClient(t, reg, "berry", "node", f.tools.berry)
		l.writeFile(".yarnrc.yml", fmt.Sprintf("npmRegistryServer: %q\nunsafeHttpWhitelist: [\"127.0.0.1\"]\nenableTelemetry: false\nglobalFolder: %q\n",
			reg.URL, filepath.Join(l.home, "berry-global")))
		mark := len(reg.Stderr.Lines())
		res, mode := l.converse(converseOpts{eol: "\r", web: true, user: f.user, pass: f.password,
			prompts: []string{"Username:", "Password:"}, answers: []string{f.user, f.password}}, "npm", "login")
		l.logRequests("login ("+mode+")", mark)
		if res.Err != nil {
			t.Fatalf("%s", res)
		}
		checkLoginRequests(t, "yarn npm login", reg, mark, mode)
		rc, _ := os.ReadFile(filepath.Join(l.home, ".yarnrc.yml"))
		m := regexp.MustCompile(`npmAuthToken: (\S+)`).FindSubmatch(rc)
		if m == nil || !bytes.Contains(rc, []byte(reg.URL)) {
			t.Fatalf("yarn npm login: no npmAuthToken under %s in ~/.yarnrc.yml:\n%s", reg.URL, res)
		}
		reg.addSecret(strings.Trim(string(m[1]), `"'`))
		who := l.mustRun("", "npm", "whoami")
		if !strings.Contains(who.Stdout, f.user) {
			t.Errorf("yarn npm whoami after login:\n%s", who)
		}
	})
	t.Run("publish", func(t *testing.T) {
		f.publishBoth(t, c, token, "4.0.3", func(c *pmClient, dir string) {
			// yarn npm publish wants the package in its project's lockfile.
			c.mustRun(dir, "install")
			c.mustRun(dir, "npm", "publish")
		})
	})
}
