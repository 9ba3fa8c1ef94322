package handlers

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/cache"
	"github.com/couchnpm/couchnpm/internal/testkit"
	"github.com/couchnpm/couchnpm/registry"
	"github.com/couchnpm/couchnpm/registry/registrytest"
)

// newTarballEnv is newRealEnv with the tarball cache on.
func newTarballEnv(t *testing.T) (*httptest.Server, *registrytest.MemStore) {
	t.Helper()
	store := registrytest.NewMemStore()
	reg := newService(t, registry.Config{Store: store, Tarballs: cache.NewTarballs(1<<20, 1<<20)})
	h := mustNew(t, Config{PublicURL: "http://registry.test", MaxPublishBytes: 1 << 20}, realServices(reg, newFakeAccounts(), noTokens(t)), zerolog.Nop())
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, store
}

func TestTarballCacheHTTP(t *testing.T) {
	srv, store := newTarballEnv(t)
	tgz := testkit.Tarball("hot", "1.0.0")
	if resp, b := call(t, "PUT", srv.URL+"/hot", npmPublishBody(t, "hot", "1.0.0", "latest", tgz), "Authorization: Bearer cnpm_alice", "Content-Type: application/json"); resp.StatusCode != 201 {
		t.Fatalf("publish: %d %s", resp.StatusCode, b)
	}
	url := srv.URL + "/hot/-/hot-1.0.0.tgz"
	etag := `"` + registrytest.MD5(tgz) + `"`
	opens := store.Opens

	check := func(t *testing.T, resp *http.Response, b []byte, wantOpens int) {
		t.Helper()
		if resp.StatusCode != 200 || !bytes.Equal(b, tgz) {
			t.Fatalf("%d, %d bytes (want %d)", resp.StatusCode, len(b), len(tgz))
		}
		if got := resp.Header.Get("Content-Length"); got != strconv.Itoa(len(tgz)) {
			t.Errorf("Content-Length %q", got)
		}
		if got := resp.Header.Get("ETag"); got != etag {
			t.Errorf("ETag %q, want %q (strong, the md5)", got, etag)
		}
		if got := resp.Header.Get("Cache-Control"); got != "public, max-age=31536000, immutable" {
			t.Errorf("Cache-Control %q", got)
		}
		if n := opens(); n != wantOpens {
			t.Errorf("%d tarball requests to the store, want %d", n, wantOpens)
		}
	}
	t.Run("cold: streamed from the store, one request", func(t *testing.T) {
		resp, b := call(t, "GET", url, "")
		check(t, resp, b, 1)
	})
	t.Run("hot: from memory, no request", func(t *testing.T) {
		resp, b := call(t, "GET", url, "")
		check(t, resp, b, 1)
	})
	t.Run("revalidation: 304 without a body or a request", func(t *testing.T) {
		for _, inm := range []string{etag, "W/" + etag, `"other", ` + etag, "*"} {
			resp, b := call(t, "GET", url, "", "If-None-Match: "+inm)
			if resp.StatusCode != http.StatusNotModified || len(b) != 0 || resp.Header.Get("ETag") != etag {
				t.Errorf("If-None-Match %s: %d, %d bytes, ETag %q", inm, resp.StatusCode, len(b), resp.Header.Get("ETag"))
			}
		}
		if n := opens(); n != 1 {
			t.Errorf("%d tarball requests", n)
		}
	})
	t.Run("another ETag: the bytes", func(t *testing.T) {
		resp, b := call(t, "GET", url, "", `If-None-Match: "stale"`)
		check(t, resp, b, 1)
	})
	t.Run("HEAD: size and ETag from the packument", func(t *testing.T) {
		resp, b := call(t, "HEAD", url, "")
		if resp.StatusCode != 200 || len(b) != 0 || resp.Header.Get("Content-Length") != strconv.Itoa(len(tgz)) || resp.Header.Get("ETag") != etag {
			t.Errorf("%d, %d bytes, headers %v", resp.StatusCode, len(b), resp.Header)
		}
		if n := opens(); n != 1 {
			t.Errorf("%d tarball requests", n)
		}
	})
	t.Run("a version that does not exist: 404", func(t *testing.T) {
		resp, _ := call(t, "GET", srv.URL+"/hot/-/hot-9.9.9.tgz", "", "If-None-Match: "+etag)
		if resp.StatusCode != 404 {
			t.Errorf("%d", resp.StatusCode)
		}
	})
}
