//go:build integration

package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// registryOpts tune startRegistry; the zero value is the usual setup.
type registryOpts struct {
	LogFormat string   // --log-format (console|json); empty: the binary's default
	ExtraArgs []string // appended to `couchnpm serve ...`
	Prefix    string   // --db-prefix; empty: a new one (set it to run several instances on one registry)
	CouchURL  string   // the CouchDB to use instead of the suite's (a cluster node, a second site)
}

// registry is one running couchnpm process, reached at URL, talking to CouchDB
// through its own fault Proxy.
type registry struct {
	t      *testing.T
	URL    string // http://127.0.0.1:PORT (no trailing slash)
	Port   int
	Prefix string
	Proxy  *faultProxy
	Stderr *syncBuffer

	cmd    *exec.Cmd
	exited chan struct{}
	killed atomic.Bool

	mu      sync.Mutex
	secrets []string // passwords and tokens that must never show up in the logs
}

// syncBuffer is a goroutine-safe bytes.Buffer for a process's output.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var ansiRE = regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`)

// Lines returns the log lines with ANSI colour codes removed.
func (b *syncBuffer) Lines() []string {
	s := ansiRE.ReplaceAllString(b.String(), "")
	return strings.Split(strings.TrimRight(s, "\n"), "\n")
}

// startRegistry runs the couchnpm binary on a free port with a db prefix unique to
// this test, pointed at CouchDB through a new fault proxy; it waits until GET /-/ping
// answers 200 and stops everything in t.Cleanup. At cleanup it also fails the test
// if the captured stderr contains any registered secret (see addSecret).
func startRegistry(t *testing.T, opts registryOpts) *registry {
	t.Helper()
	couchURL := suite.couchURL
	if opts.CouchURL != "" {
		couchURL = opts.CouchURL
	}
	couch, err := url.Parse(couchURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := newFaultProxy(couch.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)

	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	r := &registry{
		t:      t,
		URL:    fmt.Sprintf("http://127.0.0.1:%d", port),
		Port:   port,
		Prefix: opts.Prefix,
		Proxy:  proxy,
		Stderr: &syncBuffer{},
	}
	if r.Prefix == "" {
		r.Prefix = newPrefix()
	}
	if suite.couchPass != "" && len(suite.couchPass) >= 6 {
		r.addSecret(suite.couchPass)
	}
	args := []string{"serve",
		"--listen", fmt.Sprintf("127.0.0.1:%d", port),
		"--public-url", r.URL,
		"--db-prefix", r.Prefix,
	}
	if opts.LogFormat != "" {
		args = append(args, "--log-format", opts.LogFormat)
	}
	// Sign-up is off by default; the suite signs its users up with npm
	// adduser. ExtraArgs come later and win (--allow-signup=false).
	args = append(args, "--allow-signup=true")
	args = append(args, opts.ExtraArgs...)
	cmd := exec.Command(suite.bin, args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(envWithout(os.Environ(), "COUCHDB_", "COUCHNPM_"),
		"COUCHDB_URL="+proxy.URL(),
		"COUCHDB_USER="+suite.couchUser,
		"COUCHDB_PASSWORD="+suite.couchPass,
	)
	cmd.Stdout = r.Stderr // stdout too: nothing is expected there, but keep it visible
	cmd.Stderr = r.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	r.cmd, r.exited = cmd, exited

	t.Cleanup(func() {
		select {
		case <-exited:
			if r.killed.Load() {
				break
			}
			t.Errorf("couchnpm exited before the end of the test (%v)", cmd.ProcessState)
		default:
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				t.Errorf("couchnpm did not stop within 10s of SIGTERM; killing it")
				cmd.Process.Kill()
				<-exited
			}
		}
		r.checkNoSecrets()
		if t.Failed() {
			if suite.couchDied != nil {
				if d := suite.couchDied(); d != "" {
					t.Logf("NOTE: PouchDB Server (the CouchDB stand-in) has exited: %s", d)
				}
			}
			t.Logf("couchnpm output (%s), secrets redacted:\n%s", r.URL, tail(r.redact(r.Stderr.String()), 12000))
		}
		if !suite.ownCouch && opts.Prefix == "" {
			dropDatabases(t, r.Prefix)
			dropUsers(t, r.Prefix)
		}
	})

	deadline := time.Now().Add(30 * time.Second)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := client.Get(r.URL + "/-/ping")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		select {
		case <-exited:
			t.Fatalf("couchnpm exited during startup (%v); its output is below", cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			status := "no answer"
			if err == nil {
				status = "status " + strconv.Itoa(resp.StatusCode)
			} else {
				status = err.Error()
			}
			t.Fatalf("couchnpm: GET /-/ping not 200 after 30s (last: %s); its output is below", status)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return r
}

// kill stops the process the way a crash does (SIGKILL: no graceful
// shutdown, no lease release) and waits for it to exit.
func (r *registry) kill() {
	r.killed.Store(true)
	r.cmd.Process.Kill()
	<-r.exited
}

// stop ends the process gracefully (SIGTERM) and waits for it to exit.
func (r *registry) stop() {
	r.killed.Store(true)
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(20 * time.Second):
		r.t.Errorf("couchnpm did not stop within 20s of SIGTERM")
		r.cmd.Process.Kill()
		<-r.exited
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "...\n" + s[len(s)-n:]
	}
	return s
}

// envWithout returns env minus the variables whose names start with any of the
// prefixes (case-insensitive).
func envWithout(env []string, prefixes ...string) []string {
	var out []string
outer:
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		for _, p := range prefixes {
			if strings.HasPrefix(strings.ToLower(name), strings.ToLower(p)) {
				continue outer
			}
		}
		out = append(out, kv)
	}
	return out
}

// addSecret registers a password or token that must never appear in couchnpm's logs.
func (r *registry) addSecret(s string) {
	if s == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.secrets = append(r.secrets, s)
}

func (r *registry) checkNoSecrets() {
	r.t.Helper()
	logs := r.Stderr.String()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.secrets {
		if i := strings.Index(logs, s); i >= 0 {
			start := strings.LastIndex(logs[:i], "\n") + 1
			end := strings.Index(logs[i:], "\n")
			if end < 0 {
				end = len(logs) - i
			}
			r.t.Errorf("couchnpm's log contains a secret (%s…): %s", s[:3], strings.ReplaceAll(logs[start:i+end], s, "<SECRET>"))
		}
	}
}

// httpResult is the outcome of a raw HTTP request to the registry.
type httpResult struct {
	Status int
	Header http.Header
	Body   []byte
}

func (h httpResult) String() string {
	return fmt.Sprintf("status %d, body %s", h.Status, tail(string(h.Body), 2000))
}

// do sends a raw HTTP request to the registry (path starts with "/"); token, when
// set, goes in an "Authorization: Bearer" header. Transport errors fail the test.
func (r *registry) do(method, path, token string, body []byte) httpResult {
	r.t.Helper()
	res, err := r.tryDo(method, path, token, body, 30*time.Second)
	if err != nil {
		r.t.Fatalf("%s %s: %v", method, path, err)
	}
	return res
}

func (r *registry) tryDo(method, path, token string, body []byte, timeout time.Duration) (httpResult, error) {
	return r.tryDoAccept(method, path, token, body, "application/json", timeout)
}

// tryDoAccept is tryDo with another Accept header (the abbreviated
// packument's, for instance).
func (r *registry) tryDoAccept(method, path, token string, body []byte, accept string, timeout time.Duration) (httpResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.URL+path, rd)
	if err != nil {
		return httpResult{}, err
	}
	req.Header.Set("Accept", accept)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	// A fresh connection per request: no keep-alive state shared between tests.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return httpResult{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return httpResult{}, err
	}
	return httpResult{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// waitStatus polls GET path (with token, if set) until it answers want, within limit; it returns the
// last result and whether want was seen.
func (r *registry) waitStatus(path, token string, want int, limit time.Duration) (httpResult, bool) {
	deadline := time.Now().Add(limit)
	var last httpResult
	for {
		res, err := r.tryDo("GET", path, token, nil, 5*time.Second)
		if err == nil {
			last = res
			if res.Status == want {
				return res, true
			}
		} else {
			last = httpResult{Status: -1, Body: []byte(err.Error())}
		}
		if time.Now().After(deadline) {
			return last, false
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// redact replaces every registered secret in s.
func (r *registry) redact(s string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, sec := range r.secrets {
		s = strings.ReplaceAll(s, sec, "<SECRET>")
	}
	return s
}

// user returns a username unique to this registry: couchnpm keeps accounts in
// CouchDB's _users database, which all registries on one CouchDB share.
func (r *registry) user(base string) string { return base + "-" + r.Prefix }
