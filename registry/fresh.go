package registry

import "context"

type freshKey struct{}

// WithFreshRead marks reads made under ctx as reads that precede a write:
// a caching store must confirm them against CouchDB (a revision check)
// rather than trust its invalidation feed, so that the revision a writer
// sends back is current even when the last change went through another
// instance.
func WithFreshRead(ctx context.Context) context.Context {
	return context.WithValue(ctx, freshKey{}, true)
}

// FreshRead reports whether ctx asks for fresh reads.
func FreshRead(ctx context.Context) bool {
	v, _ := ctx.Value(freshKey{}).(bool)
	return v
}
