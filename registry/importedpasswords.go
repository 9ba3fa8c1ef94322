package registry

import (
	"context"
	"net/netip"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// Imported passwords. Accounts copied from another registry (couchnpm
// import verdaccio) come with a password hash CouchDB's _users cannot take
// (bcrypt, from an htpasswd file). The account is created with a random
// password nobody knows and the imported hash beside it; the first login
// whose password matches the imported hash sets that password as the
// account's CouchDB password and deletes the imported hash, so from then on
// CouchDB alone checks it. Only bcrypt of a sufficient cost is imported:
// the other htpasswd kinds are fast or unsalted hashes, which an attacker
// who read the file could already have cracked.

// MinImportedBcryptCost is the lowest bcrypt cost imported (Verdaccio's
// default is 10).
const MinImportedBcryptCost = 10

// CheckImportedHash says whether an htpasswd hash can be imported: nil for
// bcrypt of cost MinImportedBcryptCost or more, else why not. It never
// repeats the hash.
func CheckImportedHash(hash string) error {
	switch {
	case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"), strings.HasPrefix(hash, "$2y$"):
		cost, err := bcrypt.Cost([]byte(hash))
		if err != nil {
			return E(KindInvalid, "malformed bcrypt hash")
		}
		if cost < MinImportedBcryptCost {
			return E(KindInvalid, "bcrypt cost %d is below %d: too cheap to guess against; set a new password with couchnpm user add", cost, MinImportedBcryptCost)
		}
		return nil
	case strings.HasPrefix(hash, "{SHA}"):
		return weakHash("unsalted SHA-1 ({SHA})")
	case strings.HasPrefix(hash, "$apr1$"):
		return weakHash("MD5 (apr1)")
	case strings.HasPrefix(hash, "$1$"):
		return weakHash("MD5-crypt ($1$)")
	case strings.HasPrefix(hash, "$5$"), strings.HasPrefix(hash, "$6$"):
		return E(KindInvalid, "SHA-crypt ($5$/$6$) hashes are not supported; set a new password with couchnpm user add")
	case len(hash) == 13 && !strings.ContainsAny(hash, "$:{}"):
		return weakHash("DES crypt")
	case hash == "":
		return E(KindInvalid, "no password hash")
	default:
		return E(KindInvalid, "unknown hash kind (plain text?); set a new password with couchnpm user add")
	}
}

func weakHash(kind string) error {
	return E(KindInvalid, "%s is a weak hash kind and is not imported; set a new password with couchnpm user add", kind)
}

// VerifyImportedPassword reports whether password matches an imported hash
// that CheckImportedHash accepts.
func VerifyImportedPassword(hash, password string) bool {
	if CheckImportedHash(hash) != nil {
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
}

// ImportedPasswords keeps the imported hashes of accounts.
type ImportedPasswords interface {
	// ImportedHash returns the account's imported hash; "" when it has
	// none (or the account does not exist).
	ImportedHash(ctx context.Context, name string) (string, error)
	// AdoptPassword makes password the account's password and deletes
	// the imported hash, if the account still holds hash.
	AdoptPassword(ctx context.Context, name, hash, password string) error
}

// WithImportedPasswords returns users whose CheckPassword, when the
// account's password is wrong, also tries the account's imported hash and
// on a match adopts the password (see above).
func WithImportedPasswords(users UserStore, imported ImportedPasswords) UserStore {
	return importingUsers{UserStore: users, imported: imported}
}

type importingUsers struct {
	UserStore
	imported ImportedPasswords
}

func (u importingUsers) CheckPassword(ctx context.Context, name, password string, from netip.Addr) error {
	err := u.UserStore.CheckPassword(ctx, name, password, from)
	if !IsKind(err, KindUnauthorized) {
		return err
	}
	hash, herr := u.imported.ImportedHash(ctx, name)
	if herr != nil || hash == "" || !VerifyImportedPassword(hash, password) {
		return err
	}
	if aerr := u.imported.AdoptPassword(ctx, name, hash, password); aerr != nil {
		return Wrap(KindOf(aerr), aerr, "cannot adopt the imported password of %s", name)
	}
	return nil
}
