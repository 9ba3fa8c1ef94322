package handlers

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/registry"
)

// memBodies is a BodyCache keeping bodies by (id, rev, kind).
type memBodies struct {
	mu      sync.Mutex
	bodies  map[string][2][]byte
	renders int
	kinds   []string
}

func (m *memBodies) Body(p *registry.Packument, kind string, render func() ([]byte, error)) ([]byte, []byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.kinds = append(m.kinds, kind)
	key := p.ID + "\x00" + p.Rev + "\x00" + kind
	if b, ok := m.bodies[key]; ok {
		return b[0], b[1], nil
	}
	raw, err := render()
	if err != nil {
		return nil, nil, err
	}
	m.renders++
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	gz.Write(raw)
	gz.Close()
	m.bodies[key] = [2][]byte{raw, buf.Bytes()}
	return raw, buf.Bytes(), nil
}

type observed struct {
	route, method string
	status        int
}

type memObserver struct {
	mu  sync.Mutex
	obs []observed
}

func (o *memObserver) ObserveRequest(route, method string, status int, d time.Duration) {
	o.mu.Lock()
	o.obs = append(o.obs, observed{route, method, status})
	o.mu.Unlock()
}

func TestPackumentBodiesFromCache(t *testing.T) {
	plain := newEnv(t, zerolog.Disabled)
	cached := newEnv(t, zerolog.Disabled)
	bodies := &memBodies{bodies: map[string][2][]byte{}}
	obs := &memObserver{}
	metricsHit := false
	cached.h = mustNew(t, Config{PublicURL: publicURL, MaxPublishBytes: 4096, Bodies: bodies, Observer: obs,
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { metricsHit = true })}, fakeServices(t, cached.reg, cached.accounts, cached.pinger), zerolog.Nop())

	for _, accept := range []string{"application/json", corgiType} {
		want := plain.do(t, http.MethodGet, "/foo", nil, "Accept: "+accept)
		wantStatus(t, want, http.StatusOK)
		for range 3 {
			got := cached.do(t, http.MethodGet, "/foo", nil, "Accept: "+accept, "Accept-Encoding: gzip")
			wantStatus(t, got, http.StatusOK)
			if got.Header().Get("Content-Encoding") != "gzip" || got.Header().Get("Content-Length") == "" {
				t.Fatalf("cached body not sent gzipped with a length: %v", got.Header())
			}
			zr, err := gzip.NewReader(got.Body)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(zr)
			if !bytes.Equal(body, want.Body.Bytes()) {
				t.Fatalf("cached %s body differs from the rendered one", accept)
			}
			if got.Header().Get("ETag") != want.Header().Get("ETag") || got.Header().Get("Content-Type") != want.Header().Get("Content-Type") {
				t.Fatal("headers differ")
			}
		}
		// Without gzip: the raw body.
		got := cached.do(t, http.MethodGet, "/foo", nil, "Accept: "+accept)
		if !bytes.Equal(got.Body.Bytes(), want.Body.Bytes()) || got.Header().Get("Content-Encoding") != "" {
			t.Fatal("identity body differs")
		}
		// HEAD: length of the raw body, no body.
		head := cached.do(t, http.MethodHead, "/foo", nil, "Accept: "+accept, "Accept-Encoding: gzip")
		if head.Body.Len() != 0 || head.Header().Get("Content-Length") != want.Header().Get("Content-Length") {
			t.Fatalf("HEAD: %d bytes, length %s", head.Body.Len(), head.Header().Get("Content-Length"))
		}
	}
	if bodies.renders != 2 {
		t.Fatalf("%d renders, want one per kind", bodies.renders)
	}
	if strings.Join(bodies.kinds[:1], "") != "full" || bodies.kinds[len(bodies.kinds)-1] != "corgi" {
		t.Fatalf("kinds %v", bodies.kinds)
	}

	// A 304 renders nothing.
	n := len(bodies.kinds)
	etag := cached.do(t, http.MethodGet, "/foo", nil).Header().Get("ETag")
	rec := cached.do(t, http.MethodGet, "/foo", nil, "If-None-Match: "+etag)
	wantStatus(t, rec, http.StatusNotModified)
	if len(bodies.kinds) != n+1 {
		t.Fatal("a revalidation asked for a body")
	}

	// Metrics: route templates, not paths; the scrape route is served.
	req := httptest.NewRequest(http.MethodGet, "/-/metrics", nil)
	cached.h.ServeHTTP(httptest.NewRecorder(), req)
	if !metricsHit {
		t.Fatal("GET /-/metrics not served")
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	found := false
	for _, o := range obs.obs {
		if o.route == "/{pkg}" && o.status == http.StatusNotModified {
			found = true
		}
		if strings.Contains(o.route, "foo") || strings.Contains(o.route, "[") {
			t.Fatalf("route label %q is not a bare template", o.route)
		}
	}
	if !found {
		t.Fatalf("no 304 on /{pkg} observed: %v", obs.obs)
	}
}
