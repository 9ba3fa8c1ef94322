package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/couch"
	"github.com/couchnpm/couchnpm/registry"
)

const userUsage = `usage: couchnpm user <command> [flags]

  add NAME --email E [--password-file F]   create an account (the password is read
                                            from F, or from the first line of stdin)
  disable NAME                              stop logins and revoke the account's tokens
  enable NAME                               allow logins again (revoked tokens stay revoked)
  delete NAME                               remove the account and revoke its tokens; the
                                            name is kept so that nobody signs up under it
  list [--json]                             list the accounts
  reset-2fa NAME                            turn off the account's two-factor authentication
                                            (a lost device and lost recovery codes; check
                                            who asks before you do)
  set-password NAME [--password-stdin] [--revoke-tokens]
                                            set a new password (asked twice on the terminal,
                                            not echoed; or the first line of stdin); the
                                            sign-up policy applies, an imported password is
                                            dropped, web sessions end; --revoke-tokens also
                                            revokes the npm tokens (a leaked password)

The commands talk to CouchDB directly, with serve's settings: --couchdb-url
(COUCHDB_URL), COUCHDB_USER, COUCHDB_PASSWORD, --db-prefix (COUCHNPM_DB_PREFIX)
and --couchdb-timeout.
`

// userCommand runs `couchnpm user ...`, the operators' account commands.
func userCommand(args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(os.Stderr, userUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	verb, args := args[0], args[1:]
	switch verb {
	case "add", "disable", "enable", "delete", "list", "reset-2fa", "set-password":
	default:
		fmt.Fprintf(os.Stderr, "couchnpm user: unknown command %q\n%s", verb, userUsage)
		return 2
	}
	fs := newOperatorFlags("couchnpm user "+verb, "", os.Stderr)
	email := fs.String("email", "", "add: the account's e-mail address")
	passwordFile := fs.String("password-file", "", "add: read the password from this file (first line); default: stdin")
	asJSON := fs.Bool("json", false, "list: print JSON")
	passwordStdin := fs.Bool("password-stdin", false, "set-password: read the password from the first line of stdin")
	revokeTokens := fs.Bool("revoke-tokens", false, "set-password: revoke the account's npm tokens too")
	// The name may come before, between or after the flags.
	words, exit, ok := fs.parse(args)
	if !ok {
		return exit
	}
	c := fs.cfg
	if len(words) > 1 {
		fmt.Fprintf(os.Stderr, "couchnpm user %s: unexpected argument %q\n", verb, words[1])
		return 2
	}
	var name string
	if len(words) == 1 {
		name = words[0]
	}
	if (verb == "list") != (name == "") {
		fmt.Fprint(os.Stderr, userUsage)
		return 2
	}

	var password string
	if verb == "add" {
		var err error
		password, err = readPassword(*passwordFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "couchnpm user add:", err)
			return 2
		}
	}
	if verb == "set-password" {
		var err error
		password, err = stdinPasswordSource(*passwordStdin).read() // usersetpassword.go
		if err != nil {
			fmt.Fprintln(os.Stderr, "couchnpm user set-password:", err)
			return 2
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	log := zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.RFC3339}).Level(zerolog.WarnLevel).With().Timestamp().Logger()
	db, err := couch.Open(c.couchConfig(), log)
	if err == nil {
		err = db.WaitReady(ctx, 10*time.Second)
	}
	if err == nil {
		// The databases and the tokens' byUser view, as serve makes them
		// (so that an account can be added before the first serve).
		err = db.Bootstrap(ctx)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "couchnpm:", err)
		return 1
	}
	admin := registry.NewUserAdmin(db.Users(), db.Tokens())
	tokensDB := db.DBName(couch.RoleTokens)

	switch verb {
	case "add":
		err = admin.Add(ctx, name, password, *email)
		if err == nil {
			fmt.Printf("added %s <%s>\n", name, strings.TrimSpace(*email))
		}
	case "disable":
		var n int
		n, err = admin.Disable(ctx, name)
		if err == nil {
			fmt.Printf("disabled %s; revoked %d tokens in %s\n", name, n, tokensDB)
		}
	case "enable":
		err = admin.Enable(ctx, name)
		if err == nil {
			fmt.Printf("enabled %s\n", name)
		}
	case "delete":
		var n int
		n, err = admin.Delete(ctx, name)
		if err == nil {
			fmt.Printf("deleted %s; revoked %d tokens in %s; the name stays reserved\n", name, n, tokensDB)
		}
	case "reset-2fa":
		var was bool
		was, err = admin.ResetTwoFactor(ctx, name)
		if err == nil && was {
			fmt.Printf("turned off two-factor authentication of %s\n", name)
		} else if err == nil {
			fmt.Printf("%s has no two-factor authentication\n", name)
		}
	case "set-password":
		err = setPassword(ctx, admin, name, password, *revokeTokens, os.Stdout) // usersetpassword.go
	case "list":
		var list []*registry.User
		list, err = admin.List(ctx)
		if err == nil {
			printUsers(os.Stdout, list, *asJSON)
		}
	}
	if verb != "list" {
		recordUserEvent(ctx, db, verb, name, err, os.Stderr) // usersetpassword.go
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "couchnpm user %s: %s\n", verb, registry.DetailOf(err))
		return 1
	}
	return 0
}

// readPassword reads the first line of path, or of stdin when path is
// empty. A password is never a flag: flags show in process listings.
func readPassword(path string) (string, error) {
	var r io.Reader = os.Stdin
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return "", err
		}
		defer f.Close()
		r = f
	} else if fi, err := os.Stdin.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		fmt.Fprint(os.Stderr, "password (shown as typed; prefer --password-file or a pipe): ")
	}
	line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no password given (first line of --password-file or stdin)")
	}
	return line, nil
}

func printUsers(w io.Writer, list []*registry.User, asJSON bool) {
	if asJSON {
		type row struct {
			Name     string     `json:"name"`
			Email    string     `json:"email,omitempty"`
			Disabled bool       `json:"disabled"`
			Created  *time.Time `json:"created,omitempty"`
		}
		rows := make([]row, 0, len(list))
		for _, u := range list {
			r := row{Name: u.Name, Email: u.Email, Disabled: u.Disabled}
			if !u.Created.IsZero() {
				c := u.Created
				r.Created = &c
			}
			rows = append(rows, r)
		}
		printJSONList(w, rows)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tEMAIL\tSTATE\tCREATED")
	for _, u := range list {
		state, created := "active", "-"
		if u.Disabled {
			state = "disabled"
		}
		if !u.Created.IsZero() {
			created = u.Created.Format("2006-01-02")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.Name, orDash(u.Email), state, created)
	}
	tw.Flush()
}

// couchConfig is how serve and the operators' commands reach CouchDB.
func (c *config) couchConfig() couch.Config {
	return couch.Config{URL: c.CouchURL, User: c.CouchUser, Password: c.CouchPassword,
		Prefix: c.DBPrefix, Timeout: c.CouchTimeout}
}
