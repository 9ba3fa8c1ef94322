//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// couchnpm doctor (issue 12, point 4): run against the CouchDB a registry
// served from, it passes; with a max_document_size below the largest
// packument, it fails naming that packument, and npm then indeed cannot
// publish another version of it.

// doctorResult is one run of couchnpm doctor.
type doctorResult struct {
	Stdout, Stderr string
	Code           int
}

func (d doctorResult) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", d.Code, d.Stdout, d.Stderr)
}

// runDoctor runs couchnpm doctor against the CouchDB at couchURL (with the
// suite's admin) for prefix.
func runDoctor(t *testing.T, couchURL, prefix string, args ...string) doctorResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, suite.bin, append([]string{"doctor", "--db-prefix", prefix}, args...)...)
	cmd.Env = append(envWithout(os.Environ(), "COUCHDB_", "COUCHNPM_"),
		"COUCHDB_URL="+couchURL, "COUCHDB_USER="+suite.couchUser, "COUCHDB_PASSWORD="+suite.couchPass)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := doctorResult{Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		res.Code = ee.ExitCode()
	case err != nil:
		t.Fatalf("couchnpm doctor: %v", err)
	}
	if len(suite.couchPass) >= 6 && strings.Contains(res.Stdout+res.Stderr, suite.couchPass) {
		t.Errorf("couchnpm doctor printed CouchDB's password")
	}
	return res
}

// doctorFinding is one finding of doctor --json.
type doctorFinding struct {
	Check, Status, Message, Fix string
}

func doctorJSON(t *testing.T, res doctorResult) (failed bool, findings []doctorFinding) {
	t.Helper()
	var v struct {
		Failed   bool            `json:"failed"`
		Findings []doctorFinding `json:"findings"`
	}
	if err := json.Unmarshal([]byte(res.Stdout), &v); err != nil {
		t.Fatalf("doctor --json is not JSON: %v\n%s", err, res)
	}
	return v.Failed, v.Findings
}

// publishLarge publishes name@version with a package.json field of about
// size bytes of text, kept in the version's manifest in the packument (a
// README would not do: the registry cuts the readme to 64 KB).
func publishLarge(u *npmUser, name, version string, size int) npmResult {
	u.t.Helper()
	words := []string{"registry", "packument", "couch", "tarball", "mirror", "version", "integrity", "scope"}
	var b strings.Builder
	r := rand.New(rand.NewPCG(1, 2))
	for b.Len() < size {
		b.WriteString(words[r.IntN(len(words))])
		b.WriteString(" ")
	}
	dir := writePackageWith(u.t, name, version, map[string]any{"notes": b.String()})
	return u.runIn(dir, "publish")
}

// Promise: on a CouchDB a registry has served from, couchnpm doctor finds
// nothing to fail: every check reports, the largest packument is named,
// the exit status is 0; --json says the same.
func TestDoctor(t *testing.T) {
	reg := startRegistry(t, registryOpts{})
	alice := newNPMUser(t, reg, "docalice")
	alice.mustLogin(reg.user("docalice"), "Pw-doc-alice-3e4f5a6b", "docalice@example.com")
	alice.publish("doc-small", "1.0.0")
	if res := publishLarge(alice, "doc-large", "1.0.0", 300<<10); res.Err != nil {
		t.Fatalf("publish doc-large: %s", res)
	}

	res := runDoctor(t, suite.couchURL, reg.Prefix)
	if res.Code != 0 || strings.Contains(res.Stdout, "\nfail ") {
		t.Fatalf("couchnpm doctor on a healthy registry: %s", res)
	}
	for _, check := range []string{"couchdb", "admin", "max_document_size", "max_http_request_size", "design-docs", "replication", "clock", "conflicts", "signing-key", "imported-passwords"} {
		if !strings.Contains(res.Stdout, "  "+check+" ") {
			t.Errorf("no %s line:\n%s", check, res.Stdout)
		}
	}
	couchDB := onCouchDB(t)
	wantServer := "ok    couchdb  "
	if !couchDB {
		wantServer = "warn  couchdb  " // PouchDB Server: the development stand-in
	}
	for _, want := range []string{wantServer, "ok    design-docs", "ok    signing-key", "ok    clock", "ok    conflicts", "ok    admin"} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, res.Stdout)
		}
	}
	t.Logf("couchnpm doctor:\n%s", res.Stdout)

	res = runDoctor(t, suite.couchURL, reg.Prefix, "--json")
	failed, findings := doctorJSON(t, res)
	if res.Code != 0 || failed {
		t.Fatalf("doctor --json: %s", res)
	}
	for _, f := range findings {
		if f.Check == "max_document_size" && couchDB && !strings.Contains(f.Message, "the largest packument, doc-large, is about 3") {
			t.Errorf("max_document_size does not name doc-large (about 300 KB): %+v", f)
		}
	}

	// An account still holding an expired imported hash: a warning (never
	// a failure) naming it with --verbose, and the fix; set-password
	// clears it. _users is shared, so other tests' accounts may show too.
	name := reg.user("docalice")
	doc := userDoc(t, name)
	doc["couchnpm_imported_hash"] = "abJ6pQ0Tr3Ugk" // DES crypt, as Verdaccio 5 writes it
	doc["couchnpm_imported_hash_expires"] = time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	body, _ := json.Marshal(doc)
	if st, b, err := couchDo("PUT", "/_users/"+url.PathEscape("org.couchdb.user:"+name), body, true); err != nil || st != 201 {
		t.Fatalf("adding an expired imported hash: %d %v %s", st, err, b)
	}
	imported := func() doctorFinding {
		t.Helper()
		res := runDoctor(t, suite.couchURL, reg.Prefix, "--json", "--verbose")
		failed, findings := doctorJSON(t, res)
		if res.Code != 0 || failed {
			t.Fatalf("doctor --json --verbose: %s", res)
		}
		for _, f := range findings {
			if f.Check == "imported-passwords" {
				return f
			}
		}
		t.Fatalf("no imported-passwords finding: %s", res)
		return doctorFinding{}
	}
	f := imported()
	if f.Status != "warn" || !strings.Contains(f.Message, "expired") || !strings.Contains(f.Message, name) ||
		!strings.Contains(f.Fix, "couchnpm user set-password NAME") || strings.Contains(f.Message, "abJ6pQ0Tr3Ugk") {
		t.Errorf("imported-passwords with an expired hash: %+v", f)
	}
	reg.addSecret("Pw-doc-alice-new-9z8y")
	if out, err := reg.couchnpmUser("Pw-doc-alice-new-9z8y\n", "set-password", name, "--password-stdin"); err != nil {
		t.Fatalf("couchnpm user set-password: %v\n%s", err, out)
	}
	if f := imported(); strings.Contains(f.Message, name) {
		t.Errorf("imported-passwords after set-password still names %s: %+v", name, f)
	}
}

// Promise: with max_document_size below the largest packument (on a
// CouchDB node of the test's own: _config is node-wide), couchnpm doctor
// fails, names the packument and the setting to raise; npm indeed cannot
// publish another version of it. With a mirror, the expectation for
// upstream packuments fails the check too.
func TestDoctorDocumentSizeTooSmall(t *testing.T) {
	node := startCouchNodes(t, 1, false)[0]
	reg := startRegistry(t, registryOpts{CouchURL: node.URL})
	bob := newNPMUser(t, reg, "docbob")
	bob.mustLogin(reg.user("docbob"), "Pw-doc-bob-7c8d9e0f", "docbob@example.com")
	if res := publishLarge(bob, "doc-huge", "1.0.0", 1536<<10); res.Err != nil {
		t.Fatalf("publish doc-huge: %s", res)
	}
	if res := runDoctor(t, node.URL, reg.Prefix); res.Code != 0 {
		t.Fatalf("doctor before the limit is lowered: %s", res)
	}

	if st, body, err := couchDoAt(node.URL, "PUT", "/_node/_local/_config/couchdb/max_document_size", []byte(`"1048576"`), true); err != nil || st != 200 {
		t.Fatalf("set max_document_size: %d %s %v", st, body, err)
	}
	res := runDoctor(t, node.URL, reg.Prefix)
	if res.Code != 1 {
		t.Fatalf("doctor with max_document_size 1 MB under a 1.5 MB packument: %s", res)
	}
	t.Logf("couchnpm doctor with max_document_size 1 MB:\n%s", res.Stdout)
	for _, want := range []string{
		"fail  max_document_size",
		"[couchdb] max_document_size is 1 MB; the largest packument, doc-huge, is about 1.5 MB",
		"CouchDB refuses every change of doc-huge",
		"fix: set [couchdb] max_document_size = 134217728 (128 MB)",
		"1 failure",
	} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, res)
		}
	}

	// What the doctor foresaw: CouchDB refuses the next version.
	if res := publishLarge(bob, "doc-huge", "1.0.1", 1<<10); res.Err == nil {
		t.Errorf("npm publish doc-huge@1.0.1 succeeded over max_document_size: %s", res)
	} else if !strings.Contains(res.Stdout+res.Stderr, "max_document_size") {
		t.Errorf("npm publish doc-huge@1.0.1 failed without naming max_document_size: %s", res)
	} else {
		t.Logf("npm publish doc-huge@1.0.1 fails as the doctor said:\n%s", res.Stderr)
	}

	// A mirror expects upstream packuments up to 64 MB by default.
	if st, body, err := couchDoAt(node.URL, "PUT", "/_node/_local/_config/couchdb/max_document_size", []byte(`"33554432"`), true); err != nil || st != 200 {
		t.Fatalf("set max_document_size: %d %s %v", st, body, err)
	}
	res = runDoctor(t, node.URL, reg.Prefix, "--mirror", "on-demand", "--upstream", "http://127.0.0.1:9", "--json")
	failed, findings := doctorJSON(t, res)
	if res.Code != 1 || !failed {
		t.Fatalf("doctor of a mirror with max_document_size 32 MB: %s", res)
	}
	found := false
	for _, f := range findings {
		if f.Check == "max_document_size" {
			found = true
			if f.Status != "fail" || !strings.Contains(f.Message, "the mirror expects upstream packuments up to 64 MB") || f.Fix == "" {
				t.Errorf("max_document_size of a mirror: %+v", f)
			}
		}
	}
	if !found {
		t.Errorf("no max_document_size finding: %s", res)
	}
}

// Promise: doctor reads the mirror follower a registry runs (given the
// same flags): ok while an instance follows, a warning naming the fix once
// none holds the lease.
func TestDoctorMirrorFollow(t *testing.T) {
	up := newFakeUpstream(t)
	for i := range 3 {
		up.publish(fmt.Sprintf("docfollow-%d", i), "1.0.0", nil)
	}
	args := mirrorArgs(up, "follow")
	r := startRegistry(t, registryOpts{ExtraArgs: args})
	eventually(t, 30*time.Second, "catch-up", func() (bool, string) {
		st := mirrorStatus(t, r)
		return st["state"] == "following" && num(st["packuments_written"]) >= 3, fmt.Sprint(st)
	})

	res := runDoctor(t, suite.couchURL, r.Prefix, args...)
	if res.Code != 0 || !strings.Contains(res.Stdout, "ok    replication            mirror follower: following, held by ") ||
		!strings.Contains(res.Stdout, "3 packuments written, 0 failures, behind by 0s") {
		t.Fatalf("doctor of a following mirror: %s", res)
	}
	t.Logf("couchnpm doctor of a following mirror:\n%s", res.Stdout)

	r.stop() // releases the lease: no instance follows now
	res = runDoctor(t, suite.couchURL, r.Prefix, args...)
	if res.Code != 0 || !strings.Contains(res.Stdout, "warn  replication") || !strings.Contains(res.Stdout, "no instance holds the follower lease") ||
		!strings.Contains(res.Stdout, "fix: start couchnpm serve with --mirror follow") {
		t.Fatalf("doctor of a mirror nobody follows: %s", res)
	}
}
