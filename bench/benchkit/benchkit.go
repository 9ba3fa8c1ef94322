// Package benchkit is the setup the bench/ programs share: the flags that
// name the couchnpm binary and its store, admin HTTP calls to a CouchDB
// (or PouchDB Server), a couchnpm process of their own, and loading the
// fake upstream's packuments into a database by _bulk_docs.
package benchkit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/couchnpm/couchnpm/bench/upstream"
)

// Flags are the flags every bench program takes.
type Flags struct {
	Bin   string
	Store Store
	Label string
}

// RegisterFlags adds -bin, -couchdb, -user, -password and -label to the
// command line flags.
func RegisterFlags() *Flags {
	f := &Flags{}
	flag.StringVar(&f.Bin, "bin", "", "couchnpm binary")
	flag.StringVar(&f.Store.URL, "couchdb", "http://127.0.0.1:5984", "CouchDB base URL (couchnpm's store)")
	flag.StringVar(&f.Store.User, "user", "admin", "CouchDB admin user")
	flag.StringVar(&f.Store.Password, "password", "admin", "CouchDB admin password")
	flag.StringVar(&f.Label, "label", "CouchDB 3.5", "store label in the report")
	return f
}

// Check fails the program when a required flag is missing.
func (f *Flags) Check(prog string) {
	if f.Bin == "" {
		Fail(prog, errors.New("-bin is required"))
	}
}

// Store is a CouchDB server reached with admin credentials.
type Store struct {
	URL, User, Password string
}

var client = &http.Client{Timeout: 5 * time.Minute}

// Do sends a JSON request to path (below the server's URL, e.g.
// "/db/_bulk_docs") and decodes a 2xx answer into v (when not nil). A
// json.RawMessage body is sent as is.
func (s Store) Do(method, path string, body, v any) error {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case json.RawMessage:
		rd = bytes.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(enc)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	target := strings.TrimRight(s.URL, "/") + path
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(s.User, s.Password)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if v != nil {
		return json.NewDecoder(resp.Body).Decode(v)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return nil
}

// Get decodes the JSON answer to GET path into v.
func (s Store) Get(path string, v any) error { return s.Do(http.MethodGet, path, nil, v) }

// DropDBs deletes the database named prefix and every one named prefix-….
func (s Store) DropDBs(prefix string) {
	var all []string
	if s.Get("/_all_dbs", &all) != nil {
		return
	}
	for _, db := range all {
		if db == prefix || strings.HasPrefix(db, prefix+"-") {
			_ = s.Do(http.MethodDelete, "/"+db, nil, nil)
		}
	}
}

// BulkLoad writes every packument of up into db (which must exist) by
// _bulk_docs, perRequest documents a request, parallel requests at once,
// without their _rev (new documents), and returns how long it took.
func BulkLoad(s Store, db string, up *upstream.Server, perRequest, parallel int) (time.Duration, error) {
	names := up.Names()
	batches := make(chan []string)
	errs := make(chan error, parallel)
	var wg sync.WaitGroup
	start := time.Now()
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for batch := range batches {
				body, err := bulkBody(up, batch)
				if err == nil {
					err = s.Do(http.MethodPost, "/"+db+"/_bulk_docs", body, nil)
				}
				if err != nil {
					errs <- err
					for range batches { // drain: the others stop too
					}
					return
				}
			}
		}()
	}
	for i := 0; i < len(names); i += perRequest {
		batches <- names[i:min(i+perRequest, len(names))]
	}
	close(batches)
	wg.Wait()
	close(errs)
	took := time.Since(start)
	if err, ok := <-errs; ok {
		return took, err
	}
	return took, nil
}

// bulkBody is the _bulk_docs body of the named packuments, without _rev.
func bulkBody(up *upstream.Server, names []string) (json.RawMessage, error) {
	var buf bytes.Buffer
	buf.WriteString(`{"docs":[`)
	for i, n := range names {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(up.Doc(n), &m); err != nil {
			return nil, fmt.Errorf("packument %s: %w", n, err)
		}
		delete(m, "_rev")
		b, err := json.Marshal(m)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(b)
	}
	buf.WriteString(`]}`)
	return buf.Bytes(), nil
}

// Couchnpm is a couchnpm serve process of a bench program's own, on a free
// port of 127.0.0.1, with its own --db-prefix.
type Couchnpm struct {
	Bin    string
	Store  Store
	Prefix string
	Extra  []string // more arguments after the ones Start is given

	Addr    string    // host:port it listens on
	Started time.Time // when the process was started
	cmd     *exec.Cmd
	exited  chan struct{}
}

// Start starts couchnpm serve with args; it does not wait for it to answer.
func (c *Couchnpm) Start(args []string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	c.Addr = ln.Addr().String()
	ln.Close()
	all := append([]string{"serve", "--listen", c.Addr, "--db-prefix", c.Prefix, "--log-level", "warn", "--instance-id", "bench"}, args...)
	all = append(all, c.Extra...)
	c.cmd = exec.Command(c.Bin, all...)
	c.cmd.Env = append(os.Environ(), "COUCHDB_URL="+c.Store.URL, "COUCHDB_USER="+c.Store.User, "COUCHDB_PASSWORD="+c.Store.Password)
	c.cmd.Stdout, c.cmd.Stderr = os.Stderr, os.Stderr
	c.Started = time.Now()
	if err := c.cmd.Start(); err != nil {
		c.cmd = nil
		return err
	}
	c.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) { _ = cmd.Wait(); close(exited) }(c.cmd, c.exited)
	return nil
}

// URL is the base URL couchnpm answers on.
func (c *Couchnpm) URL() string { return "http://" + c.Addr }

// Exited tells whether the process has ended.
func (c *Couchnpm) Exited() bool {
	select {
	case <-c.exited:
		return true
	default:
		return false
	}
}

// WaitReady waits up to limit for /-/ping to answer.
func (c *Couchnpm) WaitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(c.URL() + "/-/ping"); err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-c.exited:
			return errors.New("couchnpm exited")
		case <-time.After(100 * time.Millisecond):
		}
	}
	return errors.New("couchnpm did not answer")
}

// Stop ends the process (SIGTERM, then SIGKILL after 20 s); a no-op when
// it is not running.
func (c *Couchnpm) Stop() {
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(20 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
	c.cmd = nil
}

// Drop deletes the instance's databases.
func (c *Couchnpm) Drop() { c.Store.DropDBs(c.Prefix) }

// Fail prints err prefixed with the program's name and exits 1.
func Fail(prog string, err error) {
	fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
	os.Exit(1)
}
