package replication

import "strconv"

// HiddenDetail stands for a detail only administrators see.
const HiddenDetail = "(shown to administrators)"

// Public is the peer link's state as anyone may see it: the peer's
// address and the error text (which names hosts and URLs) are for
// administrators only; i numbers the peer instead.
func (p PeerStatus) Public(i int) PeerStatus {
	p.Peer = "peer " + strconv.Itoa(i+1)
	if p.LastError != "" {
		p.LastError = HiddenDetail
	}
	return p
}
