package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/couchnpm/couchnpm/couch"
	"github.com/couchnpm/couchnpm/doctor"
	"github.com/couchnpm/couchnpm/replication"
)

// doctorOptions are doctor's own flags, beside serve's.
type doctorOptions struct {
	json           bool
	verbose        bool
	expectMirrored int64
}

// defaultExpectMirrored: some public packuments exceed 50 MB.
const defaultExpectMirrored = 64 << 20

func (o *doctorOptions) register(e *envFlags) {
	e.fs.BoolVar(&o.json, "json", false, "print the findings as JSON")
	e.fs.BoolVar(&o.verbose, "verbose", false, "name the accounts behind counts (imported passwords)")
	e.size(&o.expectMirrored, "expect-packument-size", "COUCHNPM_EXPECT_PACKUMENT_SIZE", defaultExpectMirrored,
		"the largest packument a mirror is expected to meet, a `size` like 64MB (only with --mirror)")
}

func doctorCommand(args []string) int {
	return doctorMain(args, os.Stdout, os.Stderr)
}

// doctorMain runs `couchnpm doctor`: it reads CouchDB with serve's
// configuration (the same flags and environment) and prints each finding
// with its fix. It exits 1 when a check fails, 2 on a bad configuration.
func doctorMain(args []string, stdout, stderr io.Writer) int {
	var opt doctorOptions
	cfg, err := parseServeAs("couchnpm doctor", args, opt.register)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var bf badFlag
	if errors.As(err, &bf) {
		fmt.Fprintf(stderr, "couchnpm: bad flag: %v (couchnpm doctor -h lists the flags: serve's and its own)\n", bf.err)
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "couchnpm: bad configuration:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db, code := operatorDB(ctx, cfg, stderr, false) // read only: no bootstrap
	if db == nil {
		return code
	}
	peers, err := doctorPeers(cfg, db)
	if err != nil {
		fmt.Fprintln(stderr, "couchnpm: bad configuration:", err)
		return 2
	}
	findings := doctor.Run(ctx, doctor.Sources{
		Couch:    db,
		Packages: db.Packuments(couch.RolePackages),
		Mirror:   db.Packuments(couch.RoleMirror),
		System:   db.Docs(couch.RoleSystem),
		Accounts: db.Users(),
	}, doctor.Options{
		Verbose:           opt.verbose,
		Mirror:            cfg.Mirror.Mode,
		ExpectMirrored:    opt.expectMirrored,
		MaxPublishBytes:   cfg.MaxPublishBytes,
		SigningKeyFile:    cfg.Signing.KeyFile,
		Peers:             peers,
		MirrorReplication: mirrorReplicationID(db),
		FollowerLease:     followerLeaseID,
	})
	if opt.json {
		printDoctorJSON(stdout, db.URL(), cfg.DBPrefix, findings)
	} else {
		printDoctor(stdout, db.URL(), cfg.DBPrefix, findings)
	}
	if doctor.Failed(findings) {
		return 1
	}
	return 0
}

// mirrorReplicationID is the _replicator document of the mirror's
// replicate mode.
func mirrorReplicationID(db *couch.Client) string {
	return "couchnpm-" + db.DBName(couch.RoleMirror)
}

// doctorPeers are the peer replications serve keeps for cfg (startPeers,
// peers.go): the doctor checks those, not other registries' on the same
// CouchDB.
func doctorPeers(cfg *config, db *couch.Client) ([]doctor.PeerReplication, error) {
	if len(cfg.Peers.Peers) == 0 {
		return nil, nil
	}
	local := cfg.Mirror.ReplTarget
	if local == "" {
		local = cfg.CouchURL
	}
	links, err := replication.PeerLinks(cfg.Peers.Peers, peerDBs(db), local, db.ServerDBURL)
	if err != nil {
		return nil, err
	}
	out := make([]doctor.PeerReplication, len(links))
	for i, l := range links {
		out[i] = doctor.PeerReplication{ID: l.ID, Label: l.Peer + " " + l.DB}
	}
	return out, nil
}

func printDoctor(w io.Writer, url, prefix string, findings []doctor.Finding) {
	fmt.Fprintf(w, "CouchDB at %s, databases %s*\n", url, prefix)
	width := 0
	for _, f := range findings {
		width = max(width, len(f.Check))
	}
	indent := strings.Repeat(" ", 6+width+2)
	for _, f := range findings {
		fmt.Fprintf(w, "%-4s  %-*s  %s\n", f.Status, width, f.Check, f.Message)
		if f.Fix != "" {
			fmt.Fprintf(w, "%sfix: %s\n", indent, f.Fix)
		}
	}
	fmt.Fprintf(w, "%d ok, %s, %s\n", doctor.Count(findings, doctor.OK),
		plural(doctor.Count(findings, doctor.Warn), "warning"), plural(doctor.Count(findings, doctor.Fail), "failure"))
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func printDoctorJSON(w io.Writer, url, prefix string, findings []doctor.Finding) {
	if findings == nil {
		findings = []doctor.Finding{}
	}
	b, _ := json.MarshalIndent(struct {
		CouchDB  string           `json:"couchdb"`
		DBPrefix string           `json:"db_prefix"`
		Failed   bool             `json:"failed"`
		Findings []doctor.Finding `json:"findings"`
	}{url, prefix, doctor.Failed(findings), findings}, "", "  ")
	fmt.Fprintf(w, "%s\n", b)
}
