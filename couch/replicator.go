package couch

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	kivik "github.com/go-kivik/kivik/v4"

	"github.com/couchnpm/couchnpm/registry"
)

// Replication is a desired continuous _replicator document: the mirror's
// (replicate mode) or a peer site's.
type Replication struct {
	ID     string // _replicator document id
	Source string // source database URL (may carry credentials)
	Target string // target database URL as CouchDB itself reaches it
	Owner  string // what couchnpm keeps it for: "mirror" (default) or a peer owner
	// Scope is the database prefix of the registry that keeps the
	// document. Several registries on one CouchDB may keep the same
	// document (a shared system database such as _users, replicated from
	// the same peer: two documents for one replication would fail as
	// duplicates), so a document lists every scope that keeps it. Empty:
	// not scoped (the mirror's document, whose id names its prefix).
	Scope string
}

type replicatorDoc struct {
	ID         string         `json:"_id"`
	Rev        string         `json:"_rev,omitempty"`
	Source     string         `json:"source"`
	Target     string         `json:"target"`
	Continuous bool           `json:"continuous"`
	Selector   map[string]any `json:"selector,omitempty"`
	Owner      string         `json:"couchnpm"`
	Scopes     []string       `json:"couchnpm_scopes,omitempty"`
	// State fields written by the replicator itself (read back for status).
	State       string          `json:"_replication_state,omitempty"`
	StateTime   json.RawMessage `json:"_replication_state_time,omitempty"`
	StateReason string          `json:"_replication_state_reason,omitempty"`
	Stats       json.RawMessage `json:"_replication_stats,omitempty"`
}

// noDesignDocs is the replication selector that keeps upstream design
// documents out of the mirror: package names never start with "_". (A
// validate_doc_update cannot do it: neither CouchDB nor PouchDB Server runs
// one on design documents.)
var noDesignDocs = map[string]any{"_id": map[string]any{"$regex": "^[^_]"}}

// EnsureReplication creates or updates the continuous _replicator document
// so that it says exactly r: no write when it already does.
//
// CouchDB 3 gets a selector that leaves design documents upstream. PouchDB
// Server 4.2 crashes on a selector (and again at every restart while the
// document exists), so there no selector is set and RemoveForeignDesignDocs
// deletes what slips through. The two are told apart by /_scheduler, which
// only CouchDB has.
func (c *Client) EnsureReplication(ctx context.Context, r Replication) (changed bool, err error) {
	if err := c.ensureDB(ctx, "_replicator"); err != nil {
		return false, err
	}
	selector, err := c.replicationSelector(ctx)
	if err != nil {
		return false, err
	}
	db := c.k.DB("_replicator")
	for range 5 {
		cctx, cancel := c.ctx(ctx)
		var cur replicatorDoc
		err := db.Get(cctx, r.ID).ScanDoc(&cur)
		cancel()
		if err != nil && kivik.HTTPStatus(err) != http.StatusNotFound {
			return false, translate(err, "read the _replicator document")
		}
		owner := r.Owner
		if owner == "" {
			owner = "mirror"
		}
		scoped := r.Scope == "" || (cur.Owner == owner && slices.Contains(cur.Scopes, r.Scope))
		if err == nil && cur.Source == r.Source && cur.Target == r.Target && cur.Continuous && (cur.Selector != nil) == (selector != nil) && cur.Owner == owner && scoped {
			return false, nil
		}
		var scopes []string
		if cur.Owner == owner { // keep the other registries that keep it; a document of another owner (an older form) is taken over
			scopes = cur.Scopes
		}
		if r.Scope != "" && !slices.Contains(scopes, r.Scope) {
			scopes = append(slices.Clone(scopes), r.Scope)
			slices.Sort(scopes)
		}
		doc := replicatorDoc{ID: r.ID, Rev: cur.Rev, Source: r.Source, Target: r.Target, Continuous: true, Selector: selector, Owner: owner, Scopes: scopes}
		cctx, cancel = c.ctx(ctx)
		_, err = db.Put(cctx, r.ID, doc)
		cancel()
		if err == nil {
			return true, nil
		}
		if kivik.HTTPStatus(err) != http.StatusConflict {
			return false, translate(err, "write the _replicator document")
		}
	}
	return false, registry.E(registry.KindConflict, "the _replicator document kept changing")
}

// ReplicationState reports the replication's state. CouchDB 3 answers
// /_scheduler/docs/_replicator/{id}; PouchDB Server has no _scheduler
// (404), so there the replicator's _replication_state* fields on the
// document itself are read.
func (c *Client) ReplicationState(ctx context.Context, id string) (map[string]any, error) {
	cctx, cancel := c.ctx(ctx)
	defer cancel()
	resp, err := c.do(cctx, rawRequest{method: http.MethodGet, path: "/_scheduler/docs/_replicator/" + url.PathEscape(id), op: "read replication state", accept: anyStatus})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		var state map[string]any
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&state); err != nil {
			return nil, registry.Wrap(registry.KindUnavailable, err, "unreadable scheduler answer")
		}
		state["source_of_state"] = "_scheduler/docs"
		delete(state, "source") // may carry credentials
		delete(state, "target")
		return state, nil
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	c.wa.add(WorkaroundNoSchedulerState) // PouchDB Server only
	var cur replicatorDoc
	if err := c.k.DB("_replicator").Get(cctx, id).ScanDoc(&cur); err != nil {
		return nil, translate(err, "read the _replicator document")
	}
	state := map[string]any{"state": cur.State, "source_of_state": "_replicator document"}
	if cur.StateReason != "" {
		state["reason"] = cur.StateReason
	}
	if len(cur.StateTime) > 0 {
		state["state_time"] = cur.StateTime
	}
	if len(cur.Stats) > 0 {
		state["info"] = cur.Stats
	}
	return state, nil
}

// DBURL is the URL of a role's database under base, with the service's
// admin credentials, as a replication target.
func (c *Client) DBURL(base, role string) (string, error) {
	return c.ServerDBURL(base, c.names[role])
}

// replicationSelector is the selector to use on this server: nil on
// PouchDB Server (no /_scheduler), noDesignDocs on CouchDB.
func (c *Client) replicationSelector(ctx context.Context) (map[string]any, error) {
	resp, err := c.do(ctx, rawRequest{method: http.MethodGet, path: "/_scheduler/jobs", query: "limit=1", op: "probe the replication scheduler", accept: anyStatus})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode == http.StatusOK {
		return noDesignDocs, nil
	}
	c.wa.add(WorkaroundNoScheduler) // PouchDB Server only
	return nil, nil
}

// RemoveForeignDesignDocs deletes design documents in role's database that
// couchnpm did not install (upstream ones that a selector-less replication
// brought in), so that they never take effect for long. It returns their
// ids.
func (c *Client) RemoveForeignDesignDocs(ctx context.Context, role string, keep string) ([]string, error) {
	cctx, cancel := c.ctx(ctx)
	defer cancel()
	db := c.k.DB(c.names[role])
	rows := db.AllDocs(cctx, kivik.Param("startkey", "_design/"), kivik.Param("endkey", "_design0"))
	defer rows.Close()
	type victim struct{ id, rev string }
	var found []victim
	for rows.Next() {
		id, _ := rows.ID()
		var v struct {
			Rev string `json:"rev"`
		}
		if err := rows.ScanValue(&v); err != nil {
			return nil, translate(err, "list design documents")
		}
		if id != keep {
			found = append(found, victim{id, v.Rev})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, translate(err, "list design documents")
	}
	var removed []string
	for _, v := range found {
		if _, err := db.Delete(cctx, v.id, v.rev); err != nil {
			return removed, translate(err, "delete design document "+v.id)
		}
		removed = append(removed, v.id)
		c.wa.add(WorkaroundDesignDocSweep) // PouchDB Server only: CouchDB replicates with a selector
	}
	return removed, nil
}

// ServerDBURL is the URL of database name (a role's, or a system database
// such as _users) under base, with the service's admin credentials unless
// base carries its own.
func (c *Client) ServerDBURL(base, name string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	if u.User == nil && c.user != "" {
		u.User = url.UserPassword(c.user, c.password)
	}
	// RawPath keeps a "/" in the name (a prefix may have one) as %2F,
	// escaped once.
	u.RawPath = trimSlash(u.EscapedPath()) + "/" + url.PathEscape(name)
	u.Path = trimSlash(u.Path) + "/" + name
	return u.String(), nil
}

// ReplicationIDs lists the _replicator documents for which keep, given
// the document's owner, scopes and target database name, says yes.
func (c *Client) ReplicationIDs(ctx context.Context, keep func(owner string, scopes []string, targetDB string) bool) ([]string, error) {
	cctx, cancel := c.ctx(ctx)
	defer cancel()
	rs := c.k.DB("_replicator").AllDocs(cctx, kivik.Param("include_docs", true))
	defer rs.Close()
	var ids []string
	for rs.Next() {
		var d replicatorDoc
		if id, _ := rs.ID(); strings.HasPrefix(id, "_design/") {
			continue
		}
		if rs.ScanDoc(&d) == nil && d.Owner != "" && keep(d.Owner, d.Scopes, targetDB(d.Target)) {
			ids = append(ids, d.ID)
		}
	}
	if err := rs.Err(); kivik.HTTPStatus(err) == http.StatusNotFound {
		return nil, nil // no _replicator database: nothing to list
	} else if err != nil {
		return nil, translate(err, "list the _replicator documents")
	}
	return ids, nil
}

// targetDB is the database name at the end of a replication target URL
// ("" when unparseable).
func targetDB(target string) string {
	u, err := url.Parse(target)
	if err != nil {
		return ""
	}
	p := trimSlash(u.EscapedPath())
	name, err := url.PathUnescape(p[strings.LastIndex(p, "/")+1:])
	if err != nil {
		return ""
	}
	return name
}

// ReleaseReplication takes scope off the _replicator document id: the
// document is deleted, which stops its replication, once no scope keeps
// it any more (or when it has none: a document of the older, unscoped
// form). A document already gone, or kept only by other scopes, is left
// as it is.
func (c *Client) ReleaseReplication(ctx context.Context, id, scope string) (deleted bool, err error) {
	db := c.k.DB("_replicator")
	for range 5 {
		cctx, cancel := c.ctx(ctx)
		var doc map[string]any // kept whole: a rewrite must not drop what it does not know
		err := db.Get(cctx, id).ScanDoc(&doc)
		cancel()
		if kivik.HTTPStatus(err) == http.StatusNotFound {
			return false, nil
		}
		if err != nil {
			return false, translate(err, "read the _replicator document")
		}
		var rest []string
		scopes, _ := doc["couchnpm_scopes"].([]any)
		for _, s := range scopes {
			if s, ok := s.(string); ok && s != scope {
				rest = append(rest, s)
			}
		}
		if len(scopes) > 0 && len(rest) == len(scopes) {
			return false, nil // not (or no longer) kept by scope: not ours to touch
		}
		rev, _ := doc["_rev"].(string)
		cctx, cancel = c.ctx(ctx)
		if len(rest) == 0 {
			_, err = db.Delete(cctx, id, rev)
		} else {
			for k := range doc {
				if strings.HasPrefix(k, "_") && k != "_id" && k != "_rev" {
					delete(doc, k) // the replicator's own fields (PouchDB Server writes them)
				}
			}
			doc["couchnpm_scopes"] = rest
			_, err = db.Put(cctx, id, doc)
		}
		cancel()
		if err == nil {
			return len(rest) == 0, nil
		}
		if kivik.HTTPStatus(err) != http.StatusConflict {
			return false, translate(err, "release the _replicator document")
		}
	}
	return false, registry.E(registry.KindConflict, "the _replicator document kept changing")
}

// IsCouchDB tells Apache CouchDB (which has /_scheduler) from PouchDB
// Server (which has not).
func (c *Client) IsCouchDB(ctx context.Context) (bool, error) {
	sel, err := c.replicationSelector(ctx)
	return sel != nil, err
}
