package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

func newTestService(store PackumentStore) *Service {
	return newTestServiceWith(Config{Store: store})
}

// newTestServiceWith is newTestService built from cfg (see newServiceFor).
func newTestServiceWith(cfg Config) *Service {
	s := newServiceFor(cfg)
	s.now = func() time.Time { return t0 }
	s.backoff = func(int) time.Duration { return time.Millisecond } // no real waits in unit tests
	return s
}

var aliceID = Identity{Name: "alice", Email: "alice@example.com"}

func TestServicePublishAndRead(t *testing.T) {
	store := newMemStore()
	s := newTestServiceWith(Config{Store: store, Orgs: orgDocs("alice", "s")})
	ctx := t.Context()
	tgz := makeTarball(t, "@s/p", "1.0.0")
	if err := s.Publish(ctx, aliceID, "@s/p", buildBody(t, "@s/p", map[string]string{"latest": "1.0.0"}, pubVersion{version: "1.0.0", tgz: tgz})); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	p, err := s.Packument(ctx, aliceID, "@s/p")
	if err != nil {
		t.Fatalf("Packument: %v", err)
	}
	if p.DistTags["latest"] != "1.0.0" || p.Rev != "1-rev" || !p.HasMaintainer("alice") {
		t.Errorf("stored: tags %v rev %q maintainers %v", p.DistTags, p.Rev, p.Maintainers)
	}
	for _, file := range []string{"p-1.0.0.tgz", "@s/p-1.0.0.tgz"} {
		tb, err := s.Tarball(ctx, aliceID, "@s/p", file, false)
		if err != nil {
			t.Fatalf("Tarball(%s): %v", file, err)
		}
		got, _ := io.ReadAll(tb.Body)
		tb.Body.Close()
		if string(got) != string(tgz) || tb.Size != int64(len(tgz)) {
			t.Errorf("Tarball(%s): %d bytes, size %d; want %d", file, len(got), tb.Size, len(tgz))
		}
		head, err := s.Tarball(ctx, aliceID, "@s/p", file, true)
		if err != nil || head.Body != nil || head.Size != int64(len(tgz)) {
			t.Errorf("Tarball head(%s) = %+v, %v", file, head, err)
		}
	}
}

func TestServiceReadErrors(t *testing.T) {
	store := newMemStore()
	s := newTestService(store)
	ctx := t.Context()
	if err := s.Publish(ctx, aliceID, "foo", buildBody(t, "foo", nil, pubVersion{version: "1.0.0"})); err != nil {
		t.Fatal(err)
	}
	gone := NewPackument("gone")
	gone.Unpublished = json.RawMessage(`{"time":"2020-01-01T00:00:00.000Z"}`)
	gone.Time["1.0.0"] = "2019-01-01T00:00:00.000Z"
	if _, err := store.PutPackument(ctx, gone); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		run  func() error
		kind Kind
	}{
		{"unknown package", func() error { _, err := s.Packument(ctx, aliceID, "nope"); return err }, KindNotFound},
		{"tombstone", func() error { _, err := s.Packument(ctx, aliceID, "gone"); return err }, KindNotFound},
		{"invalid name", func() error { _, err := s.Packument(ctx, aliceID, "../x"); return err }, KindInvalid},
		{"tarball of a missing version", func() error { _, err := s.Tarball(ctx, aliceID, "foo", "foo-2.0.0.tgz", false); return err }, KindNotFound},
		{"tarball of another package", func() error { _, err := s.Tarball(ctx, aliceID, "foo", "bar-1.0.0.tgz", false); return err }, KindNotFound},
		{"tarball traversal", func() error { _, err := s.Tarball(ctx, aliceID, "foo", "../foo-1.0.0.tgz", false); return err }, KindNotFound},
		{"tarball with an invalid package name", func() error { _, err := s.Tarball(ctx, aliceID, "..", "..-1.0.0.tgz", true); return err }, KindInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { wantKind(t, tc.run(), tc.kind) })
	}
}

func TestServicePublishRefusals(t *testing.T) {
	ctx := t.Context()
	tests := []struct {
		name string
		user Identity
		pkg  string
		body func(t *testing.T) *PublishBody
		kind Kind
	}{
		{"anonymous", Identity{}, "foo", func(t *testing.T) *PublishBody { return buildBody(t, "foo", nil, pubVersion{version: "1.0.0"}) }, KindUnauthorized},
		{"read-only token", Identity{Name: "alice", ReadOnly: true}, "foo", func(t *testing.T) *PublishBody { return buildBody(t, "foo", nil, pubVersion{version: "1.0.0"}) }, KindForbidden},
		{"invalid name", aliceID, "_foo", func(t *testing.T) *PublishBody { return buildBody(t, "_foo", nil, pubVersion{version: "1.0.0"}) }, KindInvalid},
		{"uppercase new name", aliceID, "Foo", func(t *testing.T) *PublishBody { return buildBody(t, "Foo", nil, pubVersion{version: "1.0.0"}) }, KindInvalid},
		{"bad body", aliceID, "foo", func(t *testing.T) *PublishBody {
			return buildBody(t, "foo", nil, pubVersion{version: "1.0.0", dist: map[string]any{"shasum": "00"}})
		}, KindInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := newMemStore()
			err := newTestService(store).Publish(ctx, tc.user, tc.pkg, tc.body(t))
			wantKind(t, err, tc.kind)
			if store.puts != 0 {
				t.Errorf("%d writes for a refused publish", store.puts)
			}
		})
	}
}

func TestServicePublishRepublishForbidden(t *testing.T) {
	store := newMemStore()
	s := newTestService(store)
	body := func() *PublishBody { return buildBody(t, "foo", nil, pubVersion{version: "1.0.0"}) }
	if err := s.Publish(t.Context(), aliceID, "foo", body()); err != nil {
		t.Fatal(err)
	}
	wantKind(t, s.Publish(t.Context(), aliceID, "foo", body()), KindForbidden)
	wantKind(t, s.Publish(t.Context(), Identity{Name: "bob"}, "foo", buildBody(t, "foo", nil, pubVersion{version: "2.0.0"})), KindForbidden)
}

func TestServicePublishRetriesConflict(t *testing.T) {
	store := newMemStore()
	store.failFirstPuts = 1
	s := newTestService(store)
	if err := s.Publish(t.Context(), aliceID, "foo", buildBody(t, "foo", nil, pubVersion{version: "1.0.0"})); err != nil {
		t.Fatalf("Publish after one conflict: %v", err)
	}
	if store.puts != 2 {
		t.Errorf("puts = %d, want 2 (one conflict, one retry)", store.puts)
	}
	if p := store.stored(t, "foo"); p.Versions["1.0.0"] == nil {
		t.Errorf("version not stored")
	}
}

func TestServicePublishGivesUpAfterMaxAttempts(t *testing.T) {
	store := newMemStore()
	store.failFirstPuts = 1 << 30
	s := newTestService(store)
	s.backoff = func(int) time.Duration { return 0 }
	err := s.Publish(t.Context(), aliceID, "foo", buildBody(t, "foo", nil, pubVersion{version: "1.0.0"}))
	wantKind(t, err, KindConflict)
	if store.puts != maxPublishAttempts {
		t.Errorf("puts = %d, want %d", store.puts, maxPublishAttempts)
	}
}

// A write retries conflicts for a bounded time, then says how long it tried.
func TestServicePublishGivesUpAfterItsBudget(t *testing.T) {
	store := newMemStore()
	store.failFirstPuts = 1 << 30
	s := newTestService(store)
	s.budget = 30 * time.Millisecond
	start := time.Now()
	err := s.Publish(t.Context(), aliceID, "foo", buildBody(t, "foo", nil, pubVersion{version: "1.0.0"}))
	wantKind(t, err, KindConflict)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("gave up after %s, want about the 30ms budget", d)
	}
	if !strings.Contains(ReasonOf(err), "attempts in") {
		t.Errorf("the refusal should say how long it tried: %q", ReasonOf(err))
	}
}

// Writers on one instance take turns on a package: none of them loses a
// conflict to another writer of the same instance.
func TestServiceWritersOfOneInstanceTakeTurns(t *testing.T) {
	store := newMemStore()
	s := newTestService(store)
	if err := s.Publish(t.Context(), aliceID, "foo", buildBody(t, "foo", nil, pubVersion{version: "1.0.0"})); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 1; i <= 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.Publish(t.Context(), aliceID, "foo", buildBody(t, "foo", nil, pubVersion{version: fmt.Sprintf("1.%d.0", i)}))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if store.conflicts != 0 {
		t.Errorf("%d write conflicts between writers of one instance, want 0", store.conflicts)
	}
}

func TestServicePublishCanceledDuringRetry(t *testing.T) {
	store := newMemStore()
	store.failFirstPuts = 1 << 30
	s := newTestService(store)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := s.Publish(ctx, aliceID, "foo", buildBody(t, "foo", nil, pubVersion{version: "1.0.0"}))
	wantKind(t, err, KindUnavailable)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want it to wrap context.Canceled", err)
	}
}

func TestServicePublishStoreErrorsPassThrough(t *testing.T) {
	store := newMemStore()
	store.getErr = E(KindUnavailable, "couchdb is down")
	err := newTestService(store).Publish(t.Context(), aliceID, "foo", buildBody(t, "foo", nil, pubVersion{version: "1.0.0"}))
	wantKind(t, err, KindUnavailable)
}

// Concurrent publishes of different versions all land: each loser of the
// revision race re-reads and merges again.
func TestServicePublishConcurrentVersions(t *testing.T) {
	for _, tc := range []struct {
		name   string
		exists bool
		n      int
	}{
		{"existing package, two publishes", true, 2},
		{"new package, two publishes", false, 2},
		{"existing package, eight publishes", true, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := newMemStore()
			s := newTestService(store)
			ctx := t.Context()
			if tc.exists {
				if err := s.Publish(ctx, aliceID, "foo", buildBody(t, "foo", nil, pubVersion{version: "0.1.0"})); err != nil {
					t.Fatal(err)
				}
			}
			bodies := make([]*PublishBody, tc.n)
			for i := range bodies {
				bodies[i] = buildBody(t, "foo", map[string]string{"latest": fmt.Sprintf("1.%d.0", i)}, pubVersion{version: fmt.Sprintf("1.%d.0", i)})
			}
			start := make(chan struct{})
			errs := make([]error, tc.n)
			var wg sync.WaitGroup
			for i := range bodies {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					errs[i] = s.Publish(ctx, aliceID, "foo", bodies[i])
				}()
			}
			close(start)
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("publish %d: %v", i, err)
				}
			}
			p := store.stored(t, "foo")
			for i := 0; i < tc.n; i++ {
				v := fmt.Sprintf("1.%d.0", i)
				if p.Versions[v] == nil || p.Time[v] == "" {
					t.Errorf("version %s lost; have %v", v, p.SortedVersions())
				}
				if _, err := s.Tarball(ctx, aliceID, "foo", "foo-"+v+".tgz", true); err != nil {
					t.Errorf("tarball %s lost: %v", v, err)
				}
			}
			if tc.exists && p.Versions["0.1.0"] == nil {
				t.Errorf("existing version lost")
			}
			if want := tc.n + map[bool]int{true: 1}[tc.exists]; len(p.Versions) != want {
				t.Errorf("versions = %v, want %d", p.SortedVersions(), want)
			}
			if tc.n > 1 && store.conflicts == 0 {
				t.Logf("no conflict happened this run (the race was not exercised)")
			}
		})
	}
}

// The same property with a forced interleaving: both publishes, through two
// instances (one instance's writers take turns), read the same revision
// before either writes.
func TestServicePublishInterleaved(t *testing.T) {
	inner := newMemStore()
	store := &barrierStore{memStore: inner, gate: make(chan struct{}), readers: 2}
	instances := []*Service{newTestService(store), newTestService(store)}
	ctx := t.Context()
	if err := newTestService(inner).Publish(ctx, aliceID, "foo", buildBody(t, "foo", nil, pubVersion{version: "1.0.0"})); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, v := range []string{"1.1.0", "1.2.0"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = instances[i].Publish(ctx, aliceID, "foo", buildBody(t, "foo", nil, pubVersion{version: v}))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("publish %d: %v", i, err)
		}
	}
	p := inner.stored(t, "foo")
	if len(p.Versions) != 3 || p.Versions["1.1.0"] == nil || p.Versions["1.2.0"] == nil {
		t.Errorf("versions = %v, want 1.0.0 1.1.0 1.2.0", p.SortedVersions())
	}
	if inner.conflicts < 1 {
		t.Errorf("conflicts = %d; the interleaving should force one", inner.conflicts)
	}
}

// barrierStore holds the first `readers` GetPackument calls until all of
// them have read, so that they all see the same revision.
type barrierStore struct {
	*memStore
	mu      sync.Mutex
	gate    chan struct{}
	readers int
}

// GetPackumentForWrite is the publishes' read, held like GetPackument.
func (b *barrierStore) GetPackumentForWrite(ctx context.Context, name string) (*Packument, error) {
	return b.GetPackument(ctx, name)
}

func (b *barrierStore) PeekPackument(ctx context.Context, name string) (*Packument, error) {
	return b.GetPackument(ctx, name)
}

func (b *barrierStore) GetPackument(ctx context.Context, name string) (*Packument, error) {
	p, err := b.memStore.GetPackument(ctx, name)
	b.mu.Lock()
	wait := b.readers > 0
	if wait {
		b.readers--
		if b.readers == 0 {
			close(b.gate)
		}
	}
	b.mu.Unlock()
	if wait {
		select {
		case <-b.gate:
		case <-time.After(5 * time.Second):
		}
	}
	return p, err
}

// A Service is built complete or not at all: each missing required
// dependency is named at construction.
func TestNewServiceRefusesMissingDependencies(t *testing.T) {
	full := Config{Store: newMemStore(), Users: newFakeUsers(), Index: stubIndex{}, Orgs: newMemDocs()}
	for _, tc := range []struct {
		name  string
		edit  func(c *Config)
		wants []string
	}{
		{"complete", func(*Config) {}, nil},
		{"optional ones left out", func(c *Config) { c.Mirror, c.Claims, c.Signer = nil, nil, nil }, nil},
		{"no store", func(c *Config) { c.Store = nil }, []string{"Store"}},
		{"no accounts nor orgs", func(c *Config) { c.Users, c.Orgs = nil, nil }, []string{"Users", "Orgs"}},
		{"nothing", func(c *Config) { *c = Config{} }, []string{"Store", "Users", "Index", "Orgs"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := full
			tc.edit(&cfg)
			s, err := NewService(cfg)
			if tc.wants == nil {
				if err != nil || s == nil {
					t.Fatalf("NewService = %v, %v; want a service", s, err)
				}
				if s.DefaultAccess() != AccessPublic || s.cmd.policy.Unpublish.Mode != UnpublishMaintainers {
					t.Errorf("policy defaults not applied: %+v", s.cmd.policy)
				}
				return
			}
			if err == nil || s != nil {
				t.Fatalf("NewService = %v, %v; want an error", s, err)
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %s", err, w)
				}
			}
		})
	}
}

// A read whose revision is written back goes through
// GetPackumentForWrite, so that a caching store confirms it; plain reads
// do not.
func TestWritesReadForWrite(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		run       func(s *Service) error
		wantWrite bool
	}{
		{"publish", func(s *Service) error {
			return s.Publish(ctx, aliceID, "p", buildBody(t, "p", nil, pubVersion{version: "2.0.0"}))
		}, true},
		{"dist-tag add", func(s *Service) error { return s.SetDistTag(ctx, aliceID, "p", "beta", "1.0.0") }, true},
		{"unpublish", func(s *Service) error {
			p, err := s.store.GetPackument(ctx, "p")
			if err != nil {
				return err
			}
			return s.Unpublish(ctx, aliceID, "p", p.Rev)
		}, true},
		{"import", func(s *Service) error {
			in := &ImportedPackage{Name: "p", Maintainers: []Person{{Name: "alice"}},
				Versions: []ImportedVersion{importedVersion(t, "p", "3.0.0", makeTarball(t, "p", "3.0.0"), nil)}}
			_, err := s.Import(ctx, operatorID, in)
			return err
		}, true},
		{"read before a write", func(s *Service) error { _, err := s.PackumentForWrite(ctx, aliceID, "p"); return err }, true},
		{"read", func(s *Service) error { _, err := s.Packument(ctx, aliceID, "p"); return err }, false},
		{"shared read", func(s *Service) error { _, err := s.SharedPackument(ctx, aliceID, "p"); return err }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := newMemStore()
			s := newTestService(store)
			if err := s.Publish(ctx, aliceID, "p", buildBody(t, "p", nil, pubVersion{version: "1.0.0"})); err != nil {
				t.Fatal(err)
			}
			before := store.writeReads
			if err := tc.run(s); err != nil {
				t.Fatal(err)
			}
			if got := store.writeReads > before; got != tc.wantWrite {
				t.Errorf("read for write: %v, want %v", got, tc.wantWrite)
			}
		})
	}
}
