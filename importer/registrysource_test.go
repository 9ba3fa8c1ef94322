package importer

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/couchnpm/couchnpm/registry"
)

// fakeNPM is a registry serving a scope through search, packuments and
// tarballs; tarballs of "cdn" packages are on another host.
type fakeNPM struct {
	mu       sync.Mutex
	srv, cdn *httptest.Server
	token    string              // required for everything but the CDN when set
	auths    map[string][]string // path → Authorization headers seen
	names    []string
	tgz      []byte
}

func newFakeNPM(t *testing.T, token string, names ...string) *fakeNPM {
	f := &fakeNPM{token: token, auths: map[string][]string{}, names: names, tgz: []byte("a tarball")}
	f.cdn = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.seen("cdn"+r.URL.Path, r)
		w.Write(f.tgz)
	}))
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	t.Cleanup(f.cdn.Close)
	return f
}

func (f *fakeNPM) seen(path string, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.auths[path] = append(f.auths[path], r.Header.Get("Authorization"))
}

func (f *fakeNPM) serve(w http.ResponseWriter, r *http.Request) {
	f.seen(r.URL.Path, r)
	if f.token != "" && r.Header.Get("Authorization") != "Bearer "+f.token {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if r.URL.Path == "/-/v1/search" {
		from, _ := strconv.Atoi(r.URL.Query().Get("from"))
		size, _ := strconv.Atoi(r.URL.Query().Get("size"))
		var objs []any
		for i := from; i < len(f.names) && i < from+size; i++ {
			objs = append(objs, map[string]any{"package": map[string]any{"name": f.names[i]}})
		}
		json.NewEncoder(w).Encode(map[string]any{"objects": objs, "total": len(f.names)})
		return
	}
	if strings.HasSuffix(r.URL.Path, ".tgz") {
		w.Write(f.tgz)
		return
	}
	name := strings.TrimPrefix(r.URL.Path, "/")
	host := f.srv.URL
	if strings.Contains(name, "cdn") {
		host = f.cdn.URL
	}
	json.NewEncoder(w).Encode(map[string]any{"name": name,
		"dist-tags":   map[string]string{"latest": "1.0.0"},
		"maintainers": []any{map[string]any{"name": "alice"}},
		"versions": map[string]any{"1.0.0": versionDoc(name, "1.0.0",
			fmt.Sprintf("%s/%s/-/x-1.0.0.tgz", host, name), f.tgz)}})
}

func TestRegistrySource(t *testing.T) {
	ctx := context.Background()
	var many []string
	for i := 0; i < 260; i++ {
		many = append(many, fmt.Sprintf("@acme/p%03d", i))
	}
	f := newFakeNPM(t, "s3cret", append(many, "@other/x", "acme-lookalike", "@acme/cdn")...)
	r, err := NewRegistry(f.srv.URL+"/", "acme", "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	names, err := r.Names(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 261 || names[0] != "@acme/cdn" || names[260] != "@acme/p259" {
		t.Fatalf("names: %d (%v…), want the 261 of @acme over two pages", len(names), names[:2])
	}
	p, err := r.Packument(ctx, "@acme/cdn")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Tarball(ctx, p, "1.0.0"); err != nil {
		t.Fatal(err)
	}
	if !p.Restricted {
		t.Error("a package only the token reads is not marked restricted")
	}
	if got := f.auths["/@acme/cdn"]; !reflect.DeepEqual(got, []string{"Bearer s3cret", ""}) {
		t.Errorf("packument requests' auth %q: want one with the token, one without (is it restricted?)", got)
	}
	if got := f.auths["cdn/@acme/cdn/-/x-1.0.0.tgz"]; !reflect.DeepEqual(got, []string{""}) {
		t.Errorf("the token went to another host: %q", got)
	}
	// Without the token the registry refuses, and the error says so
	// without naming the token.
	r2, _ := NewRegistry(f.srv.URL, "@acme", "")
	if _, err := r2.Names(ctx); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("no token: err %v", err)
	}
	for _, bad := range []string{"ftp://x", "not a url", "http://"} {
		if _, err := NewRegistry(bad, "@acme", ""); err == nil {
			t.Errorf("NewRegistry(%q) accepted", bad)
		}
	}
	if _, err := NewRegistry(f.srv.URL, "@a/b", ""); err == nil {
		t.Errorf("a scope with a slash was accepted")
	}
}

// recordingTarget is a Target that keeps what it was given.
type recordingTarget struct {
	got []*registry.ImportedPackage
}

func (r *recordingTarget) Import(_ context.Context, _ registry.Identity, p *registry.ImportedPackage) (*registry.ImportResult, error) {
	r.got = append(r.got, p)
	res := &registry.ImportResult{Refused: map[string]string{}}
	for _, v := range p.Versions {
		res.Copied = append(res.Copied, v.Version)
	}
	return res, nil
}

type someUsers map[string]bool

func (u someUsers) GetUser(_ context.Context, name string) (*registry.User, error) {
	if u[name] {
		return &registry.User{Name: name}, nil
	}
	return nil, registry.E(registry.KindNotFound, "no user %q", name)
}

func TestImporterRun(t *testing.T) {
	ctx := context.Background()
	f := newFakeNPM(t, "", "@acme/a", "@acme/b")
	src, _ := NewRegistry(f.srv.URL, "@acme", "")
	tests := []struct {
		name   string
		users  someUsers
		owner  string
		want   string // outcome of both packages
		reason string
	}{
		{name: "maintainer who is a user here", users: someUsers{"alice": true}, want: "copied"},
		{name: "maintainer without an account, no owner", users: someUsers{}, want: "refused", reason: "none of its maintainers (alice) is a user here"},
		{name: "maintainer without an account, --owner", users: someUsers{"ops": true}, owner: "ops", want: "copied"},
		{name: "--owner that does not exist", users: someUsers{}, owner: "ghost", want: "refused", reason: "--owner ghost"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			target := &recordingTarget{}
			im := &Importer{Source: src, Target: target, Accounts: tc.users, Operator: registry.Identity{Name: "ops"}, Owner: tc.owner}
			reps, err := im.Run(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range reps {
				if r.Outcome() != tc.want || !strings.Contains(r.Refused[""], tc.reason) {
					t.Errorf("%s: %s %v, want %s %q", r.Name, r.Outcome(), r.Refused, tc.want, tc.reason)
				}
			}
		})
	}
	// A public package read with a token stays public.
	pubSrc, _ := NewRegistry(f.srv.URL, "@acme", "some-token")
	if p, err := pubSrc.Packument(ctx, "@acme/a"); err != nil || p.Restricted {
		t.Fatalf("public package: restricted=%v, %v", p != nil && p.Restricted, err)
	}
	// A tarball that does not match its manifest is refused before any write.
	f2 := newFakeNPM(t, "", "@acme/a")
	src2, _ := NewRegistry(f2.srv.URL, "@acme", "")
	p, _ := src2.Packument(ctx, "@acme/a")
	f2.tgz = []byte("changed")
	target := &recordingTarget{}
	im := &Importer{Source: stalePackument{src2, p}, Target: target, Accounts: someUsers{"alice": true}, Operator: registry.Identity{Name: "ops"}}
	reps, _ := im.Run(ctx)
	if len(reps) != 1 || !strings.Contains(reps[0].Refused["1.0.0"], "does not match") || len(target.got) != 0 {
		t.Fatalf("tampered tarball: %+v, %d writes", reps, len(target.got))
	}
}

// stalePackument serves a packument read before its tarball changed.
type stalePackument struct {
	*Registry
	p *Packument
}

func (s stalePackument) Packument(context.Context, string) (*Packument, error) { return s.p, nil }
