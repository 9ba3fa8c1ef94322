package couch

import (
	"context"
	"encoding/json"
	"io"

	kivik "github.com/go-kivik/kivik/v4"

	"github.com/couchnpm/couchnpm/registry"
)

// Docs is plain JSON document access to one database, for the small state
// documents of replication (checkpoints, leases, tarball cache entries).
type Docs struct {
	c  *Client
	db *kivik.DB
}

// Docs returns document access to a database role.
func (c *Client) Docs(role string) *Docs { return &Docs{c: c, db: c.k.DB(c.names[role])} }

// Get reads document id into v and returns its revision; KindNotFound when
// absent.
func (d *Docs) Get(ctx context.Context, id string, v any) (string, error) {
	ctx, cancel := d.c.ctx(ctx)
	defer cancel()
	var raw json.RawMessage
	if err := d.db.Get(ctx, id).ScanDoc(&raw); err != nil {
		return "", translate(err, "read "+id)
	}
	var meta struct {
		Rev string `json:"_rev"`
	}
	if err := json.Unmarshal(raw, &meta); err != nil {
		return "", registry.Wrap(registry.KindInternal, err, "decode %s", id)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return "", registry.Wrap(registry.KindInternal, err, "decode %s", id)
	}
	return meta.Rev, nil
}

// Put writes v (which carries its own _id/_rev or gets rev added) and
// returns the new revision; KindConflict when rev is stale.
func (d *Docs) Put(ctx context.Context, id, rev string, v any) (string, error) {
	ctx, cancel := d.c.ctx(ctx)
	defer cancel()
	b, err := json.Marshal(v)
	if err != nil {
		return "", registry.Wrap(registry.KindInternal, err, "encode %s", id)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return "", registry.Wrap(registry.KindInternal, err, "encode %s", id)
	}
	m["_id"], _ = json.Marshal(id)
	delete(m, "_rev")
	if rev != "" {
		m["_rev"], _ = json.Marshal(rev)
	}
	newRev, err := d.db.Put(ctx, id, m)
	if err != nil {
		return "", translate(err, "write "+id)
	}
	return newRev, nil
}

// Delete removes a document revision.
func (d *Docs) Delete(ctx context.Context, id, rev string) error {
	ctx, cancel := d.c.ctx(ctx)
	defer cancel()
	if _, err := d.db.Delete(ctx, id, rev); err != nil {
		return translate(err, "delete "+id)
	}
	return nil
}

// PutAttachment streams body into attachment file of document id at rev.
// The upload is bounded by ctx, not by the metadata timeout.
func (d *Docs) PutAttachment(ctx context.Context, id, rev, file, contentType string, body io.Reader) (string, error) {
	var opts []kivik.Option
	if rev != "" { // no revision: the attachment creates the document
		opts = append(opts, kivik.Rev(rev))
	}
	newRev, err := d.db.PutAttachment(ctx, id, &kivik.Attachment{
		Filename: file, ContentType: contentType, Content: io.NopCloser(body),
	}, opts...)
	if err != nil {
		return "", translate(err, "store attachment of "+id)
	}
	return newRev, nil
}

// OpenAttachment streams an attachment; the caller closes Body.
func (d *Docs) OpenAttachment(ctx context.Context, id, file string) (*registry.Tarball, error) {
	att, err := d.db.GetAttachment(ctx, id, file)
	if err != nil {
		return nil, translate(err, "read attachment of "+id)
	}
	return &registry.Tarball{Body: att.Content, Size: att.Size, Digest: att.Digest}, nil
}

// Copy duplicates a document with its attachments on the server (HTTP
// COPY): no byte passes through couchnpm. KindConflict when to exists.
func (d *Docs) Copy(ctx context.Context, from, to string) error {
	ctx, cancel := d.c.ctx(ctx)
	defer cancel()
	if _, err := d.db.Copy(ctx, to, from); err != nil {
		return translate(err, "copy "+from)
	}
	return nil
}

// StatAttachment reads an attachment's size and digest without its body.
func (d *Docs) StatAttachment(ctx context.Context, id, file string) (*registry.Tarball, error) {
	ctx, cancel := d.c.ctx(ctx)
	defer cancel()
	att, err := d.db.GetAttachmentMeta(ctx, id, file)
	if err != nil {
		return nil, translate(err, "stat attachment of "+id)
	}
	return &registry.Tarball{Size: att.Size, Digest: att.Digest}, nil
}
