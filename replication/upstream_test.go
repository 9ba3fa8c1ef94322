package replication

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/couchnpm/couchnpm/registry"
)

// blockingUpstream answers packuments and tarballs only once release is
// closed, counting the requests it has seen.
func blockingUpstream(t *testing.T) (srv *httptest.Server, seen *atomic.Int32, release func()) {
	t.Helper()
	gate := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	seen = &atomic.Int32{}
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
		if strings.HasSuffix(r.URL.Path, ".tgz") {
			w.Write([]byte("tarball bytes"))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		name := strings.TrimPrefix(r.URL.Path, "/")
		w.Write([]byte(`{"name":"` + name + `","versions":{}}`))
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(release)
	return srv, seen, release
}

// Packument and tarball fetches share MaxConcurrent slots; a fetch waiting
// for a slot gives up when its context ends, without reaching the upstream.
func TestUpstreamMaxConcurrent(t *testing.T) {
	srv, seen, release := blockingUpstream(t)
	up, err := NewUpstream(UpstreamConfig{Registry: srv.URL, MaxConcurrent: 1, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}

	first := make(chan error, 1)
	go func() {
		_, err := up.Packument(context.Background(), "holder")
		first <- err
	}()
	for seen.Load() == 0 {
		time.Sleep(5 * time.Millisecond)
	}

	waitFor := func(what string, fetch func(ctx context.Context) error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := fetch(ctx)
		if took := time.Since(start); took > 2*time.Second {
			t.Fatalf("%s waited %s for a slot, past its context", what, took)
		}
		if !registry.IsKind(err, registry.KindUnavailable) {
			t.Fatalf("%s with every slot taken: %v, want unavailable", what, err)
		}
	}
	waitFor("a packument", func(ctx context.Context) error { _, err := up.Packument(ctx, "waiter"); return err })
	waitFor("a tarball", func(ctx context.Context) error {
		_, _, _, err := up.OpenTarball(ctx, srv.URL+"/waiter/-/waiter-1.0.0.tgz")
		return err
	})
	if n := seen.Load(); n != 1 {
		t.Fatalf("the upstream saw %d requests with MaxConcurrent 1, want 1", n)
	}

	release()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	// An open tarball holds its slot until its body is closed.
	body, _, cancel, err := up.OpenTarball(context.Background(), srv.URL+"/t/-/t-1.0.0.tgz")
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	waitFor("a packument while a tarball is open", func(ctx context.Context) error { _, err := up.Packument(ctx, "x"); return err })
	b, _ := io.ReadAll(body)
	body.Close()
	body.Close() // closing twice frees one slot only
	if string(b) != "tarball bytes" {
		t.Fatalf("tarball body %q", b)
	}
	if _, err := up.Packument(context.Background(), "after"); err != nil {
		t.Fatalf("a packument after the tarball was closed: %v", err)
	}
	if got := len(up.slots); got != 0 {
		t.Fatalf("%d slots still taken after every fetch ended", got)
	}
}

// A tarball download is bounded as a whole by TarballTimeout, not only
// until its headers arrive.
func TestUpstreamTarballTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		for range 100 {
			if _, err := w.Write([]byte{'x'}); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-time.After(time.Second):
			case <-r.Context().Done():
				return
			}
		}
	}))
	defer srv.Close()
	up, err := NewUpstream(UpstreamConfig{Registry: srv.URL, TarballTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	body, _, cancel, err := up.OpenTarball(context.Background(), srv.URL+"/d/-/d-1.0.0.tgz")
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	defer body.Close()
	if _, err := io.ReadAll(body); err == nil {
		t.Fatal("a dripping download read to the end")
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("a dripping download was cut after %s, want about 300ms", took)
	}
}

// An upstream packument over the limit is refused as unavailable (503),
// whether it announces its size or streams without end, and one within the
// limit is read.
func TestUpstreamPackumentSizeLimit(t *testing.T) {
	const limit = 4096
	doc := `{"_id":"p","name":"p","versions":{},"description":"` + strings.Repeat("x", 2*limit) + `"}`
	small := `{"_id":"s","name":"s","versions":{}}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/p": // announced size
			w.Header().Set("Content-Length", strconv.Itoa(len(doc)))
			io.WriteString(w, doc)
		case "/chunked": // no size: refused once the limit is read
			w.(http.Flusher).Flush()
			io.WriteString(w, strings.Replace(doc, `"p"`, `"chunked"`, 2))
		default:
			io.WriteString(w, small)
		}
	}))
	defer srv.Close()
	up, err := NewUpstream(UpstreamConfig{Registry: srv.URL, MaxPackumentBytes: limit})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"p", "chunked"} {
		_, err := up.Packument(context.Background(), name)
		if !registry.IsKind(err, registry.KindUnavailable) || !strings.Contains(registry.ReasonOf(err), "limit") {
			t.Errorf("%s over the limit: %v, want unavailable (limit)", name, err)
		}
	}
	if p, err := up.Packument(context.Background(), "s"); err != nil || p.Name != "s" {
		t.Errorf("small packument: %v, %v", p, err)
	}
}

// TestUpstreamCredentialsNeverInMessages: credentials are refused in the
// configured URL, and a tarball URL holding some (an upstream packument may
// name one so) is reported without them.
func TestUpstreamCredentialsNeverInMessages(t *testing.T) {
	if _, err := NewUpstream(UpstreamConfig{Registry: "https://bob:s3cret@upstream.example/"}); err == nil || strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "bob") {
		t.Errorf("NewUpstream with credentials in the URL: %v, want a refusal without them", err)
	}
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	up, err := NewUpstream(UpstreamConfig{Registry: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	target := strings.Replace(srv.URL, "http://", "http://bob:s3cret@", 1) + "/x/-/x-1.0.0.tgz"
	_, _, _, err = up.OpenTarball(context.Background(), target)
	if err == nil {
		t.Fatal("OpenTarball of a missing tarball succeeded")
	}
	for _, msg := range []string{err.Error(), registry.ReasonOf(err)} {
		if strings.Contains(msg, "s3cret") || strings.Contains(msg, "bob") {
			t.Errorf("message %q holds the URL's credentials", msg)
		}
	}
	if !strings.Contains(registry.ReasonOf(err), srv.URL+"/x/-/x-1.0.0.tgz") {
		t.Errorf("reason %q does not name the tarball URL", registry.ReasonOf(err))
	}
}
