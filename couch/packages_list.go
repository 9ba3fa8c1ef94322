package couch

import (
	"context"
	"strings"

	kivik "github.com/go-kivik/kivik/v4"
)

// Names lists the package names of one page of up to limit documents after
// the id after ("" starts at the beginning), in id order, design documents
// left out; next is the id to continue after, "" on the last page.
func (s *Packuments) Names(ctx context.Context, after string, limit int) (names []string, next string, err error) {
	ctx, cancel := s.c.ctx(ctx)
	defer cancel()
	params := map[string]any{"limit": limit}
	if after != "" {
		params["startkey"] = after
		params["skip"] = 1
	}
	rs := s.db.AllDocs(ctx, kivik.Params(params))
	defer rs.Close()
	var out []string
	for rs.Next() {
		id, err := rs.ID()
		if err != nil {
			continue
		}
		out = append(out, id)
	}
	if err := rs.Err(); err != nil {
		return nil, "", translate(err, "list packages")
	}
	if len(out) == limit {
		next = out[len(out)-1]
	}
	for _, id := range out {
		if !strings.HasPrefix(id, "_design/") {
			names = append(names, id)
		}
	}
	return names, next, nil
}
