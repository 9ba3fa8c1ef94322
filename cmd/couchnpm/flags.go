package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// badFlag is a command-line mistake (an unknown flag, a value that does not
// parse, a stray argument): reported in one line, not with the whole flag
// list.
type badFlag struct{ err error }

func (b badFlag) Error() string { return b.err.Error() }
func (b badFlag) Unwrap() error { return b.err }

// parseFlags parses args into fs. -h prints the flag list to stdout and
// returns flag.ErrHelp; any other mistake returns a badFlag and prints
// nothing.
func parseFlags(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(os.Stdout)
		fmt.Fprintf(os.Stdout, "usage: %s [flags]\n\nflags (each also read from the environment variable named):\n", fs.Name())
		fs.PrintDefaults()
		return err
	}
	if err != nil {
		return badFlag{err}
	}
	if fs.NArg() > 0 {
		return badFlag{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}
