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
	err := allDocsByKeys(ctx, s.c, s.db.Name(), names, true, "read a batch of packages", func(key string, doc *registry.Packument) {
		if doc != nil {
			out[key] = doc
		}
	})
	return out, err
}

// Existing reports which of names have a live document, reading only the
// index (POST _all_docs with keys, no documents).
func (s *Packuments) Existing(ctx context.Context, names []string) (map[string]bool, error) {
	return s.c.existing(ctx, s.db.Name(), names, "look up a batch of packages")
}

// existing reports which of ids are live documents of db: one _all_docs
// request with the ids as keys, reading only the index.
func (c *Client) existing(ctx context.Context, db string, ids []string, op string) (map[string]bool, error) {
	out := make(map[string]bool, len(ids))
	err := allDocsByKeys(ctx, c, db, ids, false, op, func(key string, _ *struct{}) { out[key] = true })
	return out, err
}

// allDocsByKeys reads the rows of keys (POST _all_docs, with the documents
// decoded as D when docs is set) and calls live with each live document:
// ids with no document and deleted ones are left out. An empty keys makes
// no request.
func allDocsByKeys[D any](ctx context.Context, c *Client, db string, keys []string, docs bool, op string, live func(key string, doc *D)) error {
	if len(keys) == 0 {
		return nil
	}
	body, _ := json.Marshal(map[string]any{"keys": keys})
	query := ""
	if docs {
		query = "include_docs=true"
	}
	resp, err := c.do(ctx, rawRequest{method: http.MethodPost, path: dbPath(db, "/_all_docs"), query: query, body: body, op: op})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var rows struct {
		Rows []struct {
			Key   string `json:"key"`
			Error string `json:"error"` // "not_found": an id with no document
			Value struct {
				Rev     string `json:"rev"`
				Deleted bool   `json:"deleted"`
			} `json:"value"`
			Doc *D `json:"doc"`
		} `json:"rows"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&rows); err != nil {
		return registry.Wrap(registry.KindUnavailable, err, "%s: unreadable answer", op)
	}
	for _, r := range rows.Rows {
		if r.Error == "" && r.Value.Rev != "" && !r.Value.Deleted {
			live(r.Key, r.Doc)
		}
	}
	return nil
}

// PutPackuments writes encoded documents (each carrying its _id, and _rev
// when it replaces one) in one _bulk_docs request. The result holds one
// entry per document, in order: its new revision, or the error CouchDB gave
// for it (KindConflict, KindForbidden for a validate_doc_update refusal,
// KindTooLarge over max_document_size). An error for the whole request
// (CouchDB down, the request refused as too large) is returned as err.
func (s *Packuments) PutPackuments(ctx context.Context, docs []json.RawMessage) ([]registry.BulkResult, error) {
	return s.c.bulkDocs(ctx, s.db.Name(), docs, "write a batch of packages", "write package")
}

// bulkDocs writes encoded documents to db in one _bulk_docs request and
// returns one result per document, in order. It reads CouchDB's answer
// itself rather than through kivik, whose BulkDocs reports every error but
// "conflict" as a 500: a validate_doc_update refusal ("forbidden") must stay
// a refusal, which retrying cannot cure. op names the request in errors,
// docOp a document ("write package" ID: ...).
func (c *Client) bulkDocs(ctx context.Context, db string, docs []json.RawMessage, op, docOp string) ([]registry.BulkResult, error) {
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
	resp, err := c.do(ctx, rawRequest{method: http.MethodPost, path: dbPath(db, "/_bulk_docs"), body: buf.Bytes(), op: op})
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
		return nil, registry.Wrap(registry.KindUnavailable, err, "%s: unreadable answer", op)
	}
	if len(rows) != len(docs) {
		return nil, registry.E(registry.KindUnavailable, "%s: CouchDB answered for %d of %d documents", op, len(rows), len(docs))
	}
	out := make([]registry.BulkResult, len(rows))
	for i, r := range rows {
		out[i] = registry.BulkResult{ID: r.ID, Rev: r.Rev, Err: bulkError(docOp+" "+r.ID, r.Error, r.Reason)}
	}
	return out, nil
}

// bulkError translates one document's error in a _bulk_docs answer; what
// names the document's write ("write package NAME").
func bulkError(what, code, reason string) error {
	switch code {
	case "":
		return nil
	case "conflict":
		return registry.E(registry.KindConflict, "%s: document update conflict", what)
	case "forbidden":
		return registry.E(registry.KindForbidden, "%s: %s", what, reasonOr(reason, "refused by CouchDB"))
	case "too_large", "document_too_large":
		return registry.E(registry.KindTooLarge, "%s: CouchDB refused the document as too large (raise CouchDB's max_document_size)", what)
	default:
		return registry.E(registry.KindUnavailable, "%s: CouchDB answered %s (%s)", what, code, reasonOr(reason, "no reason"))
	}
}
