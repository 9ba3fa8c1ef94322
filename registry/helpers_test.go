package registry

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha1" //nolint:gosec // npm's dist.shasum is sha1
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/couchnpm/couchnpm/internal/testkit"
	"io"
	"strings"
	"sync"
	"testing"
)

func sha1Hex(b []byte) string {
	s := sha1.Sum(b) //nolint:gosec
	return hex.EncodeToString(s[:])
}

func sha512SRI(b []byte) string {
	s := sha512.Sum512(b)
	return "sha512-" + base64.StdEncoding.EncodeToString(s[:])
}

func sha1SRI(b []byte) string {
	s := sha1.Sum(b) //nolint:gosec
	return "sha1-" + base64.StdEncoding.EncodeToString(s[:])
}

// pubVersion describes one version of a test publish body.
type pubVersion struct {
	version string
	tgz     []byte
	extra   map[string]any // extra manifest fields (merged over the defaults)
	dist    map[string]any // nil: correct shasum + integrity
	attName string         // "" : npm's default attachment name
}

// buildBody assembles a publish body like npm sends it.
func buildBody(t testing.TB, name string, tags map[string]string, vs ...pubVersion) *PublishBody {
	t.Helper()
	b := &PublishBody{
		ID: name, Name: name, DistTags: tags,
		Versions: map[string]Manifest{}, Attachments: map[string]Attachment{},
	}
	for _, pv := range vs {
		tgz := pv.tgz
		if tgz == nil {
			tgz = makeTarball(t, name, pv.version)
		}
		dist := pv.dist
		if dist == nil {
			dist = map[string]any{"shasum": sha1Hex(tgz), "integrity": sha512SRI(tgz), "tarball": "http://client.example/" + name + "/-/x.tgz"}
		}
		m := map[string]any{"name": name, "version": pv.version, "dist": dist}
		for k, v := range pv.extra {
			m[k] = v
		}
		raw, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		b.Versions[pv.version] = raw
		att := pv.attName
		if att == "" {
			att = name + "-" + pv.version + ".tgz" // npm writes "@scope/pkg-1.0.0.tgz" for scoped names
		}
		b.Attachments[att] = Attachment{ContentType: "application/octet-stream", Data: base64.StdEncoding.EncodeToString(tgz), Length: int64(len(tgz))}
	}
	return b
}

// mustPrepare runs PreparePublish and fails the test on error.
func mustPrepare(t testing.TB, name string, b *PublishBody) *Publication {
	t.Helper()
	pub, err := PreparePublish(name, b)
	if err != nil {
		t.Fatalf("PreparePublish(%s): %v", name, err)
	}
	return pub
}

// manifestOf decodes one stored version manifest.
func manifestOf(t testing.TB, p *Packument, v string) map[string]json.RawMessage {
	t.Helper()
	raw, ok := p.Versions[v]
	if !ok {
		t.Fatalf("version %s missing; have %v", v, p.SortedVersions())
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("manifest %s: %v", v, err)
	}
	return m
}

func jsonString(t testing.TB, raw json.RawMessage) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("not a JSON string: %s", raw)
	}
	return s
}

func wantKind(t testing.TB, err error, k Kind) {
	t.Helper()
	if err == nil {
		t.Fatalf("got nil error, want kind %d", k)
	}
	if got := KindOf(err); got != k {
		t.Fatalf("got kind %d (%v), want kind %d", got, err, k)
	}
}

// newServiceFor builds a Service from cfg for a test: the required
// dependencies cfg leaves nil become in-memory fakes (a memStore, no users,
// an empty index, no orgs).
func newServiceFor(cfg Config) *Service {
	if cfg.Store == nil {
		cfg.Store = newMemStore()
	}
	if cfg.Users == nil {
		cfg.Users = newFakeUsers()
	}
	if cfg.Index == nil {
		cfg.Index = stubIndex{}
	}
	if cfg.Orgs == nil {
		cfg.Orgs = newMemDocs()
	}
	s, err := NewService(cfg)
	if err != nil {
		panic(err)
	}
	return s
}

// orgDocs returns an orgs database holding orgs, each owned by owner
// alone: the scope rule then lets owner publish under them.
func orgDocs(owner string, orgs ...string) *memDocs {
	docs := newMemDocs()
	for _, o := range orgs {
		if err := CreateOrg(context.Background(), docs, o, owner, t0); err != nil {
			panic(err)
		}
	}
	return docs
}

// memStore is an in-memory PackumentStore with CouchDB's revision rules:
// a write must carry the current _rev (none for a new document), otherwise
// it is a KindConflict. Documents are deep-copied in and out.
type memStore struct {
	PackumentStore // nil; only there so that new interface methods do not break the build

	mu        sync.Mutex
	docs      map[string][]byte // JSON, as stored
	tarballs  map[string]map[string][]byte
	puts      int
	conflicts int
	opens     int // OpenTarball and StatTarball calls: CouchDB attachment requests
	// failFirstPuts makes the first n PutPackument calls return a conflict
	// (as if someone else had written in between), without storing.
	failFirstPuts int
	getErr        error
	// reads and writeReads count GetPackument and GetPackumentForWrite.
	reads, writeReads int
}

func newMemStore() *memStore {
	return &memStore{docs: map[string][]byte{}, tarballs: map[string]map[string][]byte{}}
}

func (s *memStore) GetPackumentForWrite(ctx context.Context, name string) (*Packument, error) {
	s.mu.Lock()
	s.writeReads++
	s.mu.Unlock()
	return s.get(name)
}

func (s *memStore) PeekPackument(ctx context.Context, name string) (*Packument, error) {
	return s.GetPackument(ctx, name)
}

func (s *memStore) GetPackument(_ context.Context, name string) (*Packument, error) {
	s.mu.Lock()
	s.reads++
	s.mu.Unlock()
	return s.get(name)
}

func (s *memStore) get(name string) (*Packument, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.getErr != nil {
		return nil, s.getErr
	}
	raw, ok := s.docs[name]
	if !ok {
		return nil, E(KindNotFound, "no package %s", name)
	}
	var p Packument
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

func (s *memStore) PutPackument(_ context.Context, p *Packument) (Written, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.puts++
	if s.failFirstPuts > 0 {
		s.failFirstPuts--
		s.conflicts++
		return Written{}, E(KindConflict, "document update conflict (injected)")
	}
	cur := ""
	if raw, ok := s.docs[p.ID]; ok {
		var old Packument
		if err := json.Unmarshal(raw, &old); err != nil {
			return Written{}, err
		}
		cur = old.Rev
	}
	if p.Rev != cur {
		s.conflicts++
		return Written{}, E(KindConflict, "document update conflict")
	}
	n := 1
	if cur != "" {
		fmt.Sscanf(cur, "%d-", &n)
		n++
	}
	// Store a copy: inline attachments become stubs, their bytes kept apart.
	cp := *p
	cp.Rev = fmt.Sprintf("%d-rev", n)
	cp.Attachments = map[string]Attachment{}
	if s.tarballs[p.ID] == nil {
		s.tarballs[p.ID] = map[string][]byte{}
	}
	for k, a := range p.Attachments {
		if a.Data != "" {
			b, err := base64.StdEncoding.DecodeString(a.Data)
			if err != nil {
				return Written{}, err
			}
			s.tarballs[p.ID][k] = b
			a = Attachment{ContentType: a.ContentType, Length: int64(len(b)), Digest: "md5-" + md5B64(b), RevPos: n, Stub: true}
		}
		cp.Attachments[k] = a
	}
	for k := range s.tarballs[p.ID] { // as in CouchDB: an attachment left out is gone
		if _, ok := cp.Attachments[k]; !ok {
			delete(s.tarballs[p.ID], k)
		}
	}
	raw, err := json.Marshal(&cp)
	if err != nil {
		return Written{}, err
	}
	s.docs[p.ID] = raw
	return Written{Rev: cp.Rev, Quorum: true}, nil
}

func (s *memStore) OpenTarball(_ context.Context, name, att string) (*Tarball, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opens++
	b, ok := s.tarballs[name][att]
	if !ok {
		return nil, E(KindNotFound, "no tarball %s", att)
	}
	// CouchDB's attachment ETag: the md5 without the stub's "md5-".
	return &Tarball{Body: io.NopCloser(bytes.NewReader(b)), Size: int64(len(b)), Digest: md5B64(b)}, nil
}

func (s *memStore) StatTarball(_ context.Context, name, att string) (*Tarball, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opens++
	b, ok := s.tarballs[name][att]
	if !ok {
		return nil, E(KindNotFound, "no tarball %s", att)
	}
	return &Tarball{Size: int64(len(b)), Digest: md5B64(b)}, nil
}

func md5B64(b []byte) string {
	sum := md5.Sum(b) //nolint:gosec
	return base64.StdEncoding.EncodeToString(sum[:])
}

func (s *memStore) stored(t testing.TB, name string) *Packument {
	t.Helper()
	p, err := s.GetPackument(context.Background(), name)
	if err != nil {
		t.Fatalf("stored %s: %v", name, err)
	}
	return p
}

var _ = strings.TrimSpace

// makeTarball builds a real npm-style .tgz: package/package.json plus
// package/index.js.
func makeTarball(_ testing.TB, name, version string) []byte {
	return testkit.Tarball(name, version)
}
