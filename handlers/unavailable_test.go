package handlers

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/couch"
	"github.com/couchnpm/couchnpm/registry"
)

// TestUnavailableHidesCouchAddress: when CouchDB cannot be reached, every
// 503 tells the client the database is unavailable, never where it lives;
// the log line keeps the address for the operator.
func TestUnavailableHidesCouchAddress(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String() // nothing listens there once closed
	l.Close()
	c, err := couch.Open(couch.Config{URL: "http://" + addr, User: "svc", Password: "pw", Timeout: 2 * time.Second}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	down := c.Ping(context.Background())
	if !registry.IsKind(down, registry.KindUnavailable) || !strings.Contains(down.Error(), addr) {
		t.Fatalf("the real translation changed: %v", down)
	}

	e := newEnv(t, zerolog.InfoLevel)
	e.pinger.err = down
	e.reg.err = down
	for _, path := range []string{"/-/ping", "/foo", "/foo/1.0.0", "/foo/-/foo-1.0.0.tgz", "/@s%2fp"} {
		t.Run(path, func(t *testing.T) {
			before := e.logs.String()
			rec := e.do(t, "GET", path, nil)
			wantStatus(t, rec, http.StatusServiceUnavailable)
			body := rec.Body.String()
			if strings.Contains(body, addr) || strings.Contains(body, "127.0.0.1") || strings.Contains(body, "CouchDB at") {
				t.Errorf("the answer names CouchDB's address: %s", body)
			}
			m := decodeJSON(t, rec)
			if msg, _ := m["error"].(string); !strings.Contains(msg, "the registry's database is unavailable; retry later") {
				t.Errorf("error = %q, want a plain unavailable message", msg)
			}
			if logged := strings.TrimPrefix(e.logs.String(), before); !strings.Contains(logged, "cannot reach CouchDB at http://"+addr) {
				t.Errorf("the log line lost the address: %s", logged)
			}
		})
	}
}
