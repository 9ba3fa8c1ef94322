package couch

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/couchnpm/couchnpm/auditlog"
	"github.com/couchnpm/couchnpm/registry"
)

// AppendEntries after an answer that was lost: the entry is in the
// database already. Apache CouchDB answers that with a conflict, PouchDB
// Server with the append-only rule's forbidden; both count as written when
// the stored entry is the same. A real refusal is ErrRefused (retrying
// cannot cure it), and a different entry at the same place is no success.
func TestAppendEntriesStoredAlready(t *testing.T) {
	entry := auditlog.Entry{Chain: "cli@1", Seq: 1, Action: "import", Hash: strings.Repeat("a", 64)}
	other := entry
	other.Hash = strings.Repeat("b", 64)
	for _, tc := range []struct {
		name       string
		result     string          // the _bulk_docs row's error and reason
		stored     *auditlog.Entry // what GET of the document finds
		wantErr    bool
		wantRefuse bool
		workaround int64
	}{
		{name: "written", result: ``},
		{name: "CouchDB: conflict, same entry stored", result: `"error":"conflict","reason":"Document update conflict."`, stored: &entry},
		{name: "PouchDB Server: forbidden, same entry stored", result: `"error":"forbidden","reason":"audit entries are append-only"`, stored: &entry, workaround: 1},
		{name: "conflict, another entry stored", result: `"error":"conflict","reason":"Document update conflict."`, stored: &other, wantErr: true},
		{name: "forbidden, another entry stored", result: `"error":"forbidden","reason":"audit entries are append-only"`, stored: &other, wantErr: true, wantRefuse: true},
		{name: "forbidden, nothing stored: a refusal", result: `"error":"forbidden","reason":"an audit entry needs its hash"`, wantErr: true, wantRefuse: true},
		{name: "too large: a refusal", result: `"error":"too_large","reason":"Document too large"`, wantErr: true, wantRefuse: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var posted []map[string]any
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				switch {
				case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/_bulk_docs"):
					var body struct{ Docs []map[string]any }
					if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
						t.Errorf("bulk body: %v", err)
					}
					posted = body.Docs
					row := `{"id":"cli@1:000000000001","rev":"1-x"}`
					if tc.result != "" {
						row = `{"id":"cli@1:000000000001",` + tc.result + `}`
					}
					io.WriteString(w, "["+row+"]")
				case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/cli@1:000000000001") && tc.stored != nil:
					doc, _ := json.Marshal(auditDoc{ID: "cli@1:000000000001", Entry: *tc.stored})
					w.Write(append([]byte(`{"_rev":"1-x",`), doc[1:]...))
				default:
					w.WriteHeader(http.StatusNotFound)
					io.WriteString(w, `{"error":"not_found","reason":"missing"}`)
				}
			}))
			defer srv.Close()
			c := openTest(t, srv.URL, "admin", "pw")
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := c.AuditLog().AppendEntries(ctx, []auditlog.Entry{entry})
			if (err != nil) != tc.wantErr || errors.Is(err, auditlog.ErrRefused) != tc.wantRefuse {
				t.Fatalf("AppendEntries: %v, want error %v, refused %v", err, tc.wantErr, tc.wantRefuse)
			}
			if len(posted) != 1 || posted[0]["_id"] != "cli@1:000000000001" || posted[0]["hash"] != entry.Hash {
				t.Fatalf("posted %v", posted)
			}
			if got := c.Workarounds()[WorkaroundExistsForbidden]; got != tc.workaround {
				t.Fatalf("workaround counted %d times, want %d", got, tc.workaround)
			}
			if tc.wantErr && !tc.wantRefuse && !registry.IsKind(err, registry.KindConflict) {
				t.Fatalf("a different entry in its place: %v, want a conflict", err)
			}
		})
	}
}

// The keyed _all_docs reads (the follower's batch read and lookup, the web
// page's tarball cache state) keep only live documents: an id with no
// document and a deleted one are absent.
func TestAllDocsByKeysLiveOnly(t *testing.T) {
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/_all_docs") {
			t.Errorf("%s %s", r.Method, r.URL.Path)
		}
		b, _ := io.ReadAll(r.Body)
		bodies = append(bodies, string(b))
		doc := func(name string) string {
			if r.URL.Query().Get("include_docs") != "true" {
				return ""
			}
			return `,"doc":{"_id":"` + name + `","_rev":"1-a","name":"` + name + `","versions":{}}`
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"total_rows":3,"rows":[`+
			`{"id":"live","key":"live","value":{"rev":"1-a"}`+doc("live")+`},`+
			`{"key":"absent","error":"not_found"},`+
			`{"id":"gone","key":"gone","value":{"rev":"2-b","deleted":true},"doc":null}]}`)
	}))
	defer srv.Close()
	c := openTest(t, srv.URL, "admin", "pw")
	ctx := context.Background()
	keys := []string{"live", "absent", "gone"}
	have, err := c.Packuments(RoleMirror).Existing(ctx, keys)
	if err != nil || len(have) != 1 || !have["live"] {
		t.Fatalf("Existing: %v %v", have, err)
	}
	if have, err = c.Docs(RoleMirror).Existing(ctx, keys); err != nil || len(have) != 1 || !have["live"] {
		t.Fatalf("Docs.Existing: %v %v", have, err)
	}
	docs, err := c.Packuments(RoleMirror).GetPackuments(ctx, keys)
	if err != nil || len(docs) != 1 || docs["live"] == nil || docs["live"].Name != "live" {
		t.Fatalf("GetPackuments: %v %v", docs, err)
	}
	if len(bodies) != 3 || bodies[0] != `{"keys":["live","absent","gone"]}` {
		t.Fatalf("requests %q", bodies)
	}
	if got, err := c.Packuments(RoleMirror).Existing(ctx, nil); err != nil || len(got) != 0 || len(bodies) != 3 {
		t.Fatalf("no keys: %v %v, %d requests", got, err, len(bodies))
	}
}
