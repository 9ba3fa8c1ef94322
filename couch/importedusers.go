package couch

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"time"

	"github.com/couchnpm/couchnpm/registry"
)

// fieldImportedHash holds, in an account's _users document, the password
// hash imported from another registry until its first login
// (registry.WithImportedPasswords). _users documents are readable by
// admins and by the account itself only.
const fieldImportedHash = "couchnpm_imported_hash"

// ImportUser adds an account imported from another registry: CouchDB gets
// a random password nobody knows, and hash (checked by the caller with
// registry.CheckImportedHash) waits for the first login. KindConflict when
// the name is taken.
func (u *Users) ImportUser(ctx context.Context, name, hash string) error {
	ctx, cancel := u.c.ctx(ctx)
	defer cancel()
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return registry.Wrap(registry.KindInternal, err, "cannot make a password")
	}
	doc := map[string]any{
		"_id": userDocID(name), "name": name, "type": "user", "roles": []string{},
		"password": base64.RawURLEncoding.EncodeToString(secret), fieldImportedHash: hash,
		"date": time.Now().UTC().Format(time.RFC3339),
	}
	if _, err := u.db.Put(ctx, userDocID(name), doc); err != nil {
		err = translate(err, "import user")
		if registry.IsKind(err, registry.KindConflict) {
			return registry.Wrap(registry.KindConflict, err, "the user name %q is taken", name)
		}
		return err
	}
	return nil
}

// ImportedHash implements registry.ImportedPasswords.
func (u *Users) ImportedHash(ctx context.Context, name string) (string, error) {
	ctx, cancel := u.c.ctx(ctx)
	defer cancel()
	var d map[string]any
	if err := u.db.Get(ctx, userDocID(name)).ScanDoc(&d); err != nil {
		err = translate(err, "read user")
		if registry.IsKind(err, registry.KindNotFound) {
			return "", nil
		}
		return "", err
	}
	if d["couchnpm_deleted"] == true {
		return "", nil
	}
	h, _ := d[fieldImportedHash].(string)
	return h, nil
}

// AdoptPassword implements registry.ImportedPasswords: CouchDB hashes the
// new password itself when the document is written.
func (u *Users) AdoptPassword(ctx context.Context, name, hash, password string) error {
	return u.updateOrSkip(ctx, name, func(doc map[string]any) (bool, error) {
		if h, _ := doc[fieldImportedHash].(string); h != hash {
			return false, nil // adopted already (a concurrent login)
		}
		delete(doc, fieldImportedHash)
		doc["password"] = password
		return true, nil
	})
}
