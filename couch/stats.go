package couch

import (
	"context"

	kivik "github.com/go-kivik/kivik/v4"

	"github.com/couchnpm/couchnpm/registry"
)

// Counts and sizes for the web UI's home and status pages: each is one
// cheap request (a view's total_rows, the database's info, or a lookup of
// given ids), never a scan.

// LiveCount is the number of live packuments: the byName view's
// total_rows, which CouchDB keeps in the index (limit=0 reads no row).
func (s *Packuments) LiveCount(ctx context.Context) (int64, error) {
	ctx, cancel := s.c.ctx(ctx)
	defer cancel()
	// update=lazy: answer from the index as it is (a mirror's may be far
	// behind while it follows), and bring it up to date afterwards.
	rs := s.db.Query(ctx, designDoc, "_view/byName", kivik.Params(map[string]any{"limit": 0, "update": "lazy"}))
	defer rs.Close()
	for rs.Next() { // limit=0: no rows; read to the end for the metadata
	}
	if err := rs.Err(); err != nil {
		return 0, translate(err, "count packages")
	}
	md, err := rs.Metadata()
	if err != nil {
		return 0, translate(err, "count packages")
	}
	return md.TotalRows, nil
}

// DBSize is a database's document count and size in bytes (the documents
// and attachments as stored, uncompressed when CouchDB reports it).
func (c *Client) DBSize(ctx context.Context, role string) (docs, bytes int64, err error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	st, err := c.k.DB(c.names[role]).Stats(ctx)
	if err != nil {
		return 0, 0, translate(err, "read the "+role+" database's info")
	}
	// sizes.external where the server reports it, else the live data's.
	return st.DocCount, max(st.ExternalSize, st.ActiveSize), nil
}

// Existing reports which of ids are live documents: one _all_docs request
// with the ids as keys.
func (d *Docs) Existing(ctx context.Context, ids []string) (map[string]bool, error) {
	return d.c.existing(ctx, d.db.Name(), ids, "look up documents")
}

// Dependents lists up to limit private packages whose latest version
// depends on name (the dependents view, by key), in name order.
func (s *Packuments) Dependents(ctx context.Context, name string, limit int) ([]registry.Dependent, error) {
	rows, err := queryView[registry.Dependent](ctx, s.c, s.db, "dependents", map[string]any{"key": name, "limit": limit})
	if err != nil {
		return nil, err
	}
	out := make([]registry.Dependent, 0, len(rows))
	for _, r := range rows {
		if r.Value.Name != "" {
			out = append(out, r.Value)
		}
	}
	return out, nil
}
