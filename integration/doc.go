// Package integration holds couchnpm's end-to-end suite: it builds the couchnpm
// binary, runs it against a real CouchDB (or the PouchDB Server stand-in, started
// by the suite itself unless COUCHDB_URL is set) through an in-process TCP fault
// proxy, and drives it with the real npm CLI.
//
// The suite sits behind the integration build tag, so that go test ./...
// runs unit tests only. Run it with:
//
//	go test -tags integration -count=1 -timeout 30m ./integration/...
//
// Environment:
//
//	COUCHDB_URL, COUCHDB_USER, COUCHDB_PASSWORD  use this CouchDB instead of starting
//	                                             PouchDB Server (databases the suite
//	                                             creates are deleted afterwards)
//	COUCHNPM_IT_KEEP=1                           keep the temp folder (logs, npm configs)
//	COUCHNPM_BIN=/path/to/couchnpm               use this binary instead of building ./cmd/couchnpm
//	COUCHNPM_IT_COUCHDB_HOME=/path/to/release    an unpacked Apache CouchDB release: the cluster
//	                                             and two-site tests start their nodes from it
//	                                             (scripts/test.sh sets it in its CouchDB pass)
//
// All code lives in _test.go files; this file only carries the documentation.
package integration
