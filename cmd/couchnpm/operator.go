package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
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

// operatorFlags is an operator command's flag set with serve's CouchDB
// settings (flags and environment) registered: the command adds its own
// flags, then calls parse.
type operatorFlags struct {
	*flag.FlagSet
	cfg    *config
	env    *envFlags
	stderr io.Writer
}

// newOperatorFlags starts the flags of command name; usage, when not "",
// is what -h prints.
func newOperatorFlags(name, usage string, stderr io.Writer) *operatorFlags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	if usage != "" {
		fs.Usage = func() { fmt.Fprint(stderr, usage) }
	}
	o := &operatorFlags{FlagSet: fs, cfg: &config{}, env: &envFlags{fs: fs}, stderr: stderr}
	o.cfg.registerCouch(o.env)
	return o
}

// parse reads args, flags and words in any order, and checks the CouchDB
// settings. It returns the words; or, with ok false, the exit status the
// command ends with: 0 after -h, 2 after a bad flag or setting (said on
// stderr).
func (o *operatorFlags) parse(args []string) (words []string, exit int, ok bool) {
	words, err := parseInterspersed(o.FlagSet, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil, 0, false
	}
	if err != nil {
		return nil, 2, false
	}
	if len(o.env.errs) > 0 {
		fmt.Fprintln(o.stderr, "couchnpm: bad configuration:", errors.Join(o.env.errs...))
		return nil, 2, false
	}
	if err := o.cfg.checkCouch(); err != nil {
		fmt.Fprintln(o.stderr, "couchnpm: bad configuration:", err)
		return nil, 2, false
	}
	return words, 0, true
}

// parseInterspersed parses flags that may come before or after the
// positional arguments (`claim NAME --owner x`), which flag.Parse alone
// stops at.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}
