package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/couchnpm/couchnpm/replication"
)

// statusCommand is the flags of a command that asks a running couchnpm
// for a status (mirror status, replication status).
type statusCommand struct {
	*flag.FlagSet
	base   string // the registry's URL
	asJSON bool
}

func newStatusCommand(name string) *statusCommand {
	sc := &statusCommand{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError)}
	def := os.Getenv("COUCHNPM_PUBLIC_URL")
	if def == "" {
		def = "http://127.0.0.1:4880"
	}
	sc.StringVar(&sc.base, "url", def, "the registry's URL (env COUCHNPM_PUBLIC_URL)")
	sc.BoolVar(&sc.asJSON, "json", false, "print the raw JSON")
	return sc
}

// parse reads args; with ok false, the command ends with exit (0 after
// -h, 2 after a bad flag, said on stderr).
func (sc *statusCommand) parse(args []string) (exit int, ok bool) {
	if err := parseFlags(sc.FlagSet, args); errors.Is(err, flag.ErrHelp) {
		return 0, false
	} else if err != nil {
		fmt.Fprintf(os.Stderr, "couchnpm: bad flag: %v (%s -h lists the flags)\n", err, sc.Name())
		return 2, false
	}
	return 0, true
}

// mirrorCommand runs `couchnpm mirror status`: it asks a running couchnpm
// for its mirror status and prints it for people.
func mirrorCommand(args []string) int {
	if len(args) == 0 || args[0] != "status" {
		fmt.Fprintln(os.Stderr, "usage: couchnpm mirror status [--url URL] [--json] [--watch]")
		return 2
	}
	sc := newStatusCommand("couchnpm mirror status")
	base, asJSON := &sc.base, &sc.asJSON
	watch := sc.Bool("watch", false, "keep printing a progress line until caught up")
	if exit, ok := sc.parse(args[1:]); !ok {
		return exit
	}
	for {
		st, raw, err := fetchStatus(strings.TrimRight(*base, "/"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "couchnpm:", err)
			return 1
		}
		if *asJSON {
			os.Stdout.Write(raw)
			return 0
		}
		if !*watch {
			printStatus(st)
			return 0
		}
		fmt.Println(progressLine(st))
		if st.State == "following" || st.Mode != replication.ModeFollow {
			return 0
		}
		time.Sleep(2 * time.Second)
	}
}

func fetchStatus(base string) (*replication.Status, []byte, error) {
	var st replication.Status
	raw, err := getStatus(base, "/-/mirror/status", &st)
	if err != nil {
		return nil, nil, err
	}
	return &st, raw, nil
}

// getStatus reads a running registry's status endpoint path into v and
// returns the raw JSON too (for --json).
func getStatus(base, path string, v any) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return nil, err
	}
	// An admin's token shows the admin-only details (peer addresses,
	// error texts); without one, what anyone may see.
	if tok := os.Getenv("COUCHNPM_TOKEN"); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %d: %s", base, resp.StatusCode, strings.TrimSpace(string(raw)))
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return nil, fmt.Errorf("unreadable status: %w", err)
	}
	return raw, nil
}

func progressLine(st *replication.Status) string {
	lag := "unknown"
	if st.LagChanges != nil {
		lag = fmt.Sprintf("%d changes", *st.LagChanges)
	}
	return fmt.Sprintf("%s: checkpoint %s of %s, behind by %s, %d written by the follower (%.1f/s), %d failures",
		st.State, orDash(st.Checkpoint), orDash(st.UpstreamSeq), lag, st.FollowerWritten, st.WrittenPerSecond, st.Failures)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func printStatus(st *replication.Status) {
	fmt.Printf("mode:          %s\n", st.Mode)
	fmt.Printf("state:         %s\n", st.State)
	if st.Upstream != "" {
		fmt.Printf("upstream:      %s\n", st.Upstream)
	}
	if st.Mode == replication.ModeFollow {
		fmt.Printf("holder:        %s\n", orDash(st.Holder))
		fmt.Printf("progress:      %s\n", progressLine(st))
		if st.LagSeconds != nil {
			fmt.Printf("lag:           %.0f s\n", *st.LagSeconds)
		}
		if st.LastError != "" {
			fmt.Printf("last error:    %s\n", st.LastError)
		}
		for _, f := range st.LastFailures {
			fmt.Printf("failed:        %s at %s: %s\n", f.Package, f.Time.Format(time.RFC3339), f.Error)
		}
	}
	if st.Replication != nil {
		b, _ := json.MarshalIndent(st.Replication, "               ", "  ")
		fmt.Printf("replication:   %s\n", b)
	}
	fmt.Printf("written:       %d packuments = %d by the follower + %d on demand (this instance)\n",
		st.PackumentsWritten, st.FollowerWritten, st.OnDemandWritten)
	if st.PackumentsDeleted > 0 {
		fmt.Printf("deleted:       %d packuments\n", st.PackumentsDeleted)
	}
	f := st.UpstreamFetches
	fmt.Printf("fetches:       %d ok, %d not found, %d errors (%d no answer, %d error status, %d unusable)\n",
		f.OK, f.NotFound, f.Errors, f.NoAnswer, f.ErrorStatus, f.Unusable)
	fmt.Printf("tarball cache: %d hits, %d misses, %d integrity failures\n",
		st.TarballCache.Hits, st.TarballCache.Misses, st.TarballCache.IntegrityFailures)
	if st.Upstream == replication.HiddenDetail || st.Instance == replication.HiddenDetail {
		fmt.Println("(the upstream, instance names and error texts are for admins: set COUCHNPM_TOKEN to an admin's token)")
	}
}
