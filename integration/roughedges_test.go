//go:build integration

package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// startupResult is how a couchnpm process that was expected to stop ended.
type startupResult struct {
	code   int // -1: still running at the deadline (then killed)
	took   time.Duration
	output string
}

// runUntilExit runs the couchnpm binary with args against CouchDB (through
// env), waits at most limit for it to exit and reports how it ended.
func runUntilExit(t *testing.T, limit time.Duration, env []string, args ...string) startupResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, suite.bin, args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(envWithout(os.Environ(), "COUCHDB_", "COUCHNPM_"), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	res := startupResult{took: time.Since(start), output: out.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		res.code = -1
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("running couchnpm: %v", err)
	}
	return res
}

// couchEnv is the environment that points couchnpm at the suite's CouchDB.
func couchEnv() []string {
	return []string{"COUCHDB_URL=" + suite.couchURL, "COUCHDB_USER=" + suite.couchUser, "COUCHDB_PASSWORD=" + suite.couchPass}
}

func busyPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l.Addr().String()
}

// The operator's rough edges (issue 12, point 5): every start-up failure
// ends the process within seconds with the real error; version and flag
// errors are what the README says.
func TestStartupFailsFast(t *testing.T) {
	t.Parallel()

	t.Run("busy port", func(t *testing.T) {
		addr := busyPort(t)
		res := runUntilExit(t, 15*time.Second, couchEnv(), "serve", "--listen", addr, "--db-prefix", newPrefix())
		if res.code != 1 || res.took > 5*time.Second {
			t.Errorf("exit %d after %s, want 1 within 5s:\n%s", res.code, res.took, res.output)
		}
		if !strings.Contains(res.output, "cannot listen on "+addr) || !strings.Contains(res.output, "address already in use") {
			t.Errorf("output does not give the listen error:\n%s", res.output)
		}
	})

	t.Run("error after the mirror follower started", func(t *testing.T) {
		// The follower runs under its lease in the background when the
		// profiler's listener fails: serve must still return.
		prefix := newPrefix()
		t.Cleanup(func() {
			if !suite.ownCouch {
				dropDatabases(t, prefix)
			}
		})
		up := newFakeUpstream(t)
		args := append([]string{"serve", "--listen", "127.0.0.1:0", "--db-prefix", prefix, "--pprof", busyPort(t)}, mirrorArgs(up, "follow")...)
		res := runUntilExit(t, 40*time.Second, couchEnv(), args...)
		if res.code != 1 || res.took > 20*time.Second {
			t.Errorf("exit %d after %s, want 1 within 20s (it hung until killed when -1):\n%s", res.code, res.took, res.output)
		}
		if !strings.Contains(res.output, "--pprof") || !strings.Contains(res.output, "address already in use") {
			t.Errorf("output does not give the --pprof error:\n%s", res.output)
		}
		if !strings.Contains(res.output, "mirror enabled") {
			t.Errorf("the mirror did not start before the failure; the test proves nothing:\n%s", res.output)
		}
	})

	t.Run("wrong CouchDB password fails at once", func(t *testing.T) {
		if suite.couchUser == "" {
			t.Skip("CouchDB without credentials")
		}
		// A user that does not exist, never the shared admin: CouchDB 3.4+
		// locks an account out after a few failed logins, for everyone on
		// this machine.
		user := "couchnpm-nobody-" + newPrefix()
		env := []string{"COUCHDB_URL=" + suite.couchURL, "COUCHDB_USER=" + user, "COUCHDB_PASSWORD=Pw-wrong-" + randomHex(4)}
		res := runUntilExit(t, 30*time.Second, env, "serve", "--listen", "127.0.0.1:0", "--db-prefix", newPrefix(), "--couchdb-wait", "60s")
		if res.code != 1 || res.took > 5*time.Second {
			t.Errorf("exit %d after %s, want 1 within 5s:\n%s", res.code, res.took, res.output)
		}
		want := fmt.Sprintf("refused the credentials of user %q (401): check COUCHDB_USER/COUCHDB_PASSWORD", user)
		if !strings.Contains(res.output, want) {
			t.Errorf("output does not say %q:\n%s", want, res.output)
		}
		if strings.Contains(res.output, "Pw-wrong-") {
			t.Errorf("the output shows the password")
		}
	})

	t.Run("unreachable CouchDB says connection refused", func(t *testing.T) {
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		closed := "http://" + l.Addr().String()
		l.Close()
		env := []string{"COUCHDB_URL=" + closed, "COUCHDB_USER=admin", "COUCHDB_PASSWORD=x"}
		res := runUntilExit(t, 30*time.Second, env, "serve", "--listen", "127.0.0.1:0", "--couchdb-wait", "1s")
		if res.code != 1 {
			t.Errorf("exit %d, want 1:\n%s", res.code, res.output)
		}
		if !strings.Contains(res.output, "cannot reach CouchDB at "+closed+": connection refused") || strings.Contains(res.output, "status 502") {
			t.Errorf("output does not say the connection was refused:\n%s", res.output)
		}
	})

	t.Run("bad flag is one line", func(t *testing.T) {
		res := runUntilExit(t, 10*time.Second, nil, "serve", "--listne", "127.0.0.1:1")
		want := "couchnpm: bad flag: flag provided but not defined: -listne (couchnpm serve -h lists the flags)\n"
		if res.code != 2 || res.output != want {
			t.Errorf("exit %d, output %q; want 2 and %q", res.code, res.output, want)
		}
	})

	t.Run("version", func(t *testing.T) {
		for _, arg := range []string{"version", "--version"} {
			res := runUntilExit(t, 10*time.Second, nil, arg)
			if res.code != 0 || !regexp.MustCompile(`^couchnpm \S+, .*go1\.\d+`).MatchString(res.output) || strings.Count(res.output, "\n") != 1 {
				t.Errorf("couchnpm %s: exit %d, output %q", arg, res.code, res.output)
			}
		}
	})
}

// TestOperatorLogs: console logs written to a file carry no colour codes,
// and durations carry their unit.
func TestOperatorLogs(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"console", "json"} {
		t.Run(format, func(t *testing.T) {
			reg := startRegistry(t, registryOpts{LogFormat: format})
			reg.do("GET", "/-/ping", "", nil)
			logs := reg.Stderr.String()
			if strings.Contains(logs, "\x1b[") {
				t.Errorf("colour codes in a log that is not a terminal:\n%q", tail(logs, 2000))
			}
			want := map[string]*regexp.Regexp{
				"console": regexp.MustCompile(`staleness_bound=\d+(\.\d+)?m?s\b`),
				"json":    regexp.MustCompile(`"staleness_bound":"\d+(\.\d+)?m?s"`),
			}[format]
			if !want.MatchString(logs) {
				t.Errorf("no staleness_bound with a unit (%s) in the log:\n%s", want, tail(logs, 3000))
			}
		})
	}
}

var tokenListLineRE = regexp.MustCompile(`Token (\S+)… with id (\S+) name (.+) created`)

// TestTokenListNames: npm token list shows a name for every token.
func TestTokenListNames(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t, registryOpts{})
	const password = "Pw-rough-41c9e0d2"
	reg.addSecret(password)
	user := reg.user("rough")
	npm := newNPMUser(t, reg, "rough")
	npm.mustLogin(user, password, "rough@example.com")
	for _, args := range [][]string{{"--name=ci-deploy"}, nil} {
		res := npm.mustRunIn("", append([]string{"token", "create", "--password=" + password}, args...)...)
		if m := createdTokenRE.FindStringSubmatch(res.Stdout); m != nil {
			reg.addSecret(m[1])
		}
	}
	res := npm.mustRunIn("", "token", "list")
	var names []string
	for _, m := range tokenListLineRE.FindAllStringSubmatch(res.Stdout, -1) {
		names = append(names, m[3])
	}
	want := []string{"(unnamed)", "ci-deploy", "npm login"}
	for _, w := range want {
		found := false
		for _, n := range names {
			found = found || n == w
		}
		if !found {
			t.Errorf("npm token list shows no token named %q (names %q):\n%s", w, names, res)
		}
	}
	if len(names) != 3 || strings.Contains(res.Stdout, "undefined") {
		t.Errorf("npm token list, want 3 named tokens and no 'undefined':\n%s", res)
	}
}

// TestPublishBodyMessages: a publish body with the wrong names, or without
// versions, gets a 400 saying what is wrong.
func TestPublishBodyMessages(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t, registryOpts{})
	npm := newNPMUser(t, reg, "bodies")
	npm.mustLogin(reg.user("bodies"), "Pw-bodies-7e21aa90", "bodies@example.com")
	reg.addSecret("Pw-bodies-7e21aa90")
	tok := npm.token()
	tests := []struct {
		name, path, body string
		want             string
	}{
		{"name and _id name other packages", "/nc-bad", `{"_id":"x1","name":"y2"}`, `the body's \"name\" is \"y2\" but the URL names package \"nc-bad\"`},
		{"_id names another package", "/nc-bad", `{"_id":"x1"}`, `the body's \"_id\" is \"x1\" but the URL names package \"nc-bad\"`},
		{"first publish without versions", "/nc-new", `{"_id":"nc-new","name":"nc-new","dist-tags":{"latest":"1.0.0"}}`, `the publish body has no versions: a first publish needs`},
		{"tarballs without versions", "/nc-new", `{"_id":"nc-new","name":"nc-new","_attachments":{"nc-new-1.0.0.tgz":{"content_type":"application/octet-stream","data":"AA==","length":1}}}`, `the publish body has no versions: \"versions\" must hold`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := reg.do("PUT", tc.path, tok, []byte(tc.body))
			if h.Status != 400 || !strings.Contains(string(h.Body), tc.want) {
				t.Errorf("PUT %s %s: %s; want 400 with %s", tc.path, tc.body, h, tc.want)
			}
		})
	}
}

// TestMirrorStatusAddsUp: after on-demand pulls, the written counts add up
// in the API and couchnpm mirror status prints the same figures.
func TestMirrorStatusAddsUp(t *testing.T) {
	t.Parallel()
	up := newFakeUpstream(t)
	up.publish("rough-a", "1.0.0", nil)
	up.publish("rough-b", "1.0.0", map[string]string{"rough-a": "^1.0.0"})
	r := startRegistry(t, registryOpts{ExtraArgs: mirrorArgs(up, "on-demand")})
	npm := newNPMUser(t, r, "mirror-reader")
	proj := writeProject(t, map[string]string{"rough-b": "1.0.0"})
	npm.mustRunIn(proj, "install")
	if h := r.do("GET", "/rough-missing", "", nil); h.Status != 404 {
		t.Errorf("GET a package upstream lacks: %s, want 404", h)
	}

	st := mirrorStatus(t, r)
	written, follower, onDemand := num(st["packuments_written"]), num(st["follower_written"]), num(st["on_demand_written"])
	if onDemand < 2 || follower != 0 || written != follower+onDemand {
		t.Errorf("packuments_written %v = follower_written %v + on_demand_written %v, want 2+ on demand: %v", written, follower, onDemand, st)
	}
	fetches, _ := st["upstream_fetches"].(map[string]any)
	if num(fetches["not_found"]) < 1 || num(fetches["ok"]) < 4 || num(fetches["errors"]) != num(fetches["no_answer"])+num(fetches["error_status"])+num(fetches["unusable"]) {
		t.Errorf("upstream_fetches %v: want 2 packuments and 2 tarballs ok, 1 not found, errors the sum of their causes", fetches)
	}

	out, err := exec.Command(suite.bin, "mirror", "status", "--url", r.URL).CombinedOutput()
	if err != nil {
		t.Fatalf("couchnpm mirror status: %v\n%s", err, out)
	}
	want := fmt.Sprintf("written:       %.0f packuments = 0 by the follower + %.0f on demand (this instance)", written, onDemand)
	if !strings.Contains(string(out), want) {
		t.Errorf("couchnpm mirror status does not show %q:\n%s", want, out)
	}
	wantFetches := fmt.Sprintf("fetches:       %.0f ok, %.0f not found, %.0f errors", num(fetches["ok"]), num(fetches["not_found"]), num(fetches["errors"]))
	if !strings.Contains(string(out), wantFetches) {
		t.Errorf("couchnpm mirror status does not show %q:\n%s", wantFetches, out)
	}
}

// TestDevdbSharedServer runs scripts/devdb_test.sh: two scripts/run.sh on one
// data folder share one PouchDB Server, and the first to stop does not take
// it from the other.
func TestDevdbSharedServer(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(filepath.Join(suite.repoRoot, "devdb", "node_modules", ".bin", "pouchdb-server")); err != nil {
		t.Skip("PouchDB Server not installed (scripts/devdb.sh install)")
	}
	cmd := exec.Command("bash", filepath.Join(suite.repoRoot, "scripts", "devdb_test.sh"))
	cmd.Env = envWithout(os.Environ(), "COUCHDB_", "DEVDB_")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "devdb_test: ok") {
		t.Errorf("scripts/devdb_test.sh: %v\n%s", err, out)
	}
}

// TestMirrorStatusAddsUpFollow: in follow mode the follower's writes count
// once, as follower_written, not also as on-demand writes (both go through
// Mirror.Store, which used to count them).
func TestMirrorStatusAddsUpFollow(t *testing.T) {
	t.Parallel()
	up := newFakeUpstream(t)
	up.publish("rough-f1", "1.0.0", nil)
	up.publish("rough-f2", "1.0.0", nil)
	r := startRegistry(t, registryOpts{ExtraArgs: mirrorArgs(up, "follow")})
	eventually(t, 30*time.Second, "catch-up", func() (bool, string) {
		st := mirrorStatus(t, r)
		return st["state"] == "following" && num(st["follower_written"]) >= 2, fmt.Sprint(st)
	})
	st := mirrorStatus(t, r)
	if num(st["on_demand_written"]) != 0 || num(st["packuments_written"]) != num(st["follower_written"]) {
		t.Errorf("follower writes counted as on-demand ones: %v", st)
	}
	out, err := exec.Command(suite.bin, "mirror", "status", "--url", r.URL).CombinedOutput()
	want := fmt.Sprintf("written:       %.0f packuments = %.0f by the follower + 0 on demand", num(st["packuments_written"]), num(st["follower_written"]))
	if err != nil || !strings.Contains(string(out), want) {
		t.Errorf("couchnpm mirror status does not show %q: %v\n%s", want, err, out)
	}
}
