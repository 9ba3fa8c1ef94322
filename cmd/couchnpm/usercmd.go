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

// userVerbs are the account commands, each with what it does once CouchDB
// is open; name is the account (empty for list).
var userVerbs = map[string]func(ctx context.Context, u *userRun) error{
	"add": func(ctx context.Context, u *userRun) error {
		err := u.admin.Add(ctx, u.name, u.password, u.email)
		if err == nil {
			fmt.Fprintf(u.out, "added %s <%s>\n", u.name, strings.TrimSpace(u.email))
		}
		return err
	},
	"disable": func(ctx context.Context, u *userRun) error {
		n, err := u.admin.Disable(ctx, u.name)
		if err == nil {
			fmt.Fprintf(u.out, "disabled %s; revoked %d tokens in %s\n", u.name, n, u.tokensDB)
		}
		return err
	},
	"enable": func(ctx context.Context, u *userRun) error {
		err := u.admin.Enable(ctx, u.name)
		if err == nil {
			fmt.Fprintf(u.out, "enabled %s\n", u.name)
		}
		return err
	},
	"delete": func(ctx context.Context, u *userRun) error {
		n, err := u.admin.Delete(ctx, u.name)
		if err == nil {
			fmt.Fprintf(u.out, "deleted %s; revoked %d tokens in %s; the name stays reserved\n", u.name, n, u.tokensDB)
		}
		return err
	},
	"reset-2fa": func(ctx context.Context, u *userRun) error {
		was, err := u.admin.ResetTwoFactor(ctx, u.name)
		switch {
		case err != nil:
		case was:
			fmt.Fprintf(u.out, "turned off two-factor authentication of %s\n", u.name)
		default:
			fmt.Fprintf(u.out, "%s has no two-factor authentication\n", u.name)
		}
		return err
	},
	"set-password": func(ctx context.Context, u *userRun) error {
		return setPassword(ctx, u.admin, u.name, u.password, u.revokeTokens, u.out) // usersetpassword.go
	},
	"list": func(ctx context.Context, u *userRun) error {
		list, err := u.admin.List(ctx)
		if err == nil {
			printUsers(u.out, list, u.asJSON)
		}
		return err
	},
}

// userRun is one account command: its arguments and, once CouchDB is
// open, what it works with.
type userRun struct {
	verb, name, email, password string
	asJSON, revokeTokens        bool
	cfg                         *config
	out                         io.Writer

	admin    *registry.UserAdmin
	tokensDB string
}

// userCommand runs `couchnpm user ...`, the operators' account commands.
func userCommand(args []string) int {
	u, code := parseUserCommand(args)
	if u == nil {
		return code
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	log := zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.RFC3339}).Level(zerolog.WarnLevel).With().Timestamp().Logger()
	db, err := couch.Open(u.cfg.couchConfig(), log)
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
	u.admin = registry.NewUserAdmin(db.Users(), db.Tokens())
	u.tokensDB = db.DBName(couch.RoleTokens)
	err = userVerbs[u.verb](ctx, u)
	if u.verb != "list" {
		recordUserEvent(ctx, db, u.verb, u.name, err, os.Stderr) // usersetpassword.go
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "couchnpm user %s: %s\n", u.verb, registry.DetailOf(err))
		return 1
	}
	return 0
}

// parseUserCommand reads the verb, its flags and the account name, and the
// password where the verb takes one; nil and the exit status when they are
// wrong (or only asked for help).
func parseUserCommand(args []string) (*userRun, int) {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(os.Stderr, userUsage)
		if len(args) == 0 {
			return nil, 2
		}
		return nil, 0
	}
	verb, args := args[0], args[1:]
	if userVerbs[verb] == nil {
		fmt.Fprintf(os.Stderr, "couchnpm user: unknown command %q\n%s", verb, userUsage)
		return nil, 2
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
		return nil, exit
	}
	if len(words) > 1 {
		fmt.Fprintf(os.Stderr, "couchnpm user %s: unexpected argument %q\n", verb, words[1])
		return nil, 2
	}
	u := &userRun{verb: verb, email: *email, asJSON: *asJSON, revokeTokens: *revokeTokens, cfg: fs.cfg, out: os.Stdout}
	if len(words) == 1 {
		u.name = words[0]
	}
	if (verb == "list") != (u.name == "") {
		fmt.Fprint(os.Stderr, userUsage)
		return nil, 2
	}
	var err error
	switch verb {
	case "add":
		u.password, err = readPassword(*passwordFile)
	case "set-password":
		u.password, err = stdinPasswordSource(*passwordStdin).read() // usersetpassword.go
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "couchnpm user %s: %v\n", verb, err)
		return nil, 2
	}
	return u, 0
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
