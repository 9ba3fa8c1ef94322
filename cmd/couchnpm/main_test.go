package main

import (
	"bytes"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// capture runs f with os.Stdout and os.Stderr redirected and returns what
// it wrote to each.
func capture(t *testing.T, f func()) (stdout, stderr string) {
	t.Helper()
	read := func(r *os.File, into *string, done chan<- struct{}) {
		var b bytes.Buffer
		io.Copy(&b, r)
		*into = b.String()
		close(done)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	oldOut, oldErr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = outW, errW
	d1, d2 := make(chan struct{}), make(chan struct{})
	go read(outR, &stdout, d1)
	go read(errR, &stderr, d2)
	defer func() {
		os.Stdout, os.Stderr = oldOut, oldErr
		outW.Close()
		errW.Close()
		<-d1
		<-d2
	}()
	f()
	return
}

// cleanEnv keeps the environment of the machine running the tests out of
// the configuration.
func cleanEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "COUCHNPM_") || strings.HasPrefix(k, "COUCHDB_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
}

func TestFlagErrorsAreOneLine(t *testing.T) {
	cleanEnv(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"serve", "--no-such-flag"}, "couchnpm: bad flag: flag provided but not defined: -no-such-flag (couchnpm serve -h lists the flags)"},
		{"size that does not parse", []string{"serve", "--max-publish-bytes", "lots"}, `couchnpm: bad flag: invalid value "lots" for flag -max-publish-bytes: "lots" is not a size (like 100MB) (couchnpm serve -h lists the flags)`},
		{"stray argument", []string{"serve", "extra"}, `couchnpm: bad flag: unexpected argument "extra" (couchnpm serve -h lists the flags)`},
		{"duration without unit", []string{"serve", "--couchdb-wait", "10"}, "couchnpm: bad flag: invalid value \"10\" for flag -couchdb-wait: parse error (couchnpm serve -h lists the flags)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var code int
			stdout, stderr := capture(t, func() { code = run(tc.args) })
			if code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			if stderr != tc.want+"\n" {
				t.Errorf("stderr:\n%s\nwant the one line:\n%s", stderr, tc.want)
			}
		})
	}
}

func TestServeHelpShowsHumanUnits(t *testing.T) {
	cleanEnv(t)
	var code int
	stdout, _ := capture(t, func() { code = run([]string{"serve", "-h"}) })
	if code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	for _, want := range []string{"-cache-bytes size", "(default 256MB)", "(default 100MB)", "-couchdb-wait duration", "(default 1m0s)"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("serve -h does not show %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "268435456") || strings.Contains(stdout, "104857600") {
		t.Errorf("serve -h shows a size in bytes:\n%s", stdout)
	}
}

func TestFormatBytes(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{
		{256 << 20, "256MB"},
		{100 << 20, "100MB"},
		{1 << 30, "1GB"},
		{512 << 10, "512KB"},
		{1536 << 20, "1536MB"},
		{1000, "1000"},
		{0, "0"},
	}
	for _, tc := range tests {
		if got := formatBytes(tc.in); got != tc.want {
			t.Errorf("formatBytes(%d) = %q, want %q", tc.in, got, tc.want)
		}
		if tc.in > 0 {
			if back, err := parseBytes(tc.want); err != nil || back != tc.in {
				t.Errorf("parseBytes(%q) = %d, %v, want %d", tc.want, back, err, tc.in)
			}
		}
	}
}

func TestVersion(t *testing.T) {
	old := version
	t.Cleanup(func() { version = old })
	version = "v9.8.7"
	for _, arg := range []string{"version", "--version"} {
		var code int
		stdout, _ := capture(t, func() { code = run([]string{arg}) })
		if code != 0 || !strings.HasPrefix(stdout, "couchnpm v9.8.7") || strings.Count(stdout, "\n") != 1 {
			t.Errorf("couchnpm %s: exit %d, output %q; want one line starting couchnpm v9.8.7", arg, code, stdout)
		}
	}
}

func TestVersionLine(t *testing.T) {
	v := buildVersion{Version: "(devel)", Revision: "0123456789abcdef0123", Time: "2026-12-02T04:00:00Z", Modified: true, Go: "go1.26.8"}
	if got, want := v.line(), "couchnpm (devel), revision 0123456789abcdef0123 (modified), committed 2026-12-02T04:00:00Z, go1.26.8"; got != want {
		t.Errorf("line() = %q, want %q", got, want)
	}
	if got, want := v.short(), "(devel)+0123456789ab-dirty"; got != want {
		t.Errorf("short() = %q, want %q", got, want)
	}
	v = buildVersion{Version: "v0.0.0-20261202040000-0123456789ab+dirty", Revision: "0123456789abcdef0123", Modified: true}
	if got := v.short(); got != v.Version {
		t.Errorf("short() = %q, want the pseudo-version alone", got)
	}
}

// TestServeBusyPortFailsFast: a busy port ends serve at once with the real
// error and a non-zero exit, before any wait for CouchDB (which is not
// even there).
func TestServeBusyPortFailsFast(t *testing.T) {
	cleanEnv(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	nothing, _ := net.Listen("tcp", "127.0.0.1:0")
	nothingAddr := nothing.Addr().String()
	nothing.Close()

	done := make(chan int, 1)
	var stderr string
	start := time.Now()
	go func() {
		_, stderr = capture(t, func() {
			done <- run([]string{"serve", "--listen", busy.Addr().String(), "--couchdb-url", "http://" + nothingAddr, "--couchdb-wait", "60s"})
		})
		close(done)
	}()
	select {
	case code := <-done:
		<-done
		if code != 1 {
			t.Errorf("exit code %d, want 1", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("serve on a busy port still running after 5s")
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("serve took %s to fail", took)
	}
	if !strings.Contains(stderr, "cannot listen on "+busy.Addr().String()) || !strings.Contains(stderr, "address already in use") {
		t.Errorf("stderr does not give the listen error:\n%s", stderr)
	}
}

func TestConsoleLogsHaveNoColourInFiles(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	log := newLoggerTo(&config{LogFormat: "console", LogLevel: "info"}, f)
	log.Info().Dur("staleness_bound", 3*time.Second).Msg("packument cache on")
	b, _ := os.ReadFile(f.Name())
	if bytes.Contains(b, []byte("\x1b[")) {
		t.Errorf("console log written to a file has colour codes: %q", b)
	}
	if !bytes.Contains(b, []byte("staleness_bound=3s")) {
		t.Errorf("duration without its unit: %q", b)
	}

	j, err := os.CreateTemp(t.TempDir(), "log")
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	log = newLoggerTo(&config{LogFormat: "json", LogLevel: "info"}, j)
	log.Info().Dur("retry_in", 200*time.Millisecond).Msg("x")
	b, _ = os.ReadFile(j.Name())
	if !bytes.Contains(b, []byte(`"retry_in":"200ms"`)) {
		t.Errorf("json duration without its unit: %q", b)
	}
}
