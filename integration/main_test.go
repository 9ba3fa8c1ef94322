//go:build integration

package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// suite is the state shared by all tests, set up once in TestMain.
var suite struct {
	repoRoot string
	tmp      string // removed at the end unless COUCHNPM_IT_KEEP=1
	bin      string // the couchnpm binary

	couchURL  string // the real CouchDB (or PouchDB Server); couchnpm reaches it through a faultProxy
	couchUser string
	couchPass string
	ownCouch  bool // true when the suite started PouchDB Server itself
	// couchDied reports, once PouchDB Server (started by the suite) has exited, its
	// exit status and log tail; "" while it runs or for an external CouchDB.
	couchDied func() string

	runID  string // distinguishes db prefixes of this run from other runs on a shared CouchDB
	prefix atomic.Int64
}

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) (code int) {
	// Flags are parsed by m.Run; testing.Short etc. are not needed here.
	var err error
	suite.repoRoot, err = repoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		return 1
	}
	suite.tmp, err = os.MkdirTemp("", "couchnpm-it-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		return 1
	}
	defer func() {
		if os.Getenv("COUCHNPM_IT_KEEP") == "1" {
			fmt.Fprintf(os.Stderr, "integration: temp folder kept: %s\n", suite.tmp)
			return
		}
		os.RemoveAll(suite.tmp)
	}()
	suite.runID = strconv.FormatInt(time.Now().Unix()%(36*36*36*36), 36)

	if err := buildBinary(); err != nil {
		fmt.Fprintln(os.Stderr, "integration: building couchnpm:", err)
		return 1
	}

	if u := os.Getenv("COUCHDB_URL"); u != "" {
		suite.couchURL = strings.TrimRight(u, "/")
		suite.couchUser = os.Getenv("COUCHDB_USER")
		suite.couchPass = os.Getenv("COUCHDB_PASSWORD")
		fmt.Fprintf(os.Stderr, "integration: using CouchDB at %s (COUCHDB_URL)\n", suite.couchURL)
	} else {
		stop, err := startPouchDB()
		if err != nil {
			fmt.Fprintln(os.Stderr, "integration: starting PouchDB Server:", err)
			return 1
		}
		defer stop()
	}
	return m.Run()
}

func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside the couchnpm module")
	}
	return filepath.Dir(mod), nil
}

func buildBinary() error {
	if b := os.Getenv("COUCHNPM_BIN"); b != "" { // a prebuilt binary (harness debugging)
		suite.bin = b
		return nil
	}
	suite.bin = filepath.Join(suite.tmp, "bin", "couchnpm")
	cmd := exec.Command("go", "build", "-o", suite.bin, "./cmd/couchnpm")
	cmd.Dir = suite.repoRoot
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v\n%s", err, out)
	}
	return nil
}

// randomHex returns n random bytes, hex-encoded.
func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startPouchDB installs PouchDB Server when needed (scripts/devdb.sh install), starts it
// in a temp folder on a free loopback port, creates an admin with a random password
// and returns a function that stops it.
func startPouchDB() (func(), error) {
	bin := filepath.Join(suite.repoRoot, "devdb", "node_modules", ".bin", "pouchdb-server")
	if _, err := os.Stat(bin); err != nil {
		// The script's install: the same flags (no sqlite3 compile) as scripts/run.sh.
		fmt.Fprintln(os.Stderr, "integration: installing PouchDB Server (scripts/devdb.sh install)...")
		cmd := exec.Command("bash", filepath.Join(suite.repoRoot, "scripts", "devdb.sh"), "install")
		cmd.Env = npmEnv(os.Getenv("HOME"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("scripts/devdb.sh install: %v\n%s", err, out)
		}
	}
	dir := filepath.Join(suite.tmp, "pouchdb")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "server.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--host", "127.0.0.1", "--port", strconv.Itoa(port))
	cmd.Dir = dir // it writes config.json, log.txt and its LevelDB folders to its CWD
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	tail := func() string {
		b, _ := os.ReadFile(logPath)
		if len(b) > 4000 {
			b = b[len(b)-4000:]
		}
		return string(b)
	}
	stop := func() {
		select {
		case <-exited:
			fmt.Fprintf(os.Stderr, "integration: PouchDB Server had exited before the end of the suite (%v); its log:\n%s\n", cmd.ProcessState, tail())
		default:
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(5 * time.Second):
				cmd.Process.Kill()
				<-exited
			}
		}
		logFile.Close()
	}

	suite.couchURL = fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(suite.couchURL + "/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		select {
		case <-exited:
			stop()
			return nil, fmt.Errorf("PouchDB Server exited during startup:\n%s", tail())
		default:
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("PouchDB Server not ready after 60s:\n%s", tail())
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Still in admin party: create the admin. A random password lets the suite check
	// that couchnpm never logs it.
	suite.couchUser = "admin"
	suite.couchPass = "adm" + randomHex(12)
	st, body, err := couchDo("PUT", "/_config/admins/"+suite.couchUser, mustJSON(suite.couchPass), false)
	if err != nil || st != 200 {
		stop()
		return nil, fmt.Errorf("creating the admin: status %d, %v: %s", st, err, body)
	}
	suite.ownCouch = true
	suite.couchDied = func() string {
		select {
		case <-exited:
			return fmt.Sprintf("%v; its log:\n%s", cmd.ProcessState, tail())
		default:
			return ""
		}
	}
	fmt.Fprintf(os.Stderr, "integration: PouchDB Server at %s (data in %s)\n", suite.couchURL, dir)
	return stop, nil
}

// couchDo sends a request straight to CouchDB (not through a fault proxy).
func couchDo(method, path string, body []byte, auth bool) (int, []byte, error) {
	return couchDoAt(suite.couchURL, method, path, body, auth)
}

// couchDoAt is couchDo against the CouchDB at base (a cluster node, a
// second site), with the suite's admin credentials.
func couchDoAt(base, method, path string, body []byte, auth bool) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if auth && suite.couchUser != "" {
		req.SetBasicAuth(suite.couchUser, suite.couchPass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// newPrefix returns a db prefix unique to this run and test: a lowercase letter, then
// lowercase letters/digits, all of the same length so that no prefix is a prefix of another.
func newPrefix() string {
	return fmt.Sprintf("t%s%03d", suite.runID, suite.prefix.Add(1))
}

// dropDatabases deletes the CouchDB databases whose names start with prefix.
func dropDatabases(t *testing.T, prefix string) {
	st, body, err := couchDo("GET", "/_all_dbs", nil, true)
	if err != nil || st != 200 {
		t.Logf("cleanup: listing databases: status %d, %v: %s", st, err, body)
		return
	}
	var dbs []string
	if err := json.Unmarshal(body, &dbs); err != nil {
		t.Logf("cleanup: listing databases: %v", err)
		return
	}
	for _, db := range dbs {
		if strings.HasPrefix(db, prefix) {
			if st, body, err := couchDo("DELETE", "/"+urlPathEscape(db), nil, true); err != nil || st >= 300 {
				t.Logf("cleanup: deleting %s: status %d, %v: %s", db, st, err, body)
			}
		}
	}
}

// urlPathEscape escapes a db name for a URL path (CouchDB wants "/" as %2F).
func urlPathEscape(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// dropUsers deletes the _users documents of the accounts named "*-<prefix>" (see
// registry.user); only needed on a shared CouchDB.
func dropUsers(t *testing.T, prefix string) {
	st, body, err := couchDo("GET", `/_users/_all_docs?startkey=%22org.couchdb.user%3A%22&endkey=%22org.couchdb.user%3A%EF%BF%B0%22`, nil, true)
	if err != nil || st != 200 {
		t.Logf("cleanup: listing _users: status %d, %v: %s", st, err, body)
		return
	}
	var all struct {
		Rows []struct {
			ID    string `json:"id"`
			Value struct {
				Rev string `json:"rev"`
			} `json:"value"`
		} `json:"rows"`
	}
	if err := json.Unmarshal(body, &all); err != nil {
		t.Logf("cleanup: listing _users: %v", err)
		return
	}
	for _, row := range all.Rows {
		if strings.HasSuffix(row.ID, "-"+prefix) {
			path := "/_users/" + urlPathEscape(row.ID) + "?rev=" + row.Value.Rev
			if st, body, err := couchDo("DELETE", path, nil, true); err != nil || st >= 300 {
				t.Logf("cleanup: deleting %s: status %d, %v: %s", row.ID, st, err, body)
			}
		}
	}
}
