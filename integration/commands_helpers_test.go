//go:build integration

package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Helpers of the command-surface scenarios (commands_test.go).

// writePackageWith is writePackage with extra package.json fields (keywords,
// author, …).
func writePackageWith(t *testing.T, name, version string, extra map[string]any) string {
	t.Helper()
	dir := writePackage(t, name, version, name+"-"+version)
	path := filepath.Join(dir, "package.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pkg := map[string]any{}
	if err := json.Unmarshal(b, &pkg); err != nil {
		t.Fatal(err)
	}
	for k, v := range extra {
		pkg[k] = v
	}
	if err := os.WriteFile(path, append(mustJSON(pkg), '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// publish publishes name@version as u, failing the test on error.
func (u *npmUser) publish(name, version string, args ...string) {
	u.t.Helper()
	u.mustRunIn(writePackage(u.t, name, version, name+"-"+version), append([]string{"publish"}, args...)...)
}

// withToken returns a new npm user whose userconfig holds token for reg.
func withToken(t *testing.T, reg *registry, label, token string) *npmUser {
	t.Helper()
	u := newNPMUser(t, reg, label)
	line := fmt.Sprintf("//127.0.0.1:%d/:_authToken=%s\n", reg.Port, token)
	if err := os.WriteFile(u.userconfig, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	reg.addSecret(token)
	return u
}

// runWithAudit is runIn without the --no-audit the harness adds, so that
// npm talks to the audit endpoint.
func (u *npmUser) runWithAudit(dir string, args ...string) npmResult {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), npmTimeout)
	defer cancel()
	cmd := u.command(ctx, dir, args...)
	kept := cmd.Args[:0]
	for _, a := range cmd.Args {
		if a != "--no-audit" {
			kept = append(kept, a)
		}
	}
	cmd.Args = kept
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return npmResult{Args: args, Stdout: stdout.String(), Stderr: stderr.String(), Err: err}
}

// mustFail runs npm in dir and fails the test unless npm fails with one of
// the npm error codes in codes.
func (u *npmUser) mustFail(dir string, codes []string, args ...string) npmResult {
	u.t.Helper()
	res := u.runIn(dir, args...)
	if res.Err == nil {
		u.t.Errorf("npm %s as %s succeeded, want failure %v\n%s", strings.Join(args, " "), u.name, codes, res)
		return res
	}
	got := npmErrorCode(res.Stderr)
	for _, c := range codes {
		if got == c {
			return res
		}
	}
	u.t.Errorf("npm %s as %s: error code %q, want one of %v\n%s", strings.Join(args, " "), u.name, got, codes, res)
	return res
}

// packument GETs the full packument (write form, with _rev) with token.
func (r *registry) packument(name, token string) (map[string]any, httpResult) {
	r.t.Helper()
	h := r.do("GET", "/"+strings.Replace(name, "/", "%2f", 1)+"?write=true", token, nil)
	doc := map[string]any{}
	if h.Status == 200 {
		if err := json.Unmarshal(h.Body, &doc); err != nil {
			r.t.Fatalf("packument %s: %v", name, err)
		}
	}
	return doc, h
}

// jsonLines parses npm's --json output into v.
func parseJSON(t *testing.T, res npmResult, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(res.Stdout), v); err != nil {
		t.Fatalf("npm %s: output is not JSON: %v\n%s", strings.Join(res.Args, " "), err, res)
	}
}
