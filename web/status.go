package web

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/registry"
	"github.com/couchnpm/couchnpm/replication"
)

// PeerStatus reports the replications with peer sites (the data of GET
// /-/replication/status); replication.Peers implements it.
type PeerStatus interface {
	Status() ([]replication.PeerStatus, time.Time)
}

// ConflictStatus reports the conflict resolver's work as viewer may see
// it (the body of GET /-/conflicts/status).
type ConflictStatus interface {
	Status(ctx context.Context, viewer registry.Identity) (any, error)
}

// Counts reads the registry's sizes; each call costs a few cheap CouchDB
// requests (views' total_rows, database info), and the site keeps the
// answer for countsTTL.
type Counts interface {
	Counts(ctx context.Context) (SiteCounts, error)
}

// SiteCounts are the registry's sizes as the home and status pages show
// them.
type SiteCounts struct {
	Private        int64  `json:"private"`         // live private packages
	Mirrored       int64  `json:"mirrored"`        // packuments in the mirror
	CachedTarballs int64  `json:"cached_tarballs"` // upstream tarballs kept in CouchDB
	CacheBytes     int64  `json:"-"`
	CacheSize      string `json:"cache_size"` // CacheBytes, as people read it
}

// How long the pages reuse a reading: the counts change slowly, the
// mirror's state is polled by every open status page.
const (
	countsTTL = 10 * time.Second
	mirrorTTL = 2 * time.Second
)

// cached keeps one value for ttl: a page view costs no CouchDB request
// while it is fresh, and one at a time refreshes it (the others wait for
// that reading instead of adding their own).
type cached[T any] struct {
	ttl  time.Duration
	load func(ctx context.Context) (T, error)

	mu sync.Mutex
	at time.Time
	v  T
}

func (c *cached[T]) get(ctx context.Context) (T, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && time.Since(c.at) < c.ttl {
		return c.v, nil
	}
	v, err := c.load(ctx)
	if err != nil {
		return v, err
	}
	c.v, c.at = v, time.Now()
	return v, nil
}

// statusView is the status page's data, and the JSON its script polls.
// Texts are formatted here, so the page and the script show the same.
type statusView struct {
	Updated      string         `json:"updated"`
	Admin        bool           `json:"-"`
	Mirror       *mirrorView    `json:"mirror"`
	MirrorError  string         `json:"mirror_error"`
	Counts       *SiteCounts    `json:"counts"`
	Conflicts    *conflictsView `json:"conflicts"`
	Peers        []peerRow      `json:"peers"`
	PeersChecked string         `json:"peers_checked"`
}

type mirrorView struct {
	Mode         string       `json:"mode"`
	State        string       `json:"state"`
	Upstream     string       `json:"upstream"` // admins only
	Checkpoint   string       `json:"checkpoint"`
	UpstreamSeq  string       `json:"upstream_seq"`
	Progress     int64        `json:"progress"` // of ProgressMax; 0 and 0: unknown
	ProgressMax  int64        `json:"progress_max"`
	ProgressText string       `json:"progress_text"`
	Lag          string       `json:"lag"`
	Rate         string       `json:"rate"`
	Written      int64        `json:"written"`
	Deleted      int64        `json:"deleted"`
	Failures     int64        `json:"failures"`
	LastError    string       `json:"last_error"` // admins only
	CacheHits    int64        `json:"cache_hits"`
	CacheMisses  int64        `json:"cache_misses"`
	CacheBad     int64        `json:"cache_integrity_failures"`
	Upstreams    string       `json:"upstream_fetches"`
	Recent       []failureRow `json:"recent_failures"`
}

type failureRow struct {
	Package string `json:"package"`
	Error   string `json:"error"` // admins only
	Time    string `json:"time"`
}

type conflictsView struct {
	Resolved    int64    `json:"resolved"`
	Dropped     int64    `json:"dropped_versions"`
	Unconfirmed int64    `json:"unconfirmed_writes"`
	Open        int64    `json:"open_count"`
	OpenNames   []string `json:"open"` // admins only (the resolver decides)
}

type peerRow struct {
	Peer    string `json:"peer"`
	DB      string `json:"db"`
	State   string `json:"state"`
	Pending string `json:"pending"`
	Written int64  `json:"written"`
	Updated string `json:"updated"`
	Error   string `json:"error"`
}

// isAdmin tells whether user sees the admin-only details.
func (s *Site) isAdmin(user registry.Identity) bool {
	return !user.Anonymous() && s.cfg.IsAdmin != nil && s.cfg.IsAdmin(user.Name)
}

// counts is the cached SiteCounts; nil when there are none or they
// cannot be read (the page shows without).
func (s *Site) counts(ctx context.Context) *SiteCounts {
	if s.countsCache == nil {
		return nil
	}
	c, err := s.countsCache.get(ctx)
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("web: registry counts unavailable")
		return nil
	}
	c.CacheSize = humanBytes(c.CacheBytes)
	if c.CacheSize == "" {
		c.CacheSize = "0 B"
	}
	return &c
}

// mirrorStatus is the cached mirror state.
func (s *Site) mirrorStatus(ctx context.Context) (*replication.Status, error) {
	return s.mirrorCache.get(ctx)
}

// statusOf builds the status for user: the same readings as the three
// status endpoints, with the same admin-only details left out.
func (s *Site) statusView(ctx context.Context, user registry.Identity) *statusView {
	v := &statusView{Updated: time.Now().UTC().Format("2006-01-02 15:04:05 UTC"), Admin: s.isAdmin(user), Peers: []peerRow{}}
	v.Counts = s.counts(ctx)
	if s.cfg.Mirror != nil {
		st, err := s.mirrorStatus(ctx)
		if err != nil {
			zerolog.Ctx(ctx).Warn().Err(err).Msg("web: mirror status unavailable")
			v.MirrorError = "The mirror's state cannot be read right now."
		} else {
			v.Mirror = mirrorOf(st, v.Admin)
		}
	}
	if s.cfg.Conflicts != nil {
		// The resolver decides what a viewer sees (names to admins only):
		// one reading per kind of viewer, kept like the mirror's.
		key := "public"
		if v.Admin {
			key = "admin"
		}
		c, err := s.conflictsCache.load(ctx, key, func(ctx context.Context) (*conflictsView, error) {
			raw, err := s.cfg.Conflicts.Status(ctx, user)
			if err != nil {
				return nil, err
			}
			var c conflictsView
			b, err := json.Marshal(raw)
			if err == nil {
				err = json.Unmarshal(b, &c)
			}
			return &c, err
		})
		if err == nil {
			v.Conflicts = c
		}
	}
	if s.cfg.Peers != nil {
		peers, at := s.cfg.Peers.Status()
		if !at.IsZero() {
			v.PeersChecked = at.UTC().Format("15:04:05 UTC")
		}
		if !v.Admin {
			peers = replication.PublicPeers(peers)
		}
		for _, p := range peers {
			row := peerRow{Peer: p.Peer, DB: p.DB, State: p.State, Written: p.DocsWritten, Updated: p.LastUpdated, Error: p.LastError, Pending: "–"}
			if p.ChangesPending != nil {
				row.Pending = strconv.FormatInt(*p.ChangesPending, 10)
			}
			v.Peers = append(v.Peers, row)
		}
	}
	return v
}

// mirrorOf is the page's view of the mirror's state.
func mirrorOf(st *replication.Status, admin bool) *mirrorView {
	m := &mirrorView{Mode: string(st.Mode), State: st.State, Checkpoint: st.Checkpoint, UpstreamSeq: st.UpstreamSeq,
		Written: st.PackumentsWritten, Deleted: st.PackumentsDeleted, Failures: st.Failures,
		CacheHits: st.TarballCache.Hits, CacheMisses: st.TarballCache.Misses, CacheBad: st.TarballCache.IntegrityFailures,
		Lag: "–", Rate: "–", ProgressText: "unknown", Recent: []failureRow{}}
	f := st.UpstreamFetches
	m.Upstreams = strconv.FormatInt(f.OK, 10) + " ok, " + strconv.FormatInt(f.NotFound, 10) + " not found, " + strconv.FormatInt(f.Errors, 10) + " errors"
	if admin {
		m.Upstream, m.LastError = st.Upstream, st.LastError
	} else if st.LastError != "" {
		m.LastError = replication.HiddenDetail
	}
	if m.LastError == "" {
		m.LastError = "none"
	}
	done, doneOK := seqNumber(st.Checkpoint)
	total, totalOK := seqNumber(st.UpstreamSeq)
	if doneOK && totalOK && total > 0 {
		m.Progress, m.ProgressMax = min(done, total), total
		m.ProgressText = strconv.FormatFloat(float64(m.Progress)*100/float64(total), 'f', 1, 64) + " %"
	}
	var lag []string
	if st.LagChanges != nil {
		lag = append(lag, strconv.FormatInt(*st.LagChanges, 10)+" changes")
	}
	if st.LagSeconds != nil {
		lag = append(lag, (time.Duration(*st.LagSeconds)*time.Second).String()+" behind")
	}
	if len(lag) > 0 {
		m.Lag = strings.Join(lag, ", ")
	}
	if st.WrittenPerSecond > 0 {
		m.Rate = strconv.FormatFloat(st.WrittenPerSecond, 'f', 1, 64) + " packuments/s"
	}
	for i := len(st.LastFailures) - 1; i >= 0 && len(m.Recent) < 10; i-- {
		fl := st.LastFailures[i]
		row := failureRow{Package: fl.Package, Time: fl.Time.UTC().Format("2006-01-02 15:04:05")}
		if admin {
			row.Error = fl.Error
		} else {
			row.Error = replication.HiddenDetail
		}
		m.Recent = append(m.Recent, row)
	}
	return m
}

// seqNumber is the number at the front of a CouchDB sequence ("123-g1…"),
// or of a plain number.
func seqNumber(seq string) (int64, bool) {
	n, _, _ := strings.Cut(seq, "-")
	v, err := strconv.ParseInt(n, 10, 64)
	return v, err == nil && v >= 0
}

// statusPage is GET /-/web/status: the page, which works without script
// and refreshes itself with status.js.
func (s *Site) statusPage(w http.ResponseWriter, r *http.Request, user registry.Identity) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	s.render(w, r, http.StatusOK, "status", user, "Status", s.statusView(ctx, user))
}

// statusJSON is GET /-/web/status.json, what the status page's script
// polls.
func (s *Site) statusJSON(w http.ResponseWriter, r *http.Request, user registry.Identity) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	b, err := json.Marshal(s.statusView(ctx, user))
	if err != nil {
		s.fail(w, r, user, registry.Wrap(registry.KindInternal, err, "encode the status"))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Add("Vary", "Cookie")
	h.Add("Vary", "Authorization")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	if r.Method != http.MethodHead {
		_, _ = w.Write(b)
	}
}
