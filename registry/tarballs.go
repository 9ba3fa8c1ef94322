package registry

import (
	"bytes"
	"crypto/md5" //nolint:gosec // CouchDB's attachment digest, not a security boundary
	"encoding/base64"
	"io"
	"strings"
)

// TarballCache keeps the bytes of hot tarballs by their digest (package
// cache). Tarball bytes are immutable under a digest; who may have them is
// decided by the packument, read on every request before the cache is
// asked.
type TarballCache interface {
	// Get returns the bytes kept under digest (read only).
	Get(digest string) ([]byte, bool)
	// Fits reports whether a tarball of size bytes is kept at all.
	Fits(size int64) bool
	// Put keeps data under digest.
	Put(digest string, data []byte)
}

// tarballDigest is the form of a CouchDB attachment digest shared by the
// attachment stub ("md5-<base64>") and the attachment's ETag ("<base64>"),
// so that the ETag of a response does not depend on which one it came from.
func tarballDigest(d string) string { return strings.TrimPrefix(d, "md5-") }

// knownTarball answers a tarball request from what the packument p (just
// read and checked for access) says of version's tarball, without asking
// CouchDB: a HEAD request gets the stub's size and digest, a GET the bytes
// when the tarball cache holds them. nil when CouchDB must be asked (no
// stub, an unpublished version, a cold cache).
func (s *Service) knownTarball(p *Packument, version string, head bool) *Tarball {
	if p == nil {
		return nil
	}
	stub, ok := p.Attachments[TarballName(p.Name, version)]
	if _, published := p.Versions[version]; !ok || !published || stub.Digest == "" || stub.Length <= 0 {
		return nil
	}
	digest := tarballDigest(stub.Digest)
	if head {
		return &Tarball{Size: stub.Length, Digest: digest}
	}
	if s.tarballs == nil {
		return nil
	}
	data, ok := s.tarballs.Get(digest)
	if !ok || int64(len(data)) != stub.Length {
		return nil
	}
	return &Tarball{Size: stub.Length, Digest: digest, Data: data}
}

// keepTarball normalizes t's digest and, when the tarball is worth
// caching, has its stream fill the cache as the client reads it: a miss
// costs the one CouchDB GET that serves it.
func (s *Service) keepTarball(t *Tarball) {
	t.Digest = tarballDigest(t.Digest)
	if s.tarballs == nil || t.Body == nil || t.Digest == "" || !s.tarballs.Fits(t.Size) {
		return
	}
	if _, err := base64.StdEncoding.DecodeString(t.Digest); err != nil {
		return // not an md5 we can check
	}
	t.Body = &fillingReader{ReadCloser: t.Body, cache: s.tarballs, digest: t.Digest, size: t.Size,
		buf: bytes.NewBuffer(make([]byte, 0, t.Size)), sum: md5.New()} //nolint:gosec
}

// fillingReader passes a tarball stream through and, when it ended with
// exactly the promised bytes whose md5 is the digest, keeps them in the
// cache: a broken or foreign stream never lands there.
type fillingReader struct {
	io.ReadCloser
	cache  TarballCache
	digest string
	size   int64
	buf    *bytes.Buffer
	sum    interface {
		io.Writer
		Sum([]byte) []byte
	}
	done bool
}

func (f *fillingReader) Read(p []byte) (int, error) {
	n, err := f.ReadCloser.Read(p)
	if f.done {
		return n, err
	}
	if n > 0 {
		if int64(f.buf.Len()+n) > f.size {
			f.done = true // more than promised: keep nothing
			f.buf = nil
			return n, err
		}
		f.buf.Write(p[:n])
		_, _ = f.sum.Write(p[:n])
	}
	if err == io.EOF {
		f.done = true
		if int64(f.buf.Len()) == f.size && base64.StdEncoding.EncodeToString(f.sum.Sum(nil)) == f.digest {
			f.cache.Put(f.digest, f.buf.Bytes())
		}
		f.buf = nil
	}
	return n, err
}
