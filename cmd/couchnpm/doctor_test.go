package main

import (
	"bytes"
	"encoding/json"
	"net"
	"strings"
	"testing"
)

func TestDoctorCommand(t *testing.T) {
	cleanEnv(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + l.Addr().String() // nothing answers there
	l.Close()

	tests := []struct {
		name       string
		args       []string
		code       int
		stdout     []string
		stderrLine string
	}{
		{name: "unreachable CouchDB fails with the fix", args: []string{"--couchdb-url", down}, code: 1,
			stdout: []string{"CouchDB at " + down + ", databases registry*", "fail  couchdb", "connection refused", "fix: check COUCHDB_URL", "0 ok, 0 warnings, 1 failure"}},
		{name: "serve's flags are doctor's", args: []string{"--couchdb-url", down, "--db-prefix", "acme", "--mirror", "on-demand", "--upstream", "http://upstream.example"}, code: 1,
			stdout: []string{"databases acme*"}},
		{name: "a bad flag is one line", args: []string{"--no-such"}, code: 2,
			stderrLine: "couchnpm: bad flag: flag provided but not defined: -no-such (couchnpm doctor -h lists the flags: serve's and its own)"},
		{name: "a bad configuration is one line", args: []string{"--mirror", "follow"}, code: 2,
			stderrLine: "couchnpm: bad configuration: mirror mode follow needs COUCHNPM_UPSTREAM: --upstream must be an http(s) URL"},
		{name: "a bad expected size", args: []string{"--expect-packument-size", "huge"}, code: 2,
			stderrLine: `couchnpm: bad flag: invalid value "huge" for flag -expect-packument-size: "huge" is not a size (like 100MB) (couchnpm doctor -h lists the flags: serve's and its own)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := doctorMain(tc.args, &stdout, &stderr); code != tc.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout.String(), stderr.String())
			}
			for _, w := range tc.stdout {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout.String())
				}
			}
			if tc.stderrLine != "" && stderr.String() != tc.stderrLine+"\n" {
				t.Errorf("stderr:\n%s\nwant the one line:\n%s", stderr.String(), tc.stderrLine)
			}
		})
	}

	var stdout, stderr bytes.Buffer
	if code := doctorMain([]string{"--couchdb-url", down, "--json"}, &stdout, &stderr); code != 1 {
		t.Errorf("--json: exit %d, want 1", code)
	}
	var v struct {
		CouchDB  string `json:"couchdb"`
		Failed   bool   `json:"failed"`
		Findings []struct {
			Check, Status, Message, Fix string
		} `json:"findings"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &v); err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, stdout.String())
	}
	if v.CouchDB != down || !v.Failed || len(v.Findings) != 1 || v.Findings[0].Check != "couchdb" || v.Findings[0].Status != "fail" || v.Findings[0].Fix == "" {
		t.Errorf("--json: %+v", v)
	}
}
