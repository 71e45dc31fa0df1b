package boltstore

import (
	"encoding/base64"
	"errors"
)

var errBadCursor = errors.New("invalid cursor: pass the next_cursor of the previous page unchanged")

// ErrBadCursor is returned by List for a cursor it did not make.
var ErrBadCursor = errBadCursor

func encodeCursor(k []byte) string { return base64.RawURLEncoding.EncodeToString(k) }

func decodeCursor(s string) ([]byte, error) {
	k, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(k) < 9 {
		return nil, errBadCursor
	}
	return k, nil
}
