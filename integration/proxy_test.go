//go:build integration

package integration

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// faultProxy is a TCP proxy in front of CouchDB. Stop closes the listener and every
// open connection (CouchDB looks down: connections are refused); Start listens again on
// the same address. It works in front of any CouchDB, including an external one.
type faultProxy struct {
	target string // host:port of CouchDB
	addr   string // 127.0.0.1:port, fixed at creation

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// newFaultProxy starts a proxy on a free loopback port forwarding to target (host:port).
func newFaultProxy(target string) (*faultProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &faultProxy{target: target, addr: ln.Addr().String(), conns: map[net.Conn]struct{}{}}
	p.serve(ln)
	return p, nil
}

// URL is the proxy's base URL (http://127.0.0.1:port).
func (p *faultProxy) URL() string { return "http://" + p.addr }

func (p *faultProxy) serve(ln net.Listener) {
	p.ln = ln
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return // listener closed by Stop/Close
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.handle(c)
			}()
		}
	}()
}

func (p *faultProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil { // stopped meanwhile
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *faultProxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *faultProxy) handle(client net.Conn) {
	if !p.track(client) {
		return
	}
	defer p.untrack(client)
	upstream, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return
	}
	if !p.track(upstream) {
		return
	}
	defer p.untrack(upstream)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(upstream, client)
	go pipe(client, upstream)
	<-done
	<-done
}

// Stop closes the listener and every open connection, then waits for the proxy's
// goroutines. Stopping a stopped proxy does nothing.
func (p *faultProxy) Stop() {
	p.mu.Lock()
	ln := p.ln
	p.ln = nil
	if ln != nil {
		ln.Close()
	}
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// Start listens again on the same address. Starting a running proxy does nothing.
func (p *faultProxy) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		return nil
	}
	var ln net.Listener
	var err error
	// The port was just released by Stop; retry briefly in case the kernel lags.
	for i := 0; i < 50; i++ {
		ln, err = net.Listen("tcp", p.addr)
		if err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("fault proxy: listening again on %s: %w", p.addr, err)
	}
	p.serve(ln)
	return nil
}

// Close stops the proxy for good.
func (p *faultProxy) Close() { p.Stop() }

// TestFaultProxy checks the harness itself: requests pass through, Stop makes
// them fail (also on a kept-alive connection), Start restores them on the same port.
func TestFaultProxy(t *testing.T) {
	t.Parallel()
	backend := http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "pong")
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go backend.Serve(ln)
	t.Cleanup(func() { backend.Close() })

	p, err := newFaultProxy(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)

	client := &http.Client{Timeout: 5 * time.Second} // keeps connections alive
	get := func() error {
		resp, err := client.Get(p.URL() + "/")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if string(b) != "pong" {
			return fmt.Errorf("body %q", b)
		}
		return nil
	}
	if err := get(); err != nil {
		t.Fatalf("through the running proxy: %v", err)
	}
	p.Stop()
	if err := get(); err == nil {
		t.Fatal("request succeeded through a stopped proxy")
	}
	if _, err := net.DialTimeout("tcp", p.addr, time.Second); err == nil {
		t.Fatal("a stopped proxy still accepts connections")
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	var lastErr error
	for i := 0; i < 3; i++ { // the client may first try a connection closed by Stop
		if lastErr = get(); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		t.Fatalf("after Start: %v", lastErr)
	}
	p.Stop()
	p.Stop() // idempotent
	if err := get(); err == nil {
		t.Fatal("request succeeded after the second Stop")
	}
}
