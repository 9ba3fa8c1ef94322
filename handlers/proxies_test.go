package handlers

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func TestParseTrustedProxies(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "", want: "[]"},
		{in: " 10.0.0.0/8 , 192.0.2.7,, 2001:db8::/32", want: "[10.0.0.0/8 192.0.2.7/32 2001:db8::/32]"},
		{in: "10.1.2.3/8", want: "[10.0.0.0/8]"},         // masked
		{in: "::ffff:192.0.2.7", want: "[192.0.2.7/32]"}, // unmapped
		{in: "proxy.internal", err: `"proxy.internal" is neither an address nor a CIDR prefix (like 10.0.0.0/8)`},
		{in: "10.0.0.0/33", err: `"10.0.0.0/33" is neither an address nor a CIDR prefix (like 10.0.0.0/8)`},
		{in: "fe80::1%eth0", err: `"fe80::1%eth0" is neither an address nor a CIDR prefix (like 10.0.0.0/8)`},
	} {
		got, err := ParseTrustedProxies(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%q: error %v, want %s", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || fmt.Sprint([]netip.Prefix(got)) != tc.want {
			t.Errorf("%q: %v %v, want %s", tc.in, got, err, tc.want)
		}
	}
}

func TestClientOfTrustedProxies(t *testing.T) {
	trusted, err := ParseTrustedProxies("10.0.0.0/8, 2001:db8:ff::/48")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{name: "no proxy: the header is ignored", peer: "192.0.2.1", xff: []string{"203.0.113.9"}, want: "192.0.2.1"},
		{name: "trusted proxy: the client it saw", peer: "10.0.0.5", xff: []string{"203.0.113.9"}, want: "203.0.113.9"},
		{name: "a forged hop left of the real one is ignored", peer: "10.0.0.5", xff: []string{"1.2.3.4, 203.0.113.9"}, want: "203.0.113.9"},
		{name: "two trusted proxies", peer: "10.0.0.5", xff: []string{"203.0.113.9, 10.9.9.9"}, want: "203.0.113.9"},
		{name: "several headers are one list", peer: "10.0.0.5", xff: []string{"1.2.3.4", "203.0.113.9", "10.9.9.9"}, want: "203.0.113.9"},
		{name: "only trusted hops: the farthest", peer: "10.0.0.5", xff: []string{"10.1.1.1, 10.2.2.2"}, want: "10.1.1.1"},
		{name: "no header: the proxy", peer: "10.0.0.5", want: "10.0.0.5"},
		{name: "a malformed hop stops the walk", peer: "10.0.0.5", xff: []string{"203.0.113.9, garbage"}, want: "10.0.0.5"},
		{name: "a malformed hop beyond the client is not reached", peer: "10.0.0.5", xff: []string{"garbage, 203.0.113.9"}, want: "203.0.113.9"},
		{name: "IPv6 proxy and client", peer: "2001:db8:ff::1", xff: []string{"2001:db8:1::7"}, want: "2001:db8:1::7"},
		{name: "a mapped client is unmapped", peer: "10.0.0.5", xff: []string{"::ffff:203.0.113.9"}, want: "203.0.113.9"},
	} {
		got := trusted.clientOf(netip.MustParseAddr(tc.peer), tc.xff)
		if got.String() != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

// Behind a trusted load balancer, the login limits count each client on
// its own: one client's guesses do not lock the others out. From any other
// address, X-Forwarded-For changes nothing: a guesser cannot escape its
// count by inventing addresses.
func TestLoginLimitBehindTrustedProxy(t *testing.T) {
	trusted, _ := ParseTrustedProxies("10.0.0.0/8")
	e := newLimitEnv(t, LoginLimit{PerAddr: 3}, func(c *Config) { c.TrustedProxies = trusted })
	whoami := func(user, pass, peer, xff string) *httptest.ResponseRecorder {
		req := httpRequest(t, "GET", "/-/whoami")
		req.RemoteAddr = peer
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		req.Header.Set("Authorization", basicAuth(user, pass))
		return serve(e.env, req)
	}
	for i := 0; i < 3; i++ {
		wantStatus(t, whoami(fmt.Sprintf("user%d", i), "guess", "10.0.0.5:4000", "203.0.113.9"), http.StatusUnauthorized)
	}
	want429(t, whoami("user9", "guess", "10.0.0.5:4000", "203.0.113.9"), 300)
	// Another client through the same balancer logs in.
	wantStatus(t, whoami("alice", "secret", "10.0.0.5:4000", "198.51.100.20"), http.StatusOK)
	// A direct guesser's made-up X-Forwarded-For is ignored.
	for i := 0; i < 3; i++ {
		wantStatus(t, whoami(fmt.Sprintf("user%d", i), "guess", addrA, fmt.Sprintf("198.51.100.%d", 100+i)), http.StatusUnauthorized)
	}
	want429(t, whoami("alice", "secret", addrA, "198.51.100.200"), 300)
	// The request line names the client.
	if !strings.Contains(e.logs.String(), `"remote":"203.0.113.9:0"`) {
		t.Errorf("the request log does not name the client behind the proxy:\n%s", e.logs.String())
	}
}
