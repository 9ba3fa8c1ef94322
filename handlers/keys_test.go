package handlers

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/registry"
)

type staticKeys struct {
	keys []registry.PublicKey
	err  error
}

func (s staticKeys) PublicKeys(context.Context) ([]registry.PublicKey, error) { return s.keys, s.err }

type fakeAttestations map[string]string

func (f fakeAttestations) Attestations(_ context.Context, _ registry.Identity, name, version string) ([]byte, error) {
	if b, ok := f[name+"@"+version]; ok {
		return []byte(b), nil
	}
	return nil, registry.E(registry.KindNotFound, "%s@%s has no attestations", name, version)
}

func TestKeysEndpoint(t *testing.T) {
	exp := "2026-01-01T00:00:00.000Z"
	own := []registry.PublicKey{{KeyID: "SHA256:old", Key: "A", Expires: &exp}, {KeyID: "SHA256:new", Key: "B"}}
	up := []registry.PublicKey{{KeyID: "SHA256:up", Key: "C"}, {KeyID: "SHA256:new", Key: "spoof"}}
	down := registry.E(registry.KindUnavailable, "CouchDB is down")
	tests := []struct {
		name       string
		own, up    KeySource
		wantStatus int
		wantIDs    []string
	}{
		{"not signing", nil, nil, 404, nil},
		{"own keys", staticKeys{keys: own}, nil, 200, []string{"SHA256:old", "SHA256:new"}},
		{"own then upstream, own key ids win", staticKeys{keys: own}, staticKeys{keys: up}, 200, []string{"SHA256:old", "SHA256:new", "SHA256:up"}},
		{"upstream keys unreadable: own ones served", staticKeys{keys: own}, staticKeys{err: down}, 200, []string{"SHA256:old", "SHA256:new"}},
		{"own keys unreadable", staticKeys{err: down}, staticKeys{keys: up}, 503, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := mustNew(t, Config{PublicURL: publicURL, Keys: tc.own, UpstreamKeys: tc.up}, fakeServices(t, &fakeRegistry{}, newFakeAccounts(), &fakePinger{}), zerolog.Nop())
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/-/npm/v1/keys", nil))
			if rec.Code != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.wantStatus, rec.Body)
			}
			if tc.wantStatus != 200 {
				return
			}
			var body struct {
				Keys []registry.PublicKey `json:"keys"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, k := range body.Keys {
				ids = append(ids, k.KeyID)
				if k.KeyID == "SHA256:new" && k.Key != "B" {
					t.Errorf("the upstream replaced couchnpm's key %s", k.KeyID)
				}
			}
			if len(ids) != len(tc.wantIDs) {
				t.Fatalf("keys %v, want %v", ids, tc.wantIDs)
			}
			for i := range ids {
				if ids[i] != tc.wantIDs[i] {
					t.Errorf("keys %v, want %v", ids, tc.wantIDs)
				}
			}
		})
	}
}

func TestAttestationsEndpoint(t *testing.T) {
	att := fakeAttestations{"@s/p@1.0.0": `{"attestations":[]}`, "foo@1.0.0": `{"attestations":[1]}`}
	h := mustNew(t, Config{PublicURL: publicURL, Attestations: att}, fakeServices(t, &fakeRegistry{}, newFakeAccounts(), &fakePinger{}), zerolog.Nop())
	tests := []struct {
		path       string
		wantStatus int
		wantBody   string
	}{
		{"/-/npm/v1/attestations/foo@1.0.0", 200, `{"attestations":[1]}`},
		{"/-/npm/v1/attestations/@s%2fp@1.0.0", 200, `{"attestations":[]}`},
		{"/-/npm/v1/attestations/@s%2Fp@1.0.0", 200, `{"attestations":[]}`},
		{"/-/npm/v1/attestations/@s/p@1.0.0", 200, `{"attestations":[]}`},
		{"/-/npm/v1/attestations/foo@2.0.0", 404, ""},
		{"/-/npm/v1/attestations/foo", 400, ""},
		{"/-/npm/v1/attestations/foo@latest", 400, ""},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.path, nil))
			if rec.Code != tc.wantStatus || (tc.wantBody != "" && rec.Body.String() != tc.wantBody) {
				t.Errorf("status %d body %s, want %d %s", rec.Code, rec.Body, tc.wantStatus, tc.wantBody)
			}
		})
	}
}
