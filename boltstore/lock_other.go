//go:build windows || plan9 || solaris || aix || android

package boltstore

import "errors"

// ErrLocked is returned by Lock when another process holds the file.
var ErrLocked = errors.New("another process holds it")

// Lock does nothing on this platform: bbolt's lock here is not a flock.
func Lock(string) (release func() error, err error) {
	return func() error { return nil }, nil
}
