package couch

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
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
}

// GetUser reads an account's public fields.
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
	return &registry.User{Name: d.Name, Email: d.Email}, nil
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
		return translate(err, "create user")
	}
	return nil
}

// CheckPassword asks CouchDB whether the password is right, through the
// documented POST /_session (the only place that knows the hash scheme).
func (u *Users) CheckPassword(ctx context.Context, name, password string) error {
	ctx, cancel := u.c.ctx(ctx)
	defer cancel()
	body, _ := json.Marshal(map[string]string{"name": name, "password": password})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.c.base.String()+"/_session", bytes.NewReader(body))
	if err != nil {
		return registry.Wrap(registry.KindInternal, err, "build session request")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := u.c.http.Do(req)
	if err != nil {
		return translate(err, "check password")
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode == http.StatusUnauthorized:
		return registry.E(registry.KindUnauthorized, "name or password is incorrect")
	default:
		return registry.E(registry.KindUnavailable, "check password: CouchDB answered %d", resp.StatusCode)
	}
}
