package auditlog

import (
	"fmt"
	"sort"
)

// Problem is a broken link found by Verify.
type Problem struct {
	Chain string `json:"chain"`
	Seq   int64  `json:"seq"` // the entry where the break shows
	ID    string `json:"id"`
	Kind  string `json:"kind"` // ProblemEdited, ProblemMissing, ProblemLink
	What  string `json:"what"`
}

// Kinds of Problem.
const (
	ProblemEdited  = "edited"  // the entry's content no longer matches its hash
	ProblemMissing = "missing" // entries are gone: a gap in the sequence numbers
	ProblemLink    = "link"    // prev names an entry other than the one before (replaced, reordered or deleted)
)

func (p Problem) String() string {
	return fmt.Sprintf("%s: %s (%s)", p.ID, p.What, p.Kind)
}

// ChainHead is a chain's last entry, for operators who keep it outside the
// database: a truncated tail shows only against such a copy.
type ChainHead struct {
	Chain    string `json:"chain"`
	Instance string `json:"instance"`
	Entries  int    `json:"entries"`
	Seq      int64  `json:"seq"`
	Hash     string `json:"hash"`
	At       string `json:"at"`
}

// Verify checks every chain in entries (any order) and returns the chains'
// heads and the first broken link of each broken chain. It detects:
//   - an edited entry: its hash does not match its content;
//   - a deleted entry inside a chain: a gap in the sequence numbers, or a
//     prev that names another entry;
//   - a deleted tail of an instance's chain once that instance has started
//     a later chain: the later chain's first entry links to the hash of the
//     earlier chain's last entry;
//   - a rewritten entry with a recomputed hash: the next entry's prev.
//
// What it cannot see: deleted entries at the end of an instance's newest
// chain (nothing after them names them; compare the heads with a copy kept
// elsewhere) and a deleted whole chain that no later chain links to.
func Verify(entries []Entry) (heads []ChainHead, problems []Problem) {
	byChain := map[string][]Entry{}
	for _, e := range entries {
		byChain[e.Chain] = append(byChain[e.Chain], e)
	}
	chains := make([]string, 0, len(byChain))
	for c := range byChain {
		chains = append(chains, c)
	}
	sort.Strings(chains) // within an instance, chain ids sort by start time
	lastOfInstance := map[string]Entry{}
	for _, c := range chains {
		list := byChain[c]
		sort.Slice(list, func(i, j int) bool { return list[i].Seq < list[j].Seq })
		if p, ok := verifyChain(list, lastOfInstance); !ok {
			problems = append(problems, p)
		}
		last := list[len(list)-1]
		lastOfInstance[last.Instance] = last
		heads = append(heads, ChainHead{Chain: c, Instance: last.Instance, Entries: len(list), Seq: last.Seq, Hash: last.Hash, At: last.At})
	}
	return heads, problems
}

// verifyChain checks one chain, sorted by seq; lastOfInstance holds the
// last entry of each instance's chains seen so far (earlier chains).
func verifyChain(list []Entry, lastOfInstance map[string]Entry) (Problem, bool) {
	for i, e := range list {
		bad := func(kind, format string, args ...any) (Problem, bool) {
			return Problem{Chain: e.Chain, Seq: e.Seq, ID: e.ID(), Kind: kind, What: fmt.Sprintf(format, args...)}, false
		}
		if e.ComputeHash() != e.Hash {
			return bad(ProblemEdited, "the entry was changed after it was written: its content does not match its hash")
		}
		if i == 0 {
			if e.Seq != 1 {
				return bad(ProblemMissing, "the chain's entries 1 to %d are missing", e.Seq-1)
			}
			if before, ok := lastOfInstance[e.Instance]; ok && e.Prev != before.Hash {
				return bad(ProblemLink, "this chain started after an entry of hash %.12s of instance %s, but that instance's previous chain now ends with %s: entries after it were deleted or replaced", e.Prev, e.Instance, before.ID())
			}
			if _, ok := lastOfInstance[e.Instance]; !ok && e.Prev != "" {
				return bad(ProblemLink, "this chain started after an entry of hash %.12s of instance %s, which is missing: that instance's previous chain was deleted", e.Prev, e.Instance)
			}
			continue
		}
		prev := list[i-1]
		if e.Seq == prev.Seq {
			return bad(ProblemLink, "two entries claim the same place in the chain")
		}
		if e.Seq != prev.Seq+1 {
			if e.Seq == prev.Seq+2 {
				return bad(ProblemMissing, "entry %s before it is missing (deleted)", EntryID(e.Chain, prev.Seq+1))
			}
			return bad(ProblemMissing, "entries %d to %d before it are missing (deleted)", prev.Seq+1, e.Seq-1)
		}
		if e.Prev != prev.Hash {
			return bad(ProblemLink, "it follows an entry of hash %.12s, not the stored %s (that entry was replaced)", e.Prev, prev.ID())
		}
	}
	return Problem{}, true
}
