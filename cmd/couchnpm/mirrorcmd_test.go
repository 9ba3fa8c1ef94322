package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestMirrorStatusShowsTheCounts: couchnpm mirror status prints the same
// figures as the API, and they add up.
func TestMirrorStatusShowsTheCounts(t *testing.T) {
	const body = `{"mode":"on-demand","state":"on-demand","upstream":"http://up.example","instance":"a",
		"packuments_written":164,"follower_written":0,"on_demand_written":164,"packuments_deleted":0,"failures":0,"last_failures":[],
		"tarball_cache":{"hits":3,"misses":2,"integrity_failures":0},
		"upstream_fetches":{"ok":170,"not_found":4,"errors":3,"no_answer":1,"error_status":2,"unusable":0}}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/-/mirror/status" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, body)
	}))
	defer srv.Close()
	var code int
	stdout, stderr := capture(t, func() { code = run([]string{"mirror", "status", "--url", srv.URL}) })
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"written:       164 packuments = 0 by the follower + 164 on demand (this instance)",
		"fetches:       170 ok, 4 not found, 3 errors (1 no answer, 2 error status, 0 unusable)",
		"tarball cache: 3 hits, 2 misses, 0 integrity failures",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("mirror status output lacks %q:\n%s", want, stdout)
		}
	}
}

// Without an admin's token, the command says how to see what the server hid.
func TestMirrorStatusSaysWhatIsHidden(t *testing.T) {
	const hint = "set COUCHNPM_TOKEN to an admin's token"
	for _, tc := range []struct {
		name, body string
		hint       bool
	}{
		{"hidden", `{"mode":"follow","state":"following","upstream":"(shown to administrators)","instance":"(shown to administrators)","last_failures":[]}`, true},
		{"an admin's view", `{"mode":"follow","state":"following","upstream":"http://up.example","instance":"a","last_failures":[]}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, tc.body) }))
			defer srv.Close()
			var code int
			stdout, stderr := capture(t, func() { code = run([]string{"mirror", "status", "--url", srv.URL}) })
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if got := strings.Contains(stdout, hint); got != tc.hint {
				t.Errorf("hint shown %v, want %v:\n%s", got, tc.hint, stdout)
			}
		})
	}
}

func TestMirrorStatusBadFlagIsOneLine(t *testing.T) {
	var code int
	_, stderr := capture(t, func() { code = run([]string{"mirror", "status", "--nope"}) })
	if code != 2 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "bad flag") {
		t.Errorf("exit %d, stderr %q; want 2 and one line", code, stderr)
	}
}

// With COUCHNPM_TOKEN set, the status commands send it (an admin sees the
// peers' addresses); without, they ask anonymously.
func TestStatusCommandsSendTheToken(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get("Authorization"))
		io.WriteString(w, `{"peers":[{"peer":"peer 1","db":"npm","state":"running","docs_written":1}]}`)
	}))
	defer srv.Close()
	for _, cmd := range []string{"replication", "mirror"} {
		got = nil
		for _, tok := range []string{"", "cnpm_admin"} {
			t.Setenv("COUCHNPM_TOKEN", tok)
			var code int
			_, stderr := capture(t, func() { code = run([]string{cmd, "status", "--url", srv.URL}) })
			if code != 0 {
				t.Fatalf("%s status: exit %d: %s", cmd, code, stderr)
			}
		}
		if len(got) != 2 || got[0] != "" || got[1] != "Bearer cnpm_admin" {
			t.Errorf("%s status: Authorization headers sent: %q", cmd, got)
		}
	}
}
