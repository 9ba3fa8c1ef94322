package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/auditlog"
	"github.com/couchnpm/couchnpm/couch"
)

// startAuditLog starts this process's audit log writer: a new chain linked
// to the previous chain of the same --instance-id. stop flushes the queue
// (bounded by --shutdown-timeout) once the server has stopped taking
// requests.
// auditFlushBound bounds the audit log's last flush at shutdown.
const auditFlushBound = 5 * time.Second

func startAuditLog(ctx context.Context, cfg *config, db *couch.Client, log zerolog.Logger) (*auditlog.Writer, func(), error) {
	w := auditlog.NewWriter(db.AuditLog(), cfg.InstanceID, auditlog.WriterConfig{}, log)
	if err := w.Start(ctx); err != nil {
		return nil, nil, fmt.Errorf("audit log: %w", err)
	}
	if cfg.Fastpath.metrics != nil {
		cfg.Fastpath.metrics.WatchAuditLog(w.Written, w.Dropped, w.Queued)
	}
	// Its own context: the writer outlives the signal that stops serve,
	// until the requests in flight have recorded their outcome.
	wctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		// The flush after shutdown is bounded apart from the requests'
		// grace period: with CouchDB gone, the entries cannot be stored
		// anyway (they are counted as dropped and logged), and a stop must
		// not wait twice the shutdown timeout.
		w.Run(wctx, min(cfg.ShutdownTimeout, auditFlushBound))
	}()
	w.Record(ctx, auditlog.Event{Action: "serve.start", Target: readVersion().short(), Outcome: auditlog.OutcomeOK})
	log.Info().Str("chain", w.Chain()).Msg("audit log started")
	return w, func() {
		cancel()
		<-done
		if n := w.Dropped(); n > 0 {
			log.Error().Int64("dropped", n).Msg("audit log entries were dropped while serving (queue full)")
		}
	}, nil
}

// recordOperatorEvent writes one entry for an operator command (claim,
// unclaim) and waits until CouchDB has it. The command line's chains are
// "cli-<host name>@<time>", one per run, each linked to the previous run's.
func recordOperatorEvent(ctx context.Context, db *couch.Client, ev auditlog.Event, stderr io.Writer) {
	host, _ := os.Hostname()
	w := auditlog.NewWriter(db.AuditLog(), "cli-"+host, auditlog.WriterConfig{}, zerolog.New(stderr).Level(zerolog.WarnLevel))
	if err := w.Start(ctx); err != nil {
		fmt.Fprintln(stderr, "couchnpm: warning: not recorded in the audit log:", err)
		return
	}
	w.Record(ctx, ev)
	stopped, cancel := context.WithCancel(ctx)
	cancel() // Run flushes the queue and returns
	w.Run(stopped, 30*time.Second)
	if w.Written() != 1 {
		fmt.Fprintln(stderr, "couchnpm: warning: not recorded in the audit log")
	}
}

const auditLogUsage = `usage:
  couchnpm audit-log [--package P] [--user U] [--action A] [--since T] [--limit N] [--json]
  couchnpm audit-log verify [--json]

The first form lists entries, oldest first: the newest N (default 100)
that match. --since takes a time (2026-01-02, 2026-01-02T15:04:05Z) or a
duration back from now (24h). verify walks every chain and reports the
first broken link of each (an edited or deleted entry); it exits 1 when it
finds one. Both reach CouchDB as serve does (COUCHDB_URL, COUCHDB_USER,
COUCHDB_PASSWORD, --db-prefix).
`

func auditLogCommand(args []string) int {
	return auditLogMain(args, os.Stdout, os.Stderr, time.Now)
}

func auditLogMain(args []string, stdout, stderr io.Writer, now func() time.Time) int {
	verify := len(args) > 0 && args[0] == "verify"
	if verify {
		args = args[1:]
	}
	fs := newOperatorFlags("couchnpm audit-log", auditLogUsage, stderr)
	var pkg, user, action, since string
	var limit int
	var asJSON bool
	fs.BoolVar(&asJSON, "json", false, "print JSON")
	if !verify {
		fs.StringVar(&pkg, "package", "", "only entries about this package")
		fs.StringVar(&user, "user", "", "only entries whose actor is this user")
		fs.StringVar(&action, "action", "", "only entries of this action (publish, login, token.create, …)")
		fs.StringVar(&since, "since", "", "only entries at or after this time, or this long ago (24h)")
		fs.IntVar(&limit, "limit", 100, "at most this many entries, the newest; 0: all")
	}
	rest, exit, ok := fs.parse(args)
	if !ok {
		return exit
	}
	cfg := fs.cfg
	if len(rest) > 0 {
		fmt.Fprint(stderr, auditLogUsage)
		return 2
	}
	var from time.Time
	var err error
	if since != "" {
		if from, err = parseSince(since, now()); err != nil {
			fmt.Fprintln(stderr, "couchnpm:", err)
			return 2
		}
	}
	if limit < 0 {
		fmt.Fprintln(stderr, "couchnpm: --limit must not be negative")
		return 2
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	db, code := operatorDB(ctx, cfg, stderr, false)
	if db == nil {
		return code
	}
	var all []auditlog.Entry
	err = db.AuditLog().EachEntry(ctx, func(e auditlog.Entry) error {
		if verify || matches(e, pkg, user, action, from) {
			all = append(all, e)
		}
		return nil
	})
	if err != nil {
		fmt.Fprintln(stderr, "couchnpm: read the audit log:", err)
		return 1
	}
	if verify {
		return printVerify(stdout, all, asJSON)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].At < all[j].At })
	if limit > 0 && len(all) > limit {
		all = all[len(all)-limit:]
	}
	printEntries(stdout, all, asJSON)
	return 0
}

func matches(e auditlog.Entry, pkg, user, action string, from time.Time) bool {
	if (pkg != "" && e.Package != pkg) || (user != "" && e.Actor != user) || (action != "" && e.Action != action) {
		return false
	}
	if !from.IsZero() {
		at, err := time.Parse(time.RFC3339Nano, e.At)
		if err != nil || at.Before(from) {
			return false
		}
	}
	return true
}

// parseSince reads --since: a time, a date, or a duration before now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--since %q is neither a time (2026-01-02, 2026-01-02T15:04:05Z) nor a duration (24h)", s)
}

func printEntries(w io.Writer, entries []auditlog.Entry, asJSON bool) {
	if asJSON {
		printJSONList(w, entries)
		return
	}
	if len(entries) == 0 {
		fmt.Fprintln(w, "no audit entries match")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tOUTCOME\tACTOR\tADDRESS\tACTION\tPACKAGE\tTARGET\tREASON")
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return strings.NewReplacer("\t", " ", "\n", " ").Replace(s)
	}
	for _, e := range entries {
		outcome := e.Outcome
		if e.Status != 0 {
			outcome = fmt.Sprintf("%s %d", e.Outcome, e.Status)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.At, outcome, dash(e.Actor), dash(e.Address),
			dash(e.Action), dash(e.Package), dash(e.Target), dash(e.Reason))
	}
	_ = tw.Flush()
}

func printVerify(w io.Writer, entries []auditlog.Entry, asJSON bool) int {
	heads, problems := auditlog.Verify(entries)
	code := 0
	if len(problems) > 0 {
		code = 1
	}
	if asJSON {
		if heads == nil {
			heads = []auditlog.ChainHead{}
		}
		if problems == nil {
			problems = []auditlog.Problem{}
		}
		b, _ := json.MarshalIndent(map[string]any{"ok": code == 0, "entries": len(entries), "chains": heads, "problems": problems}, "", "  ")
		fmt.Fprintf(w, "%s\n", b)
		return code
	}
	for _, h := range heads {
		fmt.Fprintf(w, "chain %s: %d entries, head %d %s at %s\n", h.Chain, h.Entries, h.Seq, h.Hash, h.At)
	}
	for _, p := range problems {
		fmt.Fprintf(w, "BROKEN %s\n", p)
	}
	if code == 0 {
		fmt.Fprintf(w, "ok: %d entries in %d chains verified (entries deleted from the end of an instance's newest chain cannot be seen: compare the heads above with a copy kept elsewhere)\n", len(entries), len(heads))
	} else {
		fmt.Fprintf(w, "FAILED: %d of %d chains are broken\n", len(problems), len(heads))
	}
	return code
}
