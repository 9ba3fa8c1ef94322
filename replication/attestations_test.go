package replication

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/couchnpm/couchnpm/registry"
)

// memDocStore keeps JSON documents in memory (attachments unused here).
type memDocStore struct {
	mu   sync.Mutex
	docs map[string][]byte
}

func (m *memDocStore) Get(_ context.Context, id string, v any) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.docs[id]
	if !ok {
		return "", registry.E(registry.KindNotFound, "not_found")
	}
	return "1-x", json.Unmarshal(b, v)
}

func (m *memDocStore) Put(_ context.Context, id, rev string, v any) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.docs[id]; ok && rev == "" {
		return "", registry.E(registry.KindConflict, "conflict")
	}
	b, _ := json.Marshal(v)
	m.docs[id] = b
	return "2-x", nil
}

func (m *memDocStore) Delete(context.Context, string, string) error { return nil }
func (m *memDocStore) PutAttachment(context.Context, string, string, string, string, io.Reader) (string, error) {
	return "", registry.E(registry.KindInternal, "unused")
}
func (m *memDocStore) OpenAttachment(context.Context, string, string) (*registry.Tarball, error) {
	return nil, registry.E(registry.KindNotFound, "unused")
}
func (m *memDocStore) StatAttachment(context.Context, string, string) (*registry.Tarball, error) {
	return nil, registry.E(registry.KindNotFound, "unused")
}
func (m *memDocStore) Copy(context.Context, string, string) error { return nil }

func TestMirrorAttestations(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch {
		case strings.HasSuffix(r.URL.Path, "/good@1.0.0"):
			w.Write([]byte(`{"attestations":[{"predicateType":"https://slsa.dev/provenance/v1","bundle":{}}]}`))
		case strings.HasSuffix(r.URL.Path, "/empty@1.0.0"):
			w.Write([]byte(`{"attestations":[]}`))
		case strings.HasSuffix(r.URL.Path, "/html@1.0.0"):
			w.Write([]byte(`<html>`))
		default:
			http.Error(w, `{"error":"not_found"}`, http.StatusNotFound)
		}
	}))
	t.Cleanup(srv.Close)
	up, err := NewUpstream(UpstreamConfig{Registry: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	docs := &memDocStore{docs: map[string][]byte{}}
	m := newTestMirror(t, MirrorConfig{Mode: ModeOnDemand, Tarballs: docs, Upstream: up})
	ctx := context.Background()
	base := srv.URL + "/-/npm/v1/attestations/"

	tests := []struct {
		name, pkg, source string
		wantKind          registry.Kind // 0: success
		wantHits          int64
	}{
		{"fetched", "good", base + "good@1.0.0", 0, 1},
		{"kept: not fetched again", "good", base + "good@1.0.0", 0, 0},
		{"off the upstream origin", "far", "http://127.0.0.1:1/-/npm/v1/attestations/far@1.0.0", registry.KindBadGateway, 0},
		{"upstream has none", "gone", base + "gone@1.0.0", registry.KindNotFound, 1},
		{"an empty list", "empty", base + "empty@1.0.0", registry.KindBadGateway, 1},
		{"not JSON", "html", base + "html@1.0.0", registry.KindBadGateway, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := hits.Load()
			body, err := m.Attestations(ctx, tc.pkg, "1.0.0", tc.source)
			if got := hits.Load() - before; got != tc.wantHits {
				t.Errorf("%d upstream requests, want %d", got, tc.wantHits)
			}
			if tc.wantKind != 0 {
				if !registry.IsKind(err, tc.wantKind) {
					t.Errorf("Attestations = %s, %v; want kind %v", body, err, tc.wantKind)
				}
				if _, ok := docs.docs[attestationsID(tc.pkg, "1.0.0")]; ok {
					t.Error("a refused answer was stored")
				}
				return
			}
			if err != nil || !strings.Contains(string(body), `"predicateType":"https://slsa.dev/provenance/v1"`) {
				t.Errorf("Attestations = %s, %v", body, err)
			}
		})
	}
}

func TestKeepSignatures(t *testing.T) {
	sig := `"signatures":[{"keyid":"SHA256:ours","sig":"MEUC"}]`
	old := registry.NewPackument("p")
	old.Versions["1.0.0"] = json.RawMessage(`{"dist":{"integrity":"sha512-a",` + sig + `}}`)
	old.Versions["1.1.0"] = json.RawMessage(`{"dist":{"integrity":"sha512-b",` + sig + `}}`)
	old.Versions["1.2.0"] = json.RawMessage(`{"dist":{"integrity":"sha512-c",` + sig + `}}`)
	fresh := registry.NewPackument("p")
	fresh.Versions["1.0.0"] = json.RawMessage(`{"dist":{"integrity":"sha512-a"}}`)                                                // unchanged, unsigned upstream
	fresh.Versions["1.1.0"] = json.RawMessage(`{"dist":{"integrity":"sha512-CHANGED"}}`)                                          // the upstream's bytes changed
	fresh.Versions["1.2.0"] = json.RawMessage(`{"dist":{"integrity":"sha512-c","signatures":[{"keyid":"SHA256:up","sig":"x"}]}}`) // now signed upstream
	fresh.Versions["2.0.0"] = json.RawMessage(`{"dist":{"integrity":"sha512-d"}}`)                                                // new
	keepSignatures(old, fresh)
	want := map[string]string{"1.0.0": "SHA256:ours", "1.1.0": "", "1.2.0": "SHA256:up", "2.0.0": ""}
	for v, keyid := range want {
		_, sigs, _ := registry.DistOf(fresh.Versions[v])
		got := ""
		if len(sigs) > 0 {
			got = sigs[0].KeyID
		}
		if got != keyid {
			t.Errorf("%s: signed by %q, want %q", v, got, keyid)
		}
	}
}
