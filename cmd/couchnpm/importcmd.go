package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/auditlog"
	"github.com/couchnpm/couchnpm/couch"
	"github.com/couchnpm/couchnpm/importer"
	"github.com/couchnpm/couchnpm/registry"
)

const importUsage = `usage:
  couchnpm import verdaccio STORAGE_DIR [--htpasswd FILE | --config CONFIG.yaml] [--owner USER] [--access A]
      [--refuse-weak-hashes] [--imported-hash-max-age 90d]
  couchnpm import registry URL --scope @acme [--token T] [--owner USER] [--access A]

Copies packages (every version, tarballs verified against dist.integrity and
dist.shasum, dist-tags, deprecations, readme, times, maintainers) into this
registry, through the publish path: versions are signed, the audit log
records each package. Re-running skips what is here already (same version,
same tarball) and refuses what conflicts (a version here with another
tarball). verdaccio also imports the accounts of Verdaccio's htpasswd file
(--htpasswd, or the file its config names): their passwords keep working
and become CouchDB's at the first login. Weak kinds (crypt, Verdaccio 5's
default; MD5; SHA-1; cheap bcrypt) log in for --imported-hash-max-age only,
or are refused with --refuse-weak-hashes; plain text is always refused.
Importing again renews the hash of accounts that never logged in here.
Maintainers map to users of
the same name here; --owner maintains packages with none. Both commands
reach CouchDB as serve does (COUCHDB_URL, COUCHDB_USER, COUCHDB_PASSWORD,
--db-prefix). Exit status 1 when anything was refused.
`

func importCommand(args []string) int {
	return importMain(args, os.Stdout, os.Stderr)
}

func importMain(args []string, stdout, stderr io.Writer) int {
	o, code := parseImport(args, stderr)
	if o == nil {
		return code
	}
	src, accounts, code := o.source(stderr)
	if src == nil {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return o.run(ctx, src, accounts, stdout, stderr)
}

// importOptions is what an import was told.
type importOptions struct {
	kind       string // verdaccio or registry
	from       string // STORAGE_DIR or URL
	cfg        *config
	htpasswd   string
	vconfig    string
	owner      string
	by         string
	scope      string
	token      string
	access     string
	parallel   int
	refuseWeak bool
	maxAge     days
}

// parseImport reads import's arguments; nil and the exit status when they
// are wrong (or only asked for help).
func parseImport(args []string, stderr io.Writer) (*importOptions, int) {
	if len(args) == 0 || (args[0] != "verdaccio" && args[0] != "registry") {
		fmt.Fprint(stderr, importUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return nil, 0
		}
		return nil, 2
	}
	o := &importOptions{kind: args[0], cfg: &config{}, maxAge: days(90 * 24 * time.Hour)}
	fs := flag.NewFlagSet("couchnpm import "+o.kind, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, importUsage, "\nflags of couchnpm import "+o.kind+":\n")
		fs.PrintDefaults()
	}
	e := o.register(fs)
	pos, err := parseInterspersed(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return nil, 0
	}
	if err != nil {
		return nil, 2
	}
	if len(e.errs) > 0 {
		fmt.Fprintln(stderr, "couchnpm: bad configuration:", errors.Join(e.errs...))
		return nil, 2
	}
	if err := o.cfg.checkCouch(); err != nil {
		fmt.Fprintln(stderr, "couchnpm: bad configuration:", err)
		return nil, 2
	}
	if len(pos) != 1 {
		fmt.Fprint(stderr, importUsage)
		return nil, 2
	}
	o.from = pos[0]
	if o.by == "" {
		o.by = "operator"
	}
	if o.access != "" && o.access != registry.AccessPublic && o.access != registry.AccessRestricted {
		fmt.Fprintln(stderr, "couchnpm: --access must be public or restricted")
		return nil, 2
	}
	if o.kind == "registry" && o.scope == "" {
		fmt.Fprintln(stderr, "couchnpm: import registry needs --scope @name")
		return nil, 2
	}
	return o, 0
}

// register declares the flags of o's kind of import.
func (o *importOptions) register(fs *flag.FlagSet) *envFlags {
	e := &envFlags{fs: fs}
	o.cfg.registerCouch(e)
	// The key serve signs with, when it is given as a file.
	e.str(&o.cfg.Signing.KeyFile, "signing-key-file", "COUCHNPM_SIGNING_KEY_FILE", "", "the PEM key serve signs with, when serve is given one (default: the key kept in CouchDB)")
	fs.StringVar(&o.owner, "owner", "", "the user who maintains imported packages none of whose maintainers is a user here")
	fs.StringVar(&o.access, "access", "", "access of the packages new here: public or restricted (default: restricted for what the source shows only with --token, else public)")
	fs.IntVar(&o.parallel, "parallel", 4, "packages copied at a time (1-16)")
	fs.StringVar(&o.by, "by", os.Getenv("USER"), "who runs the import, for the audit log and the versions' publisher (default: $USER)")
	if o.kind == "verdaccio" {
		fs.StringVar(&o.htpasswd, "htpasswd", "", "Verdaccio's htpasswd file: its accounts are imported")
		fs.StringVar(&o.vconfig, "config", "", "Verdaccio's config.yaml, to find its htpasswd file")
		fs.BoolVar(&o.refuseWeak, "refuse-weak-hashes", false, "refuse accounts whose hash is a weak kind (crypt, MD5, SHA-1, bcrypt below cost 10) instead of importing them")
		fs.Var(&o.maxAge, "imported-hash-max-age", "how long an imported weak hash logs in (until its first login replaces it): 90d, 720h, …")
	} else {
		fs.StringVar(&o.scope, "scope", "", "the scope to copy (@acme)")
		e.str(&o.token, "token", "COUCHNPM_IMPORT_TOKEN", "", "bearer token for the source registry (sent to its host only)")
	}
	return e
}

// importAccounts are the htpasswd entries of a Verdaccio import; read
// tells whether an htpasswd file was given at all.
type importAccounts struct {
	entries []importer.HtpasswdEntry
	read    bool
}

// source opens what o imports from, and for Verdaccio its htpasswd file;
// a nil source and the exit status when it cannot.
func (o *importOptions) source(stderr io.Writer) (importer.Source, importAccounts, int) {
	var acc importAccounts
	if o.kind == "registry" {
		r, err := importer.NewRegistry(o.from, o.scope, o.token)
		if err != nil {
			fmt.Fprintln(stderr, "couchnpm:", err)
			return nil, acc, 2
		}
		return r, acc, 0
	}
	v, err := importer.NewVerdaccio(o.from)
	if err != nil {
		fmt.Fprintln(stderr, "couchnpm:", err)
		return nil, acc, 2
	}
	htpasswd := o.htpasswd
	if htpasswd == "" && o.vconfig != "" {
		if htpasswd, err = importer.HtpasswdFromConfig(o.vconfig); err != nil {
			fmt.Fprintln(stderr, "couchnpm: --config:", err)
			return nil, acc, 2
		}
	}
	if htpasswd == "" {
		return v, acc, 0
	}
	f, err := os.Open(htpasswd)
	if err != nil {
		fmt.Fprintln(stderr, "couchnpm: htpasswd:", err)
		return nil, acc, 2
	}
	defer f.Close()
	var bad []error
	acc.entries, bad = importer.ParseHtpasswd(f)
	for _, b := range bad {
		fmt.Fprintln(stderr, "couchnpm: warning:", b)
	}
	acc.read = true
	return v, acc, 0
}

// run imports from src into the registry's CouchDB: accounts first, then
// the packages; the exit status.
func (o *importOptions) run(ctx context.Context, src importer.Source, acc importAccounts, stdout, stderr io.Writer) int {
	db, code := operatorDB(ctx, o.cfg, stderr, true)
	if db == nil {
		return code
	}
	log := zerolog.New(stderr).With().Timestamp().Logger()
	sig, err := startSigning(ctx, o.cfg, db, zerolog.Nop())
	if err != nil {
		fmt.Fprintln(stderr, "couchnpm:", err)
		return 1
	}
	// The packages straight into CouchDB (no cache: this process only
	// writes), signed with the registry's key, conflicts merged on the way.
	reg, err := registry.NewService(registry.Config{
		Store: db.Packuments(couch.RolePackages), Users: db.Users(), Index: db.Packuments(couch.RolePackages),
		Orgs: db.Docs(couch.RoleSystem), Conflicts: db.Packuments(couch.RolePackages), Observer: newConflictLog(log),
		Signer: sig.keyring,
	})
	if err != nil {
		fmt.Fprintln(stderr, "couchnpm:", err)
		return 1
	}
	// Users first: the packages' maintainers map to them.
	var users []importer.UserReport
	if acc.read {
		users = importer.ImportUsers(ctx, acc.entries, db.Users(), importer.UserPolicy{RefuseWeak: o.refuseWeak, MaxAge: time.Duration(o.maxAge)})
		for _, u := range users {
			log.Info().Str("user", u.Name).Str("outcome", u.Outcome).Str("hash_kind", u.Kind).Str("reason", u.Reason).Msg("user imported")
		}
	} else if o.kind == "verdaccio" {
		fmt.Fprintln(stderr, "couchnpm: no --htpasswd or --config: no accounts are imported")
	}
	if o.owner != "" {
		if _, err := db.Users().GetUser(ctx, o.owner); err != nil {
			fmt.Fprintf(stderr, "couchnpm: --owner %s: %s\n", o.owner, registry.ReasonOf(err))
			return 2
		}
	}
	audit, stopAudit := importAudit(ctx, db, o.by, stderr)
	defer stopAudit()
	obs := importer.Observers{audit}
	if isTerminal(stderr) {
		obs = append(obs, &importer.Bar{W: stderr})
	} else {
		obs = append(obs, &importer.LogLines{Log: log})
	}
	im := &importer.Importer{Source: src, Target: reg, Accounts: db.Users(),
		Operator: registry.Identity{Name: o.by}, Owner: o.owner, Access: o.access, Parallel: o.parallel, Observer: obs}
	reports, err := im.Run(ctx)
	if err != nil && len(reports) == 0 {
		fmt.Fprintln(stderr, "couchnpm: import:", err)
		return 1
	}
	refused := importer.Summary(stdout, reports, users)
	if err != nil {
		fmt.Fprintln(stderr, "couchnpm: import stopped:", err, "(run it again to go on)")
		return 1
	}
	if refused > 0 {
		return 1
	}
	return 0
}

// importAuditor records one audit log entry per imported package.
type importAuditor struct {
	ctx context.Context
	w   *auditlog.Writer
	by  string
}

func (a *importAuditor) Start(int) {}

func (a *importAuditor) Done(r importer.PackageReport) {
	if a.w == nil || (len(r.Copied) == 0 && len(r.Refused) == 0) {
		return // nothing happened: a rerun's skips are not events
	}
	ev := auditlog.Event{Actor: a.by, Action: "import", Package: r.Name, Target: strings.Join(r.Copied, ","), Outcome: auditlog.OutcomeOK}
	if len(r.Refused) > 0 {
		var why []string
		for v, reason := range r.Refused {
			why = append(why, strings.TrimPrefix(v+": ", ": ")+reason)
		}
		ev.Outcome, ev.Reason = auditlog.OutcomeRefused, strings.Join(why, "; ")
	}
	a.w.Record(a.ctx, ev)
}

// importAudit starts the audit log writer of an import; stop flushes it.
func importAudit(ctx context.Context, db *couch.Client, by string, stderr io.Writer) (*importAuditor, func()) {
	host, _ := os.Hostname()
	a := &importAuditor{ctx: ctx, by: by}
	w := auditlog.NewWriter(db.AuditLog(), "cli-"+host, auditlog.WriterConfig{}, zerolog.New(stderr).Level(zerolog.WarnLevel))
	if err := w.Start(ctx); err != nil {
		fmt.Fprintln(stderr, "couchnpm: warning: the import is not recorded in the audit log:", err)
		return a, func() {}
	}
	a.w = w
	done := make(chan struct{})
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	go func() {
		defer close(done)
		w.Run(runCtx, 30*time.Second)
	}()
	return a, func() { cancel(); <-done }
}

// days is a flag of a positive duration that also takes whole days ("90d").
type days time.Duration

func (d *days) String() string {
	if *d > 0 && time.Duration(*d)%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", time.Duration(*d)/(24*time.Hour))
	}
	return time.Duration(*d).String()
}

func (d *days) Set(s string) error {
	var v time.Duration
	if n, ok := strings.CutSuffix(s, "d"); ok {
		var k int
		if _, err := fmt.Sscanf(n, "%d", &k); err != nil || fmt.Sprint(k) != n || k > 100*365 {
			return fmt.Errorf("%q is not a number of days", s)
		}
		v = time.Duration(k) * 24 * time.Hour
	} else {
		var err error
		if v, err = time.ParseDuration(s); err != nil {
			return err
		}
	}
	if v <= 0 {
		return errors.New("must be more than 0")
	}
	*d = days(v)
	return nil
}

// isTerminal reports whether w is a terminal (the progress bar's place;
// NO_COLOR is about colour, not about redrawing a line).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
