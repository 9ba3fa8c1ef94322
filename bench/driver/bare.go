package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// bareEntry is one line of the bare server's manifest.json (bench/bare).
type bareEntry struct {
	Path            string `json:"path"`
	Corgi           bool   `json:"corgi"`
	File            string `json:"file"`
	ContentType     string `json:"content_type"`
	ContentEncoding string `json:"content_encoding"`
	ETag            string `json:"etag"`
}

// startBare records the bytes couchnpm answers for the requests of (a) and
// (c) (gzipped abbreviated packuments, the 20 KB tarballs), starts the bare
// server on them and returns it as a target. stop ends the process.
func startBare(d *dataset, cn *target) (*target, func(), error) {
	dir := filepath.Join(*flagWork, "bare-"+*flagStore)
	_ = os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	var list []bareEntry
	record := func(path string, corgiReq bool, headers ...string) error {
		st, h, body, err := do("GET", cn.Base+path, "", nil, headers...)
		if err != nil {
			return err
		}
		if st != 200 {
			return fmt.Errorf("couchnpm answered GET %s with %d", path, st)
		}
		file := fmt.Sprintf("%04d.body", len(list))
		if err := os.WriteFile(filepath.Join(dir, file), body, 0o644); err != nil {
			return err
		}
		list = append(list, bareEntry{Path: path, Corgi: corgiReq, File: file, ContentType: h.Get("Content-Type"),
			ContentEncoding: h.Get("Content-Encoding"), ETag: h.Get("ETag")})
		return nil
	}
	for _, p := range d.Packages {
		if err := record(pkgPath(cn, p.Name), true, "Accept", corgi, "Accept-Encoding", "gzip"); err != nil {
			return nil, nil, err
		}
		if err := record(tarballPath(cn, p.Name, p.Versions[0]), false, "Accept-Encoding", "identity"); err != nil {
			return nil, nil, err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), mustJSON(list), 0o644); err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(*flagBareBin, "-listen", "127.0.0.1:0", "-dir", dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	stop := func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			addr <- strings.TrimSpace(sc.Text())
		}
		close(addr)
	}()
	select {
	case a, ok := <-addr:
		if !ok || a == "" {
			stop()
			return nil, nil, fmt.Errorf("bench/bare printed no address")
		}
		logf("bare server at http://%s (pid %d, %d bodies)", a, cmd.Process.Pid, len(list))
		return &target{Label: "bare", Base: "http://" + a, PID: cmd.Process.Pid}, stop, nil
	case <-time.After(30 * time.Second):
		stop()
		return nil, nil, fmt.Errorf("bench/bare did not start within 30 s")
	}
}
