// Package registry holds the npm registry's rules: package names and
// versions, the checks on request bodies (strictjson.go), the packument
// model, publish, update and unpublish, the merge of conflicting revisions,
// the abbreviated ("corgi") form, access, users, tokens and web logins,
// and the takeover guard. Its errors carry a Kind (errors.go) that the
// handlers package turns into a status.
//
// It talks to storage only through small interfaces declared beside the
// code that uses them (PackumentStore and Mirror in service.go, UserStore
// and TokenStore in users.go, ConflictStore in resolve.go, and so on),
// which the couch and replication packages implement; its logic is tested
// without CouchDB.
package registry
