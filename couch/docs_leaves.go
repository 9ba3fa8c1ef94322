package couch

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"sort"

	kivik "github.com/go-kivik/kivik/v4"

	"github.com/couchnpm/couchnpm/registry"
)

// Leaves reads every live leaf revision of state document id, CouchDB's
// winner first and the losers by revision: GET ?conflicts=true names them
// (at the cost of a plain read), and only when there are losers one GET
// ?open_revs=[…] reads their bodies. KindNotFound when id is absent.
func (d *Docs) Leaves(ctx context.Context, id string) ([]registry.DocLeaf, error) {
	var raw json.RawMessage
	{
		ctx, cancel := d.c.ctx(ctx)
		err := d.db.Get(ctx, id, kivik.Param("conflicts", true)).ScanDoc(&raw)
		cancel()
		if err != nil {
			return nil, translate(err, "read "+id)
		}
	}
	var meta struct {
		Rev       string   `json:"_rev"`
		Conflicts []string `json:"_conflicts"`
	}
	if err := json.Unmarshal(raw, &meta); err != nil {
		return nil, registry.Wrap(registry.KindInternal, err, "decode %s", id)
	}
	out := []registry.DocLeaf{{Rev: meta.Rev, Body: raw}}
	if len(meta.Conflicts) == 0 {
		return out, nil
	}
	oks, err := openRevs[json.RawMessage](ctx, d.c, d.db.Name(), id, meta.Conflicts, 16<<20)
	if err != nil {
		return nil, err
	}
	for _, ok := range oks {
		var m struct {
			Rev     string `json:"_rev"`
			Deleted bool   `json:"_deleted"`
		}
		if json.Unmarshal(*ok, &m) != nil || m.Deleted || m.Rev == meta.Rev {
			continue
		}
		out = append(out, registry.DocLeaf{Rev: m.Rev, Body: *ok})
	}
	sort.Slice(out[1:], func(i, j int) bool { return out[1+i].Rev < out[1+j].Rev })
	return out, nil
}

// WriteMerge writes v as document id on top of revision rev (a new
// document when rev is empty) and, once that write is stored, deletes the
// losing leaves in one _bulk_docs: were the deletions sent with the write
// and the write refused, the losers' content would be gone. The answer
// tells a quorum write (201) from one CouchDB stored on fewer nodes (202).
// KindConflict when rev is no longer the winner. A loser that another
// writer already deleted is left alone.
func (d *Docs) WriteMerge(ctx context.Context, id, rev string, v any, losers []string) (registry.Written, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return registry.Written{}, registry.Wrap(registry.KindInternal, err, "encode %s", id)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return registry.Written{}, registry.Wrap(registry.KindInternal, err, "encode %s", id)
	}
	m["_id"], _ = json.Marshal(id)
	delete(m, "_rev")
	delete(m, "_conflicts")
	if rev != "" {
		m["_rev"], _ = json.Marshal(rev)
	}
	body, _ := json.Marshal(m)
	resp, err := d.c.do(ctx, rawRequest{method: http.MethodPut, path: dbPath(d.db.Name(), "/"+url.PathEscape(id)), body: body, op: "write " + id})
	if err != nil {
		return registry.Written{}, err
	}
	var ok struct {
		Rev string `json:"rev"`
	}
	err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&ok)
	resp.Body.Close()
	if err != nil || ok.Rev == "" {
		return registry.Written{}, registry.E(registry.KindUnavailable, "write %s: CouchDB answered %d without a revision", id, resp.StatusCode)
	}
	w := registry.Written{Rev: ok.Rev, Quorum: resp.StatusCode != http.StatusAccepted}
	if len(losers) == 0 {
		return w, nil
	}
	type del struct {
		ID      string `json:"_id"`
		Rev     string `json:"_rev"`
		Deleted bool   `json:"_deleted"`
	}
	docs := make([]del, len(losers))
	for i, r := range losers {
		docs[i] = del{ID: id, Rev: r, Deleted: true}
	}
	dbody, _ := json.Marshal(map[string]any{"docs": docs})
	dresp, err := d.c.do(ctx, rawRequest{method: http.MethodPost, path: dbPath(d.db.Name(), "/_bulk_docs"), body: dbody, op: "delete the conflicting revisions of " + id})
	if err != nil {
		// The merge is stored: the losers stay until the next read or
		// write of id merges (to the same result) and deletes them.
		return w, nil
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(dresp.Body, 1<<20))
	dresp.Body.Close()
	return w, nil
}
