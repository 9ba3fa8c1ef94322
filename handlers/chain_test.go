package handlers

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/metrics"
)

// scrape returns the Prometheus exposition of m.
func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

// Every request reaches couchnpm_http_requests_total and the log exactly
// once: routed ones, mux's own 404 and 405, refused dot segments.
func TestChainCountsEveryRequest(t *testing.T) {
	e := newEnv(t, zerolog.InfoLevel)
	m := metrics.New()
	log := zerolog.New(e.logs)
	e.h = mustNew(t, Config{PublicURL: publicURL, MaxPublishBytes: 4096, Observer: m}, fakeServices(t, e.reg, e.accounts, e.pinger), log)
	for _, tc := range []struct {
		method, target string
		status         int
		line           string
	}{
		{"GET", "/foo", 200, `couchnpm_http_requests_total{method="GET",route="/{pkg}",status="200"} 1`},
		{"GET", "/-/ping", 200, `couchnpm_http_requests_total{method="GET",route="/-/ping",status="200"} 1`},
		{"GET", "/a/b/c/d", 404, `couchnpm_http_requests_total{method="GET",route="unmatched",status="404"} 1`},
		{"PATCH", "/foo", 405, `couchnpm_http_requests_total{method="PATCH",route="unmatched",status="405"} 1`},
		{"GET", "/foo/..", 400, `couchnpm_http_requests_total{method="GET",route="unmatched",status="400"} 1`},
	} {
		before := len(e.logs.requestLines(t))
		rec := serve(e, rawRequest(t, tc.method, tc.target, nil))
		if rec.Code != tc.status {
			t.Errorf("%s %s: status %d, want %d", tc.method, tc.target, rec.Code, tc.status)
		}
		if !strings.Contains(scrape(t, m), tc.line) {
			t.Errorf("%s %s: metrics lack %s", tc.method, tc.target, tc.line)
		}
		lines := e.logs.requestLines(t)[before:]
		if len(lines) != 1 || lines[0]["status"] != float64(tc.status) {
			t.Errorf("%s %s: request log lines %v, want one with status %d", tc.method, tc.target, lines, tc.status)
		}
	}
}

// A handler that panics answers 500 JSON without the panic's text or a
// stack, is logged (the panic and one request line) and counted.
func TestChainRecoversPanics(t *testing.T) {
	var logs syncBuffer
	m := metrics.New()
	r := mux.NewRouter()
	r.HandleFunc("/boom/{n}", func(http.ResponseWriter, *http.Request) { panic("secret internals") })
	h := chain(r, nil, zerolog.New(&logs), newFakeAccounts(), nil, m, newLoginLimiter(LoginLimit{}))

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/boom/1", nil))
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status %d", rec.Code)
	}
	var body map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body["error"] != "internal error" {
		t.Errorf("body %q (%v)", rec.Body.String(), err)
	}
	if strings.Contains(rec.Body.String(), "secret") || strings.Contains(rec.Body.String(), "goroutine") {
		t.Errorf("body leaks the panic: %s", rec.Body.String())
	}
	if !strings.Contains(logs.String(), `"message":"handler panicked"`) || !strings.Contains(logs.String(), "secret internals") {
		t.Errorf("panic not logged: %s", logs.String())
	}
	if lines := logs.requestLines(t); len(lines) != 1 || lines[0]["status"] != float64(500) {
		t.Errorf("request lines %v", lines)
	}
	if want := `couchnpm_http_requests_total{method="GET",route="/boom/{n}",status="500"} 1`; !strings.Contains(scrape(t, m), want) {
		t.Errorf("metrics lack %s", want)
	}
}

// http.ErrAbortHandler is counted and logged, then panicked on so that
// net/http cuts the connection (a half-sent tarball must not look whole).
func TestChainAbortIsCountedAndRepanicked(t *testing.T) {
	var logs syncBuffer
	m := metrics.New()
	r := mux.NewRouter()
	r.HandleFunc("/cut", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("half"))
		panic(http.ErrAbortHandler)
	})
	h := chain(r, nil, zerolog.New(&logs), newFakeAccounts(), nil, m, newLoginLimiter(LoginLimit{}))
	func() {
		defer func() {
			if p := recover(); p != http.ErrAbortHandler { //nolint:errorlint // the sentinel is panicked
				t.Errorf("recovered %v, want http.ErrAbortHandler", p)
			}
		}()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/cut", nil))
	}()
	if !strings.Contains(logs.String(), `"message":"response aborted"`) {
		t.Errorf("abort not logged: %s", logs.String())
	}
	if want := `couchnpm_http_requests_total{method="GET",route="/cut",status="200"} 1`; !strings.Contains(scrape(t, m), want) {
		t.Errorf("metrics lack %s", want)
	}
}

// The one wrapper keeps the optional interfaces of the server's writer
// (streaming tarballs flush and use sendfile-capable ReadFrom) and counts
// bytes that go through ReadFrom.
func TestChainWrapperKeepsInterfaces(t *testing.T) {
	var logs syncBuffer
	r := mux.NewRouter()
	r.HandleFunc("/x", func(w http.ResponseWriter, _ *http.Request) {
		_, fl := w.(http.Flusher)
		_, hj := w.(http.Hijacker)
		_, rf := w.(io.ReaderFrom)
		if !fl || !hj || !rf {
			http.Error(w, "lost an interface", http.StatusTeapot)
			return
		}
		if err := http.NewResponseController(w).SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
			http.Error(w, err.Error(), http.StatusTeapot)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = io.Copy(w, strings.NewReader(strings.Repeat("x", 10000)))
	})
	srv := httptest.NewServer(chain(r, nil, zerolog.New(&logs), newFakeAccounts(), nil, nil, newLoginLimiter(LoginLimit{})))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/x")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(b) != 10000 {
		t.Fatalf("status %d, %d bytes: %.100s", resp.StatusCode, len(b), b)
	}
	srv.Close() // the log line is written once the handler returns
	if !strings.Contains(logs.String(), `"bytes":10000`) {
		t.Errorf("bytes not counted: %s", logs.String())
	}
}
