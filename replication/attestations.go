package replication

import (
	"context"
	"encoding/json"
	"io"
	"time"

	"github.com/couchnpm/couchnpm/registry"
)

// maxAttestationsBytes bounds one upstream attestations document (a few
// Sigstore bundles: kilobytes, rarely more).
const maxAttestationsBytes = 4 << 20

// storedAttestations is the tarball-cache document holding a mirrored
// version's attestations, id attestationsID.
type storedAttestations struct {
	Attestations json.RawMessage `json:"attestations"`
	Source       string          `json:"source"`
	Fetched      time.Time       `json:"fetched"`
}

func attestationsID(name, version string) string { return "attestations:" + name + "@" + version }

// Attestations returns name@version's attestations document
// ({"attestations": [...]}): the stored copy, or the upstream's at source,
// fetched once and kept. Only the upstream's origin is fetched from.
func (m *Mirror) Attestations(ctx context.Context, name, version, source string) ([]byte, error) {
	var doc storedAttestations
	_, err := m.tarballs.Get(ctx, attestationsID(name, version), &doc)
	if err == nil {
		return json.Marshal(map[string]json.RawMessage{"attestations": doc.Attestations})
	}
	if !registry.IsKind(err, registry.KindNotFound) {
		return nil, err
	}
	ch := m.flights.DoChan("att:"+name+"@"+version, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*m.up.cfg.Timeout)
		defer cancel()
		return m.fetchAttestations(fctx, name, version, source)
	})
	select {
	case <-ctx.Done():
		return nil, registry.Wrap(registry.KindUnavailable, ctx.Err(), "gave up waiting for the upstream attestations")
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return json.Marshal(map[string]json.RawMessage{"attestations": res.Val.(json.RawMessage)})
	}
}

func (m *Mirror) fetchAttestations(ctx context.Context, name, version, source string) (json.RawMessage, error) {
	if !m.up.SameOrigin(source) {
		return nil, registry.E(registry.KindBadGateway, "the attestations URL of %s@%s is not on the upstream origin; not following it", name, version)
	}
	release, err := m.up.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	resp, err := m.up.get(ctx, source, "application/json")
	m.stats.upstreamFetch(err)
	if registry.IsKind(err, registry.KindNotFound) {
		return nil, registry.Wrap(registry.KindNotFound, err, "the upstream registry has no attestations for %s@%s", name, version)
	}
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	limited := &io.LimitedReader{R: resp.Body, N: maxAttestationsBytes + 1}
	var body struct {
		Attestations json.RawMessage `json:"attestations"`
	}
	if err := json.NewDecoder(limited).Decode(&body); err != nil || limited.N <= 0 {
		return nil, registry.E(registry.KindBadGateway, "the upstream registry sent unusable attestations for %s@%s", name, version)
	}
	var list []json.RawMessage
	if json.Unmarshal(body.Attestations, &list) != nil || len(list) == 0 {
		return nil, registry.E(registry.KindBadGateway, "the upstream attestations of %s@%s hold no list", name, version)
	}
	doc := storedAttestations{Attestations: body.Attestations, Source: source, Fetched: time.Now().UTC()}
	if _, err := m.tarballs.Put(ctx, attestationsID(name, version), "", &doc); err != nil && !registry.IsKind(err, registry.KindConflict) {
		m.log.Warn().Str("pkg", name).Str("version", version).Err(err).Msg("cannot store the attestations")
	} else {
		m.log.Info().Str("pkg", name).Str("version", version).Msg("stored the upstream attestations")
	}
	return body.Attestations, nil
}

// prefetchAttestations keeps a version's attestations once its tarball was
// installed through the mirror, so that a later provenance check works
// without the upstream. Failures are logged: the install is not theirs.
func (m *Mirror) prefetchAttestations(ctx context.Context, name, version, source string) {
	if source == "" {
		return
	}
	if _, err := m.Attestations(ctx, name, version, source); err != nil {
		m.log.Warn().Str("pkg", name).Str("version", version).Err(err).Msg("cannot keep the attestations of a mirrored version")
	}
}
