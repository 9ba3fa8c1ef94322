package replication

import (
	"context"
	"encoding/json"
	"io"
	"time"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/internal/retry"
	"github.com/couchnpm/couchnpm/registry"
)

// upstreamKeysDoc is the system document holding the upstream's public
// signing keys, so that versions the upstream signed verify through the
// mirror even while the upstream cannot be reached.
const upstreamKeysDoc = "upstream-signing-keys"

// maxKeysBytes bounds the upstream's keys answer.
const maxKeysBytes = 1 << 20

type storedUpstreamKeys struct {
	Upstream string               `json:"upstream"`
	Fetched  time.Time            `json:"fetched"`
	Keys     []registry.PublicKey `json:"keys"`
}

// UpstreamKeys keeps a copy of the upstream registry's signing keys
// (GET /-/npm/v1/keys) in the system database.
type UpstreamKeys struct {
	up     *Upstream
	system DocStore
	log    zerolog.Logger
}

// NewUpstreamKeys returns the upstream key keeper.
func NewUpstreamKeys(up *Upstream, system DocStore, log zerolog.Logger) *UpstreamKeys {
	return &UpstreamKeys{up: up, system: system, log: log}
}

// PublicKeys returns the stored upstream keys, fetching them first when
// none are stored yet.
func (k *UpstreamKeys) PublicKeys(ctx context.Context) ([]registry.PublicKey, error) {
	var doc storedUpstreamKeys
	_, err := k.system.Get(ctx, upstreamKeysDoc, &doc)
	if err == nil && doc.Upstream == k.up.Base() {
		return doc.Keys, nil
	}
	if err != nil && !registry.IsKind(err, registry.KindNotFound) {
		return nil, err
	}
	return k.Refresh(ctx)
}

// Refresh fetches the upstream's keys and stores them. An upstream that
// serves no keys (404) has none; an upstream that cannot be asked keeps
// the stored copy.
func (k *UpstreamKeys) Refresh(ctx context.Context) ([]registry.PublicKey, error) {
	keys, err := k.fetch(ctx)
	if err != nil {
		return nil, err
	}
	var old storedUpstreamKeys
	rev, err := k.system.Get(ctx, upstreamKeysDoc, &old)
	if err != nil && !registry.IsKind(err, registry.KindNotFound) {
		return nil, err
	}
	doc := storedUpstreamKeys{Upstream: k.up.Base(), Fetched: time.Now().UTC(), Keys: keys}
	if _, err := k.system.Put(ctx, upstreamKeysDoc, rev, &doc); err != nil && !registry.IsKind(err, registry.KindConflict) {
		return nil, err
	}
	k.log.Info().Int("keys", len(keys)).Str("upstream", k.up.Base()).Msg("stored the upstream's signing keys")
	return keys, nil
}

func (k *UpstreamKeys) fetch(ctx context.Context) ([]registry.PublicKey, error) {
	ctx, cancel := context.WithTimeout(ctx, k.up.cfg.Timeout)
	defer cancel()
	resp, err := k.up.get(ctx, k.up.base.String()+"/-/npm/v1/keys", "application/json")
	if registry.IsKind(err, registry.KindNotFound) {
		return []registry.PublicKey{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Keys []registry.PublicKey `json:"keys"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxKeysBytes)).Decode(&body); err != nil {
		return nil, registry.Wrap(registry.KindUnavailable, err, "the upstream registry sent unreadable signing keys")
	}
	keys := make([]registry.PublicKey, 0, len(body.Keys))
	for _, key := range body.Keys {
		if key.KeyID != "" && key.Key != "" {
			keys = append(keys, key)
		}
	}
	return keys, nil
}

// Run refreshes the stored keys at start and then every interval, until
// ctx ends. Failures are logged; the stored copy stays.
func (k *UpstreamKeys) Run(ctx context.Context, interval time.Duration) {
	for {
		if _, err := k.Refresh(ctx); err != nil && ctx.Err() == nil {
			k.log.Warn().Str("upstream", k.up.Base()).Err(err).Msg("cannot refresh the upstream's signing keys; keeping the stored ones")
		}
		if retry.Wait(ctx, interval) != nil {
			return
		}
	}
}

// signVerified adds couchnpm's signature to a mirrored version whose
// tarball was just verified against integrity, unless the upstream signed
// it (its signatures are kept untouched) or its integrity changed.
func (m *Mirror) signVerified(ctx context.Context, name, version, integrity string) {
	// In replicate mode the mirror database is CouchDB's replication
	// target: a write of ours would only conflict with the next
	// replicated revision.
	if m.signer == nil || m.mode == ModeReplicate || !signable(integrity) {
		return
	}
	// A packument pulled a moment ago may still be on its way into
	// CouchDB: sign the stored copy, once it is there.
	_ = m.writes.wait(ctx, name)
	for attempt := 0; attempt < 5; attempt++ {
		p, err := m.store.GetPackumentForWrite(ctx, name)
		if err != nil {
			m.log.Warn().Str("pkg", name).Err(err).Msg("cannot sign a mirrored version")
			return
		}
		manifest, ok := p.Versions[version]
		if !ok {
			return
		}
		got, _, has := registry.DistOf(manifest)
		if has || got != integrity {
			return
		}
		key, err := m.signer.ActiveKey(ctx)
		var sig registry.Signature
		if err == nil {
			sig, err = key.Sign(name, version, integrity)
		}
		if err != nil {
			m.log.Warn().Str("pkg", name).Str("version", version).Err(err).Msg("cannot sign a mirrored version")
			return
		}
		signed, err := registry.SetSignatures(manifest, []registry.Signature{sig})
		if err != nil {
			return
		}
		p.Versions[version] = signed
		_, err = m.store.PutPackument(ctx, p)
		if err == nil {
			m.log.Info().Str("pkg", name).Str("version", version).Str("keyid", sig.KeyID).Msg("signed a mirrored version")
			return
		}
		if !registry.IsKind(err, registry.KindConflict) {
			m.log.Warn().Str("pkg", name).Err(err).Msg("cannot store the signature of a mirrored version")
			return
		}
	}
}

// signable reports whether integrity is one sha512 entry: the string npm
// puts in the signed message is then exactly this one.
func signable(integrity string) bool {
	if len(integrity) != len("sha512-")+88 || integrity[:7] != "sha512-" {
		return false
	}
	return true
}

// keepSignatures carries couchnpm's signatures of the stored copy over to
// a fresh upstream copy: for versions the upstream still leaves unsigned,
// with the same integrity.
func keepSignatures(old, fresh *registry.Packument) {
	for v, m := range fresh.Versions {
		integrity, _, has := registry.DistOf(m)
		if has {
			continue
		}
		om, ok := old.Versions[v]
		if !ok {
			continue
		}
		oi, sigs, ohas := registry.DistOf(om)
		if !ohas || oi != integrity || len(sigs) == 0 {
			continue
		}
		if signed, err := registry.SetSignatures(m, sigs); err == nil {
			fresh.Versions[v] = signed
		}
	}
}
