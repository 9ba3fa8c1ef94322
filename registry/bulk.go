package registry

// BulkResult is the outcome of one document in a batch write: its new
// revision, or why it was not written (an error carrying its kind).
type BulkResult struct {
	ID  string
	Rev string
	Err error
}
