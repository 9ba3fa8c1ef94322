package couch

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"time"

	kivik "github.com/go-kivik/kivik/v4"

	"github.com/couchnpm/couchnpm/registry"
)

// fieldImportedHash holds, in an account's _users document, the password
// hash imported from another registry until its first login
// (registry.WithImportedPasswords). _users documents are readable by
// admins and by the account itself only.
const fieldImportedHash = "couchnpm_imported_hash"

// fieldImportedHashExpires, when present, is the RFC 3339 time after which
// the imported hash no longer logs in (weak kinds).
const fieldImportedHashExpires = "couchnpm_imported_hash_expires"

// ImportUser adds an account imported from another registry: CouchDB gets
// a random password nobody knows, and hash (checked by the caller with
// registry.CheckImportedHash) waits for the first login, until expires
// (zero: no expiry). KindConflict when the name is taken.
func (u *Users) ImportUser(ctx context.Context, name, hash string, expires time.Time) error {
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
	if !expires.IsZero() {
		doc[fieldImportedHashExpires] = expires.UTC().Format(time.RFC3339)
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

// ImportedPassword implements registry.ImportedPasswords. An expiry that
// cannot be read counts as expired.
func (u *Users) ImportedPassword(ctx context.Context, name string) (registry.ImportedPassword, error) {
	ctx, cancel := u.c.ctx(ctx)
	defer cancel()
	var d map[string]any
	if err := u.db.Get(ctx, userDocID(name)).ScanDoc(&d); err != nil {
		err = translate(err, "read user")
		if registry.IsKind(err, registry.KindNotFound) {
			return registry.ImportedPassword{}, nil
		}
		return registry.ImportedPassword{}, err
	}
	if d["couchnpm_deleted"] == true {
		return registry.ImportedPassword{}, nil
	}
	var ip registry.ImportedPassword
	ip.Hash, _ = d[fieldImportedHash].(string)
	if v, ok := d[fieldImportedHashExpires]; ok {
		s, _ := v.(string)
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t = time.Unix(0, 0)
		}
		ip.Expires = t
	}
	return ip, nil
}

// AdoptPassword implements registry.ImportedPasswords: CouchDB hashes the
// new password itself when the document is written.
func (u *Users) AdoptPassword(ctx context.Context, name, hash, password string) error {
	return u.updateOrSkip(ctx, name, func(doc map[string]any) (bool, error) {
		if h, _ := doc[fieldImportedHash].(string); h != hash {
			return false, nil // adopted already (a concurrent login)
		}
		delete(doc, fieldImportedHash)
		delete(doc, fieldImportedHashExpires)
		doc["password"] = password
		return true, nil
	})
}

// RenewImportedUser sets hash and expires anew on an account that still
// holds an imported hash (it never logged in here), as a repeated import
// does: the operator's remedy for an expired hash, and how a password
// changed at the source since the first import arrives. It reports
// whether anything changed; an account that logged in here already, or a
// deleted one, is left alone.
func (u *Users) RenewImportedUser(ctx context.Context, name, hash string, expires time.Time) (bool, error) {
	changed := false
	err := u.updateOrSkip(ctx, name, func(doc map[string]any) (bool, error) {
		changed = false
		old, ok := doc[fieldImportedHash].(string)
		if !ok || old == "" {
			return false, nil
		}
		oldExp, _ := doc[fieldImportedHashExpires].(string)
		newExp := ""
		if !expires.IsZero() {
			newExp = expires.UTC().Format(time.RFC3339)
		}
		if old == hash && oldExp == newExp {
			return false, nil
		}
		doc[fieldImportedHash] = hash
		if newExp == "" {
			delete(doc, fieldImportedHashExpires)
		} else {
			doc[fieldImportedHashExpires] = newExp
		}
		changed = true
		return true, nil
	})
	if registry.IsKind(err, registry.KindNotFound) {
		return false, nil
	}
	return changed, err
}

// ImportedAccount is an account that still holds an imported hash: it
// has not logged in here since the import.
type ImportedAccount struct {
	Name    string
	Expires time.Time // zero: never (strong kinds); unreadable counts as expired
}

// ImportedAccounts lists the accounts of _users (shared by every registry
// on this CouchDB) that still hold an imported hash, sorted by name. Only
// names and expiries leave this function, never a hash.
func (u *Users) ImportedAccounts(ctx context.Context) ([]ImportedAccount, error) {
	ctx, cancel := u.c.ctx(ctx)
	defer cancel()
	rs := u.db.AllDocs(ctx, kivik.Params(map[string]any{
		"include_docs": true, "startkey": "org.couchdb.user:", "endkey": "org.couchdb.user:\ufff0",
	}))
	defer rs.Close()
	var out []ImportedAccount
	for rs.Next() {
		var d struct {
			Name    string  `json:"name"`
			Deleted bool    `json:"couchnpm_deleted"`
			Hash    string  `json:"couchnpm_imported_hash"`
			Expires *string `json:"couchnpm_imported_hash_expires"`
		}
		if err := rs.ScanDoc(&d); err != nil || d.Deleted || d.Hash == "" {
			continue
		}
		a := ImportedAccount{Name: d.Name}
		if d.Expires != nil {
			t, err := time.Parse(time.RFC3339, *d.Expires)
			if err != nil {
				t = time.Unix(0, 0)
			}
			a.Expires = t
		}
		out = append(out, a)
	}
	if err := rs.Err(); err != nil {
		return nil, translate(err, "list imported accounts")
	}
	return out, nil
}
