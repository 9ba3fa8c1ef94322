package couch

import (
	"context"

	kivik "github.com/go-kivik/kivik/v4"

	"github.com/couchnpm/couchnpm/registry"
)

// ListTokens implements registry.TokenLister: a user's token records from
// the byUser view, with their documents (for CIDR ranges and expiry).
func (s *Tokens) ListTokens(ctx context.Context, user string) ([]*registry.Token, error) {
	ctx, cancel := s.c.ctx(ctx)
	defer cancel()
	rs := s.db.Query(ctx, designDoc, "_view/byUser", kivik.Params(map[string]any{"key": user, "include_docs": true}))
	defer rs.Close()
	var out []*registry.Token
	for rs.Next() {
		var d tokenDoc
		if err := rs.ScanDoc(&d); err != nil || d.User != user {
			continue
		}
		out = append(out, &registry.Token{Key: d.ID, User: d.User, Email: d.Email, Created: d.Created,
			ReadOnly: d.ReadOnly, CIDR: d.CIDR, Expires: d.Expires, Name: d.Name})
	}
	if err := rs.Err(); err != nil {
		return nil, translate(err, "list tokens")
	}
	return out, nil
}
