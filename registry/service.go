package registry

import (
	"context"
	"io"
	"math/rand/v2"
	"strings"
	"time"

	"golang.org/x/sync/singleflight"
)

// PackumentStore keeps packument documents and their tarball attachments.
type PackumentStore interface {
	// GetPackument returns the stored document; KindNotFound when absent.
	GetPackument(ctx context.Context, name string) (*Packument, error)
	// GetPackumentForWrite is GetPackument for a read whose revision is
	// written back: a caching store confirms it against CouchDB rather
	// than trusting its invalidation feed, so that the revision is current
	// even when the last change went through another instance.
	GetPackumentForWrite(ctx context.Context, name string) (*Packument, error)
	// PeekPackument is GetPackument for a reader that changes nothing: the
	// document may be shared (the packument cache's own copy), so a warm
	// read copies nothing. Never modify what it returns.
	PeekPackument(ctx context.Context, name string) (*Packument, error)
	// PutPackument writes the document (with its revision, if any) in one
	// atomic write, inline attachments included; KindConflict when the
	// revision is stale. Written.Quorum is false for CouchDB's 202.
	PutPackument(ctx context.Context, p *Packument) (Written, error)
	// OpenTarball streams an attachment; KindNotFound when absent.
	OpenTarball(ctx context.Context, name, attachment string) (*Tarball, error)
	// StatTarball is OpenTarball without the body.
	StatTarball(ctx context.Context, name, attachment string) (*Tarball, error)
}

// Tarball is a stored tarball: its size, its CouchDB digest and, when
// opened, the stream of its bytes (the caller closes it).
type Tarball struct {
	Body   io.ReadCloser
	Size   int64
	Digest string
	// Data is the whole tarball when it came from memory (Body is nil
	// then): the tarball cache (tarballs.go).
	Data []byte
}

// Service is the private registry: reads and publishes of packages stored in
// CouchDB. Mirroring and caching wrap it (see the replication package).
type Service struct {
	store  PackumentStore
	mirror Mirror    // nil when mirroring is off
	claims ClaimBook // names an operator claimed (takeover.go); nil: none
	orgs   StateDocs // orgs and teams (orgs.go)
	now    func() time.Time
	cmd    commands // command surface: policy and indexes (commands.go)
	// backoff is the wait before retrying a write that lost a conflict.
	backoff func(attempt int) time.Duration
	// conflicts merges conflicting revisions (resolve.go); nil: never.
	conflicts  ConflictStore
	observer   ConflictObserver
	locks      *writeLocks        // this instance's writes to one package take turns
	budget     time.Duration      // how long a write retries conflicts (writeBudget)
	confirmFor time.Duration      // overrides confirmBound (tests)
	reads      singleflight.Group // read-path merges, one per package at a time
	signer     VersionSigner      // signs published versions (signing.go); nil: unsigned
	// attestations serves mirrored versions' attestations (attestations.go).
	attestations AttestationSource
	tarballs     TarballCache // hot tarballs in memory (tarballs.go); nil: none

	// orgLeaves reads orgs with their conflicting revisions (orgmerge.go);
	// nil: the winner alone.
	orgLeaves LeafDocs
}

// Mirror is the upstream side of the read path (see package replication).
type Mirror interface {
	// Private reports whether name's scope is private: never looked up
	// upstream.
	Private(name string) bool
	Packument(ctx context.Context, name string) (*Packument, error)
	Tarball(ctx context.Context, name, version string, head bool) (*Tarball, error)
	// Known reports whether the upstream knows name (the takeover guard,
	// takeover.go), asking it within a bounded time when no copy is
	// mirrored; an error when it cannot tell.
	Known(ctx context.Context, name string) (bool, error)
}

// Config is everything a Service is built from. Store, Users, Index and
// Orgs are required; the rest are optional, and nil turns the feature off.
type Config struct {
	Store PackumentStore // the private packages (required)
	// Users are the accounts: new owners must exist (required).
	Users UserStore
	// Index answers the listing commands from CouchDB views (required).
	Index PackageIndex
	// Orgs keeps orgs and teams and so decides the scope rule (orgs.go,
	// required).
	Orgs   StateDocs
	Policy Policy // the command surface's policy; zero value: defaults
	// Mirror resolves names not published here upstream; nil: mirroring
	// is off.
	Mirror Mirror
	// Claims holds the names an operator claimed (takeover.go); nil:
	// none.
	Claims ClaimBook
	// Conflicts merges conflicting revisions of private packuments on the
	// read and write paths, reporting each to Observer (resolve.go); nil:
	// never merged here.
	Conflicts ConflictStore
	Observer  ConflictObserver // nil: not reported
	// Signer signs every published version (signing.go); nil: unsigned.
	Signer VersionSigner
	// Attestations serves mirrored versions' attestations
	// (attestations.go); nil: none.
	Attestations AttestationSource
	// Tarballs keeps hot tarballs in memory (tarballs.go); nil: every
	// tarball is read from the store.
	Tarballs TarballCache

	// OrgLeaves reads and merges the conflicting revisions of org
	// documents (orgmerge.go); nil: orgs are read as CouchDB's winner
	// alone, which loses changes on a cluster.
	OrgLeaves LeafDocs
}

// NewService builds the registry from cfg in one step; a missing required
// dependency is an error here, never an answer at run time.
func NewService(cfg Config) (*Service, error) {
	var missing []string
	for _, d := range []struct {
		name string
		nil  bool
	}{{"Store", cfg.Store == nil}, {"Users", cfg.Users == nil}, {"Index", cfg.Index == nil}, {"Orgs", cfg.Orgs == nil}} {
		if d.nil {
			missing = append(missing, d.name)
		}
	}
	if len(missing) > 0 {
		return nil, E(KindInternal, "registry.NewService: missing %s", strings.Join(missing, ", "))
	}
	p := cfg.Policy
	if p.DefaultAccess == "" {
		p.DefaultAccess = AccessPublic
	}
	if p.Unpublish.Mode == "" {
		p.Unpublish.Mode = UnpublishMaintainers
	}
	return &Service{
		store: cfg.Store, mirror: cfg.Mirror, claims: cfg.Claims, orgs: cfg.Orgs, orgLeaves: cfg.OrgLeaves,
		cmd:       commands{policy: p, users: cfg.Users, index: cfg.Index},
		conflicts: cfg.Conflicts, observer: cfg.Observer,
		signer: cfg.Signer, attestations: cfg.Attestations, tarballs: cfg.Tarballs,
		now: time.Now, backoff: conflictBackoff, locks: newWriteLocks(), budget: writeBudget,
	}, nil
}

// upstreamAllowed is the dependency-confusion guard's last step: a name
// reaches the mirror only when it is not published here (the caller
// checked) and its scope is not private.
func (s *Service) upstreamAllowed(name string) bool {
	return s.mirror != nil && !s.mirror.Private(name)
}

// Packument returns a package's document as user may see it; an
// unpublished package is not found.
func (s *Service) Packument(ctx context.Context, user Identity, name string) (*Packument, error) {
	return s.packumentFrom(ctx, user, name, true, s.store.GetPackument)
}

// SharedPackument is Packument for a caller that only reads and renders
// the document (the packument and version routes): on a warm read it is
// the packument cache's own copy, not a copy of it (PeekPackument), so it
// must never be modified.
func (s *Service) SharedPackument(ctx context.Context, user Identity, name string) (*Packument, error) {
	return s.packumentFrom(ctx, user, name, true, s.store.PeekPackument)
}

// PackumentForWrite is Packument for a read that precedes a write (npm
// publish's version check, the read-modify-write of deprecate, owner,
// unpublish): the package published here only, never an upstream one of
// the same name (dependency confusion), read as CouchDB has it now.
func (s *Service) PackumentForWrite(ctx context.Context, user Identity, name string) (*Packument, error) {
	return s.packumentFrom(ctx, user, name, false, s.store.GetPackumentForWrite)
}

func (s *Service) packumentFrom(ctx context.Context, user Identity, name string, upstream bool, get func(context.Context, string) (*Packument, error)) (*Packument, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	p, err := get(ctx, name)
	if IsKind(err, KindNotFound) && upstream && s.upstreamAllowed(name) {
		return s.mirror.Packument(ctx, name)
	}
	if err != nil {
		return nil, err
	}
	if len(p.Conflicts) > 0 {
		p = s.mergeForRead(ctx, name, p)
	}
	// A private name, even an unpublished one, never resolves upstream;
	// an unpublished fork of an upstream name does (takeover.go).
	if p.IsTombstone() {
		if upstream {
			fb, err := s.fallsBackUpstream(ctx, p)
			if err != nil {
				return nil, err
			}
			if fb {
				return s.mirror.Packument(ctx, name)
			}
		}
		return nil, E(KindNotFound, "package %s was unpublished", name)
	}
	if err := s.checkRead(ctx, user, p); err != nil {
		return nil, err
	}
	return p, nil
}

// checkRead decides whether user may read package p (packagePermission,
// orgs.go): a restricted package that user may not read looks absent, so
// its existence does not leak.
func (s *Service) checkRead(ctx context.Context, user Identity, p *Packument) error {
	if AccessOf(p) == AccessPublic {
		return nil
	}
	perm, err := s.permissionOf(ctx, user, p)
	if err != nil {
		return err
	}
	if perm == permNone {
		return E(KindNotFound, "not_found")
	}
	return nil
}

// Tarball opens the tarball file of package name for user. With head set,
// only its size and digest are looked up.
func (s *Service) Tarball(ctx context.Context, user Identity, name, file string, head bool) (*Tarball, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	p, err := s.checkTarballRead(ctx, user, name)
	if err != nil {
		return nil, err
	}
	v, err := VersionFromTarball(name, file)
	if err != nil {
		return nil, err
	}
	att := TarballName(name, v)
	if t := s.knownTarball(p, v, head); t != nil {
		return t, nil
	}
	var t *Tarball
	if head {
		t, err = s.store.StatTarball(ctx, name, att)
	} else {
		t, err = s.store.OpenTarball(ctx, name, att)
		if err == nil {
			s.keepTarball(t)
		}
	}
	if !IsKind(err, KindNotFound) || !s.upstreamAllowed(name) {
		return t, err
	}
	// No private tarball: the mirror may serve it, unless the name is
	// published here (then the version simply does not exist) or was and
	// keeps the name private.
	if p, perr := s.store.GetPackument(ctx, name); !IsKind(perr, KindNotFound) {
		if perr != nil {
			return nil, perr
		}
		fb, ferr := s.fallsBackUpstream(ctx, p)
		if ferr != nil {
			return nil, ferr
		}
		if !fb {
			return nil, err
		}
	}
	return s.mirror.Tarball(ctx, name, v, head)
}

// maxPublishAttempts bounds the re-read and re-merge loop on write
// conflicts, besides the time budget (writeBudget): each attempt sees the
// winner's write, and this instance's writers take turns (writelock.go), so
// only a storm of writes through other instances could run it out.
const maxPublishAttempts = 400

// conflictBackoff spreads the retries of racing writers apart: a random
// wait below a ceiling that doubles from 10ms up to 500ms. A linear ceiling
// (20ms per attempt, 20 attempts) gave up after about 2s, less than 50
// concurrent publishes of one package take to land one by one; one of them
// then failed with 409 (TestConcurrencyPublishTwoInstances).
func conflictBackoff(attempt int) time.Duration {
	ceiling := min(10*time.Millisecond<<min(attempt, 6), 500*time.Millisecond)
	return time.Duration(rand.Int64N(int64(ceiling)))
}

// Publish adds the versions in body to package name on behalf of user. A
// write conflict (another publish landed in between) is retried by reading
// and merging again, so concurrent publishes of different versions all land.
func (s *Service) Publish(ctx context.Context, user Identity, name string, body *PublishBody) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	if err := user.CanWrite(); err != nil {
		return err
	}
	pub, err := PreparePublish(name, body)
	if err != nil {
		return err
	}
	// Read once, not on each attempt: the write cycle races other writers
	// and must stay short.
	key, err := s.activeKey(ctx)
	if err != nil {
		return err
	}
	return s.writeCycle(ctx, name, "publish", true, func(attempt int, stored *Packument) (planned, error) {
		return s.planPublish(ctx, user, name, pub, key, attempt, stored)
	})
}

// activeKey is the key that signs new versions; nil when the registry
// signs nothing. A write whose key cannot be read fails rather than
// landing unsigned.
func (s *Service) activeKey(ctx context.Context) (*SigningKey, error) {
	if s.signer == nil {
		return nil, nil
	}
	k, err := s.signer.ActiveKey(ctx)
	if err != nil {
		return nil, err
	}
	return &k, nil
}

// mayPublish checks that user may publish to name as stored (nil: a new
// name) and reports whether they do so as a team writer rather than a
// maintainer.
func (s *Service) mayPublish(ctx context.Context, user Identity, name string, stored *Packument) (teamWriter bool, err error) {
	if stored == nil || stored.IsTombstone() {
		// A new name (or one unpublished entirely): its scope decides who
		// may publish it (orgs.go), before the takeover guard asks the
		// upstream anything.
		return false, s.checkScope(ctx, user, name)
	}
	if stored.HasMaintainer(user.Name) {
		return false, nil
	}
	// Members of a team granted read-write publish like maintainers;
	// anyone else who cannot read it sees no package.
	if err := s.requireWriter(ctx, user, stored); err != nil {
		return false, err
	}
	return true, nil
}

// planPublish is one attempt of a publish on the stored document: the
// access checks, the takeover guard, the merge, the signatures and the
// change stamps.
func (s *Service) planPublish(ctx context.Context, user Identity, name string, pub *Publication, key *SigningKey, attempt int, stored *Packument) (planned, error) {
	mayWrite, err := s.mayPublish(ctx, user, name, stored)
	if err != nil {
		return planned{}, err
	}
	before := snapshotOf(stored)
	// The takeover guard (takeover.go): the first publish of a name the
	// upstream knows needs an operator's claim.
	claim, guarded, err := s.firstPublish(ctx, user, name, stored)
	if err != nil {
		return planned{}, err
	}
	if guarded && claim != nil && stored != nil {
		// An unpublished fork, published again under a claim: the claim
		// names who answers for it now.
		stored.Maintainers = []Person{user.Person()}
	}
	doc, err := mergePublish(stored, pub, user.Person(), s.now(), mayWrite)
	if err != nil {
		if attempt > 0 && landed(stored, pub, user.Name) {
			// An earlier attempt of this publish landed although CouchDB
			// answered it with a conflict or not at all (a cluster can
			// store a write on one node and refuse it on the others): the
			// versions are there, byte for byte.
			return planned{}, nil
		}
		return planned{}, err
	}
	if guarded {
		recordClaim(doc, claim)
	}
	if key != nil {
		if err := signVersions(*key, doc, pub); err != nil {
			return planned{}, err
		}
	}
	doc.stampChanges(before, doc.Time["modified"])
	return planned{doc: doc, landed: versionsLanded(pub)}, nil
}
