package couch

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	kivik "github.com/go-kivik/kivik/v4"

	"github.com/couchnpm/couchnpm/auditlog"
	"github.com/couchnpm/couchnpm/registry"
)

// AuditLog stores audit entries in the audit database: created, never
// updated (its validate_doc_update refuses updates and deletions).
type AuditLog struct {
	c  *Client
	db *kivik.DB
}

// AuditLog returns the audit database's entries.
func (c *Client) AuditLog() *AuditLog { return &AuditLog{c: c, db: c.k.DB(c.names[RoleAudit])} }

// auditDoc is an entry as a document.
type auditDoc struct {
	ID string `json:"_id"`
	auditlog.Entry
}

// AppendEntries implements auditlog.Store: one _bulk_docs request. An
// entry refused because its document exists counts as written when the
// stored document has the same hash: a retry after an answer that was lost
// (a timeout, or a shutdown that cancelled the request after CouchDB took
// it).
func (a *AuditLog) AppendEntries(ctx context.Context, entries []auditlog.Entry) error {
	ctx, cancel := a.c.ctx(ctx)
	defer cancel()
	docs := make([]json.RawMessage, len(entries))
	for i, e := range entries {
		b, err := json.Marshal(auditDoc{ID: e.ID(), Entry: e})
		if err != nil {
			return fmt.Errorf("%w: %w", auditlog.ErrRefused, registry.Wrap(registry.KindInvalid, err, "encode audit entry %s", e.ID()))
		}
		docs[i] = b
	}
	results, err := a.c.bulkDocs(ctx, a.db.Name(), docs, "write audit entries", "write audit entry")
	if err != nil {
		return refusedOr(err)
	}
	for i, r := range results {
		if r.Err != nil && !a.storedAlready(ctx, r, entries[i]) {
			return refusedOr(r.Err)
		}
	}
	return nil
}

// storedAlready reports whether an entry refused for existing is stored
// with the same hash. Apache CouchDB refuses a new document whose id exists
// as a conflict, before validate_doc_update runs; PouchDB Server runs
// validate_doc_update first, and the audit database's append-only rule
// refuses it as forbidden.
func (a *AuditLog) storedAlready(ctx context.Context, r registry.BulkResult, e auditlog.Entry) bool {
	kind := registry.KindOf(r.Err)
	if kind != registry.KindConflict && kind != registry.KindForbidden {
		return false
	}
	var stored auditlog.Entry
	if err := a.db.Get(ctx, r.ID).ScanDoc(&stored); err != nil || stored.Hash != e.Hash {
		return false
	}
	if kind == registry.KindForbidden {
		a.c.wa.add(WorkaroundExistsForbidden)
	}
	return true
}

// refusedOr marks errors that retrying cannot cure (a validate_doc_update
// refusal, a malformed or too large document) as auditlog.ErrRefused.
func refusedOr(err error) error {
	switch registry.KindOf(err) {
	case registry.KindForbidden, registry.KindInvalid, registry.KindTooLarge:
		return fmt.Errorf("%w: %w", auditlog.ErrRefused, err)
	}
	return err
}

// LastEntry implements auditlog.Store.
func (a *AuditLog) LastEntry(ctx context.Context, prefix string) (*auditlog.Entry, error) {
	ctx, cancel := a.c.ctx(ctx)
	defer cancel()
	rs := a.db.AllDocs(ctx, kivik.Params(map[string]any{
		"startkey": prefix + "\ufff0", "endkey": prefix, "descending": true, "include_docs": true, "limit": 1,
	}))
	defer rs.Close()
	if !rs.Next() { // limit 1: one row at most
		if err := rs.Err(); err != nil {
			return nil, translate(err, "read the last audit entry")
		}
		return nil, nil
	}
	var e auditlog.Entry
	if err := rs.ScanDoc(&e); err != nil {
		return nil, registry.Wrap(registry.KindInternal, err, "decode the last audit entry")
	}
	return &e, nil
}

// auditPage is how many entries one request reads.
const auditPage = 1000

// EachEntry calls fn with every entry, in id order (chain, then
// sequence), a page at a time; each page has its own timeout.
func (a *AuditLog) EachEntry(ctx context.Context, fn func(auditlog.Entry) error) error {
	start := ""
	for {
		n, last, err := a.page(ctx, start, fn)
		if err != nil {
			return err
		}
		if n < auditPage {
			return nil
		}
		start = last // the next page starts after it (skip 1)
	}
}

func (a *AuditLog) page(ctx context.Context, start string, fn func(auditlog.Entry) error) (int, string, error) {
	ctx, cancel := a.c.ctx(ctx)
	defer cancel()
	params := map[string]any{"include_docs": true, "limit": auditPage}
	if start != "" {
		// The standard way to page: no key arithmetic, which collation
		// rules could bend.
		params["startkey"], params["skip"] = start, 1
	}
	rs := a.db.AllDocs(ctx, kivik.Params(params))
	defer rs.Close()
	n, last := 0, ""
	for rs.Next() {
		n++
		id, _ := rs.ID()
		last = id
		if strings.HasPrefix(id, "_design/") {
			continue
		}
		var e auditlog.Entry
		if err := rs.ScanDoc(&e); err != nil {
			return n, last, registry.Wrap(registry.KindInternal, err, "decode audit entry %s", id)
		}
		if err := fn(e); err != nil {
			return n, last, err
		}
	}
	if err := rs.Err(); err != nil {
		return n, last, translate(err, "read the audit log")
	}
	return n, last, nil
}
