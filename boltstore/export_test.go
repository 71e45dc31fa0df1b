package boltstore

// CheckPath exposes the structural check to the tests.
var CheckPath = checkPath
