package couch

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	kivik "github.com/go-kivik/kivik/v4"

	"github.com/couchnpm/couchnpm/designdoc"
	"github.com/couchnpm/couchnpm/registry"
)

// minDocumentSize is the max_document_size below which real packuments do
// not fit (the public @types/node document alone is about 9 MB).
const minDocumentSize = 64 << 20

// Bootstrap creates the databases that are missing and installs or upgrades
// the design documents. Several instances may run it at once.
func (c *Client) Bootstrap(ctx context.Context) error {
	for _, name := range append([]string{"_users"}, c.sortedDBNames()...) {
		if err := c.ensureDB(ctx, name); err != nil {
			return err
		}
	}
	for _, d := range designdoc.All() {
		name, ok := c.names[d.DB]
		if !ok {
			return fmt.Errorf("design document %s names unknown database role %q", d.ID, d.DB)
		}
		if err := c.installDesignDoc(ctx, c.k.DB(name), d); err != nil {
			return fmt.Errorf("install %s in %s: %w", d.ID, name, err)
		}
	}
	c.checkDocumentSize(ctx)
	return nil
}

func (c *Client) sortedDBNames() []string {
	out := make([]string, 0, len(c.names))
	for _, role := range []string{RolePackages, RoleMirror, RoleTarballs, RoleTokens, RoleSystem} {
		out = append(out, c.names[role])
	}
	return out
}

func (c *Client) ensureDB(ctx context.Context, name string) error {
	cctx, cancel := c.ctx(ctx)
	defer cancel()
	exists, err := c.k.DBExists(cctx, name)
	if err != nil {
		return fmt.Errorf("check database %s: %w", name, translate(err, "check database"))
	}
	if exists {
		return nil
	}
	err = c.k.CreateDB(cctx, name)
	if registry.IsKind(translate(err, "create"), registry.KindConflict) {
		return nil // another instance created it first
	}
	if err != nil {
		return fmt.Errorf("create database %s: %w", name, translate(err, "create database"))
	}
	c.log.Info().Str("db", name).Msg("created database")
	return nil
}

// installDesignDoc writes d unless the stored copy has the same hash. A
// conflict means another instance wrote in between: read again and compare.
func (c *Client) installDesignDoc(ctx context.Context, db *kivik.DB, d designdoc.Doc) error {
	for attempt := 0; attempt < 5; attempt++ {
		cctx, cancel := c.ctx(ctx)
		var stored struct {
			Rev  string `json:"_rev"`
			Hash string `json:"couchnpm_hash"`
		}
		err := db.Get(cctx, d.ID).ScanDoc(&stored)
		cancel()
		if err != nil && kivik.HTTPStatus(err) != 404 {
			return translate(err, "read design document")
		}
		if stored.Hash == d.Hash {
			c.log.Debug().Str("db", db.Name()).Str("ddoc", d.ID).Msg("design document up to date")
			return nil
		}
		body := make(map[string]any, len(d.Body)+2)
		for k, v := range d.Body {
			body[k] = v
		}
		body["_id"] = d.ID
		if stored.Rev != "" {
			body["_rev"] = stored.Rev
		}
		cctx, cancel = c.ctx(ctx)
		_, err = db.Put(cctx, d.ID, body)
		cancel()
		if err == nil {
			c.log.Info().Str("db", db.Name()).Str("ddoc", d.ID).Str("hash", d.Hash[:12]).
				Bool("upgrade", stored.Rev != "").Msg("installed design document")
			return nil
		}
		if kivik.HTTPStatus(err) != 409 {
			return translate(err, "write design document")
		}
	}
	return errors.New("design document kept changing under concurrent installs")
}

// checkDocumentSize warns when CouchDB would refuse large packuments. Only
// CouchDB exposes its configuration at /_node/_local/_config; other servers
// (PouchDB Server) answer 404 and are skipped.
func (c *Client) checkDocumentSize(ctx context.Context) {
	cctx, cancel := c.ctx(ctx)
	defer cancel()
	v, err := c.k.ConfigValue(cctx, "_local", "couchdb", "max_document_size")
	if err != nil {
		c.log.Debug().Err(err).Msg("cannot read max_document_size; skipping the check")
		return
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err == nil && n < minDocumentSize {
		c.log.Warn().Int64("max_document_size", n).Int64("recommended", minDocumentSize).
			Msg("CouchDB's max_document_size is below 64 MB: large packuments will be refused; raise [couchdb] max_document_size")
	}
}
