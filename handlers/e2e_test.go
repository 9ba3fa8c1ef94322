package handlers

import (
	"bytes"
	"context"
	"crypto/sha1" //nolint:gosec
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/internal/testkit"
	"github.com/couchnpm/couchnpm/registry"
	"github.com/couchnpm/couchnpm/registry/registrytest"
)

// npmPublishBody is what npm 10 sends for `npm publish`.
func npmPublishBody(t testing.TB, name, version, tag string, tgz []byte) string {
	t.Helper()
	s1 := sha1.Sum(tgz) //nolint:gosec
	s512 := sha512.Sum512(tgz)
	body := map[string]any{
		"_id": name, "name": name, "description": "desc of " + version,
		"dist-tags": map[string]string{tag: version},
		"versions": map[string]any{version: map[string]any{
			"name": name, "version": version, "description": "desc of " + version,
			"readme": "# " + name + " " + version, "scripts": map[string]string{"test": "node t.js"},
			"_id": name + "@" + version,
			"dist": map[string]any{
				"shasum":    hex.EncodeToString(s1[:]),
				"integrity": "sha512-" + base64.StdEncoding.EncodeToString(s512[:]),
				"tarball":   "http://localhost:4873/" + name + "/-/" + name + "-" + version + ".tgz",
			},
		}},
		"access": nil,
		"_attachments": map[string]any{name + "-" + version + ".tgz": map[string]any{
			"content_type": "application/octet-stream", "data": base64.StdEncoding.EncodeToString(tgz), "length": len(tgz),
		}},
	}
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func newRealEnv(t *testing.T) (*httptest.Server, *registrytest.MemStore, *syncBuffer) {
	t.Helper()
	store := registrytest.NewMemStore()
	logs := &syncBuffer{}
	h := mustNew(t, Config{PublicURL: "http://registry.test", MaxPublishBytes: 1 << 20},
		realServices(newService(t, registry.Config{Store: store, Orgs: registrytest.Orgs(t, "alice", "corp")}), newFakeAccounts(), noTokens(t)), zerolog.New(logs))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, store, logs
}

func call(t *testing.T, method, url, body string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultTransport.RoundTrip(req) // no transparent gzip
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestEndToEndPublishAndInstall(t *testing.T) {
	for _, name := range []string{"e2e-pkg", "@corp/e2e"} {
		t.Run(name, func(t *testing.T) {
			srv, _, _ := newRealEnv(t)
			pathName := strings.Replace(name, "/", "%2f", 1) // npm escapes the scope's slash
			auth := "Authorization: Bearer cnpm_alice"
			tgz1 := testkit.Tarball(name, "1.0.0")
			resp, b := call(t, "PUT", srv.URL+"/"+pathName, npmPublishBody(t, name, "1.0.0", "latest", tgz1), auth, "Content-Type: application/json")
			if resp.StatusCode != 201 {
				t.Fatalf("publish: %d %s", resp.StatusCode, b)
			}
			resp, b = call(t, "PUT", srv.URL+"/"+pathName, npmPublishBody(t, name, "1.0.0", "latest", tgz1), auth, "Content-Type: application/json")
			if resp.StatusCode != 403 {
				t.Errorf("republish: %d %s, want 403", resp.StatusCode, b)
			}
			tgz2 := testkit.Tarball(name, "2.0.0-beta.1")
			resp, b = call(t, "PUT", srv.URL+"/"+pathName, npmPublishBody(t, name, "2.0.0-beta.1", "beta", tgz2), auth, "Content-Type: application/json")
			if resp.StatusCode != 201 {
				t.Fatalf("publish beta: %d %s", resp.StatusCode, b)
			}
			resp, b = call(t, "PUT", srv.URL+"/"+pathName, npmPublishBody(t, name, "3.0.0", "latest", testkit.Tarball(name, "3.0.0")))
			if resp.StatusCode != 401 {
				t.Errorf("anonymous publish: %d %s", resp.StatusCode, b)
			}

			// npm install (logged in) reads the corgi document.
			resp, b = call(t, "GET", srv.URL+"/"+pathName, "", auth, "Accept: application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*")
			if resp.StatusCode != 200 {
				t.Fatalf("corgi: %d %s", resp.StatusCode, b)
			}
			var corgi struct {
				DistTags map[string]string `json:"dist-tags"`
				Versions map[string]struct {
					Dist    struct{ Tarball, Shasum string } `json:"dist"`
					Scripts any                              `json:"scripts"`
				} `json:"versions"`
			}
			if err := json.Unmarshal(b, &corgi); err != nil {
				t.Fatal(err)
			}
			if corgi.DistTags["latest"] != "1.0.0" || corgi.DistTags["beta"] != "2.0.0-beta.1" {
				t.Errorf("dist-tags = %v", corgi.DistTags)
			}
			_, pkg, _ := registry.SplitName(name)
			wantURL := "http://registry.test/" + name + "/-/" + pkg + "-1.0.0.tgz"
			if got := corgi.Versions["1.0.0"].Dist.Tarball; got != wantURL {
				t.Errorf("dist.tarball = %q, want %q", got, wantURL)
			}
			if corgi.Versions["1.0.0"].Scripts != nil {
				t.Errorf("scripts in the corgi document")
			}
			etag := resp.Header.Get("ETag")
			resp, _ = call(t, "GET", srv.URL+"/"+pathName, "", auth, "Accept: application/vnd.npm.install-v1+json", "If-None-Match: "+etag)
			if resp.StatusCode != 304 {
				t.Errorf("revalidation: %d, want 304", resp.StatusCode)
			}

			// The full document keeps the latest's readme at the root.
			resp, b = call(t, "GET", srv.URL+"/"+pathName, "", auth)
			if resp.StatusCode != 200 {
				t.Fatalf("full document: %d %s", resp.StatusCode, b)
			}
			var full map[string]any
			_ = json.Unmarshal(b, &full)
			if full["readme"] != "# "+name+" 1.0.0" || full["description"] != "desc of 1.0.0" {
				t.Errorf("root readme/description = %v / %v", full["readme"], full["description"])
			}

			// Then fetches the tarball from the URL it was given.
			path := strings.TrimPrefix(wantURL, "http://registry.test")
			resp, b = call(t, "GET", srv.URL+path, "", auth)
			if resp.StatusCode != 200 || !bytes.Equal(b, tgz1) {
				t.Fatalf("tarball: %d, %d bytes (want %d)", resp.StatusCode, len(b), len(tgz1))
			}
			if resp.ContentLength != int64(len(tgz1)) {
				t.Errorf("Content-Length = %d", resp.ContentLength)
			}
			resp, b = call(t, "GET", srv.URL+"/"+pathName+"/-/"+pkg+"-2.0.0-beta.1.tgz", "", auth)
			if resp.StatusCode != 200 || !bytes.Equal(b, tgz2) {
				t.Errorf("beta tarball: %d", resp.StatusCode)
			}
			resp, _ = call(t, "GET", srv.URL+"/"+pathName+"/-/"+pkg+"-9.9.9.tgz", "", auth)
			if resp.StatusCode != 404 {
				t.Errorf("missing tarball: %d", resp.StatusCode)
			}
		})
	}
}

func TestEndToEndConcurrentPublishes(t *testing.T) {
	srv, store, _ := newRealEnv(t)
	const n = 6
	bodies := make([]string, n)
	for i := range bodies {
		v := fmt.Sprintf("1.%d.0", i)
		bodies[i] = npmPublishBody(t, "race", v, "latest", testkit.Tarball("race", v))
	}
	var wg sync.WaitGroup
	codes := make([]int, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("PUT", srv.URL+"/race", strings.NewReader(bodies[i]))
			req.Header.Set("Authorization", "Bearer cnpm_alice")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Errorf("publish %d: %v", i, err)
				return
			}
			resp.Body.Close()
			codes[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	for i, c := range codes {
		if c != 201 {
			t.Errorf("publish %d: %d", i, c)
		}
	}
	p, err := store.GetPackument(context.Background(), "race")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Versions) != n {
		t.Errorf("versions = %v, want %d", p.SortedVersions(), n)
	}
}
