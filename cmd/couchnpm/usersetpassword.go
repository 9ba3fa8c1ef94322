package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/couchnpm/couchnpm/auditlog"
	"github.com/couchnpm/couchnpm/couch"
	"github.com/couchnpm/couchnpm/registry"
)

// passwordSource is where `couchnpm user set-password` reads the new
// password: a terminal (twice, without echo) or, with --password-stdin,
// the first line of stdin. A password is never a flag (process listings)
// and never read from a pipe by surprise.
type passwordSource struct {
	stdin      io.Reader
	terminal   bool                   // stdin is a terminal
	readHidden func() ([]byte, error) // one line from the terminal, not echoed
	prompt     io.Writer
	fromStdin  bool // --password-stdin
}

func stdinPasswordSource(fromStdin bool) passwordSource {
	fd := int(os.Stdin.Fd())
	return passwordSource{
		stdin: os.Stdin, terminal: term.IsTerminal(fd), prompt: os.Stderr, fromStdin: fromStdin,
		readHidden: func() ([]byte, error) {
			b, err := term.ReadPassword(fd)
			fmt.Fprintln(os.Stderr) // the newline the terminal did not echo
			return b, err
		},
	}
}

func (s passwordSource) read() (string, error) {
	if s.fromStdin {
		line, err := bufio.NewReader(io.LimitReader(s.stdin, 4096)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return "", errors.New("no password on stdin (--password-stdin reads its first line)")
		}
		return line, nil
	}
	if !s.terminal {
		return "", errors.New("stdin is not a terminal: pipe the password and pass --password-stdin")
	}
	fmt.Fprint(s.prompt, "new password: ")
	first, err := s.readHidden()
	if err != nil {
		return "", err
	}
	fmt.Fprint(s.prompt, "again: ")
	second, err := s.readHidden()
	if err != nil {
		return "", err
	}
	if len(first) == 0 {
		return "", errors.New("no password given")
	}
	if !bytes.Equal(first, second) {
		return "", errors.New("the two passwords differ; nothing changed")
	}
	return string(first), nil
}

// setPassword runs `couchnpm user set-password NAME` once the password is
// read and CouchDB is ready, and says what it did besides.
func setPassword(ctx context.Context, admin *registry.UserAdmin, name, password string, revokeTokens bool, stdout io.Writer) error {
	res, err := admin.SetPassword(ctx, name, password, revokeTokens)
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, setPasswordReport(name, res, revokeTokens))
	return nil
}

// recordUserEvent writes the audit log entry of a `couchnpm user` command
// that changed an account: action "user.<verb>", the account as target,
// the operator's $USER as actor. Never the password.
func recordUserEvent(ctx context.Context, db *couch.Client, verb, name string, err error, stderr io.Writer) {
	ev := auditlog.Event{Action: "user." + verb, Actor: os.Getenv("USER"), Target: name, Outcome: auditlog.OutcomeOK}
	switch {
	case err == nil:
	case registry.IsKind(err, registry.KindInvalid), registry.IsKind(err, registry.KindNotFound), registry.IsKind(err, registry.KindConflict):
		ev.Outcome, ev.Reason = auditlog.OutcomeRefused, registry.ReasonOf(err)
	default:
		ev.Outcome, ev.Reason = auditlog.OutcomeFailed, registry.ReasonOf(err)
	}
	recordOperatorEvent(ctx, db, ev, stderr) // auditlogcmd.go
}

// setPasswordReport says what set-password did, and what it left alone.
func setPasswordReport(name string, res registry.PasswordReset, revokeTokens bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "set the password of %s\n", name)
	if res.DroppedImportedHash {
		fmt.Fprintln(&b, "dropped the password imported for it: the old password no longer logs in")
	}
	fmt.Fprintf(&b, "ended %d web sessions\n", res.RevokedSessions)
	if revokeTokens {
		fmt.Fprintf(&b, "revoked %d npm tokens\n", res.RevokedTokens)
	} else {
		fmt.Fprintln(&b, "npm tokens stay valid (--revoke-tokens revokes them, for a leaked password)")
	}
	return b.String()
}
