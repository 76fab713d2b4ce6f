package sqlstore

// Query returns the text of the statement name as s runs it, for the tests
// of package sqlstore_test.
func Query(s *Store, name string) string { return s.script.queries[name] }
