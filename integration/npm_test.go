//go:build integration

package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// npmTimeout bounds every npm command.
const npmTimeout = 2 * time.Minute

// npmEnv is the host environment without npm_config_* variables (any case), with
// HOME set to home and the update notifier off.
func npmEnv(home string) []string {
	env := envWithout(os.Environ(), "npm_config_", "NO_UPDATE_NOTIFIER")
	out := env[:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "HOME=") {
			out = append(out, kv)
		}
	}
	return append(out, "HOME="+home, "NO_UPDATE_NOTIFIER=1")
}

// npmUser is one npm CLI user: its own HOME, userconfig (.npmrc) and cache.
type npmUser struct {
	t          *testing.T
	reg        *registry
	name       string // label for messages; the account name once logged in
	home       string
	userconfig string
	cache      string
}

func newNPMUser(t *testing.T, reg *registry, label string) *npmUser {
	t.Helper()
	home := t.TempDir()
	u := &npmUser{
		t:          t,
		reg:        reg,
		name:       label,
		home:       home,
		userconfig: filepath.Join(home, "npmrc"),
		cache:      filepath.Join(home, "npm-cache"),
	}
	if err := os.WriteFile(u.userconfig, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return u
}

// npmResult is the outcome of one npm command.
type npmResult struct {
	Args   []string
	Stdout string
	Stderr string
	Err    error
}

func (r npmResult) String() string {
	return fmt.Sprintf("npm %s: err=%v\n--- stdout:\n%s\n--- stderr:\n%s", strings.Join(r.Args, " "), r.Err, tail(r.Stdout, 4000), tail(r.Stderr, 6000))
}

func (u *npmUser) command(ctx context.Context, dir string, args ...string) *exec.Cmd {
	full := append([]string{}, args...)
	full = append(full,
		"--registry="+u.reg.URL+"/",
		"--userconfig="+u.userconfig,
		"--cache="+u.cache,
		"--no-audit", "--no-fund", "--no-update-notifier",
	)
	cmd := exec.CommandContext(ctx, "npm", full...)
	cmd.Dir = dir
	if cmd.Dir == "" {
		cmd.Dir = u.home
	}
	cmd.Env = npmEnv(u.home)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// run executes npm with args in the user's HOME.
func (u *npmUser) run(args ...string) (stdout, stderr string, err error) {
	res := u.runIn("", args...)
	return res.Stdout, res.Stderr, res.Err
}

// runIn executes npm with args in dir (the user's HOME when empty).
func (u *npmUser) runIn(dir string, args ...string) npmResult {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), npmTimeout)
	defer cancel()
	cmd := u.command(ctx, dir, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("npm %s: timed out after %v (%v)", args[0], npmTimeout, err)
	}
	return npmResult{Args: args, Stdout: stdout.String(), Stderr: stderr.String(), Err: err}
}

// mustRunIn is runIn that fails the test when npm fails.
func (u *npmUser) mustRunIn(dir string, args ...string) npmResult {
	u.t.Helper()
	res := u.runIn(dir, args...)
	if res.Err != nil {
		u.t.Fatalf("%s", res)
	}
	return res
}

// promptWriter collects a process's stdout and wakes waiters on every write.
type promptWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	notify chan struct{}
}

func (w *promptWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	n, err := w.buf.Write(p)
	w.mu.Unlock()
	select {
	case w.notify <- struct{}{}:
	default:
	}
	return n, err
}

func (w *promptWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// answerPrompts runs npm with args and types each answer once its prompt has appeared
// on stdout. npm 11 reads prompts (the `read` package) from a piped stdin, but a
// readline interface per prompt: lines sent before their prompt get lost, so each
// line is written only after its prompt shows up.
func (u *npmUser) answerPrompts(args []string, prompts, answers []string) npmResult {
	u.t.Helper()
	return u.answerPromptsWith(args, prompts, func(i int, _ string) string { return answers[i] })
}

// answerPromptsWith is answerPrompts whose answers depend on what npm
// printed so far (stdout): answer(i, stdout) answers prompt i.
func (u *npmUser) answerPromptsWith(args []string, prompts []string, answer func(i int, stdout string) string) npmResult {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), npmTimeout)
	defer cancel()
	cmd := u.command(ctx, "", args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		u.t.Fatal(err)
	}
	out := &promptWriter{notify: make(chan struct{}, 1)}
	var stderr bytes.Buffer
	cmd.Stdout = out
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		u.t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()

	seen := 0 // how much of stdout has been scanned for prompts
	for i, prompt := range prompts {
	wait:
		for {
			s := out.String()
			if j := strings.Index(s[seen:], prompt); j >= 0 {
				seen += j + len(prompt)
				break wait
			}
			select {
			case <-out.notify:
			case <-exited:
				break wait
			case <-ctx.Done():
				break wait
			}
		}
		select {
		case <-exited:
		default:
			io.WriteString(stdin, answer(i, out.String())+"\n")
		}
	}
	stdin.Close()
	<-exited
	err = waitErr
	if ctx.Err() != nil {
		err = fmt.Errorf("npm %s: timed out after %v (%v)", args[0], npmTimeout, err)
	}
	return npmResult{Args: args, Stdout: out.String(), Stderr: stderr.String(), Err: err}
}

// login runs the real `npm login --auth-type=legacy`, answering its Username: and
// Password: prompts. The password and the token it gets are registered as secrets.
func (u *npmUser) login(username, password string) npmResult {
	u.t.Helper()
	u.reg.addSecret(password)
	res := u.answerPrompts([]string{"login", "--auth-type=legacy"},
		[]string{"Username:", "Password:"}, []string{username, password})
	if res.Err == nil {
		u.name = username
		u.reg.addSecret(u.token())
	}
	return res
}

// adduser runs the real `npm adduser --auth-type=legacy`, answering its Username:,
// Password: and Email: prompts.
func (u *npmUser) adduser(username, password, email string) npmResult {
	u.t.Helper()
	u.reg.addSecret(password)
	res := u.answerPrompts([]string{"adduser", "--auth-type=legacy"},
		[]string{"Username:", "Password:", "Email"}, []string{username, password, email})
	if res.Err == nil {
		u.name = username
		u.reg.addSecret(u.token())
	}
	return res
}

// mustLogin is login (or adduser when email is set) that fails the test when npm fails.
func (u *npmUser) mustLogin(username, password, email string) {
	u.t.Helper()
	var res npmResult
	if email != "" {
		res = u.adduser(username, password, email)
	} else {
		res = u.login(username, password)
	}
	if res.Err != nil {
		u.t.Fatalf("%s", res)
	}
	if u.token() == "" {
		u.t.Fatalf("no _authToken in %s after a successful login:\n%s", u.userconfig, res)
	}
}

// token returns the _authToken npm stored for the registry ("" when none).
func (u *npmUser) token() string {
	b, err := os.ReadFile(u.userconfig)
	if err != nil {
		return ""
	}
	key := fmt.Sprintf("//127.0.0.1:%d/:_authToken=", u.reg.Port)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), key); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// npmErrorCode returns the first "npm error code XXX" of npm's stderr ("" when none).
func npmErrorCode(stderr string) string {
	m := regexp.MustCompile(`(?m)^npm (?:error|ERR!) code (\S+)`).FindStringSubmatch(stderr)
	if m == nil {
		return ""
	}
	return m[1]
}

// writePackage writes an npm package (package.json, index.js exporting
// {name, version, marker}, README.md) into a new temp folder and returns it.
func writePackage(t *testing.T, name, version, marker string) string {
	t.Helper()
	dir := t.TempDir()
	pkg := map[string]any{
		"name":        name,
		"version":     version,
		"description": "couchnpm integration test package " + name,
		"main":        "index.js",
		"license":     "MIT",
	}
	files := map[string]string{
		"package.json": string(mustJSON(pkg)) + "\n",
		"index.js": fmt.Sprintf("module.exports = { name: %s, version: %s, marker: %s };\n",
			mustJSON(name), mustJSON(version), mustJSON(marker)),
		"README.md": "# " + name + "\n\nA package published by couchnpm's integration tests.\n",
	}
	for f, content := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// writeProject writes a fresh private project depending on deps (name -> range)
// into a new temp folder and returns it.
func writeProject(t *testing.T, deps map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	pkg := map[string]any{
		"name":         "consumer",
		"version":      "1.0.0",
		"private":      true,
		"dependencies": deps,
	}
	if err := os.WriteFile(filepath.Join(dir, "package.json"), append(mustJSON(pkg), '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// requireInProject runs node in dir to require pkg and returns its exports.
func requireInProject(t *testing.T, dir, pkg string) (map[string]any, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "-e",
		fmt.Sprintf("process.stdout.write(JSON.stringify(require(%s)))", mustJSON(pkg)))
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("node require(%q): %v\n%s", pkg, err, stderr.String())
	}
	var v map[string]any
	if err := json.Unmarshal(out, &v); err != nil {
		return nil, fmt.Errorf("node require(%q): %v: %s", pkg, err, out)
	}
	return v, nil
}

// mustRequire checks that pkg is installed in dir at version and exports marker.
func mustRequire(t *testing.T, dir, pkg, version, marker string) {
	t.Helper()
	v, err := requireInProject(t, dir, pkg)
	if err != nil {
		t.Fatal(err)
	}
	if v["name"] != pkg || v["version"] != version || v["marker"] != marker {
		t.Fatalf("require(%q) in %s = %v, want name %s version %s marker %s", pkg, dir, v, pkg, version, marker)
	}
}
