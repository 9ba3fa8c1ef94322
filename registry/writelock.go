package registry

import (
	"context"
	"hash/fnv"
	"time"
)

// writeLocks serialise this instance's writes to one package. Concurrent
// publishes of one package through one instance would otherwise all read
// the same revision and all but one lose, again and again: with 50 of them
// one kept losing until its retries ran out. Queued here, they take turns;
// only writers on other instances (or sites) still race, and the retry
// loop absorbs that. Striped: a bounded set of locks, shared by names
// that hash alike.
type writeLocks [64]chan struct{}

func newWriteLocks() *writeLocks {
	var l writeLocks
	for i := range l {
		l[i] = make(chan struct{}, 1)
	}
	return &l
}

// lock waits for name's lock or for ctx to end.
func (l *writeLocks) lock(ctx context.Context, name string) (unlock func(), err error) {
	if l == nil {
		return func() {}, nil
	}
	h := fnv.New32a()
	h.Write([]byte(name))
	ch := l[h.Sum32()%uint32(len(l))]
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, Wrap(KindUnavailable, ctx.Err(), "gave up waiting for the other writes to %s", name)
	}
}

// writeBudget bounds how long one write keeps retrying conflicts (other
// instances' or sites' writes to the same package) before it answers 409
// and says so.
const writeBudget = 2 * time.Minute
