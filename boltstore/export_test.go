package boltstore

// CheckPath exposes the structural check to the tests.
var CheckPath = checkPath

// KeepListsApart makes every list of n entries or more kept apart, for
// the rest of t.
func KeepListsApart(t interface{ Cleanup(func()) }, n int) {
	old := minApart
	minApart = n
	t.Cleanup(func() { minApart = old })
}
