// Command couchnpm runs an npm registry that keeps everything in CouchDB.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/couch"
	"github.com/couchnpm/couchnpm/handlers"
	"github.com/couchnpm/couchnpm/registry"
)

const usage = `usage: couchnpm <command> [flags]

commands:
  serve           run the registry (couchnpm serve -h lists its flags)
  mirror status   show the upstream mirror's progress and health
  claim NAME      let a user publish a name the upstream has (couchnpm claim -h)
  unclaim NAME    withdraw a claim
  audit-log       show the audit log; audit-log verify checks its hash chains
  org create ORG  create an org for a scope (couchnpm org -h)
  version         print the version and the source revision it was built from
  replication status  show the state of the replications with peer sites (--peer)
  user            add, disable, enable, delete, list accounts, set passwords (couchnpm user -h)
  keys            list or rotate the signing keys, sign old versions (couchnpm keys -h)
  doctor          check CouchDB and the registry's data, with the fix for each finding
  import          copy packages and users from Verdaccio or another registry (couchnpm import -h)
`

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		cfg, err := parseServe(args[1:])
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		var bf badFlag
		if errors.As(err, &bf) {
			fmt.Fprintf(os.Stderr, "couchnpm: bad flag: %v (couchnpm serve -h lists the flags)\n", bf.err)
			return 2
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "couchnpm: bad configuration:", err)
			return 2
		}
		if err := serve(cfg); err != nil {
			fmt.Fprintln(os.Stderr, "couchnpm:", err)
			return 1
		}
		return 0
	case "mirror":
		return mirrorCommand(args[1:])
	case "replication":
		return replicationCommand(args[1:])
	case "claim", "unclaim":
		return claimCommand(args[1:], args[0] == "claim")
	case "audit-log":
		return auditLogCommand(args[1:])
	case "org":
		return orgCommand(args[1:])
	case "version", "--version", "-version":
		fmt.Fprintln(os.Stdout, versionLine())
		return 0
	case "user":
		return userCommand(args[1:]) // usercmd.go
	case "keys":
		return keysCommand(args[1:]) // keyscmd.go
	case "doctor":
		return doctorCommand(args[1:]) // doctor.go
	case "import":
		return importCommand(args[1:]) // importcmd.go
	case "-h", "--help", "help":
		fmt.Fprint(os.Stdout, usage)
		return 0
	default:
		fmt.Fprintf(os.Stderr, "couchnpm: unknown command %q\n%s", args[0], usage)
		return 2
	}
}

func newLogger(cfg *config) zerolog.Logger {
	return newLoggerTo(cfg, os.Stderr)
}

func newLoggerTo(cfg *config, out *os.File) zerolog.Logger {
	level, _ := zerolog.ParseLevel(cfg.LogLevel)
	// Durations carry their unit ("3s", "200ms") instead of a bare number
	// of milliseconds.
	zerolog.DurationFieldFormat = zerolog.DurationFormatString
	var log zerolog.Logger
	if cfg.LogFormat == "console" {
		// Colour codes only on a terminal: in a file or a journal they are
		// noise.
		log = zerolog.New(zerolog.ConsoleWriter{Out: out, TimeFormat: time.RFC3339, NoColor: !colourful(out)})
	} else {
		log = zerolog.New(out)
	}
	return log.Level(level).With().Timestamp().Logger()
}

// colourful reports whether f is a terminal and NO_COLOR (no-color.org) is
// not set.
func colourful(f *os.File) bool {
	if os.Getenv("NO_COLOR") != "" {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func serve(cfg *config) error {
	log := newLogger(cfg)
	sigctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// ctx ends on a signal or on any return: background work started below
	// (mirror follower, cache feeds) stops when serve fails after starting
	// it, instead of keeping the process alive while nothing is served.
	ctx, cancel := context.WithCancel(sigctx)
	defer cancel()

	// The port first: a busy one fails the start at once, before any wait
	// for CouchDB. Connections queue in the backlog until Serve below.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", cfg.Listen, err)
	}
	defer ln.Close()

	newFastpath(cfg, log) // packument cache and metrics (fastpath.go)
	cc := cfg.couchConfig()
	cc.WrapTransport = cfg.Fastpath.metrics.CouchTransport
	db, err := couch.Open(cc, log)
	if err != nil {
		return err
	}
	if m := cfg.Fastpath.metrics; m != nil {
		m.WatchWorkarounds(db.Workarounds)
	}
	log.Info().Str("couchdb", db.URL()).Str("db_prefix", cfg.DBPrefix).Msg("connecting to CouchDB")
	if err := db.WaitReady(ctx, cfg.CouchWait); err != nil {
		return err
	}
	if err := db.Bootstrap(ctx); err != nil {
		return fmt.Errorf("prepare CouchDB: %w", err)
	}

	var background sync.WaitGroup
	// Runs before cancel above (defers run last first): stop the background
	// work, then let the follower release its lease.
	defer func() {
		cancel()
		background.Wait()
	}()
	sig, err := startSigning(ctx, cfg, db, log) // signing.go
	if err != nil {
		return err
	}
	mirror, err := newMirror(cfg, db, sig, log) // wiring.go
	if err != nil {
		return err
	}
	clog := newConflictLog(log) // conflicts.go
	reg, err := newRegistry(cfg, db, sig, mirror, clog, log)
	if err != nil {
		return err
	}
	conflicts := startConflictWatch(ctx, cfg, db, reg, clog, &background)
	peers, err := startPeers(ctx, cfg, db, &background, log)
	if err != nil {
		return err
	}
	mirrorStatus, err := startMirror(ctx, cfg, db, mirror, reg, sig, &background)
	if err != nil {
		return err
	}
	runFastpath(ctx, cfg, &background)
	authCache, err := startAuthCache(ctx, cfg, db, &background, log)
	if err != nil {
		return err
	}
	accounts, err := registry.NewAccounts(registry.AccountsConfig{Users: registry.WithImportedPasswords(db.Users(), db.Users()),
		Tokens: db.Tokens(), AllowSignup: cfg.AllowSignup, SignupEmailDomains: cfg.SignupEmailDomains, Cache: authCache})
	if err != nil {
		return err
	}
	hcfg := handlers.Config{PublicURL: cfg.PublicURL, MaxPublishBytes: cfg.MaxPublishBytes, Mirror: mirrorStatus, Conflicts: conflicts, Peers: peers, TrustedProxies: cfg.TrustedProxies}
	// The audit log; stopAudit (deferred after the server's shutdown)
	// flushes what in-flight requests recorded (auditlogcmd.go).
	audit, stopAudit, err := startAuditLog(ctx, cfg, db, log)
	if err != nil {
		return err
	}
	defer stopAudit()
	hcfg.AuditLog = audit
	// npm login's web flow; pending logins live in the system database
	hcfg.WebLogin = registry.NewWebLogins(accounts, db.Docs(couch.RoleSystem), registry.WebLoginTTL)
	sig.wire(&hcfg, reg)
	wireCommands(cfg, reg, &hcfg) // command surface
	// web UI (web.go)
	wireWeb(ctx, cfg, db, reg, mirrorStatus, &hcfg, &background, log)
	if err := wireFastpath(ctx, cfg, mirrorStatus, &hcfg, log); err != nil {
		return err
	}
	h, err := handlers.New(hcfg, handlers.Services{Registry: reg, Commands: reg, Orgs: reg, Accounts: accounts, Tokens: accounts, DB: db}, log)
	if err != nil {
		return err
	}

	srv := &http.Server{
		Addr:              cfg.Listen,
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		// Publishes upload up to max-publish-bytes; tarballs stream to slow
		// clients. The bounds are generous but finite.
		ReadTimeout:    5 * time.Minute,
		WriteTimeout:   10 * time.Minute,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info().Str("listen", cfg.Listen).Str("public_url", cfg.PublicURL).Str("version", readVersion().short()).Msg("couchnpm is serving")

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info().Dur("deadline", cfg.ShutdownTimeout).Msg("shutting down")
	sctx, cancelShutdown := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancelShutdown()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
