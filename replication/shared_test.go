package replication

import (
	"bytes"
	"context"
	"crypto/md5" //nolint:gosec
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/couchnpm/couchnpm/registry"
)

func writeAll(t *testing.T, d *sharedDownload, data []byte) {
	t.Helper()
	for off := 0; off < len(data); off += 1000 {
		end := min(off+1000, len(data))
		if n, err := d.Write(data[off:end]); err != nil || n != end-off {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
}

// Every client gets all bytes but the last holdBack while the download
// runs, the rest only after verification, and a cut stream when it fails.
func TestSharedDownloadHoldBack(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), (3*holdBack)/16+7)
	for _, fail := range []bool{false, true} {
		t.Run(fmt.Sprint("failed=", fail), func(t *testing.T) {
			d := newSharedDownload(0, nil)
			d.start(int64(len(data)))
			r := d.reader(context.Background())
			got := make(chan []byte, 1)
			readErr := make(chan error, 1)
			go func() {
				b, err := io.ReadAll(r)
				got <- b
				readErr <- err
			}()
			writeAll(t, d, data)
			var ferr error
			if fail {
				ferr = errors.New("integrity mismatch")
			}
			d.finish(ferr)
			b, err := <-got, <-readErr
			if !fail && (err != nil || !bytes.Equal(b, data)) {
				t.Fatalf("got %d bytes, err %v; want all %d", len(b), err, len(data))
			}
			if fail && (err == nil || len(b) != len(data)-holdBack) {
				t.Fatalf("the cut stream: %d bytes, err %v; want all but the last %d, and an error", len(b), err, holdBack)
			}
		})
	}
}

// The writer never waits for a reader: one that reads nothing does not
// hold the download or the others, and within the window it reads
// everything from memory later; memory stays within the window.
func TestSharedDownloadSlowReader(t *testing.T) {
	const window = 8 * shareBlock
	data := make([]byte, 5*window+123)
	for i := range data {
		data[i] = byte(i * 7)
	}
	var storedOpens int
	d := newSharedDownload(window, func(context.Context) (io.ReadCloser, error) {
		storedOpens++
		return io.NopCloser(bytes.NewReader(data)), nil
	})
	d.start(int64(len(data)))
	slow := d.reader(context.Background())
	fast := d.reader(context.Background())
	fastGot := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(fast)
		fastGot <- b
	}()
	writeAll(t, d, data) // returns although slow has read nothing
	d.mu.Lock()
	held := int64(len(d.blocks)) * shareBlock
	d.mu.Unlock()
	if held > window+2*shareBlock {
		t.Errorf("%d bytes held for the slow reader, window %d", held, window)
	}
	d.finish(nil)
	if b := <-fastGot; !bytes.Equal(b, data) {
		t.Fatalf("fast reader: %d bytes", len(b))
	}
	// The slow one fell behind the window: it reads from the stored copy
	// (so may the fast one, when the writer outran it).
	before := storedOpens
	b, err := io.ReadAll(slow)
	if err != nil || !bytes.Equal(b, data) || storedOpens != before+1 {
		t.Fatalf("slow reader: %d bytes, %v, %d stored opens", len(b), err, storedOpens-before)
	}
	// A reader that joins after the start was dropped does too.
	late := d.reader(context.Background())
	if b, err := io.ReadAll(late); err != nil || !bytes.Equal(b, data) {
		t.Fatalf("late reader: %d bytes, %v", len(b), err)
	}
	_ = slow.Close()
	_ = late.Close()
}

// A client that hangs up while waiting stops waiting.
func TestSharedDownloadReaderCancel(t *testing.T) {
	d := newSharedDownload(0, nil)
	d.start(-1)
	ctx, cancel := context.WithCancel(context.Background())
	r := d.reader(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := r.Read(make([]byte, 10))
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Read after cancel: %v", err)
	}
	_ = r.Close()
}

// attachDocs is a DocStore that keeps attachments, with CouchDB's md5
// digests, for the mirror's tarball cache.
type attachDocs struct {
	memDocStore
	mu    sync.Mutex
	files map[string][]byte
	opens int
}

func (a *attachDocs) PutAttachment(ctx context.Context, id, rev, file, ct string, body io.Reader) (string, error) {
	b, err := io.ReadAll(body)
	if err != nil {
		return "", err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.files[id] = b
	return "1-x", nil
}

func (a *attachDocs) OpenAttachment(_ context.Context, id, _ string) (*registry.Tarball, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	b, ok := a.files[id]
	if !ok {
		return nil, registry.E(registry.KindNotFound, "not_found")
	}
	a.opens++
	return &registry.Tarball{Body: io.NopCloser(bytes.NewReader(b)), Size: int64(len(b))}, nil
}

func (a *attachDocs) StatAttachment(_ context.Context, id, _ string) (*registry.Tarball, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	b, ok := a.files[id]
	if !ok {
		return nil, registry.E(registry.KindNotFound, "not_found")
	}
	sum := md5.Sum(b) //nolint:gosec
	return &registry.Tarball{Size: int64(len(b)), Digest: "md5-" + base64.StdEncoding.EncodeToString(sum[:])}, nil
}

func (a *attachDocs) Copy(_ context.Context, from, to string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.files[to] = a.files[from]
	return nil
}

func (a *attachDocs) Delete(_ context.Context, id, _ string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.files, id)
	return nil
}

// The slow-first-client test: the client whose request started a mirrored
// download holds its reads; a client that joined gets the whole verified
// tarball meanwhile, and so does a third that asks while the first still
// holds. Then the first reads the same bytes. The signal is the order of
// events, not time: before the fix, the joined client waited for the first.
func TestMirrorSlowFirstClient(t *testing.T) {
	for _, tc := range []struct {
		name   string
		window int64
	}{
		{"within the window: every client reads from memory", 0},
		{"beyond the window: the slow client resumes from CouchDB", 4 * shareBlock},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tgz := bytes.Repeat([]byte("couchnpm tarball "), 3<<20/17) // 3 MB
			sum := sha512.Sum512(tgz)
			integrity := "sha512-" + base64.StdEncoding.EncodeToString(sum[:])
			var srv *httptest.Server
			srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/slowpkg":
					fmt.Fprintf(w, `{"_id":"slowpkg","name":"slowpkg","dist-tags":{"latest":"1.0.0"},"versions":{"1.0.0":{"name":"slowpkg","version":"1.0.0","dist":{"tarball":%q,"integrity":%q}}}}`,
						srv.URL+"/slowpkg/-/slowpkg-1.0.0.tgz", integrity)
				case "/slowpkg/-/slowpkg-1.0.0.tgz":
					w.Header().Set("Content-Length", fmt.Sprint(len(tgz)))
					_, _ = w.Write(tgz)
				default:
					http.NotFound(w, r)
				}
			}))
			t.Cleanup(srv.Close)
			up, err := NewUpstream(UpstreamConfig{Registry: srv.URL, Timeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			docs := &attachDocs{memDocStore: memDocStore{docs: map[string][]byte{}}, files: map[string][]byte{}}
			m := newTestMirror(t, MirrorConfig{Mode: ModeOnDemand, Tarballs: docs, Upstream: up})
			m.window = tc.window
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // a bound on failure only
			defer cancel()

			first, err := m.Tarball(ctx, "slowpkg", "1.0.0", false)
			if err != nil {
				t.Fatal(err)
			}
			// The first client holds its reads: it reads nothing until the end.
			for i, who := range []string{"joined", "later"} {
				other, err := m.Tarball(ctx, "slowpkg", "1.0.0", false)
				if err != nil {
					t.Fatalf("%s: %v", who, err)
				}
				b, err := io.ReadAll(other.Body)
				other.Body.Close()
				if err != nil || !bytes.Equal(b, tgz) {
					t.Fatalf("%s client (%d): %d bytes, %v, while the first held its reads", who, i, len(b), err)
				}
			}
			b, err := io.ReadAll(first.Body)
			first.Body.Close()
			if err != nil || !bytes.Equal(b, tgz) {
				t.Fatalf("first client: %d bytes, %v", len(b), err)
			}
			if tc.window > 0 && docs.opens == 0 {
				t.Error("the slow client did not resume from the stored copy")
			}
		})
	}
}
