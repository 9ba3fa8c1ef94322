// Package registrytest holds the in-memory fakes the tests of the packages
// around the registry share: a packument store, a state database, empty
// accounts and view index, and a registry.Service built from them. The
// registry package's own tests keep theirs (they cannot import this
// package: it imports registry).
package registrytest

import (
	"bytes"
	"context"
	"crypto/md5" //nolint:gosec // CouchDB's attachment digest
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/couchnpm/couchnpm/registry"
)

// NewService builds a registry for a test from cfg; the required
// dependencies cfg leaves nil become in-memory fakes: a MemStore, no users,
// an empty index, an empty orgs database.
func NewService(t testing.TB, cfg registry.Config) *registry.Service {
	t.Helper()
	if cfg.Store == nil {
		cfg.Store = NewMemStore()
	}
	if cfg.Users == nil {
		cfg.Users = NoUsers{}
	}
	if cfg.Index == nil {
		cfg.Index = EmptyIndex{}
	}
	if cfg.Orgs == nil {
		cfg.Orgs = NewMemDocs()
	}
	svc, err := registry.NewService(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// Orgs is a state database holding orgs, each owned by owner alone: the
// scope rule then lets owner publish under them.
func Orgs(t testing.TB, owner string, orgs ...string) *MemDocs {
	t.Helper()
	docs := NewMemDocs()
	for _, o := range orgs {
		if err := registry.CreateOrg(context.Background(), docs, o, owner, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	return docs
}

// MemStore is an in-memory registry.PackumentStore with CouchDB's revision
// check: a write must carry the current _rev (none for a new document).
// Inline attachments become stubs, their bytes kept as tarballs; digests
// are CouchDB's (the md5, base64).
type MemStore struct {
	registry.PackumentStore // nil; keeps the fake building if the interface grows

	mu       sync.Mutex
	docs     map[string][]byte
	revs     map[string]int
	tarballs map[string][]byte // name + "/" + attachment
	opens    int               // tarball requests (OpenTarball, StatTarball)
}

// NewMemStore returns an empty store.
func NewMemStore() *MemStore {
	return &MemStore{docs: map[string][]byte{}, revs: map[string]int{}, tarballs: map[string][]byte{}}
}

// GetPackument implements registry.PackumentStore.
func (s *MemStore) GetPackument(_ context.Context, name string) (*registry.Packument, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	raw, ok := s.docs[name]
	if !ok {
		return nil, registry.E(registry.KindNotFound, "no package %s", name)
	}
	var p registry.Packument
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// GetPackumentForWrite implements registry.PackumentStore: nothing here
// caches.
func (s *MemStore) GetPackumentForWrite(ctx context.Context, name string) (*registry.Packument, error) {
	return s.GetPackument(ctx, name)
}

// PeekPackument implements registry.PackumentStore: each read decodes its
// own copy, so sharing is moot.
func (s *MemStore) PeekPackument(ctx context.Context, name string) (*registry.Packument, error) {
	return s.GetPackument(ctx, name)
}

// PutPackument implements registry.PackumentStore.
func (s *MemStore) PutPackument(_ context.Context, p *registry.Packument) (registry.Written, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := ""
	if n := s.revs[p.ID]; n > 0 {
		cur = fmt.Sprintf("%d-r", n)
	}
	if p.Rev != cur {
		return registry.Written{}, registry.E(registry.KindConflict, "conflict")
	}
	cp := *p
	s.revs[p.ID]++
	cp.Rev = fmt.Sprintf("%d-r", s.revs[p.ID])
	cp.Attachments = map[string]registry.Attachment{}
	for k, a := range p.Attachments {
		if a.Data != "" {
			b, err := base64.StdEncoding.DecodeString(a.Data)
			if err != nil {
				return registry.Written{}, err
			}
			s.tarballs[p.ID+"/"+k] = b
			a = registry.Attachment{ContentType: a.ContentType, Length: int64(len(b)), Digest: "md5-" + MD5(b), Stub: true}
		}
		cp.Attachments[k] = a
	}
	raw, err := json.Marshal(&cp)
	if err != nil {
		return registry.Written{}, err
	}
	s.docs[p.ID] = raw
	return registry.Written{Rev: cp.Rev, Quorum: true}, nil
}

// OpenTarball implements registry.PackumentStore.
func (s *MemStore) OpenTarball(_ context.Context, name, att string) (*registry.Tarball, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opens++
	b, ok := s.tarballs[name+"/"+att]
	if !ok {
		return nil, registry.E(registry.KindNotFound, "no tarball")
	}
	// CouchDB's attachment ETag: the md5 without the stub's "md5-".
	return &registry.Tarball{Body: io.NopCloser(bytes.NewReader(b)), Size: int64(len(b)), Digest: MD5(b)}, nil
}

// MD5 is CouchDB's digest of an attachment: its md5, base64.
func MD5(b []byte) string {
	sum := md5.Sum(b) //nolint:gosec // CouchDB's digest, not a security boundary
	return base64.StdEncoding.EncodeToString(sum[:])
}

// Opens returns the number of tarball requests (OpenTarball, StatTarball)
// so far: what would be CouchDB attachment requests.
func (s *MemStore) Opens() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opens
}

// StatTarball implements registry.PackumentStore.
func (s *MemStore) StatTarball(ctx context.Context, name, att string) (*registry.Tarball, error) {
	t, err := s.OpenTarball(ctx, name, att)
	if err != nil {
		return nil, err
	}
	t.Body = nil
	return t, nil
}

// Docs returns the number of stored documents.
func (s *MemStore) Docs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.docs)
}

// Raw returns a stored document as JSON; nil when absent.
func (s *MemStore) Raw(name string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.docs[name]
}

// MemDocs is an in-memory registry.StateDocs with CouchDB's revision rules.
type MemDocs struct {
	mu   sync.Mutex
	docs map[string][]byte
	revs map[string]int
}

// NewMemDocs returns an empty state database.
func NewMemDocs() *MemDocs {
	return &MemDocs{docs: map[string][]byte{}, revs: map[string]int{}}
}

// Get implements registry.StateDocs.
func (m *MemDocs) Get(_ context.Context, id string, v any) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.docs[id]
	if !ok {
		return "", registry.E(registry.KindNotFound, "missing")
	}
	return fmt.Sprint(m.revs[id]), json.Unmarshal(b, v)
}

// Put implements registry.StateDocs.
func (m *MemDocs) Put(_ context.Context, id, rev string, v any) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.docs[id]
	if ok && rev != fmt.Sprint(m.revs[id]) || !ok && rev != "" {
		return "", registry.E(registry.KindConflict, "conflict")
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	m.docs[id] = b
	m.revs[id]++
	return fmt.Sprint(m.revs[id]), nil
}

// Delete implements registry.StateDocs.
func (m *MemDocs) Delete(_ context.Context, id, _ string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.docs, id)
	return nil
}

// NoUsers is a registry.UserStore without accounts.
type NoUsers struct{}

// GetUser implements registry.UserStore.
func (NoUsers) GetUser(_ context.Context, name string) (*registry.User, error) {
	return nil, registry.E(registry.KindNotFound, "no user %s", name)
}

// CreateUser implements registry.UserStore.
func (NoUsers) CreateUser(context.Context, string, string, string) error {
	return registry.E(registry.KindForbidden, "no accounts here")
}

// CheckPassword implements registry.UserStore.
func (NoUsers) CheckPassword(context.Context, string, string, netip.Addr) error {
	return registry.E(registry.KindUnauthorized, "name or password is incorrect")
}

// UpdateTwoFactor implements registry.UserStore.
func (NoUsers) UpdateTwoFactor(context.Context, string, registry.TwoFactorChange) error {
	return registry.E(registry.KindNotFound, "no such user")
}

// EmptyIndex is a registry.PackageIndex that lists nothing.
type EmptyIndex struct{}

// SearchTerm implements registry.PackageIndex.
func (EmptyIndex) SearchTerm(context.Context, string, bool, int) ([]registry.SearchRow, error) {
	return nil, nil
}

// StarredBy implements registry.PackageIndex.
func (EmptyIndex) StarredBy(context.Context, string) ([]string, error) { return nil, nil }

// MaintainedBy implements registry.PackageIndex.
func (EmptyIndex) MaintainedBy(context.Context, string) ([]string, error) { return nil, nil }
