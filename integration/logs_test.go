//go:build integration

package integration

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Scenario f: couchnpm's stderr log never contains a password or token, and has
// exactly one request line (method, path, status) per request.
func TestRequestLogs(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"console", "json"} {
		t.Run(format, func(t *testing.T) {
			reg := startRegistry(t, registryOpts{LogFormat: format})
			const password = "Pw-erin-Sec9d41a07"
			erin := newNPMUser(t, reg, "erin")
			erin.mustLogin(reg.user("erin"), password, "erin@example.com")
			tok := erin.token()
			// A second login as the same user (the password goes over Basic auth on the
			// npm 409 path, or in the body).
			again := newNPMUser(t, reg, "erin-again")
			again.mustLogin(reg.user("erin"), password, "")
			tok2 := again.token()
			erin.mustRunIn(writePackage(t, "chatty", "1.0.0", "chatty"), "publish")
			proj := writeProject(t, map[string]string{"chatty": "1.0.0"})
			erin.mustRunIn(proj, "install")
			if res := again.runIn("", "logout"); res.Err != nil { // DELETE /-/user/token/<token>
				t.Errorf("%s", res)
			}

			// Probe requests with unique paths, each must give exactly one log line.
			id := randomHex(4)
			probes := []struct {
				method, path, token string
			}{
				{"GET", "/-/ping", ""},
				{"GET", "/logprobe-" + id + "-a", ""},
				{"GET", "/logprobe-" + id + "-b", tok},
				{"GET", "/chatty", ""},
				{"GET", "/chatty/-/chatty-1.0.0.tgz", ""},
				{"PUT", "/logprobe-" + id + "-c", "made-up-token-" + id},
				{"GET", "/-/whoami", tok},
			}
			type seen struct {
				method, path string
				status       int
			}
			var sent []seen
			before := len(reg.Stderr.Lines())
			for _, p := range probes {
				var body []byte
				if p.method == "PUT" {
					body = []byte(`{}`)
				}
				h := reg.do(p.method, p.path, p.token, body)
				sent = append(sent, seen{p.method, p.path, h.Status})
			}
			reg.addSecret("made-up-token-" + id)

			// Access logs may be written just after the response: allow a moment.
			var lines []string
			deadline := time.Now().Add(3 * time.Second)
			for {
				lines = reg.Stderr.Lines()[before:]
				if countLines(lines, "/logprobe-"+id+"-c") > 0 && countLines(lines, "/-/whoami") > 0 || time.Now().After(deadline) {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			for _, s := range sent {
				var matches []string
				for _, l := range lines {
					if logLineHasPath(l, s.path) {
						matches = append(matches, l)
					}
				}
				if len(matches) != 1 {
					t.Errorf("%s %s (status %d): %d log lines mention the path, want exactly 1:\n%s",
						s.method, s.path, s.status, len(matches), strings.Join(matches, "\n"))
					continue
				}
				l := matches[0]
				if !strings.Contains(l, s.method) || !regexp.MustCompile(`\b`+strconv.Itoa(s.status)+`\b`).MatchString(l) {
					t.Errorf("%s %s (status %d): its log line lacks the method or the status: %s", s.method, s.path, s.status, l)
				}
				if format == "json" {
					var v map[string]any
					if err := json.Unmarshal([]byte(l), &v); err != nil {
						t.Errorf("--log-format json: a request line is not JSON (%v): %s", err, l)
					}
				}
			}
			if format == "json" {
				for _, l := range reg.Stderr.Lines() {
					if strings.TrimSpace(l) == "" {
						continue
					}
					if !json.Valid([]byte(l)) {
						t.Errorf("--log-format json: a log line is not JSON: %s", l)
					}
				}
			}

			// No secret anywhere in the log (also checked for every test at cleanup).
			logs := reg.Stderr.String()
			for what, s := range map[string]string{"password": password, "token": tok, "logged-out token": tok2, "CouchDB password": suite.couchPass} {
				if len(s) >= 6 && strings.Contains(logs, s) {
					t.Errorf("the log contains the %s", what)
				}
			}
			if t.Failed() {
				t.Logf("request lines after the probes:\n%s", strings.Join(lines, "\n"))
			}
		})
	}
}

// logLineHasPath reports whether a log line mentions exactly path (not a longer path
// that starts with it): the path must be followed by a delimiter.
func logLineHasPath(line, path string) bool {
	for i := 0; ; {
		j := strings.Index(line[i:], path)
		if j < 0 {
			return false
		}
		end := i + j + len(path)
		if end == len(line) || strings.ContainsRune(" \"'\t?,}", rune(line[end])) {
			return true
		}
		i = end
	}
}

func countLines(lines []string, path string) int {
	n := 0
	for _, l := range lines {
		if logLineHasPath(l, path) {
			n++
		}
	}
	return n
}
