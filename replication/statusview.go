package replication

import (
	"encoding/json"
	"maps"
	"strings"
)

// Public is the mirror's state as anyone may see it: mode, state,
// progress, lag, rate and the counters, and which packages failed when.
// The upstream's address, the instance names (the host name by default)
// and the error texts (which name hosts and URLs, with credentials when
// the operator put them in one) are for administrators only.
func (s Status) Public() Status {
	s.Upstream = hide(s.Upstream)
	s.Instance = hide(s.Instance)
	s.Holder = hide(s.Holder)
	s.LastError = hide(s.LastError)
	failures := make([]Failure, len(s.LastFailures))
	for i, f := range s.LastFailures {
		f.Error = hide(f.Error)
		failures[i] = f
	}
	s.LastFailures = failures
	s.Replication = publicReplication(s.Replication)
	return s
}

func hide(detail string) string {
	if detail == "" {
		return ""
	}
	return HiddenDetail
}

// publicReplication keeps the replicate mode's state and counters: the
// scheduler's answer also names the CouchDB node and, in its reason and
// info.error, the hosts and URLs it could not reach.
func publicReplication(state map[string]any) map[string]any {
	if state == nil {
		return nil
	}
	out := map[string]any{}
	for _, k := range []string{"state", "state_time", "start_time", "last_updated", "error_count", "source_of_state"} {
		if v, ok := state[k]; ok {
			out[k] = v
		}
	}
	if r, ok := state["reason"].(string); ok {
		out["reason"] = hide(r)
	}
	info := state["info"]
	if raw, ok := info.(json.RawMessage); ok { // PouchDB Server's _replication_stats
		var m map[string]any
		if json.Unmarshal(raw, &m) == nil {
			info = m
		}
	}
	switch info := info.(type) {
	case map[string]any:
		pub := maps.Clone(info)
		for k, v := range pub {
			// Counters (or null) and sequences stay; anything else (an
			// error text) is hidden.
			if _, number := v.(float64); !number && v != nil && !strings.HasSuffix(k, "_seq") {
				pub[k] = HiddenDetail
			}
		}
		out["info"] = pub
	case nil:
	default:
		out["info"] = HiddenDetail
	}
	return out
}
