package doctor

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// maxNamed bounds the names --verbose lists in one finding.
const maxNamed = 50

// checkImportedPasswords: accounts imported from another registry keep the
// source's password hash until their first login here. An expired one
// (weak kinds expire) logs nobody in: its user is locked out until an
// operator acts. A weak one not yet expired is a crackable hash at rest.
// Strong ones are merely waiting for their users.
func checkImportedPasswords(ctx context.Context, acc Accounts, opt Options) Finding {
	f := Finding{Check: "imported-passwords"}
	list, err := acc.ImportedAccounts(ctx)
	if err != nil {
		f.Status, f.Message = Warn, "cannot read _users for imported passwords: "+reason(err)
		f.Fix = "give couchnpm a server admin's credentials (see the admin finding)"
		return f
	}
	if len(list) == 0 {
		f.Status, f.Message = OK, "no account holds an imported password"
		return f
	}
	now := opt.Now()
	var expired, weak []string
	var next time.Time
	for _, a := range list {
		switch {
		case a.Expires.IsZero():
		case !now.Before(a.Expires):
			expired = append(expired, a.Name)
		default:
			weak = append(weak, a.Name)
			if next.IsZero() || a.Expires.Before(next) {
				next = a.Expires
			}
		}
	}
	strong := len(list) - len(expired) - len(weak)
	parts := []string{fmt.Sprintf("%s of _users (shared by every registry on this CouchDB) still %s an imported password: they have not logged in here since the import",
		accounts(len(list)), holds(len(list)))}
	if len(expired) > 0 {
		parts = append(parts, fmt.Sprintf("%d expired (a weak hash kind past --imported-hash-max-age: these users cannot log in)%s", len(expired), named(expired, opt.Verbose)))
	}
	if len(weak) > 0 {
		parts = append(parts, fmt.Sprintf("%d weak, logging in until the first expiry on %s%s", len(weak), next.UTC().Format(time.DateOnly), named(weak, opt.Verbose)))
	}
	if strong > 0 {
		parts = append(parts, fmt.Sprintf("%d strong (no expiry)", strong))
	}
	if !opt.Verbose {
		parts = append(parts, "--verbose names them")
	}
	f.Message = strings.Join(parts, "; ")
	f.Status = OK
	if len(expired)+len(weak) == 0 {
		return f // strong hashes wait for their users' first login
	}
	f.Status = Warn
	f.Fix = "give each a new password: couchnpm user set-password NAME; or import again from the source (couchnpm import), which renews the hash and expiry of accounts that never logged in here"
	return f
}

func accounts(n int) string {
	if n == 1 {
		return "1 account"
	}
	return fmt.Sprintf("%d accounts", n)
}

func holds(n int) string {
	if n == 1 {
		return "holds"
	}
	return "hold"
}

// named is ": a, b, c" with verbose, bounded by maxNamed.
func named(names []string, verbose bool) string {
	if !verbose {
		return ""
	}
	if len(names) > maxNamed {
		return fmt.Sprintf(" (%s, and %d more)", strings.Join(names[:maxNamed], ", "), len(names)-maxNamed)
	}
	return " (" + strings.Join(names, ", ") + ")"
}
