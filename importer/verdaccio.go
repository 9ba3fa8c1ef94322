package importer

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/couchnpm/couchnpm/registry"
)

// Verdaccio reads a Verdaccio 5 storage folder: one folder per package
// (scoped ones under @scope/), each with package.json (the packument
// Verdaccio keeps) and the package's .tgz files.
type Verdaccio struct {
	dir string
}

// NewVerdaccio reads the storage folder dir.
func NewVerdaccio(dir string) (*Verdaccio, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, errf("%s is not a folder", dir)
	}
	return &Verdaccio{dir: dir}, nil
}

// Names implements Source: every folder holding a package.json, at the
// top level or one level under a @scope folder. Hidden entries
// (.verdaccio-db.json, .sinopia-db.json) are Verdaccio's own.
func (v *Verdaccio) Names(_ context.Context) ([]string, error) {
	top, err := os.ReadDir(v.dir)
	if err != nil {
		return nil, err
	}
	var names []string
	has := func(rel string) bool {
		fi, err := os.Stat(filepath.Join(v.dir, rel, "package.json"))
		return err == nil && fi.Mode().IsRegular()
	}
	for _, e := range top {
		n := e.Name()
		if !e.IsDir() || strings.HasPrefix(n, ".") {
			continue
		}
		if strings.HasPrefix(n, "@") {
			inner, err := os.ReadDir(filepath.Join(v.dir, n))
			if err != nil {
				return nil, err
			}
			for _, p := range inner {
				if p.IsDir() && !strings.HasPrefix(p.Name(), ".") && has(filepath.Join(n, p.Name())) {
					names = append(names, n+"/"+p.Name())
				}
			}
			continue
		}
		if has(n) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names, nil
}

// folder is the package's folder; the name was checked to be a package
// name, so it cannot leave the storage folder.
func (v *Verdaccio) folder(name string) (string, error) {
	if err := registry.ValidateName(name); err != nil {
		return "", errf("%s", registry.ReasonOf(err))
	}
	return filepath.Join(v.dir, filepath.FromSlash(name)), nil
}

// Packument implements Source.
func (v *Verdaccio) Packument(_ context.Context, name string) (*Packument, error) {
	dir, err := v.folder(name)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(dir, "package.json"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var p Packument
	if err := json.NewDecoder(io.LimitReader(f, 256<<20)).Decode(&p); err != nil {
		return nil, errf("package.json: %v", err)
	}
	if p.Name != name {
		return nil, errf("package.json names %q, not %q", p.Name, name)
	}
	return &p, nil
}

// tarballFile names the file of version in the package folder: the
// _attachments entry Verdaccio made when it was published, else the last
// segment of dist.tarball. A version whose tarball Verdaccio cached from an
// uplink (_distfiles) is not a package published to it.
func (p *Packument) tarballFile(version string) (string, error) {
	for file, a := range p.Attachments {
		if a.Version == version {
			return file, nil
		}
	}
	tb, _, _ := dist(p.Versions[version])
	file := path.Base(tb)
	if u, err := url.Parse(tb); err == nil {
		file = path.Base(u.Path)
	}
	if _, cached := p.Distfiles[file]; cached {
		return "", errCachedUplink
	}
	if file == "" || file == "." || file == "/" || !strings.HasSuffix(file, ".tgz") {
		return "", errf("no tarball file for version %s", version)
	}
	return file, nil
}

// errCachedUplink marks a version Verdaccio only cached from an uplink.
var errCachedUplink = errors.New("cached by Verdaccio from an uplink, not published to it")

// Tarball implements Source.
func (v *Verdaccio) Tarball(_ context.Context, p *Packument, version string) ([]byte, error) {
	dir, err := v.folder(p.Name)
	if err != nil {
		return nil, err
	}
	file, err := p.tarballFile(version)
	if err != nil {
		return nil, err
	}
	if file != filepath.Base(file) || strings.HasPrefix(file, ".") {
		return nil, errf("unsafe tarball file name %q", file)
	}
	f, err := os.Open(filepath.Join(dir, file))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errf("tarball %s is missing from the storage folder", file)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readBounded(f)
}

func readBounded(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxTarball+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxTarball {
		return nil, errf("tarball is larger than %d MiB", maxTarball>>20)
	}
	return b, nil
}

// HtpasswdEntry is one account of an htpasswd file.
type HtpasswdEntry struct {
	Line int
	Name string
	Hash string
}

// ParseHtpasswd reads an htpasswd file as Verdaccio writes it
// ("name:hash" or "name:hash:comment", one per line; # comments and empty
// lines are ignored). Malformed lines come back as errors naming the line,
// never its content (it may hold a password).
func ParseHtpasswd(r io.Reader) ([]HtpasswdEntry, []error) {
	var out []HtpasswdEntry
	var bad []error
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, rest, ok := strings.Cut(line, ":")
		hash, _, _ := strings.Cut(rest, ":")
		if !ok || name == "" || hash == "" {
			bad = append(bad, errf("htpasswd line %d: not name:hash", n))
			continue
		}
		out = append(out, HtpasswdEntry{Line: n, Name: name, Hash: hash})
	}
	if err := sc.Err(); err != nil {
		bad = append(bad, errf("htpasswd line %d: %v", n+1, err))
	}
	return out, bad
}

// HtpasswdFromConfig finds the htpasswd file a Verdaccio config.yaml
// names (auth: htpasswd: file:), relative to the config's folder as
// Verdaccio resolves it; "" when it names none. Only this key is read: a
// line-based reading of the YAML Verdaccio's own files use, not a YAML
// parser.
func HtpasswdFromConfig(configPath string) (string, error) {
	data, err := os.ReadFile(configPath)
	if err != nil {
		return "", err
	}
	section := []string{} // the keys open at each indent
	indents := []int{}
	for _, raw := range strings.Split(string(data), "\n") {
		line := strings.TrimRight(raw, " \t\r")
		trimmed := strings.TrimLeft(line, " ")
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		indent := len(line) - len(trimmed)
		for len(indents) > 0 && indents[len(indents)-1] >= indent {
			indents, section = indents[:len(indents)-1], section[:len(section)-1]
		}
		key, val, ok := strings.Cut(trimmed, ":")
		if !ok {
			continue
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		if len(section) == 2 && section[0] == "auth" && section[1] == "htpasswd" && key == "file" {
			if i := strings.Index(val, " #"); i >= 0 {
				val = strings.TrimSpace(val[:i])
			}
			val = strings.Trim(val, `"'`)
			if val == "" {
				return "", nil
			}
			if !filepath.IsAbs(val) {
				val = filepath.Join(filepath.Dir(configPath), val)
			}
			return val, nil
		}
		if val == "" {
			indents, section = append(indents, indent), append(section, key)
		}
	}
	return "", nil
}
