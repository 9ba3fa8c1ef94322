package registry

import (
	"context"
	"net/netip"
)

type clientAddrKey struct{}

// WithClientAddr records the address of the client a request comes from
// (the connection's, never a header a client could forge). It rides in
// the context, not in each password-checking call, because only the
// storage's password check uses it: CouchDB counts failed logins per
// (client address, user) and locks the pair out, and without the client's
// address every client would share couchnpm's own (see couch.Users).
func WithClientAddr(ctx context.Context, addr netip.Addr) context.Context {
	if !addr.IsValid() {
		return ctx
	}
	return context.WithValue(ctx, clientAddrKey{}, addr.Unmap())
}

// ClientAddr is the address WithClientAddr recorded.
func ClientAddr(ctx context.Context) (netip.Addr, bool) {
	a, ok := ctx.Value(clientAddrKey{}).(netip.Addr)
	return a, ok
}
