package couch

import (
	"context"
	"net/http"

	kivik "github.com/go-kivik/kivik/v4"

	"github.com/couchnpm/couchnpm/registry"
)

// Packuments is a database of packument documents with tarball attachments.
// It implements registry.PackumentStore.
type Packuments struct {
	c  *Client
	db *kivik.DB
}

// Packuments returns the packument store of a database role
// (RolePackages or RoleMirror).
func (c *Client) Packuments(role string) *Packuments {
	return &Packuments{c: c, db: c.k.DB(c.names[role])}
}

// Name is the database's name.
func (s *Packuments) Name() string { return s.db.Name() }

// stale reports whether the stored document of p has moved past the
// revision p was read at (or appeared, when p is new).
func (s *Packuments) stale(ctx context.Context, p *registry.Packument) bool {
	rev, err := s.db.GetRev(ctx, p.ID)
	if err != nil {
		return kivik.HTTPStatus(err) == http.StatusNotFound && p.Rev != ""
	}
	return rev != p.Rev
}

// OpenTarball streams an attachment. The stream lives as long as ctx: the
// caller's request context bounds it, not the metadata timeout.
func (s *Packuments) OpenTarball(ctx context.Context, name, attachment string) (*registry.Tarball, error) {
	att, err := s.db.GetAttachment(ctx, name, attachment)
	if err != nil {
		return nil, translate(err, "read tarball "+attachment)
	}
	return &registry.Tarball{Body: att.Content, Size: att.Size, Digest: att.Digest}, nil
}

// StatTarball looks up an attachment's size and digest with a HEAD request.
func (s *Packuments) StatTarball(ctx context.Context, name, attachment string) (*registry.Tarball, error) {
	ctx, cancel := s.c.ctx(ctx)
	defer cancel()
	att, err := s.db.GetAttachmentMeta(ctx, name, attachment)
	if err != nil {
		return nil, translate(err, "stat tarball "+attachment)
	}
	return &registry.Tarball{Size: att.Size, Digest: att.Digest}, nil
}

// DeletePackument removes a document (mirror deletions).
func (s *Packuments) DeletePackument(ctx context.Context, name, rev string) error {
	ctx, cancel := s.c.ctx(ctx)
	defer cancel()
	if _, err := s.db.Delete(ctx, name, rev); err != nil {
		return translate(err, "delete package "+name)
	}
	return nil
}
