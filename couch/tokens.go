package couch

import (
	"context"
	"time"

	kivik "github.com/go-kivik/kivik/v4"

	"github.com/couchnpm/couchnpm/registry"
)

// Tokens keeps token records, keyed by the token's hash. It implements
// registry.TokenStore.
type Tokens struct {
	c  *Client
	db *kivik.DB
}

// Tokens returns the token store.
func (c *Client) Tokens() *Tokens { return &Tokens{c: c, db: c.k.DB(c.names[RoleTokens])} }

type tokenDoc struct {
	ID       string     `json:"_id"`
	Rev      string     `json:"_rev,omitempty"`
	Type     string     `json:"type"`
	User     string     `json:"user"`
	Email    string     `json:"email,omitempty"`
	Created  time.Time  `json:"created"`
	ReadOnly bool       `json:"readonly"`
	CIDR     []string   `json:"cidr_whitelist,omitempty"`
	Expires  *time.Time `json:"expires,omitempty"`
	Name     string     `json:"name,omitempty"`
}

// PutToken stores a token record.
func (s *Tokens) PutToken(ctx context.Context, t *registry.Token) error {
	ctx, cancel := s.c.ctx(ctx)
	defer cancel()
	d := tokenDoc{ID: t.Key, Type: "token", User: t.User, Email: t.Email, Created: t.Created,
		ReadOnly: t.ReadOnly, CIDR: t.CIDR, Expires: t.Expires, Name: t.Name}
	if _, err := s.db.Put(ctx, d.ID, d); err != nil {
		return translate(err, "store token")
	}
	return nil
}

// GetToken reads a token record by key.
func (s *Tokens) GetToken(ctx context.Context, key string) (*registry.Token, error) {
	ctx, cancel := s.c.ctx(ctx)
	defer cancel()
	var d tokenDoc
	if err := s.db.Get(ctx, key).ScanDoc(&d); err != nil {
		return nil, translate(err, "read token")
	}
	return &registry.Token{Key: d.ID, User: d.User, Email: d.Email, Created: d.Created,
		ReadOnly: d.ReadOnly, CIDR: d.CIDR, Expires: d.Expires, Name: d.Name}, nil
}

// DeleteToken removes a token record.
func (s *Tokens) DeleteToken(ctx context.Context, key string) error {
	ctx, cancel := s.c.ctx(ctx)
	defer cancel()
	// A plain GET for the revision: kivik's GetRev (HEAD with a multipart
	// Accept) answers 404 on PouchDB Server, which silently broke revokes.
	var cur struct {
		Rev string `json:"_rev"`
	}
	if err := s.db.Get(ctx, key).ScanDoc(&cur); err != nil {
		return translate(err, "read token")
	}
	if _, err := s.db.Delete(ctx, key, cur.Rev); err != nil {
		return translate(err, "revoke token")
	}
	return nil
}
