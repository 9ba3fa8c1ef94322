package replication

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// The client that started a download gets all bytes but the last holdBack
// while it runs, the rest only after verification, and a cut stream when
// it fails.
func TestLeaderStream(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), (3*holdBack)/16+7)
	cases := []struct {
		name     string
		err      error
		wantAll  bool
		wantFail bool
	}{
		{name: "verified download arrives whole", wantAll: true},
		{name: "failed verification never arrives whole", err: errors.New("integrity mismatch"), wantFail: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newLeaderStream()
			body := s.take()
			got := make(chan []byte, 1)
			readErr := make(chan error, 1)
			go func() {
				b, err := io.ReadAll(body)
				got <- b
				readErr <- err
			}()
			for off := 0; off < len(data); off += 1000 {
				end := min(off+1000, len(data))
				if n, err := s.Write(data[off:end]); err != nil || n != end-off {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			s.finish(tc.err)
			b, err := <-got, <-readErr
			if tc.wantAll && (err != nil || !bytes.Equal(b, data)) {
				t.Fatalf("got %d bytes, err %v; want all %d", len(b), err, len(data))
			}
			if tc.wantFail {
				if err == nil {
					t.Fatal("the cut stream ended without an error")
				}
				if len(b) != len(data)-holdBack {
					t.Fatalf("the client got %d bytes before the cut, want all but the last %d (%d)", len(b), holdBack, len(data)-holdBack)
				}
			}
		})
	}
}

// A client that leaves does not stop the download: writes keep succeeding.
func TestLeaderStreamClientGone(t *testing.T) {
	s := newLeaderStream()
	s.take().Close()
	for range 10 {
		if n, err := s.Write(make([]byte, holdBack)); err != nil || n != holdBack {
			t.Fatalf("Write after the client left = %d, %v", n, err)
		}
	}
	s.finish(nil)
}
