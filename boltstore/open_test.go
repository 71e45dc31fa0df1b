package boltstore_test

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/hindsight-sre/hindsight/boltstore"
)

var (
	validOnce  sync.Once
	validBytes []byte
)

// validFile returns a state file with some hundred events folded into it,
// deep enough to have branch pages, and its page size.
func validFile(t *testing.T) (string, int) {
	t.Helper()
	validOnce.Do(func() {
		path := filepath.Join(t.TempDir(), boltstore.FileName)
		populate(t, path, 600, 5, 64)
		validBytes, _ = os.ReadFile(path)
	})
	path := filepath.Join(t.TempDir(), boltstore.FileName)
	if err := os.WriteFile(path, validBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	return path, db.Info().PageSize
}

// pageOf finds the first page of type typ ("branch", "leaf") that is in
// use and has at least two elements.
func pageOf(t *testing.T, path, typ string) int {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, PreLoadFreelist: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	id := -1
	db.View(func(tx *bolt.Tx) error {
		for i := 2; ; i++ {
			p, err := tx.Page(i)
			if err != nil || p == nil {
				return err
			}
			if p.Type == typ && p.Count >= 2 {
				id = i
				return nil
			}
		}
	})
	if id < 0 {
		t.Fatalf("no %s page in %s", typ, path)
	}
	return id
}

func patch(t *testing.T, path string, off int64, f func(byte) byte) {
	t.Helper()
	fh, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var b [1]byte
	if _, err := fh.ReadAt(b[:], off); err != nil {
		t.Fatal(err)
	}
	b[0] = f(b[0])
	if _, err := fh.WriteAt(b[:], off); err != nil {
		t.Fatal(err)
	}
}

func flip(b byte) byte { return b ^ 0x40 }

// metaTxids returns the transaction IDs in meta pages 0 and 1.
func metaTxids(t *testing.T, path string, pageSize int) (uint64, uint64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const txidOff = 16 + 48
	return binary.NativeEndian.Uint64(b[txidOff:]), binary.NativeEndian.Uint64(b[pageSize+txidOff:])
}

func TestOpenRefusesDamagedFiles(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string, pageSize int)
		want   string // in the error: what is wrong
	}{
		{"random bytes", func(t *testing.T, path string, _ int) {
			b := make([]byte, 64<<10)
			rand.Read(b)
			os.WriteFile(path, b, 0o600)
		}, "not a readable bbolt file"},
		{"a few bytes", func(t *testing.T, path string, _ int) {
			os.WriteFile(path, []byte("hindsight"), 0o600)
		}, "too short"},
		{"truncated to half its size", func(t *testing.T, path string, _ int) {
			fi, _ := os.Stat(path)
			os.Truncate(path, fi.Size()/2)
		}, "truncated"},
		{"truncated to one page", func(t *testing.T, path string, pageSize int) {
			os.Truncate(path, int64(pageSize))
		}, ""},
		{"a flipped byte in both meta pages", func(t *testing.T, path string, pageSize int) {
			patch(t, path, 16+40, flip)
			patch(t, path, int64(pageSize)+16+40, flip)
		}, "both meta pages are damaged"},
		{"a flipped magic number in both meta pages", func(t *testing.T, path string, pageSize int) {
			patch(t, path, 16, flip)
			patch(t, path, int64(pageSize)+16, flip)
		}, ""},
		{"a flipped byte in a branch page's child pointer", func(t *testing.T, path string, pageSize int) {
			// Byte 3 of the first element's page ID: bbolt would follow
			// it terabytes past its memory map, and even tx.Check dies
			// of the fault ("unexpected fault address", not a panic).
			id := pageOf(t, path, "branch")
			patch(t, path, int64(id*pageSize)+16+8+3, flip)
		}, "outside the file"},
		{"a flipped top byte in a branch page's child pointer", func(t *testing.T, path string, pageSize int) {
			id := pageOf(t, path, "branch")
			patch(t, path, int64(id*pageSize)+16+8+7, flip)
		}, "outside the file"},
		{"a flipped byte in a leaf page's type", func(t *testing.T, path string, pageSize int) {
			id := pageOf(t, path, "leaf")
			patch(t, path, int64(id*pageSize)+8, flip)
		}, "has type"},
		{"a flipped byte in a leaf page's element count", func(t *testing.T, path string, pageSize int) {
			id := pageOf(t, path, "leaf")
			patch(t, path, int64(id*pageSize)+11, func(b byte) byte { return b ^ 0x80 })
		}, "more than it holds"},
		{"a damaged first key on a leaf page", func(t *testing.T, path string, pageSize int) {
			id := pageOf(t, path, "leaf")
			b, _ := os.ReadFile(path)
			elem := id*pageSize + 16
			pos := int(binary.NativeEndian.Uint32(b[elem+4:]))
			patch(t, path, int64(elem+pos), func(byte) byte { return 0xFF })
		}, "out of order"},
		{"an unknown schema version", func(t *testing.T, path string, _ int) {
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("meta")).Put([]byte("schema"), []byte("99")) })
			db.Close()
		}, `schema version "99"`},
		{"a bbolt file that is not Hindsight's", func(t *testing.T, path string, _ int) {
			os.Remove(path)
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("widgets")); return err })
			db.Close()
		}, "lacks the buckets"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, pageSize := validFile(t)
			tc.damage(t, path, pageSize)
			s, err := boltstore.Open(path)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded, want an error")
			}
			msg := err.Error()
			for _, want := range []string{path, tc.want, "move it aside and run `hindsight rebuild --data-dir " + filepath.Dir(path) + "`"} {
				if !strings.Contains(msg, want) {
					t.Errorf("error lacks %q:\n%s", want, msg)
				}
			}
			if !errors.Is(err, boltstore.ErrNeedsRebuild) {
				t.Errorf("error does not match ErrNeedsRebuild: %v", err)
			}
			t.Log(msg)
		})
	}
}

// One damaged meta page is what a crash in the middle of writing it
// leaves, and what bbolt's two meta pages are for: it opens at the other
// one. When that is the older one, the last commit is undone with the
// stream position it carried, so the correlator folds those events again.
func TestOpenRecoversFromOneDamagedMetaPage(t *testing.T) {
	for _, which := range []string{"older", "newer"} {
		t.Run(which, func(t *testing.T) {
			path, pageSize := validFile(t)
			s, err := boltstore.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			wantSeq, _ := s.LastSeq()
			before, _ := s.Counts()
			s.Close()
			t0, t1 := metaTxids(t, path, pageSize)
			page := 0
			if (which == "newer") == (t1 > t0) {
				page = 1
			}
			patch(t, path, int64(page*pageSize)+16+40, flip)

			s, err = boltstore.Open(path)
			if err != nil {
				t.Fatalf("Open with the %s meta page damaged: %v", which, err)
			}
			defer s.Close()
			seq, _ := s.LastSeq()
			after, _ := s.Counts()
			if which == "older" && (seq != wantSeq || after != before) {
				t.Fatalf("seq %d, counts %+v; want %d, %+v", seq, after, wantSeq, before)
			}
			if seq > wantSeq || seq == 0 || after.Events == 0 {
				t.Fatalf("seq %d (was %d), counts %+v: want the previous commit's state", seq, wantSeq, after)
			}
			if _, _, err := s.List(context.Background(), boltstore.ListOptions{}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// An empty file is a new state file: bbolt writes its first pages into
// it, and it is what a crash right after creating the file leaves.
func TestOpenTreatsAnEmptyFileAsNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), boltstore.FileName)
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if c, _ := s.Counts(); c != (boltstore.Counts{}) {
		t.Fatalf("counts = %+v, want zero", c)
	}
	if seq, _ := s.LastSeq(); seq != 0 {
		t.Fatalf("LastSeq = %d, want 0: the correlator folds the stream from its start", seq)
	}
}

func TestCheckAcceptsValidFiles(t *testing.T) {
	path, _ := validFile(t)
	if err := boltstore.CheckPath(path); err != nil {
		t.Fatal(err)
	}
	// And after more commits, deletes and merges on the same file.
	s, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	populate(t, path, 900, 7, 100)
	if err := boltstore.CheckPath(path); err != nil {
		t.Fatal(err)
	}
}

func TestRebuildCommand(t *testing.T) {
	for _, tc := range []struct{ path, want string }{
		{"/var/lib/hindsight/hindsight.db", "hindsight rebuild --data-dir /var/lib/hindsight"},
		{"/data/my dir/hindsight.db", "hindsight rebuild --data-dir '/data/my dir'"},
		{"/tmp/x/state.db", "hindsight rebuild --data-dir /tmp/x --out /tmp/x/state.db"},
	} {
		if got := boltstore.RebuildCommand(tc.path); got != tc.want {
			t.Errorf("RebuildCommand(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
}

func TestLock(t *testing.T) {
	s, path := openStore(t)
	if _, err := boltstore.Lock(path); !errors.Is(err, boltstore.ErrLocked) {
		t.Fatalf("Lock of an open state file: %v, want ErrLocked", err)
	}
	s.Close()
	release, err := boltstore.Lock(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := boltstore.Lock(path); !errors.Is(err, boltstore.ErrLocked) {
		t.Fatalf("second Lock: %v, want ErrLocked", err)
	}
	release()
	if release, err := boltstore.Lock(path + ".missing"); err != nil || release() != nil {
		t.Fatalf("Lock of a missing file: %v", err)
	}
}
