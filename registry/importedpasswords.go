package registry

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/couchnpm/couchnpm/htpasswd"
)

// Imported passwords. Accounts copied from another registry (couchnpm
// import verdaccio) come with a password hash CouchDB's _users cannot take
// (from an htpasswd file). The account is created with a random password
// nobody knows and the imported hash beside it; the first login whose
// password matches the imported hash sets that password as the account's
// CouchDB password (PBKDF2) and deletes the imported hash, so from then on
// CouchDB alone checks it.
//
// Weak kinds (DES crypt, MD5-crypt, apr1, unsalted SHA-1, cheap bcrypt)
// are imported too, because Verdaccio 5 writes DES crypt by default and
// refusing it locks every user of a default install out; but they carry
// an expiry (the import's --imported-hash-max-age), after which the hash
// no longer logs anyone in. --refuse-weak-hashes refuses them at import.
// Plain-text passwords are never imported.

// MinImportedBcryptCost is the lowest bcrypt cost that is not a weak kind
// (Verdaccio's default is 10).
const MinImportedBcryptCost = 10

// ImportedHashKind says what an imported hash is.
type ImportedHashKind struct {
	Kind string // "DES crypt", "bcrypt", "bcrypt (cost 4)", …
	Weak bool   // fast, truncating or unsalted: expires, refused by --refuse-weak-hashes
}

// CheckImportedHash says which kind an htpasswd hash is, and why it cannot
// be imported: plain text, a malformed hash, a kind Verdaccio could not
// verify either, or, with refuseWeak, a weak kind. It never repeats the
// hash.
func CheckImportedHash(hash string, refuseWeak bool) (ImportedHashKind, error) {
	kind, err := htpasswd.Identify(hash)
	var malformed htpasswd.MalformedError
	switch {
	case errors.Is(err, htpasswd.ErrPlainText), errors.Is(err, htpasswd.ErrUnknown):
		return ImportedHashKind{}, E(KindInvalid, "%v: plain-text passwords are never imported; set a new password with couchnpm user add", err)
	case errors.As(err, &malformed):
		return ImportedHashKind{}, E(KindInvalid, "%v; set a new password with couchnpm user add", err)
	case err != nil:
		return ImportedHashKind{}, E(KindInvalid, "%v; set a new password with couchnpm user add", err)
	}
	k := ImportedHashKind{Kind: string(kind), Weak: kind != htpasswd.Bcrypt}
	if kind == htpasswd.Bcrypt {
		cost, _ := bcrypt.Cost([]byte(hash)) // Identify parsed it
		if cost < MinImportedBcryptCost {
			k = ImportedHashKind{Kind: fmt.Sprintf("bcrypt (cost %d)", cost), Weak: true}
		}
	}
	if k.Weak && refuseWeak {
		return k, E(KindInvalid, "%s is a weak hash kind and is not imported (--refuse-weak-hashes); set a new password with couchnpm user add", k.Kind)
	}
	return k, nil
}

// VerifyImportedPassword reports whether password matches an imported
// hash that CheckImportedHash accepts (in constant time).
func VerifyImportedPassword(hash, password string) bool {
	if _, err := CheckImportedHash(hash, false); err != nil {
		return false
	}
	return htpasswd.Verify(hash, password)
}

// ImportedPassword is an account's imported hash.
type ImportedPassword struct {
	Hash    string
	Expires time.Time // zero: never (strong kinds)
}

// ImportedPasswords keeps the imported hashes of accounts.
type ImportedPasswords interface {
	// ImportedPassword returns the account's imported hash; a zero
	// value when it has none (or the account does not exist).
	ImportedPassword(ctx context.Context, name string) (ImportedPassword, error)
	// AdoptPassword makes password the account's password and deletes
	// the imported hash, if the account still holds hash.
	AdoptPassword(ctx context.Context, name, hash, password string) error
}

// WithImportedPasswords returns users whose CheckPassword, when the
// account's password is wrong, also tries the account's imported hash,
// unless it expired, and on a match adopts the password (see above).
func WithImportedPasswords(users UserStore, imported ImportedPasswords) UserStore {
	return importingUsers{UserStore: users, imported: imported, now: time.Now}
}

type importingUsers struct {
	UserStore
	imported ImportedPasswords
	now      func() time.Time
}

func (u importingUsers) CheckPassword(ctx context.Context, name, password string, from netip.Addr) error {
	err := u.UserStore.CheckPassword(ctx, name, password, from)
	if !IsKind(err, KindUnauthorized) {
		return err
	}
	ip, herr := u.imported.ImportedPassword(ctx, name)
	if herr != nil || ip.Hash == "" {
		return err
	}
	if !ip.Expires.IsZero() && !u.now().Before(ip.Expires) {
		// Not even verified, and the client is told what a wrong password
		// is told: an expired hash tells a guesser nothing. The cause (in
		// the request's log line) says why.
		return Wrap(KindUnauthorized, fmt.Errorf("the password imported for %s expired on %s: %w", name, ip.Expires.UTC().Format(time.RFC3339), err), "%s", ReasonOf(err))
	}
	if !VerifyImportedPassword(ip.Hash, password) {
		return err
	}
	if aerr := u.imported.AdoptPassword(ctx, name, ip.Hash, password); aerr != nil {
		return Wrap(KindOf(aerr), aerr, "cannot adopt the imported password of %s", name)
	}
	return nil
}
