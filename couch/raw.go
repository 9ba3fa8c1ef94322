package couch

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"

	"github.com/go-kivik/kivik/v4/couchdb/chttp"

	"github.com/couchnpm/couchnpm/registry"
)

// rawRequest is a request to CouchDB that kivik cannot make as couchnpm
// needs it (a status kivik hides, such as 202; a continuous feed read line
// by line; a header of ours; a login that is not the service's).
type rawRequest struct {
	method string
	path   string // escaped, from the server's root: "/_session", "/db/doc%2Fid"
	query  string // encoded
	body   []byte // JSON; nil for none
	op     string // what the call does, for messages: "write package foo"
	// accept says which statuses the caller reads itself; any other is
	// translated into an error. nil: the 2xx statuses.
	accept func(status int) bool
	// header is added to the request (X-Forwarded-For).
	header http.Header
	// asUser leaves out the service's credentials (POST /_session checks
	// a user's own).
	asUser bool
	// stream leaves out the client's timeout: the caller bounds the call
	// (a changes feed lasts as long as it is read).
	stream bool
}

// anyStatus accepts every answer: the caller tells the servers apart by
// status (PouchDB Server lacks some endpoints).
func anyStatus(int) bool { return true }

// do sends rq. It is the one place that builds a raw request to CouchDB:
// the caller's context bounded by the client's timeout (until the body is
// closed), the service's credentials, JSON, no compression (a gzipped feed
// holds heartbeats back in the server's compressor, and tarballs do not
// shrink), and every failure and unexpected status through translate. The
// caller closes the body.
func (c *Client) do(ctx context.Context, rq rawRequest) (*http.Response, error) {
	u := *c.base
	u.RawPath = u.EscapedPath() + rq.path
	p, err := url.PathUnescape(u.RawPath)
	if err != nil {
		return nil, registry.Wrap(registry.KindInvalid, err, "%s: bad path", rq.op)
	}
	u.Path = p
	u.RawQuery = rq.query
	cancel := context.CancelFunc(func() {})
	if !rq.stream {
		ctx, cancel = c.ctx(ctx)
	}
	var body io.Reader
	if rq.body != nil {
		body = bytes.NewReader(rq.body)
	}
	req, err := http.NewRequestWithContext(ctx, rq.method, u.String(), body)
	if err != nil {
		cancel()
		return nil, registry.Wrap(registry.KindInternal, err, "%s: build the request", rq.op)
	}
	for k, vs := range rq.header {
		req.Header[k] = vs
	}
	req.Header.Set("Accept", "application/json")
	if rq.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept-Encoding", "identity")
	if c.user != "" && !rq.asUser {
		req.SetBasicAuth(c.user, c.password)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		cancel()
		return nil, translate(err, rq.op)
	}
	accept := rq.accept
	if accept == nil {
		accept = func(status int) bool { return status >= 200 && status < 300 }
	}
	if !accept(resp.StatusCode) {
		defer cancel()
		// CouchDB's {"error","reason"} read as kivik reads it, so that
		// translate sees raw and kivik answers alike.
		err := chttp.ResponseError(resp)
		if err == nil { // a 1xx or 3xx the caller did not expect
			resp.Body.Close()
			return nil, registry.E(registry.KindUnavailable, "%s: CouchDB answered %d", rq.op, resp.StatusCode)
		}
		return nil, translate(err, rq.op)
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// cancelOnClose releases a request's timeout once its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// dbPath is the escaped path of a document (or endpoint) in db.
func dbPath(db string, rest string) string {
	return "/" + url.PathEscape(db) + rest
}
