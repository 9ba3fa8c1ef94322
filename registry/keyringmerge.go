package registry

import (
	"context"
	"encoding/json"
	"sort"
	"time"

	"github.com/couchnpm/couchnpm/internal/retry"
)

// Merging conflicting revisions of the signing keyring (docs/conflicts.md).
//
// Two rotations (or two first starts) on two sides of a partition, or on
// two nodes of a cluster at once, leave conflicting revisions of the
// keyring, each with a key the other lacks. CouchDB's winner alone would
// lose a key, and every version it signed would stop verifying. A keyring
// only ever gains keys, and a rotation only ever shortens a key's life, so
// the merge is the union of the keys with each key's earliest expiry.

// WithLeaves makes k read its document with every conflicting revision and
// merge them (CouchDB: conflicts=true, open_revs, _bulk_docs).
func (k *Keyring) WithLeaves(l LeafDocs) *Keyring {
	k.leaves = l
	return k
}

// mergeKeyrings merges keyring leaves: every key of any leaf, by key id;
// a key in several leaves keeps its earliest expiry and its private part
// from any leaf that has it. Keys come out oldest first (ties by key id),
// whatever the order of the leaves.
func mergeKeyrings(leaves []keyringDoc) keyringDoc {
	byID := map[string]SigningKey{}
	for _, l := range leaves {
		for _, key := range l.Keys {
			have, ok := byID[key.KeyID]
			if !ok {
				byID[key.KeyID] = key
				continue
			}
			if have.Private == "" {
				have.Private = key.Private
			}
			if have.Source == "" {
				have.Source = key.Source
			}
			if key.Expires != nil && (have.Expires == nil || key.Expires.Before(*have.Expires)) {
				e := *key.Expires
				have.Expires = &e
			}
			byID[key.KeyID] = have
		}
	}
	out := keyringDoc{Keys: make([]SigningKey, 0, len(byID))}
	for _, key := range byID {
		out.Keys = append(out.Keys, key)
	}
	sort.Slice(out.Keys, func(i, j int) bool {
		a, b := out.Keys[i], out.Keys[j]
		if !a.Created.Equal(b.Created) {
			return a.Created.Before(b.Created)
		}
		return a.KeyID < b.KeyID
	})
	return out
}

// readLeaves reads the keyring: the merge of its leaves when it has
// several, the revision to write on (the winner's) and the losing leaves a
// write deletes. An absent keyring is empty.
func (k *Keyring) readLeaves(ctx context.Context) (keyringDoc, string, []string, error) {
	if k.leaves == nil {
		var doc keyringDoc
		rev, err := k.docs.Get(ctx, keyringDocID, &doc)
		if IsKind(err, KindNotFound) {
			return keyringDoc{}, "", nil, nil
		}
		return doc, rev, nil, err
	}
	leaves, err := k.leaves.Leaves(ctx, keyringDocID)
	if IsKind(err, KindNotFound) {
		return keyringDoc{}, "", nil, nil
	}
	if err != nil {
		return keyringDoc{}, "", nil, err
	}
	docs := make([]keyringDoc, len(leaves))
	losers := make([]string, 0, len(leaves)-1)
	for i, l := range leaves {
		if err := json.Unmarshal(l.Body, &docs[i]); err != nil {
			return keyringDoc{}, "", nil, Wrap(KindInternal, err, "decode the signing keys (revision %s)", l.Rev)
		}
		if i > 0 {
			losers = append(losers, l.Rev)
		}
	}
	if len(docs) == 1 {
		return docs[0], leaves[0].Rev, nil, nil
	}
	return mergeKeyrings(docs), leaves[0].Rev, losers, nil
}

// write stores doc on revision rev, deleting the losing leaves; a write
// CouchDB stored short of its quorum (202) is read back until key id
// added is in the (merged) keyring, for at most confirmBound. KindConflict
// when rev is stale.
func (k *Keyring) write(ctx context.Context, rev string, doc *keyringDoc, losers []string, added string) error {
	if k.leaves == nil {
		_, err := k.docs.Put(ctx, keyringDocID, rev, doc)
		return err
	}
	w, err := k.leaves.WriteMerge(ctx, keyringDocID, rev, doc, losers)
	if err != nil || w.Quorum {
		return err
	}
	deadline := time.Now().Add(confirmBound)
	for attempt := 0; time.Now().Before(deadline); attempt++ {
		read, rev, losers, err := k.readLeaves(ctx)
		if err == nil {
			if len(losers) > 0 {
				_, _ = k.leaves.WriteMerge(ctx, keyringDocID, rev, &read, losers)
			}
			for _, key := range read.Keys {
				if key.KeyID == added {
					return nil
				}
			}
		}
		if retry.Wait(ctx, conflictBackoff(attempt)) != nil {
			break
		}
	}
	// Stored on at least one node: the next read after CouchDB's internal
	// replication merges it. Signing with it meanwhile is safe only once
	// it is served, so say so.
	return E(KindUnavailable, "the new signing key %s was stored short of CouchDB's write quorum and not seen on a quorum within %s; retry", added, confirmBound)
}
