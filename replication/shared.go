package replication

import (
	"context"
	"io"
	"sync"

	"github.com/couchnpm/couchnpm/registry"
)

// holdBack is how much of a streamed tarball's end a client gets only
// after the whole tarball was verified: a tampered or truncated download
// never reaches it complete (its connection is cut instead).
const holdBack = 64 << 10

// shareWindow bounds the memory of one shared download: the bytes kept
// for clients that have not read them yet. While a download is smaller,
// it is kept whole and a client may join at any time; beyond it, the
// bytes every client has passed are dropped, and a client that falls more
// than shareWindow behind stops reading from memory and, once the download
// is verified and stored, reads the rest from CouchDB. So the download
// runs at upstream speed whatever any one client does, and a slow client
// costs at most shareWindow of memory. With the upstream fetches bounded
// (--upstream-max-concurrent), so is the memory of all of them.
const shareWindow = 4 << 20

// shareBlock is the unit in which bytes are kept and dropped.
const shareBlock = 64 << 10

// sharedDownload is one upstream tarball download, streamed into CouchDB
// and to every client waiting for it, each reading at its own pace (the
// writer never waits for a reader).
type sharedDownload struct {
	ready    chan struct{} // closed once the upstream answered or the fetch failed
	finished chan struct{} // closed by finish (err is set then)

	mu      sync.Mutex
	cond    *sync.Cond
	size    int64    // from the upstream's answer; -1 unknown
	blocks  [][]byte // bytes from offset base on, in blocks of shareBlock
	base    int64    // offset of blocks[0]; > 0 once the start was dropped
	n       int64    // bytes written
	done    bool
	err     error
	started bool
	readers map[*sharedReader]struct{}
	window  int64 // shareWindow unless a test lowers it
	// stored opens the verified copy in CouchDB, for clients that fell
	// behind or came after the start was dropped.
	stored func(ctx context.Context) (io.ReadCloser, error)
}

func newSharedDownload(window int64, stored func(ctx context.Context) (io.ReadCloser, error)) *sharedDownload {
	if window <= 0 {
		window = shareWindow
	}
	d := &sharedDownload{ready: make(chan struct{}), finished: make(chan struct{}), size: -1, readers: map[*sharedReader]struct{}{}, window: window, stored: stored}
	d.cond = sync.NewCond(&d.mu)
	return d
}

// start says the upstream answered with size bytes (-1: unknown).
func (d *sharedDownload) start(size int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.started {
		d.started, d.size = true, size
		close(d.ready)
	}
}

// Write keeps p for the readers; it never blocks on them.
func (d *sharedDownload) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for rest := p; len(rest) > 0; {
		last := len(d.blocks) - 1
		if last < 0 || len(d.blocks[last]) == shareBlock {
			d.blocks = append(d.blocks, make([]byte, 0, shareBlock))
			last++
		}
		k := min(len(rest), shareBlock-len(d.blocks[last]))
		d.blocks[last] = append(d.blocks[last], rest[:k]...)
		rest = rest[k:]
	}
	d.n += int64(len(p))
	d.trimLocked()
	d.cond.Broadcast()
	return len(p), nil
}

// trimLocked drops the blocks no reader needs once the download outgrew
// the window, and sends readers too far behind to the stored copy.
func (d *sharedDownload) trimLocked() {
	if d.n <= d.window {
		return
	}
	low := d.n
	for r := range d.readers {
		if r.lagging {
			continue
		}
		if d.n-r.off > d.window {
			r.lagging = true // resumes from CouchDB once the download is stored
			continue
		}
		low = min(low, r.off)
	}
	for len(d.blocks) > 1 && d.base+shareBlock <= low {
		d.blocks[0] = nil
		d.blocks = d.blocks[1:]
		d.base += shareBlock
	}
}

// finish ends the download: verified and stored (nil), or failed (the
// readers' streams are cut short with err).
func (d *sharedDownload) finish(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.done, d.err = true, err
	close(d.finished)
	if !d.started {
		d.started = true
		close(d.ready)
	}
	d.cond.Broadcast()
}

// reader joins the download: the caller reads at its own pace and closes.
// ctx bounds a read of the stored copy.
func (d *sharedDownload) reader(ctx context.Context) *sharedReader {
	d.mu.Lock()
	defer d.mu.Unlock()
	r := &sharedReader{d: d, ctx: ctx, lagging: d.base > 0}
	d.readers[r] = struct{}{}
	// A client that hangs up while waiting for bytes stops waiting.
	r.stop = context.AfterFunc(ctx, func() {
		d.mu.Lock()
		d.cond.Broadcast()
		d.mu.Unlock()
	})
	return r
}

// sharedReader is one client's stream of a shared download.
type sharedReader struct {
	d       *sharedDownload
	ctx     context.Context
	off     int64
	lagging bool          // read the rest from the stored copy
	stored  io.ReadCloser // that copy, once opened
	closed  bool
	stop    func() bool // ends the wake-up on ctx
}

func (r *sharedReader) Read(p []byte) (int, error) {
	if r.stored != nil {
		n, err := r.stored.Read(p)
		r.off += int64(n)
		return n, err
	}
	d := r.d
	d.mu.Lock()
	for {
		if r.closed {
			d.mu.Unlock()
			return 0, io.ErrClosedPipe
		}
		if err := r.ctx.Err(); err != nil {
			d.mu.Unlock()
			return 0, err
		}
		readable := d.n
		if !d.done || d.err != nil {
			readable = max(d.n-holdBack, 0)
		}
		if !r.lagging && r.off < readable {
			rel := r.off - d.base
			b := d.blocks[rel/shareBlock][rel%shareBlock:]
			n := copy(p, b[:min(int64(len(b)), readable-r.off)])
			r.off += int64(n)
			d.mu.Unlock()
			return n, nil
		}
		if d.done {
			err := d.err
			d.mu.Unlock()
			if err != nil {
				return 0, err
			}
			if !r.lagging {
				return 0, io.EOF
			}
			return r.resume(p)
		}
		d.cond.Wait()
	}
}

// resume continues a reader that fell behind from the verified copy in
// CouchDB, skipping what it already read.
func (r *sharedReader) resume(p []byte) (int, error) {
	body, err := r.d.stored(r.ctx)
	if err != nil {
		return 0, registry.Wrap(registry.KindUnavailable, err, "read the stored tarball")
	}
	if _, err := io.CopyN(io.Discard, body, r.off); err != nil {
		body.Close()
		return 0, registry.Wrap(registry.KindUnavailable, err, "read the stored tarball")
	}
	r.stored = body
	return r.Read(p)
}

// Close leaves the download; it goes on for the others.
func (r *sharedReader) Close() error {
	d := r.d
	d.mu.Lock()
	r.closed = true
	r.stop()
	delete(d.readers, r)
	d.cond.Broadcast()
	d.mu.Unlock()
	if r.stored != nil {
		return r.stored.Close()
	}
	return nil
}
