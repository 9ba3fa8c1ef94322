package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/couch"
)

// operatorDB opens CouchDB for an operator command (claim, keys, org,
// user, audit-log) with serve's settings, warnings to stderr. With
// bootstrap set it also creates the databases and design documents, as
// serve does, so that the command works before the registry first ran
// (idempotent, safe beside serving instances). On failure it has said why
// on stderr and returns the exit status.
func operatorDB(ctx context.Context, cfg *config, stderr io.Writer, bootstrap bool) (*couch.Client, int) {
	db, err := couch.Open(cfg.couchConfig(), zerolog.New(stderr).Level(zerolog.WarnLevel))
	if err != nil {
		fmt.Fprintln(stderr, "couchnpm:", err)
		return nil, 1
	}
	if bootstrap {
		if err := db.Bootstrap(ctx); err != nil {
			fmt.Fprintln(stderr, "couchnpm: prepare CouchDB:", err)
			return nil, 1
		}
	}
	return db, 0
}

// printJSONList prints items as an indented JSON array ([] when empty),
// as the operator commands' --json output.
func printJSONList[T any](w io.Writer, items []T) {
	if items == nil {
		items = []T{}
	}
	b, _ := json.MarshalIndent(items, "", "  ")
	fmt.Fprintf(w, "%s\n", b)
}
