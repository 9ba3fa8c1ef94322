package handlers

import (
	"net/http"
	"net/netip"
	"strings"
)

// TrustedProxies are the addresses of the reverse proxies and load
// balancers in front of the registry. A request that comes from one of
// them is taken to be from the client its X-Forwarded-For names; from any
// other address, X-Forwarded-For is ignored (a client could forge it). The
// client address counts in the login limits, the audit log and the request
// log line.
type TrustedProxies []netip.Prefix

// ParseTrustedProxies reads a comma-separated list of addresses and CIDR
// prefixes ("10.0.0.0/8, 192.0.2.7").
func ParseTrustedProxies(s string) (TrustedProxies, error) {
	var out TrustedProxies
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if p, err := netip.ParsePrefix(part); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(part)
		if err != nil || a.Zone() != "" {
			return nil, &proxyListError{part}
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

type proxyListError struct{ part string }

func (e *proxyListError) Error() string {
	return "\"" + e.part + "\" is neither an address nor a CIDR prefix (like 10.0.0.0/8)"
}

func (t TrustedProxies) trusts(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientOf is the client behind peer: peer itself unless it is trusted;
// then, reading the X-Forwarded-For hops from the nearest, the first one
// that is not a trusted proxy (each trusted proxy appends the address it
// was reached from; what lies left of an untrusted hop could be made up by
// the client). A malformed hop ends the walk at the last good one.
func (t TrustedProxies) clientOf(peer netip.Addr, forwarded []string) netip.Addr {
	if !peer.IsValid() || !t.trusts(peer) {
		return peer
	}
	client := peer
	for i := len(forwarded) - 1; i >= 0; i-- {
		hops := strings.Split(forwarded[i], ",")
		for j := len(hops) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(hops[j]))
			if err != nil || a.Zone() != "" {
				return client
			}
			client = a.Unmap()
			if !t.trusts(client) {
				return client
			}
		}
	}
	return client
}

// fromTrustedProxies sets each request's RemoteAddr to its client's
// address (port 0: the client's port is not known) when it came through a
// trusted proxy. Outermost in the chain, so that every later step sees the
// client.
func fromTrustedProxies(t TrustedProxies, next http.Handler) http.Handler {
	if len(t) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer := remoteAddr(r)
		if client := t.clientOf(peer, r.Header.Values("X-Forwarded-For")); client != peer {
			r2 := *r
			r2.RemoteAddr = netip.AddrPortFrom(client, 0).String()
			r = &r2
		}
		next.ServeHTTP(w, r)
	})
}
