package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/couch"
	"github.com/couchnpm/couchnpm/registry"
)

const keysUsage = `usage:
  couchnpm keys list [--json]
  couchnpm keys rotate

The registry signs each version it publishes (and each mirrored version the
upstream left unsigned) with its active key; GET /-/npm/v1/keys serves the
public keys, for npm audit signatures. rotate adds a new active key and
gives the old ones an expiry one minute from now: what they signed before
still verifies. Both commands reach CouchDB as serve does (COUCHDB_URL,
COUCHDB_USER, COUCHDB_PASSWORD, --db-prefix). A key given to serve with
--signing-key-file is not stored and not rotated here.
`

func keysCommand(args []string) int {
	return keysMain(args, os.Stdout, os.Stderr)
}

func keysMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("couchnpm keys", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, keysUsage) }
	cfg := &config{}
	e := &envFlags{fs: fs}
	cfg.registerCouch(e)
	var asJSON bool
	fs.BoolVar(&asJSON, "json", false, "with list: print JSON")
	words, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	if len(e.errs) > 0 {
		fmt.Fprintln(stderr, "couchnpm: bad configuration:", errors.Join(e.errs...))
		return 2
	}
	if len(words) != 1 || (words[0] != "list" && words[0] != "rotate") {
		fmt.Fprint(stderr, keysUsage)
		return 2
	}
	if err := cfg.checkCouch(); err != nil {
		fmt.Fprintln(stderr, "couchnpm: bad configuration:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db, err := couch.Open(cfg.couchConfig(), zerolog.New(stderr).Level(zerolog.WarnLevel))
	if err != nil {
		fmt.Fprintln(stderr, "couchnpm:", err)
		return 1
	}
	if err := db.Bootstrap(ctx); err != nil {
		fmt.Fprintln(stderr, "couchnpm: prepare CouchDB:", err)
		return 1
	}
	keyring := registry.NewKeyring(db.Docs(couch.RoleSystem), nil)
	fail := func(err error) int {
		fmt.Fprintln(stderr, "couchnpm:", registry.ReasonOf(err))
		return 1
	}
	if words[0] == "rotate" {
		key, err := keyring.Rotate(ctx)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "new signing key %s is active; the earlier keys expire at %s\n", key.KeyID, key.Created.Add(registry.RotationGrace).Format(time.RFC3339))
		return 0
	}
	keys, err := keyring.Keys(ctx)
	if err != nil {
		return fail(err)
	}
	if asJSON {
		out := make([]registry.PublicKey, 0, len(keys))
		for _, k := range keys {
			out = append(out, k.PublicKey())
		}
		b, _ := json.MarshalIndent(out, "", "  ")
		fmt.Fprintf(stdout, "%s\n", b)
		return 0
	}
	if len(keys) == 0 {
		fmt.Fprintln(stdout, "no signing keys yet: the first start of couchnpm serve creates one")
		return 0
	}
	for _, k := range keys {
		state := "active"
		if k.Expires != nil {
			state = "expires " + k.Expires.Format(time.RFC3339)
		}
		fmt.Fprintf(stdout, "%s\tcreated %s\t%s\n", k.KeyID, k.Created.Format(time.RFC3339), state)
	}
	return 0
}
