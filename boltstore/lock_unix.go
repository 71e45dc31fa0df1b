//go:build !windows && !plan9 && !solaris && !aix && !android

package boltstore

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// ErrLocked is returned by Lock when another process holds the file.
var ErrLocked = errors.New("another process holds it")

// Lock takes the lock bbolt takes on a state file (an exclusive flock),
// without opening it as a database, so it works on a damaged file too.
// While it is held, no Hindsight can open the file: Open fails after its
// timeout saying another process holds it. Lock fails at once, with
// ErrLocked, when another process holds the file. A file that does not
// exist is not locked: Lock returns a release that does nothing.
func Lock(path string) (release func() error, err error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return func() error { return nil }, nil
	}
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock %s: %w", path, ErrLocked)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f.Close, nil
}
