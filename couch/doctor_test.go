package couch

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/registry"
)

// serve answers every request with h, as CouchDB would.
func serve(t *testing.T, h http.HandlerFunc) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := Open(Config{URL: srv.URL, User: "admin", Password: "pw", Prefix: "reg", Timeout: 300 * time.Millisecond}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func answer(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

func TestServerInfo(t *testing.T) {
	date := time.Date(2026, 12, 2, 7, 0, 0, 0, time.UTC)
	tests := []struct {
		name, body string
		date       string
		want       ServerInfo
	}{
		{name: "Apache CouchDB", body: `{"couchdb":"Welcome","version":"3.5.0","vendor":{"name":"The Apache Software Foundation"}}`,
			date: date.Format(http.TimeFormat), want: ServerInfo{Vendor: "Apache CouchDB", Version: "3.5.0", Date: date}},
		{name: "a vendor's CouchDB", body: `{"couchdb":"Welcome","version":"3.3.3","vendor":{"name":"Acme Cloud"}}`,
			want: ServerInfo{Vendor: "CouchDB (Acme Cloud)", Version: "3.3.3"}},
		{name: "PouchDB Server", body: `{"express-pouchdb":"Welcome!","version":"4.2.0","vendor":{"name":"PouchDB authors","version":"4.2.0"}}`,
			want: ServerInfo{Vendor: "PouchDB Server", Version: "4.2.0", PouchDB: true}},
		{name: "something else", body: `{"welcome":"hi","version":"1"}`, want: ServerInfo{Vendor: "an unknown server", Version: "1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := serve(t, func(w http.ResponseWriter, r *http.Request) {
				if tc.date != "" {
					w.Header().Set("Date", tc.date)
				} else {
					w.Header()["Date"] = nil
				}
				answer(w, 200, tc.body)
			})
			got, err := c.ServerInfo(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if got.Sent.IsZero() || got.Received.Before(got.Sent) {
				t.Errorf("sent %v, received %v", got.Sent, got.Received)
			}
			got.Sent, got.Received = time.Time{}, time.Time{}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestSizeLimits(t *testing.T) {
	tests := []struct {
		name             string
		couchdb, chttpd  string
		status           int // of the config requests; 0: 200
		want             SizeLimits
		wantKind         registry.Kind
		wantWorkarounds  int64
		wantErrSubstring string
	}{
		{name: "set", couchdb: `{"max_document_size":"134217728","max_attachment_size":"infinity"}`, chttpd: `{"max_http_request_size":"536870912"}`,
			want: SizeLimits{Available: true, MaxDocumentSize: 128 << 20, MaxHTTPRequestSize: 512 << 20}},
		{name: "unset: CouchDB's defaults", couchdb: `{"uuid":"x"}`, chttpd: `{}`,
			want: SizeLimits{Available: true, MaxDocumentSize: 8000000, MaxHTTPRequestSize: 4294967296, Defaults: []string{"max_document_size", "max_http_request_size"}}},
		{name: "an attachment bound", couchdb: `{"max_document_size":"8000000","max_attachment_size":"1048576"}`, chttpd: `{"max_http_request_size":"4294967296"}`,
			want: SizeLimits{Available: true, MaxDocumentSize: 8000000, MaxAttachmentSize: 1 << 20, MaxHTTPRequestSize: 4294967296}},
		{name: "not a number", couchdb: `{"max_document_size":"lots"}`, chttpd: `{}`, wantKind: registry.KindInvalid, wantErrSubstring: `max_document_size = "lots"`},
		{name: "PouchDB Server has none", status: 404, want: SizeLimits{}, wantWorkarounds: 1},
		{name: "not an admin", status: 401, wantKind: registry.KindForbidden, wantErrSubstring: "not a server admin"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := serve(t, func(w http.ResponseWriter, r *http.Request) {
				switch {
				case tc.status == 404:
					answer(w, 404, `{"error":"not_found","reason":"no_db_file"}`)
				case tc.status == 401:
					answer(w, 401, `{"error":"unauthorized","reason":"You are not a server admin."}`)
				case r.URL.Path == "/_node/_local/_config/couchdb":
					answer(w, 200, tc.couchdb)
				case r.URL.Path == "/_node/_local/_config/chttpd":
					answer(w, 200, tc.chttpd)
				default:
					answer(w, 404, `{"error":"not_found","reason":"missing"}`)
				}
			})
			got, err := c.SizeLimits(context.Background())
			if tc.wantErrSubstring != "" {
				if !registry.IsKind(err, tc.wantKind) || !strings.Contains(registry.ReasonOf(err), tc.wantErrSubstring) {
					t.Fatalf("err %v (%s), want kind %v with %q", err, registry.ReasonOf(err), tc.wantKind, tc.wantErrSubstring)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			if n := c.Workarounds()[WorkaroundNoNodeConfig]; n != tc.wantWorkarounds {
				t.Errorf("no_node_config counted %d times, want %d", n, tc.wantWorkarounds)
			}
		})
	}
}

// TestLargestStaleIndex: a view index that cannot be brought up to date
// within the metadata bound (a first build on a large mirror) is read as
// it is (update=false), and the answer says so.
func TestLargestStaleIndex(t *testing.T) {
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/reg-mirror/_design/couchnpm/_view/largest" || r.URL.Query().Get("descending") != "true" || r.URL.Query().Get("limit") != "1" {
			answer(w, 400, `{"error":"bad_request","reason":"unexpected request"}`)
			return
		}
		if r.URL.Query().Get("update") != "false" {
			select { // building the index
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			return
		}
		answer(w, 200, `{"total_rows":3,"offset":0,"rows":[{"id":"@types/node","key":9437184,"value":null}]}`)
	})
	got, err := c.Packuments(RoleMirror).Largest(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := (&LargestPackument{Name: "@types/node", Bytes: 9 << 20, Stale: true}); !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestLargest(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       *LargestPackument
	}{
		{"one row", `{"total_rows":1,"offset":0,"rows":[{"id":"big","key":300000,"value":null}]}`, &LargestPackument{Name: "big", Bytes: 300000}},
		{"no rows: nothing of 256 KB", `{"total_rows":0,"offset":0,"rows":[]}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := serve(t, func(w http.ResponseWriter, r *http.Request) { answer(w, 200, tc.body) })
			got, err := c.Packuments(RolePackages).Largest(context.Background())
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		answer(w, 404, `{"error":"not_found","reason":"missing_named_view"}`)
	})
	if _, err := c.Packuments(RolePackages).Largest(context.Background()); !registry.IsKind(err, registry.KindNotFound) {
		t.Errorf("a design document without the view: %v, want not found", err)
	}
}
