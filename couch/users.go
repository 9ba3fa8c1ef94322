package couch

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"time"

	kivik "github.com/go-kivik/kivik/v4"

	"github.com/couchnpm/couchnpm/registry"
)

// Users keeps accounts in CouchDB's _users database, where CouchDB hashes the
// passwords itself. It implements registry.UserStore.
type Users struct {
	c  *Client
	db *kivik.DB
}

// Users returns the account store.
func (c *Client) Users() *Users { return &Users{c: c, db: c.k.DB("_users")} }

func userDocID(name string) string { return "org.couchdb.user:" + name }

type userDoc struct {
	ID       string   `json:"_id"`
	Name     string   `json:"name"`
	Type     string   `json:"type"`
	Roles    []string `json:"roles"`
	Password string   `json:"password,omitempty"`
	Email    string   `json:"email,omitempty"`
	Date     string   `json:"date,omitempty"`
	// Set by the operators' commands (couchnpm user disable|delete). A
	// deleted account keeps its document, without credentials, so that
	// its name is never signed up again.
	Disabled bool `json:"couchnpm_disabled,omitempty"`
	Deleted  bool `json:"couchnpm_deleted,omitempty"`
	// Two-factor authentication (npm profile enable-2fa). _users is
	// readable by admins and by the account itself only.
	TwoFactor *twoFactorDoc `json:"couchnpm_tfa,omitempty"`
}

// twoFactorDoc is registry.TwoFactor as stored.
type twoFactorDoc struct {
	Mode     string   `json:"mode"`
	Pending  bool     `json:"pending,omitempty"`
	Secret   string   `json:"secret"`
	Recovery []string `json:"recovery_sha256,omitempty"`
	LastStep int64    `json:"last_step,omitempty"`
	LastBy   string   `json:"last_by,omitempty"`
}

func (t *twoFactorDoc) model() *registry.TwoFactor {
	if t == nil || t.Mode == "" {
		return nil
	}
	return &registry.TwoFactor{Mode: t.Mode, Pending: t.Pending, Secret: t.Secret,
		Recovery: t.Recovery, LastStep: t.LastStep, LastBy: t.LastBy}
}

func twoFactorDocOf(t *registry.TwoFactor) *twoFactorDoc {
	if t == nil {
		return nil
	}
	return &twoFactorDoc{Mode: t.Mode, Pending: t.Pending, Secret: t.Secret,
		Recovery: t.Recovery, LastStep: t.LastStep, LastBy: t.LastBy}
}

func (d *userDoc) user() *registry.User {
	u := &registry.User{Name: d.Name, Email: d.Email, Disabled: d.Disabled, TwoFactor: d.TwoFactor.model()}
	if t, err := time.Parse(time.RFC3339, d.Date); err == nil {
		u.Created = t
	}
	return u
}

// GetUser reads an account's public fields; a deleted account is
// KindNotFound.
func (u *Users) GetUser(ctx context.Context, name string) (*registry.User, error) {
	ctx, cancel := u.c.ctx(ctx)
	defer cancel()
	var d userDoc
	if err := u.db.Get(ctx, userDocID(name)).ScanDoc(&d); err != nil {
		err = translate(err, "read user")
		if registry.IsKind(err, registry.KindNotFound) {
			return nil, registry.E(registry.KindNotFound, "no user %q", name)
		}
		return nil, err
	}
	if d.Deleted {
		return nil, registry.E(registry.KindNotFound, "no user %q", name)
	}
	return d.user(), nil
}

// SetUserDisabled implements registry.UserAdminStore. The document is
// rewritten whole, with its password hash, as read.
func (u *Users) SetUserDisabled(ctx context.Context, name string, disabled bool) error {
	return u.update(ctx, name, func(doc map[string]any) {
		if disabled {
			doc["couchnpm_disabled"] = true
		} else {
			delete(doc, "couchnpm_disabled")
		}
	})
}

// SetPassword implements registry.UserAdminStore: CouchDB hashes the
// password itself when the document is written; an imported hash (and its
// expiry) goes, so the old password no longer logs in through it.
func (u *Users) SetPassword(ctx context.Context, name, password string) (bool, error) {
	dropped := false
	err := u.update(ctx, name, func(doc map[string]any) {
		_, dropped = doc[fieldImportedHash]
		delete(doc, fieldImportedHash)
		delete(doc, fieldImportedHashExpires)
		doc["password"] = password
	})
	return dropped, err
}

// DeleteUser implements registry.UserAdminStore: the document keeps only
// the name (no password hash, no e-mail), marked deleted and disabled.
func (u *Users) DeleteUser(ctx context.Context, name string) error {
	return u.update(ctx, name, func(doc map[string]any) {
		for k := range doc {
			if k != "_id" && k != "_rev" {
				delete(doc, k)
			}
		}
		doc["name"], doc["type"], doc["roles"] = name, "user", []string{}
		doc["couchnpm_deleted"], doc["couchnpm_disabled"] = true, true
		doc["date"] = time.Now().UTC().Format(time.RFC3339)
	})
}

// UpdateTwoFactor implements registry.UserStore. The read-check-write runs
// on the document's revision: of two concurrent uses of one code, CouchDB
// lets one write win and the other reads again and sees the code used.
func (u *Users) UpdateTwoFactor(ctx context.Context, name string, change registry.TwoFactorChange) error {
	return u.updateOrSkip(ctx, name, func(doc map[string]any) (bool, error) {
		var cur *twoFactorDoc
		if raw, ok := doc["couchnpm_tfa"]; ok {
			b, _ := json.Marshal(raw)
			if err := json.Unmarshal(b, &cur); err != nil {
				return false, registry.Wrap(registry.KindInternal, err, "the two-factor record of %q is unreadable", name)
			}
		}
		model := cur.model()
		next, err := change(model)
		if err != nil {
			return false, err
		}
		if next == model && next != nil {
			return false, nil // unchanged
		}
		if next == nil {
			if _, ok := doc["couchnpm_tfa"]; !ok {
				return false, nil
			}
			delete(doc, "couchnpm_tfa")
			return true, nil
		}
		doc["couchnpm_tfa"] = twoFactorDocOf(next)
		return true, nil
	})
}

// update reads an account's document, changes it and writes it back,
// again on a conflict (a login does not write it, so conflicts are rare).
func (u *Users) update(ctx context.Context, name string, change func(map[string]any)) error {
	return u.updateOrSkip(ctx, name, func(doc map[string]any) (bool, error) {
		change(doc)
		return true, nil
	})
}

// updateOrSkip is update whose change may decline to write (false) or
// fail; it runs again on each attempt, with the document read afresh.
func (u *Users) updateOrSkip(ctx context.Context, name string, change func(map[string]any) (bool, error)) error {
	for attempt := 0; ; attempt++ {
		cctx, cancel := u.c.ctx(ctx)
		doc := map[string]any{}
		err := u.db.Get(cctx, userDocID(name)).ScanDoc(&doc)
		if err == nil && doc["couchnpm_deleted"] == true {
			err = registry.E(registry.KindNotFound, "no user %q", name)
		} else if err != nil {
			err = translate(err, "read user")
			if registry.IsKind(err, registry.KindNotFound) {
				err = registry.E(registry.KindNotFound, "no user %q", name)
			}
		}
		if err == nil {
			var write bool
			write, err = change(doc)
			if err == nil && write {
				_, err = u.db.Put(cctx, userDocID(name), doc)
				err = translate(err, "update user")
			}
		}
		cancel()
		if err == nil || !registry.IsKind(err, registry.KindConflict) || attempt == 4 {
			return err
		}
	}
}

// ListUsers implements registry.UserAdminStore: every account in _users
// (which all registries on this CouchDB share), deleted ones left out.
func (u *Users) ListUsers(ctx context.Context) ([]*registry.User, error) {
	ctx, cancel := u.c.ctx(ctx)
	defer cancel()
	rs := u.db.AllDocs(ctx, kivik.Params(map[string]any{
		"include_docs": true, "startkey": "org.couchdb.user:", "endkey": "org.couchdb.user:\ufff0",
	}))
	defer rs.Close()
	var out []*registry.User
	for rs.Next() {
		var d userDoc
		if err := rs.ScanDoc(&d); err != nil || d.Deleted || d.Type != "user" {
			continue
		}
		out = append(out, d.user())
	}
	if err := rs.Err(); err != nil {
		return nil, translate(err, "list users")
	}
	return out, nil
}

// CreateUser adds an account; CouchDB replaces the password with its hash.
func (u *Users) CreateUser(ctx context.Context, name, password, email string) error {
	ctx, cancel := u.c.ctx(ctx)
	defer cancel()
	d := userDoc{
		ID: userDocID(name), Name: name, Type: "user", Roles: []string{},
		Password: password, Email: email, Date: time.Now().UTC().Format(time.RFC3339),
	}
	if _, err := u.db.Put(ctx, d.ID, d); err != nil {
		err = translate(err, "create user")
		if registry.IsKind(err, registry.KindConflict) {
			return registry.Wrap(registry.KindConflict, err, "the user name %q is taken", name)
		}
		return err
	}
	return nil
}

// CheckPassword asks CouchDB whether the password is right, through the
// documented POST /_session (the only place that knows the hash scheme).
//
// CouchDB 3.4+ locks a (client address, user) pair out for five minutes
// after five failures ([chttpd_auth_lockout], on by default). Here the
// client is couchnpm, so a stranger's guesses would lock the user out for
// everyone. CouchDB (mochiweb) takes the client from X-Forwarded-For when
// the connection comes from 127.0.0.1 or 10.0.0.0/8 (newer mochiweb: also
// 172.16.0.0/12 and 192.168.0.0/16), so the caller's address
// (from) is sent along: the lockout then only stops the
// guessing address, as couchnpm's own limits do. From other addresses
// CouchDB ignores the header; there, turn its lockout off
// (deploy/couchdb.ini) and let couchnpm's limits work.
func (u *Users) CheckPassword(ctx context.Context, name, password string, from netip.Addr) error {
	body, _ := json.Marshal(map[string]string{"name": name, "password": password})
	hdr := http.Header{}
	if from.IsValid() {
		hdr.Set("X-Forwarded-For", from.Unmap().String())
	}
	resp, err := u.c.do(ctx, rawRequest{
		method: http.MethodPost, path: "/_session", body: body, header: hdr, asUser: true, op: "check password",
		accept: func(status int) bool {
			return status == http.StatusOK || status == http.StatusUnauthorized || status == http.StatusForbidden
		},
	})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode == http.StatusForbidden:
		// CouchDB's lockout (the only 403 of POST /_session).
		u.c.log.Warn().Str("user", name).Msg("CouchDB refuses this user's logins after repeated failures (its chttpd_auth_lockout); see deploy/couchdb.ini")
		return registry.E(registry.KindTooManyRequests, "too many failed login attempts for this account; try again in a few minutes")
	default: // 401: accept lets no other status through
		return registry.E(registry.KindUnauthorized, "name or password is incorrect")
	}
}
