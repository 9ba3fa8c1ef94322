package replication

import "strconv"

// HiddenDetail stands for a detail only administrators see.
const HiddenDetail = "(shown to administrators)"

// Public is the peer link's state as anyone may see it: the peer's
// address and the error text (which names hosts and URLs) are for
// administrators only; i (from 0) numbers the peer instead.
func (p PeerStatus) Public(i int) PeerStatus {
	p.Peer = "peer " + strconv.Itoa(i+1)
	if p.LastError != "" {
		p.LastError = HiddenDetail
	}
	return p
}

// PublicPeers is st as anyone may see it (/-/replication/status for
// non-admins, the status page, /-/metrics): each peer is named by its
// number, counted in the order the peers are configured (--peer), so
// "peer 2" is the second --peer wherever it appears, whichever of its
// databases a row is about.
func PublicPeers(st []PeerStatus) []PeerStatus {
	out := make([]PeerStatus, len(st))
	num := map[string]int{}
	for i, p := range st {
		n, ok := num[p.Peer]
		if !ok {
			n = len(num)
			num[p.Peer] = n
		}
		out[i] = p.Public(n)
	}
	return out
}
