package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/couchnpm/couchnpm/auditlog"
	"github.com/couchnpm/couchnpm/couch"
	"github.com/couchnpm/couchnpm/registry"
)

const claimUsage = `usage:
  couchnpm claim NAME --owner USER --reason TEXT [--by OPERATOR]
  couchnpm claim --list [--json]
  couchnpm unclaim NAME

A claim lets USER publish NAME here although the upstream registry has it:
an internal fork that shadows the upstream package for everyone using this
registry. Both commands reach CouchDB as serve does (COUCHDB_URL,
COUCHDB_USER, COUCHDB_PASSWORD, --db-prefix).
`

// claimCommand runs `couchnpm claim` (claim true) and `couchnpm unclaim`.
func claimCommand(args []string, claim bool) int {
	return claimMain(args, claim, os.Stdout, os.Stderr)
}

func claimMain(args []string, claim bool, stdout, stderr io.Writer) int {
	name := "couchnpm unclaim"
	if claim {
		name = "couchnpm claim"
	}
	fs := newOperatorFlags(name, claimUsage, stderr)
	var owner, reason, by string
	var list, asJSON bool
	if claim {
		fs.StringVar(&owner, "owner", "", "the user who may publish the name first (becomes its maintainer)")
		fs.StringVar(&reason, "reason", "", "why this registry shadows the upstream package (required)")
		fs.StringVar(&by, "by", os.Getenv("USER"), "who claims the name (default: $USER)")
		fs.BoolVar(&list, "list", false, "list the claimed names")
		fs.BoolVar(&asJSON, "json", false, "with --list: print JSON")
	}
	names, exit, ok := fs.parse(args)
	if !ok {
		return exit
	}
	cfg := fs.cfg
	if list != (len(names) == 0) || len(names) > 1 {
		fmt.Fprint(stderr, claimUsage)
		return 2
	}
	var newClaim registry.Claim
	switch {
	case list:
	case claim:
		newClaim = registry.Claim{Name: names[0], Owner: owner, By: by, Reason: reason}
		if err := newClaim.Check(); err != nil {
			fmt.Fprintln(stderr, "couchnpm:", registry.DetailOf(err), "(--owner, --reason and --by or $USER are required)")
			return 2
		}
	default:
		if err := registry.ValidateName(names[0]); err != nil {
			fmt.Fprintln(stderr, "couchnpm:", registry.DetailOf(err))
			return 2
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Names can be claimed before the registry first starts.
	db, code := operatorDB(ctx, cfg, stderr, true)
	if db == nil {
		return code
	}
	system := db.Docs(couch.RoleSystem)
	claims := registry.NewClaims(system)
	fail := func(err error) int {
		fmt.Fprintln(stderr, "couchnpm:", registry.DetailOf(err))
		return 1
	}
	if list {
		all, err := claims.List(ctx, system)
		if err != nil {
			return fail(err)
		}
		printClaims(stdout, all, asJSON)
		return 0
	}
	pkg := names[0]
	published := publishedHere(ctx, db, pkg)
	audit := func(err error, ev auditlog.Event) { // auditlogcmd.go
		ev.Package, ev.Outcome = pkg, auditlog.OutcomeOK
		if err != nil {
			ev.Outcome, ev.Reason = auditlog.OutcomeFailed, registry.ReasonOf(err)
		}
		recordOperatorEvent(ctx, db, ev, stderr)
	}
	if !claim {
		err := claims.Remove(ctx, pkg)
		audit(err, auditlog.Event{Action: "unclaim", Actor: os.Getenv("USER")})
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "unclaimed %s: a first publish of it here is refused again while the upstream has it\n", pkg)
		if published {
			fmt.Fprintf(stdout, "note: %s is published here and keeps shadowing the upstream until it is unpublished (npm unpublish %s --force); its upstream versions come back then\n", pkg, pkg)
		}
		return 0
	}
	replaced, err := claims.Add(ctx, newClaim)
	audit(err, auditlog.Event{Action: "claim", Actor: by, Target: "owner " + owner, Reason: reason})
	if err != nil {
		return fail(err)
	}
	verb := "claimed"
	if replaced {
		verb = "claimed again (the earlier claim is replaced)"
	}
	fmt.Fprintf(stdout, "%s %s for %s: %s may publish it here, shadowing the upstream package for everyone\n", verb, pkg, owner, owner)
	if published {
		fmt.Fprintf(stdout, "note: %s is already published here; if it is unpublished, the upstream's versions come back\n", pkg)
	}
	return 0
}

// publishedHere reports whether a package (or its tombstone) named name is
// stored in the private database; false when that cannot be read.
func publishedHere(ctx context.Context, db *couch.Client, name string) bool {
	p, err := db.Packuments(couch.RolePackages).GetPackument(ctx, name)
	return err == nil && !p.IsTombstone()
}

func printClaims(w io.Writer, claims []registry.Claim, asJSON bool) {
	if asJSON {
		printJSONList(w, claims)
		return
	}
	if len(claims) == 0 {
		fmt.Fprintln(w, "no names are claimed")
		return
	}
	for _, c := range claims {
		fmt.Fprintf(w, "%s\towner %s\tby %s\tat %s\t%s\n", c.Name, c.Owner, c.By, c.At.Format(time.RFC3339), strings.ReplaceAll(c.Reason, "\n", " "))
	}
}
