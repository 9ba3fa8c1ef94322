package replication

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/internal/retry"
)

// PeerOwner tags the _replicator documents couchnpm keeps for peer sites;
// each also lists the scopes (database prefixes) of the registries that
// keep it, and a registry only ever removes its own scope.
//
// It is not LegacyPeerOwner so that a couchnpm of an older version on the
// same CouchDB, which deleted every LegacyPeerOwner document not in its
// own list, never sees these.
const PeerOwner = "peer-scoped"

// LegacyPeerOwner tagged peer documents before they were scoped. Whose
// such a document is can only be told by its target: one of a registry's
// own databases makes it that registry's; a shared system database
// (_users) could be any registry's, so it is left alone unless a registry
// still wants it (then the registry's ensure takes it over).
const LegacyPeerOwner = "peer"

// PeerReplicator is the CouchDB side of peer replication (*couch.Client).
type PeerReplicator[R any] interface {
	EnsureReplication(ctx context.Context, r R) (bool, error)
	ReplicationState(ctx context.Context, id string) (map[string]any, error)
	// ReplicationIDs lists the _replicator documents keep says yes to.
	ReplicationIDs(ctx context.Context, keep func(owner string, scopes []string, targetDB string) bool) ([]string, error)
	// ReleaseReplication takes scope off a document and deletes it once
	// no scope keeps it.
	ReleaseReplication(ctx context.Context, id, scope string) (bool, error)
	IsCouchDB(ctx context.Context) (bool, error)
}

// PeerLink is one continuous replication from a peer site's database into
// the same database here. Every site names its peers, and each site pulls:
// together that is replication both ways, with no stream run twice.
type PeerLink struct {
	ID     string // _replicator document id
	Peer   string // the peer's CouchDB URL without credentials (safe to show)
	DB     string // database name (the same on both sites)
	Source string // peer database URL, with credentials
	Target string // local database URL as CouchDB reaches it, with credentials
}

// PeerLinks builds the links for peers (CouchDB base URLs, credentials in
// them) and the databases that travel between sites. dbURL gives a
// database's URL under a base (adding the service's credentials to the
// local one).
func PeerLinks(peers []string, dbs []string, localBase string, dbURL func(base, db string) (string, error)) ([]PeerLink, error) {
	var out []PeerLink
	for _, p := range peers {
		u, err := url.Parse(p)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("--peer %q is not an http(s) URL", redact(p))
		}
		for _, db := range dbs {
			src, err := dbURL(p, db)
			if err != nil {
				return nil, err
			}
			dst, err := dbURL(localBase, db)
			if err != nil {
				return nil, err
			}
			shown := redact(p)
			sum := sha256.Sum256([]byte(shown + "|" + db))
			out = append(out, PeerLink{
				ID: "couchnpm-peer-" + hex.EncodeToString(sum[:8]), Peer: shown, DB: db, Source: src, Target: dst,
			})
		}
	}
	return out, nil
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	u.User = nil
	return strings.TrimRight(u.String(), "/")
}

// PeerStatus is the state of one peer link, as GET /-/replication/status
// and `couchnpm replication status` show it.
type PeerStatus struct {
	Peer           string `json:"peer"`
	DB             string `json:"db"`
	State          string `json:"state"` // running, pending, crashing, error, failed, … ("unknown" when unreadable)
	ChangesPending *int64 `json:"changes_pending,omitempty"`
	DocsWritten    int64  `json:"docs_written"`
	LastUpdated    string `json:"last_updated,omitempty"`
	LastError      string `json:"last_error,omitempty"`
}

// Peers keeps the peer links' _replicator documents in place and reports
// their state. Every instance of a site may run it: the writes are
// idempotent.
type Peers[R any] struct {
	links []PeerLink
	scope string          // this registry's database prefix
	dbs   map[string]bool // the databases that travel between sites
	repl  PeerReplicator[R]
	make  func(PeerLink) R
	log   zerolog.Logger

	mu        sync.Mutex
	status    []PeerStatus // the last reading (refreshed by Run)
	checkedAt time.Time
}

// NewPeers returns the keeper of links for the registry whose database
// prefix is scope and whose databases dbs travel between sites (as in
// PeerLinks); mk turns a link into the replicator's document type
// (carrying scope, PeerOwner and the link's id). Without links it only
// removes this registry's replications (Ensure).
func NewPeers[R any](links []PeerLink, scope string, dbs []string, repl PeerReplicator[R], mk func(PeerLink) R, log zerolog.Logger) *Peers[R] {
	own := map[string]bool{}
	for _, db := range dbs {
		own[db] = true
	}
	return &Peers[R]{links: links, scope: scope, dbs: own, repl: repl, make: mk, log: log.With().Str("component", "peers").Logger()}
}

// Run ensures every link now and every period, removes the links of peers
// no longer configured, and reads the links' state every poll, until ctx
// ends. Status and the metrics read that reading: they never call CouchDB.
func (p *Peers[R]) Run(ctx context.Context, period, poll time.Duration) {
	var ensured time.Time
	for {
		if time.Since(ensured) >= period {
			p.Ensure(ctx)
			ensured = time.Now()
		}
		st := p.read(ctx)
		p.mu.Lock()
		p.status, p.checkedAt = st, time.Now()
		p.mu.Unlock()
		if retry.Wait(ctx, poll) != nil {
			return
		}
	}
}

// Status is the last reading of every link's state and when it was taken.
func (p *Peers[R]) Status() ([]PeerStatus, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]PeerStatus(nil), p.status...), p.checkedAt
}

// Ensure writes every link's document and removes this registry's
// documents of peers no longer configured, once.
func (p *Peers[R]) Ensure(ctx context.Context) {
	want := map[string]bool{}
	for _, l := range p.links {
		want[l.ID] = true
		changed, err := p.repl.EnsureReplication(ctx, p.make(l))
		switch {
		case err != nil:
			p.log.Warn().Str("peer", l.Peer).Str("db", l.DB).Err(err).Msg("cannot set up the replication from a peer")
		case changed:
			p.log.Info().Str("peer", l.Peer).Str("db", l.DB).Msg("replication from a peer written; CouchDB's replicator takes it from here")
		}
	}
	// PouchDB Server only: deleting the _replicator document of a running
	// replication crashes it, so a removed peer's link stays there.
	if couch, err := p.repl.IsCouchDB(ctx); err != nil || !couch {
		return
	}
	ids, err := p.repl.ReplicationIDs(ctx, p.ours)
	if err != nil {
		p.log.Warn().Err(err).Msg("cannot list the peer replications")
		return
	}
	for _, id := range ids {
		if want[id] {
			continue
		}
		if deleted, err := p.repl.ReleaseReplication(ctx, id, p.scope); err != nil {
			p.log.Warn().Str("id", id).Err(err).Msg("cannot remove the replication of a peer no longer configured")
		} else if deleted {
			p.log.Info().Str("id", id).Msg("removed the replication of a peer no longer configured")
		} else {
			p.log.Info().Str("id", id).Msg("released the replication of a peer no longer configured; another registry on this CouchDB still keeps it")
		}
	}
}

// ours tells whether a _replicator document (its owner, scopes and target
// database) belongs to this registry: a peer document that lists its
// scope, or an unscoped one of the older form whose target is one of this
// registry's own databases. Nothing else is ever removed: the documents of
// other registries on the same CouchDB, the mirror's, the operator's.
func (p *Peers[R]) ours(owner string, scopes []string, targetDB string) bool {
	switch owner {
	case PeerOwner:
		return slices.Contains(scopes, p.scope)
	case LegacyPeerOwner:
		if targetDB == "" || strings.HasPrefix(targetDB, "_") {
			return false // a system database every registry here shares
		}
		return p.dbs[targetDB]
	}
	return false
}

// read reads every link's state from CouchDB's scheduler (or, on PouchDB
// Server, from the _replicator document).
func (p *Peers[R]) read(ctx context.Context) []PeerStatus {
	out := make([]PeerStatus, 0, len(p.links))
	for _, l := range p.links {
		st := PeerStatus{Peer: l.Peer, DB: l.DB, State: "unknown"}
		raw, err := p.repl.ReplicationState(ctx, l.ID)
		if err != nil {
			st.LastError = err.Error()
			out = append(out, st)
			continue
		}
		if s, ok := raw["state"].(string); ok && s != "" {
			st.State = s
		}
		if s, ok := raw["last_updated"].(string); ok {
			st.LastUpdated = s
		}
		info, _ := raw["info"].(map[string]any)
		if n, ok := number(info["changes_pending"]); ok {
			st.ChangesPending = &n
		}
		if n, ok := number(info["docs_written"]); ok {
			st.DocsWritten = n
		}
		if e, ok := info["error"].(string); ok {
			st.LastError = e
		} else if e, ok := raw["reason"].(string); ok {
			st.LastError = e
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Peer+out[i].DB < out[j].Peer+out[j].DB })
	return out
}

func number(v any) (int64, bool) {
	f, ok := v.(float64)
	return int64(f), ok
}
