//go:build integration

package integration

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"
)

// balancer is a reverse proxy in front of reg that says every request it
// forwards came from client (as a load balancer that saw that client would),
// reached by npm as a registry of its own.
func balancer(t *testing.T, reg *registry, client string) *registry {
	t.Helper()
	target, _ := url.Parse(reg.URL)
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host // dist.tarball keeps the registry's public URL
			pr.Out.Header.Set("X-Forwarded-For", client)
		},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	port := ln.Addr().(*net.TCPAddr).Port
	return &registry{t: t, URL: fmt.Sprintf("http://127.0.0.1:%d", port), Port: port, Prefix: reg.Prefix}
}

// Behind a load balancer named by --trusted-proxies, the login limits count
// each client behind it: a guesser locks out only itself, and the real
// user, another client of the same balancer, logs in with npm. Without the
// setting every client would share the balancer's address and its count.
func TestLoginLimitsBehindTrustedProxy(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t, registryOpts{ExtraArgs: []string{"--trusted-proxies", "127.0.0.1"}})
	name := reg.user("ivo")
	const password = "Ivo-pw-8u7y6t"
	reg.addSecret(password)
	newNPMUser(t, reg, "ivo").mustLogin(name, password, "ivo@example.com")

	guesser, user := balancer(t, reg, "203.0.113.9"), balancer(t, reg, "198.51.100.20")
	counts := map[int]int{}
	for i := 0; i < 30; i++ {
		body := mustJSON(map[string]string{"name": name, "password": fmt.Sprintf("Wrong-guess-%04d", i)})
		req, _ := http.NewRequest("PUT", guesser.URL+"/-/user/org.couchdb.user:"+name, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("guess %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		counts[resp.StatusCode]++
	}
	if counts[429] == 0 || counts[401]+counts[429] != 30 {
		t.Fatalf("30 guesses through the balancer: %v, want 401s, then 429s", counts)
	}
	if res := newNPMUser(t, user, "ivo-2").login(name, password); res.Err != nil {
		t.Fatalf("npm login through the same balancer, from another client, after the guesser was stopped:\n%s", res)
	}
	// The request log names the clients, not the balancer.
	logs := reg.Stderr.String()
	for _, want := range []string{`"remote":"203.0.113.9:0"`, `"remote":"198.51.100.20:0"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("the request log lacks %s", want)
		}
	}
}
