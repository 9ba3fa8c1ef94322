package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// version overrides the version read from the build information, for
// builds that know better (a release script):
//
//	go build -ldflags "-X main.version=v1.2.3" ./cmd/couchnpm
var version = ""

// buildVersion is what `couchnpm version` reports.
type buildVersion struct {
	Version  string // module version, the -X override, or "(devel)"
	Revision string // VCS revision, "" when unknown
	Time     string // commit time, "" when unknown
	Modified bool   // built from a work tree with uncommitted changes
	Go       string
}

// readVersion reads the version from the override and the build
// information the Go toolchain embeds (go build stamps the VCS revision
// when it builds inside a checkout).
func readVersion() buildVersion {
	v := buildVersion{Version: version, Go: runtime.Version()}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		if v.Version == "" {
			v.Version = "unknown"
		}
		return v
	}
	if v.Version == "" {
		v.Version = info.Main.Version
	}
	if v.Version == "" {
		v.Version = "(devel)"
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

// short is the version and revision in one word, for logs.
func (v buildVersion) short() string {
	if v.Revision == "" {
		return v.Version
	}
	rev := v.Revision[:min(12, len(v.Revision))]
	if v.Modified {
		rev += "-dirty"
	}
	if strings.Contains(v.Version, rev) || strings.Contains(v.Version, v.Revision[:min(12, len(v.Revision))]) {
		return v.Version
	}
	return v.Version + "+" + rev
}

// line is `couchnpm version`'s output.
func (v buildVersion) line() string {
	var parts []string
	if v.Revision != "" {
		r := "revision " + v.Revision
		if v.Modified {
			r += " (modified)"
		}
		parts = append(parts, r)
	}
	if v.Time != "" {
		parts = append(parts, "committed "+v.Time)
	}
	parts = append(parts, v.Go)
	return fmt.Sprintf("couchnpm %s, %s", v.Version, strings.Join(parts, ", "))
}

func versionLine() string { return readVersion().line() }
