package couch

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/couchnpm/couchnpm/registry"
)

// PackumentRev returns a packument's current revision without reading the
// document: a HEAD request, whose ETag is the revision on CouchDB; where the
// ETag is not a revision (PouchDB Server), one _all_docs row. KindNotFound
// when the document is absent or deleted. The packument cache uses it to
// revalidate an entry when it cannot rely on the changes feed.
func (s *Packuments) PackumentRev(ctx context.Context, name string) (string, error) {
	ctx, cancel := s.c.ctx(ctx)
	defer cancel()
	op := "revision of package " + name
	resp, err := s.c.do(ctx, rawRequest{method: http.MethodHead, path: dbPath(s.db.Name(), "/"+url.PathEscape(name)), op: op})
	if err != nil {
		return "", err // a 404 is KindNotFound
	}
	resp.Body.Close()
	if rev := strings.Trim(resp.Header.Get("ETag"), `"`); revRe.MatchString(rev) {
		return rev, nil
	}
	// PouchDB Server only: its ETag is no revision.
	s.c.wa.add(WorkaroundETagNotRev)
	key, _ := json.Marshal(name)
	resp, err = s.c.do(ctx, rawRequest{method: http.MethodGet, path: dbPath(s.db.Name(), "/_all_docs"), query: url.Values{"key": {string(key)}}.Encode(), op: op})
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var rows struct {
		Rows []struct {
			Value struct {
				Rev     string `json:"rev"`
				Deleted bool   `json:"deleted"`
			} `json:"value"`
		} `json:"rows"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&rows); err != nil {
		return "", registry.Wrap(registry.KindUnavailable, err, "revision of package %s", name)
	}
	if len(rows.Rows) == 0 || rows.Rows[0].Value.Rev == "" || rows.Rows[0].Value.Deleted {
		return "", registry.E(registry.KindNotFound, "not_found")
	}
	return rows.Rows[0].Value.Rev, nil
}

// revRe is a CouchDB revision: generation and md5.
var revRe = regexp.MustCompile(`^[0-9]+-[0-9a-f]{32}$`)

// FollowChanges reads the database's continuous _changes feed from now
// (since=now, with heartbeats). on is called with "" when the feed is open
// and at every heartbeat (the feed is alive and has delivered everything
// before it), and with the document id of every change, in feed order. It
// returns nil when ctx ends, and an error when the feed breaks: CouchDB
// unreachable, an error status, or no byte for three heartbeats.
func (s *Packuments) FollowChanges(ctx context.Context, heartbeat time.Duration, on func(id string)) error {
	return s.c.follow(ctx, s.db.Name(), heartbeat, false, func(id string, _ int) { on(id) })
}

// FollowConflicts follows the changes feed from now with every leaf
// revision listed (style=all_docs): on(id) hears of each change that
// leaves a document with more than one leaf, i.e. with open or resolved
// conflicts (a resolved one keeps its deleted leaves), and on("") of the
// feed's openings and heartbeats. Replication and a cluster's internal
// synchronisation show up here as changes too.
func (s *Packuments) FollowConflicts(ctx context.Context, heartbeat time.Duration, on func(id string)) error {
	return s.c.follow(ctx, s.db.Name(), heartbeat, true, func(id string, leaves int) {
		if id == "" || leaves > 1 {
			on(id)
		}
	})
}

// FollowChanges follows the tokens database's changes from now, as
// Packuments.FollowChanges does: on(key) for each token record changed or
// deleted, on("") when the feed opens and at each heartbeat. The
// authentication cache (registry.AuthCache) drops its copies with it.
func (s *Tokens) FollowChanges(ctx context.Context, heartbeat time.Duration, on func(key string)) error {
	return s.c.follow(ctx, s.db.Name(), heartbeat, false, func(id string, _ int) {
		if !strings.HasPrefix(id, "_design/") {
			on(id)
		}
	})
}

// FollowChanges follows _users' changes from now: on(name) for each
// account changed (password, disabled flag, two-factor state, deletion),
// on("") when the feed opens and at each heartbeat.
func (u *Users) FollowChanges(ctx context.Context, heartbeat time.Duration, on func(name string)) error {
	return u.c.follow(ctx, u.db.Name(), heartbeat, false, func(id string, _ int) {
		if id == "" {
			on("")
		} else if name, ok := strings.CutPrefix(id, userDocID("")); ok && name != "" {
			on(name)
		}
	})
}

// follow reads the continuous changes feed of database db from now; see
// Packuments.FollowChanges. With allDocs, on also gets the number of leaf
// revisions of each change.
func (c *Client) follow(ctx context.Context, db string, heartbeat time.Duration, allDocs bool, on func(id string, leaves int)) error {
	if heartbeat <= 0 {
		heartbeat = time.Second
	}
	q := url.Values{
		"feed":      {"continuous"},
		"since":     {"now"},
		"heartbeat": {strconv.FormatInt(heartbeat.Milliseconds(), 10)},
	}
	if allDocs {
		q.Set("style", "all_docs")
	}
	query := q.Encode()
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// A silent feed is a broken feed: without a byte for three heartbeats
	// the request is cancelled and the caller falls back and reconnects.
	idle := 3 * heartbeat
	watchdog := time.AfterFunc(idle+c.timeout, cancel)
	defer watchdog.Stop()
	resp, err := c.do(fctx, rawRequest{
		method: http.MethodGet, path: dbPath(db, "/_changes"), query: query,
		op: "changes feed of " + db, stream: true, // bounded by the watchdog
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer resp.Body.Close()
	watchdog.Reset(idle)
	on("", 0)
	r := bufio.NewReaderSize(resp.Body, 64<<10)
	for {
		line, err := r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A very long change line (many conflicting revisions): read
			// it whole.
			rest, err2 := r.ReadBytes('\n')
			line, err = append(append([]byte(nil), line...), rest...), err2
		}
		if len(line) > 0 {
			watchdog.Reset(idle)
		}
		if trimmed := trimSpace(line); len(trimmed) == 0 {
			if len(line) > 0 {
				on("", 0) // heartbeat
			}
		} else {
			var ch struct {
				ID      string            `json:"id"`
				LastSeq json.RawMessage   `json:"last_seq"`
				Changes []json.RawMessage `json:"changes"`
			}
			if jerr := json.Unmarshal(trimmed, &ch); jerr != nil {
				return registry.Wrap(registry.KindUnavailable, jerr, "changes feed of %s: unreadable line", db)
			}
			if ch.ID != "" {
				on(ch.ID, len(ch.Changes))
			} else if ch.LastSeq != nil {
				return fmt.Errorf("changes feed of %s ended", db)
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return registry.Wrap(registry.KindUnavailable, err, "changes feed of %s broke", db)
		}
	}
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\n' || b[0] == '\r' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}
