package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/couchnpm/couchnpm/couch"
	"github.com/couchnpm/couchnpm/registry"
)

const orgUsage = `usage:
  couchnpm org create ORG --owner USER

Creates org ORG (the owner of the scope @ORG/) with USER as its owner, for
a scope npm org set cannot create: one that already holds packages of
several maintainers (published before orgs existed here) or that is a
user's name. Members, teams and grants are then managed with npm org, npm
team and npm access. Reaches CouchDB as serve does (COUCHDB_URL,
COUCHDB_USER, COUCHDB_PASSWORD, --db-prefix).
`

// orgCommand runs `couchnpm org`.
func orgCommand(args []string) int { return orgMain(args, os.Stdout, os.Stderr) }

func orgMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "create" {
		fmt.Fprint(stderr, orgUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return 0
		}
		return 2
	}
	fs := newOperatorFlags("couchnpm org create", orgUsage, stderr)
	var owner string
	fs.StringVar(&owner, "owner", "", "the user who owns the new org (required)")
	names, exit, ok := fs.parse(args[1:])
	if !ok {
		return exit
	}
	cfg := fs.cfg
	if len(names) != 1 {
		fmt.Fprint(stderr, orgUsage)
		return 2
	}
	org := names[0]
	if err := registry.ValidateOrgName("org", org); err != nil {
		fmt.Fprintln(stderr, "couchnpm:", registry.DetailOf(err))
		return 2
	}
	if err := registry.ValidateUsername(owner); err != nil {
		fmt.Fprintln(stderr, "couchnpm: --owner:", registry.DetailOf(err))
		return 2
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db, code := operatorDB(ctx, cfg, stderr, true)
	if db == nil {
		return code
	}
	if _, err := db.Users().GetUser(ctx, owner); err != nil {
		fmt.Fprintln(stderr, "couchnpm: --owner:", registry.DetailOf(err))
		return 1
	}
	if err := registry.CreateOrg(ctx, db.Docs(couch.RoleSystem), org, owner, time.Now()); err != nil {
		fmt.Fprintln(stderr, "couchnpm:", registry.DetailOf(err))
		return 1
	}
	fmt.Fprintf(stdout, "created org %s, owned by %s: only its members publish new packages under @%s/ now; manage it with npm org, npm team and npm access\n", org, owner, org)
	return 0
}
