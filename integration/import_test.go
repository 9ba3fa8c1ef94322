//go:build integration

package integration

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// importCLI runs `couchnpm import args...` against r's databases, as an
// operator would (straight to CouchDB), and returns its summary (stdout),
// its log (stderr) and its exit status.
func importCLI(t *testing.T, r *registry, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(suite.bin, append(append([]string{"import"}, args...), "--db-prefix", r.Prefix, "--by", "it-operator")...)
	cmd.Env = append(envWithout(cmd.Environ(), "COUCHDB_", "COUCHNPM_"),
		"COUCHDB_URL="+suite.couchURL, "COUCHDB_USER="+suite.couchUser, "COUCHDB_PASSWORD="+suite.couchPass)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("couchnpm import: %v", err)
	}
	return out.String(), errb.String(), code
}

// verdaccio is a Verdaccio 5 (bench/verdaccio, pinned) on a free port,
// with its storage, htpasswd and config in a temp folder.
type verdaccio struct {
	*registry // URL and Port, for npmUser
	dir       string
	config    string
	cmd       *exec.Cmd
	exited    chan struct{}
}

// startVerdaccio starts one whose htpasswd hashes with algorithm (bcrypt,
// as the Verdaccio docs recommend), or, when algorithm is "", with
// Verdaccio 5's default: crypt.
func startVerdaccio(t *testing.T, algorithm string) *verdaccio {
	t.Helper()
	bin := filepath.Join(suite.repoRoot, "bench", "verdaccio", "node_modules", "verdaccio", "bin", "verdaccio")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("Verdaccio is not installed (%v): run npm ci --prefix bench/verdaccio --ignore-scripts (scripts/test.sh does)", err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	config := filepath.Join(dir, "config.yaml")
	algo := ""
	if algorithm != "" {
		algo = "    algorithm: " + algorithm + "\n    rounds: 10\n"
	}
	yaml := `storage: ./storage
auth:
  htpasswd:
    file: ./htpasswd
` + algo + `    max_users: 100
uplinks: {}
packages:
  '**':
    access: $all
    publish: $authenticated
    unpublish: $authenticated
web:
  enable: false
log: { type: stdout, format: pretty, level: warn }
`
	if err := os.WriteFile(config, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	v := &verdaccio{registry: &registry{t: t, URL: fmt.Sprintf("http://127.0.0.1:%d", port), Port: port, Stderr: &syncBuffer{}},
		dir: dir, config: config}
	v.cmd = exec.Command("node", bin, "--config", config, "--listen", fmt.Sprintf("127.0.0.1:%d", port))
	v.cmd.Dir = dir
	v.cmd.Stdout, v.cmd.Stderr = v.Stderr, v.Stderr
	v.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := v.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	v.exited = make(chan struct{})
	go func() { v.cmd.Wait(); close(v.exited) }()
	t.Cleanup(v.stop)
	client := &http.Client{Timeout: 2 * time.Second}
	for deadline := time.Now().Add(60 * time.Second); ; {
		resp, err := client.Get(v.URL + "/-/ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		select {
		case <-v.exited:
			t.Fatalf("Verdaccio exited during startup:\n%s", v.Stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("Verdaccio did not answer /-/ping within 60s:\n%s", v.Stderr.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	return v
}

func (v *verdaccio) stop() {
	select {
	case <-v.exited:
		return
	default:
	}
	v.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-v.exited:
	case <-time.After(10 * time.Second):
		v.cmd.Process.Kill()
		<-v.exited
	}
}

// wantLines fails the test unless out contains each line.
func wantLines(t *testing.T, what, out string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(out, l) {
			t.Errorf("%s does not say %q:\n%s", what, l, out)
		}
	}
}

// npm publishes into a real Verdaccio 5; couchnpm import verdaccio copies
// its storage folder; then the real npm installs, views, logs in with the
// Verdaccio password and publishes against couchnpm, and a second import
// skips everything.
func TestImportVerdaccio(t *testing.T) {
	reg := startRegistry(t, registryOpts{})
	vd := startVerdaccio(t, "bcrypt")

	// Names unique to this run: _users is shared by every test.
	alice, pw := reg.user("vd-alice"), "Verdaccio-pw-"+randomHex(4)
	old := reg.user("vd-old")
	pub := newNPMUser(t, vd.registry, "publisher")
	pub.mustLogin(alice, pw, alice+"@example.com") // npm adduser into Verdaccio
	for _, v := range []string{"1.0.0", "1.1.0"} {
		pub.publish("@acme/widget", v)
	}
	pub.publish("@acme/widget", "2.0.0-beta.1", "--tag", "beta")
	pub.publish("plain-tool", "0.1.0")
	pub.mustRunIn("", "deprecate", "@acme/widget@1.0.0", "use 1.1")
	pub.mustRunIn("", "dist-tag", "add", "@acme/widget@1.0.0", "stable")
	var vdView struct {
		Versions map[string]struct {
			Dist struct{ Integrity string } `json:"dist"`
		} `json:"versions"`
	}
	st, body, err := couchDoAt(vd.URL, "GET", "/@acme%2fwidget", nil, false)
	if err != nil || st != 200 || json.Unmarshal(body, &vdView) != nil {
		t.Fatalf("Verdaccio's packument: %d %v %s", st, err, body)
	}
	// import registry with Verdaccio as the source (its search knows no
	// scope: qualifier; the "@acme/" text finds the scope), into another
	// couchnpm, with Verdaccio's token.
	other := startRegistry(t, registryOpts{})
	ownerOther := newNPMUser(t, other, "owner-other")
	ownerName := other.user("vd-owner")
	ownerOther.mustLogin(ownerName, "Other-pw-"+randomHex(4), ownerName+"@example.com")
	out, logs, code := importCLI(t, other, "registry", vd.URL, "--scope", "@acme", "--token", pub.token(), "--owner", ownerName)
	if code != 0 {
		t.Fatalf("import registry from Verdaccio: exit %d\n%s\n%s", code, out, logs)
	}
	wantLines(t, "the import from Verdaccio's API", out, "packages: 1 copied, 0 skipped (already here), 0 refused", "versions: 3 copied")
	vd.stop()

	// A plain-text entry (Verdaccio accepts {PLAIN}): never imported.
	htpasswd := filepath.Join(vd.dir, "htpasswd")
	hashes, err := os.ReadFile(htpasswd)
	if err != nil || !strings.Contains(string(hashes), alice+":$2") {
		t.Fatalf("htpasswd: %v, want a bcrypt line for %s:\n%d bytes", err, alice, len(hashes))
	}
	f, _ := os.OpenFile(htpasswd, os.O_APPEND|os.O_WRONLY, 0o600)
	fmt.Fprintf(f, "%s:{PLAIN}Plain-pw-1:autocreated 2024-01-02T03:04:05.000Z\n", old)
	f.Close()
	bcryptHash := regexp.MustCompile(regexp.QuoteMeta(alice) + `:(\$2[^:]+)`).FindStringSubmatch(string(hashes))[1]

	storage := filepath.Join(vd.dir, "storage")
	out, logs, code = importCLI(t, reg, "verdaccio", storage, "--config", vd.config, "--owner", alice)
	if code != 1 { // the plain-text user is refused
		t.Fatalf("import: exit %d, want 1 (one user refused)\n%s\n%s", code, out, logs)
	}
	wantLines(t, "the import summary", out,
		"packages: 2 copied, 0 skipped (already here), 0 refused",
		"versions: 4 copied, 0 skipped (already here), 0 refused",
		"users: 1 copied, 0 skipped (already here), 1 refused",
		"user "+alice+": bcrypt hash imported; CouchDB's PBKDF2 replaces it at the first login\n",
		"refused user "+old+": a plain-text password ({PLAIN}): plain-text passwords are never imported")
	wantLines(t, "the import log", logs, `"pkg":"@acme/widget","outcome":"copied","copied":3`, `"pkg":"plain-tool","outcome":"copied"`)
	for _, secret := range []string{bcryptHash, pw, "Plain-pw-1"} {
		if strings.Contains(out+logs, secret) {
			t.Fatalf("the import printed a password or hash (%s…)", secret[:4])
		}
	}

	// npm against couchnpm: the versions, tags and deprecation.
	consumer := newNPMUser(t, reg, "consumer")
	var view struct {
		Versions   []string          `json:"versions"`
		DistTags   map[string]string `json:"dist-tags"`
		Deprecated string            `json:"deprecated"`
		Readme     string            `json:"readme"`
	}
	parseJSON(t, consumer.mustRunIn("", "view", "@acme/widget", "--json"), &view)
	if strings.Join(view.Versions, ",") != "1.0.0,1.1.0,2.0.0-beta.1" ||
		view.DistTags["latest"] != "1.1.0" || view.DistTags["beta"] != "2.0.0-beta.1" || view.DistTags["stable"] != "1.0.0" {
		t.Errorf("npm view: versions %v, dist-tags %v", view.Versions, view.DistTags)
	}
	var dep string
	parseJSON(t, consumer.mustRunIn("", "view", "@acme/widget@1.0.0", "deprecated", "--json"), &dep)
	if dep != "use 1.1" {
		t.Errorf("npm view deprecated: %q", dep)
	}

	// npm install: the tarballs are Verdaccio's, byte for byte.
	proj := t.TempDir()
	os.WriteFile(filepath.Join(proj, "package.json"), []byte(`{"name":"proj","version":"1.0.0","private":true}`), 0o644)
	consumer.mustRunIn(proj, "install", "@acme/widget@1.1.0", "plain-tool")
	lock, err := os.ReadFile(filepath.Join(proj, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	if want := vdView.Versions["1.1.0"].Dist.Integrity; want == "" || !strings.Contains(string(lock), want) {
		t.Errorf("package-lock.json lacks Verdaccio's integrity %q:\n%s", want, lock)
	}
	idx, err := os.ReadFile(filepath.Join(proj, "node_modules", "@acme", "widget", "index.js"))
	if err != nil || !strings.Contains(string(idx), `"@acme/widget-1.1.0"`) {
		t.Errorf("installed @acme/widget: %v %s", err, idx)
	}

	// Signed like a publish: npm audit signatures verifies both.
	if res := consumer.auditSignatures(proj); res.Err != nil || !strings.Contains(res.Stdout, "2 packages have verified registry signatures") {
		t.Errorf("npm audit signatures of the imported packages: %s", res)
	}
	// One audit log entry per package, by the operator.
	auditOut, auditCode := auditCLI(t, reg, "--action", "import", "--json")
	var entries []auditEntry
	if auditCode != 0 || json.Unmarshal([]byte(auditOut), &entries) != nil || len(entries) != 2 {
		t.Fatalf("audit-log --action import: exit %d\n%s\nthe import's log:\n%s", auditCode, auditOut, logs)
	}
	for _, e := range entries {
		if e.Actor != "it-operator" || e.Outcome != "ok" || (e.Package == "@acme/widget") != (e.Target == "1.0.0,1.1.0,2.0.0-beta.1") {
			t.Errorf("audit entry %+v", e)
		}
	}

	// The imported user logs in with the Verdaccio password (a wrong one
	// first: refused) and publishes.
	me := newNPMUser(t, reg, "alice")
	if res := me.login(alice, pw+"-wrong"); res.Err == nil {
		t.Fatalf("login with a wrong password succeeded: %s", res)
	}
	me.mustLogin(alice, pw, "")
	me.publish("@acme/widget", "1.2.0")
	var who string
	parseJSON(t, me.mustRunIn("", "whoami", "--json"), &who)
	if who != alice {
		t.Errorf("npm whoami %q", who)
	}
	// Once adopted, the password is CouchDB's own: a second login works.
	again := newNPMUser(t, reg, "alice-again")
	again.mustLogin(alice, pw, "")

	// Again: everything is here already.
	out, logs, code = importCLI(t, reg, "verdaccio", storage, "--config", vd.config, "--owner", alice)
	if code != 1 {
		t.Fatalf("second import: exit %d\n%s\n%s", code, out, logs)
	}
	wantLines(t, "the second import's summary", out,
		"packages: 0 copied, 2 skipped (already here), 0 refused",
		"versions: 0 copied, 4 skipped (already here), 0 refused",
		"users: 0 copied, 1 skipped (already here), 1 refused")

	// A tarball changed in the storage folder is refused, not copied.
	tgz := filepath.Join(storage, "plain-tool", "plain-tool-0.1.0.tgz")
	if err := os.WriteFile(tgz, []byte("not the published tarball"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, _ = importCLI(t, reg, "verdaccio", storage, "--owner", alice)
	wantLines(t, "the import of a changed tarball", out,
		"packages: 0 copied, 1 skipped (already here), 1 refused",
		"refused plain-tool@0.1.0: dist.shasum")
}

// couchnpm as the source registry: a restricted scoped package, found
// through search with the source's token (--token) and copied into a
// second couchnpm, where it stays restricted and shadows the package of
// that name the second one mirrored from its upstream.
func TestImportRegistry(t *testing.T) {
	up := newFakeUpstream(t)
	src := startRegistry(t, registryOpts{})
	dst := startRegistry(t, registryOpts{ExtraArgs: mirrorArgs(up, "on-demand")})
	owner := newNPMUser(t, src, "owner")
	name, pw := src.user("src-owner"), "Import-src-pw-"+randomHex(4)
	owner.mustLogin(name, pw, name+"@example.com")
	// The owner's user scope (a scope needs an org or to be the user's).
	scope := "@" + name
	pkg := scope + "/one"
	owner.publish(pkg, "1.0.0", "--access", "restricted")
	owner.publish(pkg, "1.1.0")
	owner.publish("other-"+name, "1.0.0") // not in the scope: not copied
	// The upstream of dst has a package of the same name, mirrored there.
	up.publish(pkg, "9.9.9", nil)
	stranger := newNPMUser(t, dst, "stranger")
	var upVersion string
	parseJSON(t, stranger.mustRunIn("", "view", pkg, "version", "--json"), &upVersion)
	if upVersion != "9.9.9" {
		t.Fatalf("before the import, dst serves %s@%q, want the upstream's 9.9.9", pkg, upVersion)
	}

	// Without the token the restricted package is invisible.
	out, logs, code := importCLI(t, dst, "registry", src.URL, "--scope", scope)
	if code != 0 || !strings.Contains(out, "packages: 0 copied, 0 skipped (already here), 0 refused") {
		t.Fatalf("import without a token: exit %d\n%s\n%s", code, out, logs)
	}
	token := owner.token()
	out, logs, code = importCLI(t, dst, "registry", src.URL, "--scope", scope, "--token", token)
	if code != 0 {
		t.Fatalf("import: exit %d\n%s\n%s", code, out, logs)
	}
	wantLines(t, "the import summary", out, "packages: 1 copied, 0 skipped (already here), 0 refused", "versions: 2 copied")
	if strings.Contains(out+logs, token) {
		t.Fatal("the import printed the token")
	}
	// Restricted here too, and private: anonymous npm gets a 404, not the
	// upstream's package. (The packument cache of dst may answer from
	// before the import for up to its staleness bound, 3 s.)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		res := stranger.runIn("", "view", pkg, "version", "--json")
		if res.Err != nil && npmErrorCode(res.Stderr) == "E404" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the import, anonymous npm view %s still answers: %s", pkg, res)
		}
	}
	// The source's maintainer (an account of the CouchDB both share)
	// maintains it here: it installs it and publishes on.
	me := newNPMUser(t, dst, "owner-dst")
	me.mustLogin(name, pw, "")
	var versions []string
	parseJSON(t, me.mustRunIn("", "view", pkg, "versions", "--json"), &versions)
	if strings.Join(versions, ",") != "1.0.0,1.1.0" {
		t.Errorf("npm view versions: %v", versions)
	}
	proj := t.TempDir()
	os.WriteFile(filepath.Join(proj, "package.json"), []byte(`{"name":"proj","version":"1.0.0","private":true}`), 0o644)
	me.mustRunIn(proj, "install", pkg+"@1.1.0")
	me.publish(pkg, "1.2.0")

	// Again, with the version published here meanwhile: all skipped.
	out, logs, code = importCLI(t, dst, "registry", src.URL, "--scope", scope, "--token", token)
	if code != 0 {
		t.Fatalf("second import: exit %d\n%s\n%s", code, out, logs)
	}
	wantLines(t, "the second import's summary", out, "packages: 0 copied, 1 skipped (already here), 0 refused", "versions: 0 copied, 2 skipped")
}
