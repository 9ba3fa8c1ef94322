package couch

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"

	"github.com/couchnpm/couchnpm/registry"
)

// The mirror follower reads and writes packuments a batch at a time: one
// request per batch instead of one per package is most of what lets it
// keep up with a busy upstream.

// GetPackuments reads the stored documents among names in one request
// (POST _all_docs with keys and include_docs). Absent and deleted names are
// missing from the map.
func (s *Packuments) GetPackuments(ctx context.Context, names []string) (map[string]*registry.Packument, error) {
	out := make(map[string]*registry.Packument, len(names))
	if len(names) == 0 {
		return out, nil
	}
	body, _ := json.Marshal(map[string]any{"keys": names})
	resp, err := s.c.do(ctx, rawRequest{method: http.MethodPost, path: dbPath(s.db.Name(), "/_all_docs"), query: "include_docs=true", body: body, op: "read a batch of packages"})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var rows struct {
		Rows []struct {
			Key   string `json:"key"`
			Error string `json:"error"`
			Value struct {
				Deleted bool `json:"deleted"`
			} `json:"value"`
			Doc *registry.Packument `json:"doc"`
		} `json:"rows"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&rows); err != nil {
		return nil, registry.Wrap(registry.KindUnavailable, err, "read a batch of packages: unreadable answer")
	}
	for _, r := range rows.Rows {
		if r.Error == "" && !r.Value.Deleted && r.Doc != nil {
			out[r.Key] = r.Doc
		}
	}
	return out, nil
}

// Existing reports which of names have a live document, reading only the
// index (POST _all_docs with keys, no documents).
func (s *Packuments) Existing(ctx context.Context, names []string) (map[string]bool, error) {
	out := make(map[string]bool, len(names))
	if len(names) == 0 {
		return out, nil
	}
	body, _ := json.Marshal(map[string]any{"keys": names})
	resp, err := s.c.do(ctx, rawRequest{method: http.MethodPost, path: dbPath(s.db.Name(), "/_all_docs"), body: body, op: "look up a batch of packages"})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var rows struct {
		Rows []struct {
			Key   string `json:"key"`
			Error string `json:"error"`
			Value struct {
				Rev     string `json:"rev"`
				Deleted bool   `json:"deleted"`
			} `json:"value"`
		} `json:"rows"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&rows); err != nil {
		return nil, registry.Wrap(registry.KindUnavailable, err, "look up a batch of packages: unreadable answer")
	}
	for _, r := range rows.Rows {
		if r.Error == "" && r.Value.Rev != "" && !r.Value.Deleted {
			out[r.Key] = true
		}
	}
	return out, nil
}

// PutPackuments writes encoded documents (each carrying its _id, and _rev
// when it replaces one) in one _bulk_docs request. The result holds one
// entry per document, in order: its new revision, or the error CouchDB gave
// for it (KindConflict, KindForbidden for a validate_doc_update refusal,
// KindTooLarge over max_document_size). An error for the whole request
// (CouchDB down, the request refused as too large) is returned as err.
func (s *Packuments) PutPackuments(ctx context.Context, docs []json.RawMessage) ([]registry.BulkResult, error) {
	if len(docs) == 0 {
		return nil, nil
	}
	var buf bytes.Buffer
	n := len(`{"docs":[]}`) + len(docs)
	for _, d := range docs {
		n += len(d)
	}
	buf.Grow(n)
	buf.WriteString(`{"docs":[`)
	for i, d := range docs {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(d)
	}
	buf.WriteString(`]}`)
	resp, err := s.c.do(ctx, rawRequest{method: http.MethodPost, path: dbPath(s.db.Name(), "/_bulk_docs"), body: buf.Bytes(), op: "write a batch of packages"})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var rows []struct {
		ID     string `json:"id"`
		Rev    string `json:"rev"`
		Error  string `json:"error"`
		Reason string `json:"reason"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&rows); err != nil {
		return nil, registry.Wrap(registry.KindUnavailable, err, "write a batch of packages: unreadable answer")
	}
	if len(rows) != len(docs) {
		return nil, registry.E(registry.KindUnavailable, "write a batch of packages: CouchDB answered for %d of %d documents", len(rows), len(docs))
	}
	out := make([]registry.BulkResult, len(rows))
	for i, r := range rows {
		out[i] = registry.BulkResult{ID: r.ID, Rev: r.Rev, Err: bulkError(r.ID, r.Error, r.Reason)}
	}
	return out, nil
}

// bulkError translates one document's error in a _bulk_docs answer.
func bulkError(id, code, reason string) error {
	switch code {
	case "":
		return nil
	case "conflict":
		return registry.E(registry.KindConflict, "write package %s: document update conflict", id)
	case "forbidden":
		return registry.E(registry.KindForbidden, "write package %s: %s", id, reasonOr(reason, "refused by CouchDB"))
	case "too_large", "document_too_large":
		return registry.E(registry.KindTooLarge, "write package %s: CouchDB refused the document as too large (raise CouchDB's max_document_size)", id)
	default:
		return registry.E(registry.KindUnavailable, "write package %s: CouchDB answered %s (%s)", id, code, reasonOr(reason, "no reason"))
	}
}
