package couch

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"

	kivik "github.com/go-kivik/kivik/v4"

	"github.com/couchnpm/couchnpm/registry"
)

// GetPackument reads a packument document (attachments as stubs) with the
// losing leaf revisions CouchDB knows of (_conflicts), which cost nothing
// extra to ask for.
func (s *Packuments) GetPackument(ctx context.Context, name string) (*registry.Packument, error) {
	ctx, cancel := s.c.ctx(ctx)
	defer cancel()
	var p registry.Packument
	if err := s.db.Get(ctx, name, kivik.Param("conflicts", true)).ScanDoc(&p); err != nil {
		return nil, translate(err, "read package "+name)
	}
	return &p, nil
}

// PeekPackument is GetPackument: each read decodes its own copy.
func (s *Packuments) PeekPackument(ctx context.Context, name string) (*registry.Packument, error) {
	return s.GetPackument(ctx, name)
}

// GetPackumentForWrite is GetPackument: nothing here caches, every read is
// CouchDB's current revision.
func (s *Packuments) GetPackumentForWrite(ctx context.Context, name string) (*registry.Packument, error) {
	return s.GetPackument(ctx, name)
}

// PutPackument writes the document and its inline attachments in one
// request, so a publish is atomic: CouchDB stores both or neither. The
// status tells whether a write quorum was reached: 201, or 202 when the
// write is stored on fewer nodes (the caller confirms it).
func (s *Packuments) PutPackument(ctx context.Context, p *registry.Packument) (registry.Written, error) {
	ctx, cancel := s.c.ctx(ctx)
	defer cancel()
	body, err := json.Marshal(p)
	if err != nil {
		return registry.Written{}, registry.Wrap(registry.KindInternal, err, "encode package %s", p.ID)
	}
	w, err := s.putDoc(ctx, p.ID, body)
	if err == nil {
		return w, nil
	}
	if registry.IsKind(err, registry.KindForbidden) && s.stale(ctx, p) {
		// PouchDB Server only: it runs validate_doc_update against the
		// current document before it checks the revision, so a write based
		// on an older revision can be refused (403: "time[v] may not be
		// removed") where CouchDB 3 answers 409. It is a conflict: the
		// caller re-reads and merges again.
		s.c.wa.add(WorkaroundStaleWrite403)
		return registry.Written{}, registry.Wrap(registry.KindConflict, err, "write package %s: document update conflict", p.ID)
	}
	return registry.Written{}, err
}

// putDoc PUTs a JSON document and reads CouchDB's answer.
func (s *Packuments) putDoc(ctx context.Context, id string, body []byte) (registry.Written, error) {
	resp, err := s.c.do(ctx, rawRequest{method: http.MethodPut, path: dbPath(s.db.Name(), "/"+url.PathEscape(id)), body: body, op: "write package " + id})
	if err != nil {
		return registry.Written{}, err
	}
	defer resp.Body.Close()
	var ok struct {
		Rev string `json:"rev"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&ok); err != nil || ok.Rev == "" {
		return registry.Written{}, registry.E(registry.KindUnavailable, "write package %s: CouchDB answered %d without a revision", id, resp.StatusCode)
	}
	return registry.Written{Rev: ok.Rev, Quorum: resp.StatusCode != http.StatusAccepted}, nil
}

// Leaves reads every live leaf revision of a document, CouchDB's winner
// first: GET ?conflicts=true names the winner and the losers, then one
// GET ?open_revs=[…] reads the losers' bodies.
func (s *Packuments) Leaves(ctx context.Context, name string) ([]*registry.Packument, error) {
	winner, err := s.GetPackument(ctx, name)
	if err != nil {
		return nil, err
	}
	if len(winner.Conflicts) == 0 {
		return []*registry.Packument{winner}, nil
	}
	oks, err := openRevs[registry.Packument](ctx, s.c, s.db.Name(), name, winner.Conflicts, 0)
	if err != nil {
		return nil, err
	}
	out := []*registry.Packument{winner}
	for _, p := range oks {
		if p.Rev != winner.Rev && !deleted(p) {
			out = append(out, p)
		}
	}
	sort.Slice(out[1:], func(i, j int) bool { return out[1+i].Rev < out[1+j].Rev })
	return out, nil
}

// openRevs reads the bodies of revisions revs of document id in db, decoded
// as T, in one GET ?open_revs=[…]; a revision another resolver removed
// meanwhile ({"missing": rev}) is left out. limit bounds the answer's
// bytes (0: unbounded, for packuments of any size).
func openRevs[T any](ctx context.Context, c *Client, db, id string, revs []string, limit int64) ([]*T, error) {
	list, _ := json.Marshal(revs)
	resp, err := c.do(ctx, rawRequest{
		method: http.MethodGet, path: dbPath(db, "/"+url.PathEscape(id)),
		query: url.Values{"open_revs": {string(list)}}.Encode(), op: "read the conflicting revisions of " + id,
	})
	if err != nil {
		return nil, movedOn(err)
	}
	defer resp.Body.Close()
	var body io.Reader = resp.Body
	if limit > 0 {
		body = io.LimitReader(resp.Body, limit)
	}
	var rows []struct {
		OK *T `json:"ok"`
	}
	if err := json.NewDecoder(body).Decode(&rows); err != nil {
		return nil, registry.Wrap(registry.KindUnavailable, err, "read the conflicting revisions of %s", id)
	}
	out := make([]*T, 0, len(rows))
	for _, r := range rows {
		if r.OK != nil {
			out = append(out, r.OK)
		}
	}
	return out, nil
}

func deleted(p *registry.Packument) bool {
	raw, ok := p.Fields["_deleted"]
	return ok && string(raw) == "true"
}

// Resolve makes merged the only live leaf of its document. It first
// writes merged on top of the winner (when write is set), copying the
// attachments it takes from other leaves, and only then deletes the losing
// leaves in one _bulk_docs: were the deletions sent with the merge and the
// merge refused, the losers' content would be gone. A loser that another
// resolver already deleted or extended is left to the next round.
func (s *Packuments) Resolve(ctx context.Context, merged *registry.Packument, write bool, losers []string) error {
	if write {
		doc := *merged
		doc.Conflicts = nil
		doc.Attachments = make(map[string]registry.Attachment, len(merged.Attachments))
		for name, a := range merged.Attachments {
			if a.FromRev != "" {
				data, err := s.attachmentAt(ctx, merged.ID, name, a)
				if err != nil {
					return err
				}
				a = registry.Attachment{ContentType: a.ContentType, Data: data}
			}
			doc.Attachments[name] = a
		}
		body, err := json.Marshal(&doc)
		if err != nil {
			return registry.Wrap(registry.KindInternal, err, "encode package %s", doc.ID)
		}
		cctx, cancel := s.c.ctx(ctx)
		_, err = s.putDoc(cctx, doc.ID, body)
		cancel()
		if err != nil {
			return err
		}
	}
	if len(losers) == 0 {
		return nil
	}
	type del struct {
		ID      string `json:"_id"`
		Rev     string `json:"_rev"`
		Deleted bool   `json:"_deleted"`
	}
	docs := make([]del, len(losers))
	for i, rev := range losers {
		docs[i] = del{ID: merged.ID, Rev: rev, Deleted: true}
	}
	body, _ := json.Marshal(map[string]any{"docs": docs})
	resp, err := s.c.do(ctx, rawRequest{method: http.MethodPost, path: dbPath(s.db.Name(), "/_bulk_docs"), body: body, op: "delete the conflicting revisions of " + merged.ID})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return nil
}

// attachmentAt reads attachment name as stored in revision a.FromRev,
// base64-encoded for an inline write. Tarballs of one publish are bounded
// by the publish size limit, so holding one in memory is bounded too.
func (s *Packuments) attachmentAt(ctx context.Context, id, name string, a registry.Attachment) (string, error) {
	if a.FromName != "" {
		name = a.FromName // kept aside: stored under its own name in that revision
	}
	resp, err := s.c.do(ctx, rawRequest{
		method: http.MethodGet, path: dbPath(s.db.Name(), "/"+url.PathEscape(id)+"/"+url.PathEscape(name)),
		query: url.Values{"rev": {a.FromRev}}.Encode(), op: fmt.Sprintf("read %s of revision %s", name, a.FromRev),
	})
	if err != nil {
		return "", movedOn(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	enc := base64.NewEncoder(base64.StdEncoding, &buf)
	if _, err := io.Copy(enc, resp.Body); err != nil {
		return "", registry.Wrap(registry.KindUnavailable, err, "read %s of revision %s", name, a.FromRev)
	}
	enc.Close()
	return buf.String(), nil
}

// movedOn turns a 404 met while merging leaves into a conflict: another
// resolver deleted or extended the leaf meanwhile, and reading the leaves
// again is the way forward.
func movedOn(err error) error {
	if registry.IsKind(err, registry.KindNotFound) {
		return registry.Wrap(registry.KindConflict, err, "the conflicting revisions changed while they were merged")
	}
	return err
}
