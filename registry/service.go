package registry

import (
	"context"
	"io"
	"math/rand/v2"
	"time"
)

// PackumentStore keeps packument documents and their tarball attachments.
type PackumentStore interface {
	// GetPackument returns the stored document; KindNotFound when absent.
	GetPackument(ctx context.Context, name string) (*Packument, error)
	// PutPackument writes the document (with its revision, if any) in one
	// atomic write, inline attachments included; KindConflict when the
	// revision is stale.
	PutPackument(ctx context.Context, p *Packument) (rev string, err error)
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
}

// Service is the private registry: reads and publishes of packages stored in
// CouchDB. Mirroring and caching wrap it (see the replication package).
type Service struct {
	store PackumentStore
	now   func() time.Time
}

// NewService returns a registry over store.
func NewService(store PackumentStore) *Service {
	return &Service{store: store, now: time.Now}
}

// Packument returns a package's document; an unpublished package is not
// found.
func (s *Service) Packument(ctx context.Context, name string) (*Packument, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	p, err := s.store.GetPackument(ctx, name)
	if err != nil {
		return nil, err
	}
	if p.IsTombstone() {
		return nil, E(KindNotFound, "package %s was unpublished", name)
	}
	return p, nil
}

// Tarball opens the tarball file of package name. With head set, only its
// size and digest are looked up.
func (s *Service) Tarball(ctx context.Context, name, file string, head bool) (*Tarball, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	v, err := VersionFromTarball(name, file)
	if err != nil {
		return nil, err
	}
	if head {
		return s.store.StatTarball(ctx, name, TarballName(name, v))
	}
	return s.store.OpenTarball(ctx, name, TarballName(name, v))
}

// maxPublishAttempts bounds the re-read and re-merge loop on write conflicts.
// Each attempt sees the winner's write, so this only runs out under a storm
// of concurrent publishes to one package.
const maxPublishAttempts = 20

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
	for attempt := 0; ; attempt++ {
		stored, err := s.store.GetPackument(ctx, name)
		if IsKind(err, KindNotFound) {
			stored, err = nil, nil
		}
		if err != nil {
			return err
		}
		doc, err := Merge(stored, pub, user.Person(), s.now())
		if err != nil {
			return err
		}
		_, err = s.store.PutPackument(ctx, doc)
		if !IsKind(err, KindConflict) || attempt+1 >= maxPublishAttempts {
			return err
		}
		// Spread the retries of racing writers apart.
		select {
		case <-ctx.Done():
			return Wrap(KindUnavailable, ctx.Err(), "publish of %s gave up", name)
		case <-time.After(time.Duration(rand.IntN(20*(attempt+1))) * time.Millisecond):
		}
	}
}
