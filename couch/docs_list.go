package couch

import (
	"context"
	"encoding/json"

	kivik "github.com/go-kivik/kivik/v4"

	"github.com/couchnpm/couchnpm/registry"
)

// ListPrefix implements registry.StateLister: up to limit documents whose
// ids start with prefix, with their revisions and bodies (_all_docs over
// the id range, so only those documents are read).
func (d *Docs) ListPrefix(ctx context.Context, prefix string, limit int) ([]registry.StateDoc, error) {
	ctx, cancel := d.c.ctx(ctx)
	defer cancel()
	rs := d.db.AllDocs(ctx, kivik.Params(map[string]any{
		"startkey": prefix, "endkey": prefix + "\ufff0", "include_docs": true, "limit": limit,
	}))
	defer rs.Close()
	var out []registry.StateDoc
	for rs.Next() {
		var raw json.RawMessage
		if err := rs.ScanDoc(&raw); err != nil {
			continue // a deleted or unreadable row
		}
		var meta struct {
			ID  string `json:"_id"`
			Rev string `json:"_rev"`
		}
		if err := json.Unmarshal(raw, &meta); err != nil || meta.ID == "" {
			continue
		}
		out = append(out, registry.StateDoc{ID: meta.ID, Rev: meta.Rev, Doc: raw})
	}
	if err := rs.Err(); err != nil {
		return nil, translate(err, "list "+prefix+"*")
	}
	return out, nil
}
