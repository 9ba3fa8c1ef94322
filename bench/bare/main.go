// Command bare is the benchmark's limit column: a plain net/http server that
// answers from memory with bytes couchnpm produced (pre-gzipped abbreviated
// packuments, tarballs), with no registry work at all. What couchnpm does on
// a warm hit beyond writing those bytes is the gap between the two columns.
//
//	bare -listen 127.0.0.1:0 -dir DIR
//
// DIR holds manifest.json (written by bench/driver): a list of
// {path, corgi, file, content_type, content_encoding, etag}; file is read
// into memory at start. A request matches an entry by path and by whether
// its Accept header asks for the abbreviated packument. If-None-Match equal
// to the entry's ETag gets a 304. The listening address is printed on the
// first line of stdout once the server accepts connections.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

type entry struct {
	Path            string `json:"path"`
	Corgi           bool   `json:"corgi"`
	File            string `json:"file"`
	ContentType     string `json:"content_type"`
	ContentEncoding string `json:"content_encoding"`
	ETag            string `json:"etag"`

	body   []byte
	length string
}

type key struct {
	path  string
	corgi bool
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	dir := flag.String("dir", "", "folder holding manifest.json and the bodies")
	flag.Parse()
	routes, err := load(*dir)
	if err != nil {
		log.Fatalf("bare: %v", err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("bare: %v", err)
	}
	fmt.Println(ln.Addr().String())
	srv := &http.Server{
		Handler:           handler(routes),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	log.Fatal(srv.Serve(ln))
}

func load(dir string) (map[key]*entry, error) {
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return nil, err
	}
	var list []*entry
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("manifest.json: %w", err)
	}
	routes := make(map[key]*entry, len(list))
	for _, e := range list {
		e.body, err = os.ReadFile(filepath.Join(dir, filepath.Base(e.File)))
		if err != nil {
			return nil, err
		}
		e.length = strconv.Itoa(len(e.body))
		routes[key{e.Path, e.Corgi}] = e
	}
	return routes, nil
}

// handler does what any static server does on a hit: one map lookup, the
// headers, a 304 check and one write.
func handler(routes map[key]*entry) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		corgi := strings.Contains(r.Header.Get("Accept"), "application/vnd.npm.install-v1+json")
		e := routes[key{r.URL.EscapedPath(), corgi}]
		if e == nil {
			e = routes[key{r.URL.EscapedPath(), !corgi}]
		}
		if e == nil || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
			return
		}
		h := w.Header()
		if e.ETag != "" {
			h["Etag"] = []string{e.ETag}
			if r.Header.Get("If-None-Match") == e.ETag {
				w.WriteHeader(http.StatusNotModified)
				return
			}
		}
		h["Content-Type"] = []string{e.ContentType}
		if e.ContentEncoding != "" {
			h["Content-Encoding"] = []string{e.ContentEncoding}
		}
		h["Content-Length"] = []string{e.length}
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(e.body)
	})
}
