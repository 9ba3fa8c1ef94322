package couch

import (
	"context"

	kivik "github.com/go-kivik/kivik/v4"

	"github.com/couchnpm/couchnpm/registry"
)

// The views of designdoc are queried here by key or key range only: each
// command reads the few rows it needs, never the whole database.

const designDoc = "_design/couchnpm"

// viewRow is a row's key and value, decoded.
type viewRow[V any] struct {
	Key   string
	Value V
}

// queryView reads the rows of a view of db for params.
func queryView[V any](ctx context.Context, c *Client, db *kivik.DB, view string, params map[string]any) ([]viewRow[V], error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	rs := db.Query(ctx, designDoc, "_view/"+view, kivik.Params(params))
	defer rs.Close()
	var out []viewRow[V]
	for rs.Next() {
		var r viewRow[V]
		if err := rs.ScanKey(&r.Key); err != nil {
			continue // not a string key: not ours
		}
		if err := rs.ScanValue(&r.Value); err != nil {
			return nil, registry.Wrap(registry.KindInternal, err, "view %s: unreadable row", view)
		}
		out = append(out, r)
	}
	if err := rs.Err(); err != nil {
		return nil, translate(err, "query view "+view)
	}
	return out, nil
}

// SearchTerm implements registry.PackageIndex on the search view.
func (s *Packuments) SearchTerm(ctx context.Context, term string, prefix bool, limit int) ([]registry.SearchRow, error) {
	params := map[string]any{"limit": limit}
	if prefix {
		params["startkey"] = term
		params["endkey"] = term + "\ufff0"
	} else {
		params["key"] = term
	}
	rows, err := queryView[registry.SearchRow](ctx, s.c, s.db, "search", params)
	if err != nil {
		return nil, err
	}
	out := make([]registry.SearchRow, len(rows))
	for i, r := range rows {
		out[i] = r.Value
	}
	return out, nil
}

// StarredBy implements registry.PackageIndex on the starredByUser view.
func (s *Packuments) StarredBy(ctx context.Context, user string) ([]string, error) {
	return s.names(ctx, "starredByUser", map[string]any{"key": user})
}

// MaintainedBy implements registry.PackageIndex on the byMaintainer view.
func (s *Packuments) MaintainedBy(ctx context.Context, user string) ([]string, error) {
	return s.names(ctx, "byMaintainer", map[string]any{"key": user})
}

// names reads the values of a view whose values are package names.
func (s *Packuments) names(ctx context.Context, view string, params map[string]any) ([]string, error) {
	rows, err := queryView[string](ctx, s.c, s.db, view, params)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.Value
	}
	return out, nil
}

// Conflicted lists up to limit documents that have conflicting revisions
// (the conflicts view), for the resolver to merge at start and for status.
func (s *Packuments) Conflicted(ctx context.Context, limit int) ([]string, error) {
	rows, err := queryView[int](ctx, s.c, s.db, "conflicts", map[string]any{"limit": limit})
	if err != nil {
		return nil, err
	}
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.Key
	}
	return out, nil
}

// RecentlyModified lists the names of the limit most recently modified
// packages, newest first (the modified view, read backwards). Tombstones
// are included; readers skip what they cannot open.
func (s *Packuments) RecentlyModified(ctx context.Context, limit int) ([]string, error) {
	return s.names(ctx, "modified", map[string]any{"descending": true, "limit": limit})
}
