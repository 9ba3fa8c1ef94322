// Package designdoc holds the registry's CouchDB design documents (views and validate_doc_update) and describes them for the installer.
package designdoc

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"strings"
)

//go:embed js/*.js
var jsFS embed.FS

// hashField is the body field that carries Doc.Hash in the stored design document.
const hashField = "couchnpm_hash"

// ID is the id of every design document this package installs.
const ID = "_design/couchnpm"

// Doc is one design document to install.
type Doc struct {
	DB   string         // which database: "packages", "mirror", "tokens" or "audit" (the role; the lead maps roles to real database names)
	ID   string         // e.g. "_design/couchnpm"
	Body map[string]any // the design document without _id/_rev, including a "couchnpm_hash" field
	Hash string         // hex sha256 over the canonical JSON of the body without couchnpm_hash; the same bytes give the same hash on every run
}

// packumentViews are the map-only views shared by the packages and mirror
// databases; the value is the file under js/ holding the map function.
var packumentViews = map[string]string{
	"byName":        "byName.map.js",
	"modified":      "modified.map.js",
	"byMaintainer":  "byMaintainer.map.js",
	"starredByUser": "starredByUser.map.js",
	"byKeyword":     "byKeyword.map.js",
	"search":        "search.map.js",
	"conflicts":     "conflicts.map.js",
	"largest":       "largest.map.js",
}

// All returns the design documents, in a stable order: packages, mirror, tokens, audit.
// Every call builds fresh maps, so callers may modify what they get.
func All() []Doc {
	return []Doc{
		newDoc("packages", map[string]any{
			"language":            "javascript",
			"views":               views(withView(packumentViews, "dependents", "dependents.map.js")),
			"validate_doc_update": source("packages_validate_doc_update.js"),
		}),
		newDoc("mirror", map[string]any{
			"language": "javascript",
			"views":    views(packumentViews),
		}),
		newDoc("tokens", map[string]any{
			"language": "javascript",
			"views":    views(map[string]string{"byUser": "tokens_byUser.map.js"}),
		}),
		newDoc("audit", map[string]any{
			"language":            "javascript",
			"validate_doc_update": source("audit_validate_doc_update.js"),
		}),
	}
}

func newDoc(db string, body map[string]any) Doc {
	h := hashBody(body)
	body[hashField] = h
	return Doc{DB: db, ID: ID, Body: body, Hash: h}
}

// withView is views plus one: the packages database has views the mirror
// does not need (dependents: the web UI lists private dependents only).
func withView(views map[string]string, name, file string) map[string]string {
	out := make(map[string]string, len(views)+1)
	for k, v := range views {
		out[k] = v
	}
	out[name] = file
	return out
}

func views(files map[string]string) map[string]any {
	v := make(map[string]any, len(files))
	for name, file := range files {
		v[name] = map[string]any{"map": source(file)}
	}
	return v
}

// source returns the embedded JavaScript function in js/file, trimmed of
// surrounding white space. The files are compiled in, so a missing one is a
// programming error.
func source(file string) string {
	b, err := jsFS.ReadFile("js/" + file)
	if err != nil {
		panic("designdoc: " + err.Error())
	}
	return strings.TrimSpace(string(b))
}

// hashBody returns the hex sha256 of the canonical JSON of body without the
// couchnpm_hash field. Canonical JSON here is encoding/json's output (object
// keys sorted, no insignificant white space) with HTML escaping turned off.
func hashBody(body map[string]any) string {
	b, err := canonicalJSON(withoutHash(body))
	if err != nil {
		panic("designdoc: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func withoutHash(body map[string]any) map[string]any {
	c := make(map[string]any, len(body))
	for k, v := range body {
		if k != hashField {
			c[k] = v
		}
	}
	return c
}

func canonicalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
