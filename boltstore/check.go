package boltstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// The bbolt file format (version 2), as far as the check needs it. The
// check reads the file with ReadAt and bounds-checks every offset, so a
// damaged file gives an error, never a fault: bbolt itself follows page
// IDs into its memory map unchecked, and tx.Check runs in a goroutine of
// its own, where a page ID that points past the map kills the process
// (a fault in another goroutine cannot be recovered).
const (
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	pageHeaderSize = 16 // id u64, flags u16, count u16, overflow u32
	elemSize       = 16 // branch: pos u32, ksize u32, pgid u64; leaf: flags u32, pos u32, ksize u32, vsize u32
	metaSize       = 64 // magic, version, pageSize, flags u32; root, sequence, freelist, pgid, txid, checksum u64
	noFreelist     = ^uint64(0)

	flagBranch   = 0x01
	flagLeaf     = 0x02
	flagFreelist = 0x10
	bucketLeaf   = 0x01
)

var ne = binary.NativeEndian // bbolt writes its structs in the machine's byte order

type boltMeta struct {
	pageSize uint32
	root     uint64
	freelist uint64
	pgid     uint64 // high-water mark: pages [0, pgid) are in use or free
	txid     uint64
}

// parseMeta reads the meta at the start of b (after the page header) and
// says what is wrong with it, if anything.
func parseMeta(b []byte) (boltMeta, error) {
	if len(b) < pageHeaderSize+metaSize {
		return boltMeta{}, errors.New("too short")
	}
	m := b[pageHeaderSize : pageHeaderSize+metaSize]
	switch {
	case ne.Uint32(m[0:]) != boltMagic:
		return boltMeta{}, errors.New("no bbolt magic number")
	case ne.Uint32(m[4:]) != boltVersion:
		return boltMeta{}, fmt.Errorf("bbolt format version %d, not %d", ne.Uint32(m[4:]), boltVersion)
	}
	h := fnv.New64a()
	h.Write(m[:56])
	if h.Sum64() != ne.Uint64(m[56:]) {
		return boltMeta{}, errors.New("checksum mismatch")
	}
	return boltMeta{pageSize: ne.Uint32(m[8:]), root: ne.Uint64(m[16:]), freelist: ne.Uint64(m[32:]),
		pgid: ne.Uint64(m[40:]), txid: ne.Uint64(m[48:])}, nil
}

// checkFile verifies the structure of the bbolt file f (size bytes), as
// bbolt's tx.Check does, without mapping it: both meta pages, the file
// size against the high-water mark, every page reachable from the root
// bucket (in bounds, referenced once, not free, of the right type, keys
// in order and within their parent's range), the freelist, and that every
// page below the high-water mark is either in use or free. It does not
// look inside values: bbolt keeps no checksum of data pages, so a flipped
// byte inside a stored value is invisible to any structural check.
func checkFile(f io.ReaderAt, size int64) error {
	var first [4096]byte
	n, _ := f.ReadAt(first[:], 0)
	m0, err0 := parseMeta(first[:n])
	pageSize := int64(m0.pageSize)
	if err0 != nil {
		// Find the second meta page the way bbolt does: at every
		// plausible page size.
		for sz := int64(1024); sz <= 1<<24 && sz+pageHeaderSize+metaSize <= size; sz <<= 1 {
			var buf [pageHeaderSize + metaSize]byte
			if _, err := f.ReadAt(buf[:], sz); err != nil {
				break
			}
			if m, err := parseMeta(buf[:]); err == nil && int64(m.pageSize) == sz {
				pageSize = sz
				break
			}
		}
		if pageSize == 0 {
			if size < 2*1024 {
				return fmt.Errorf("it is %d bytes long, too short for a bbolt file (truncated?)", size)
			}
			if n >= pageHeaderSize+metaSize && ne.Uint32(first[pageHeaderSize:]) == boltMagic {
				// Page 0 is a damaged meta page: report page 1 at the
				// page size it names.
				ps := int64(ne.Uint32(first[pageHeaderSize+8:]))
				var buf [pageHeaderSize + metaSize]byte
				if ps >= 512 && ps <= 1<<24 {
					if _, err := f.ReadAt(buf[:], ps); err == nil {
						_, err1 := parseMeta(buf[:])
						return fmt.Errorf("both meta pages are damaged (page 0: %v; page 1: %v)", err0, err1)
					}
				}
			}
			return fmt.Errorf("it is not a readable bbolt file: the first meta page has %v and no valid second one was found", err0)
		}
	}
	if pageSize < 512 || pageSize > 1<<24 || pageSize&(pageSize-1) != 0 {
		return fmt.Errorf("its meta page gives an impossible page size %d", pageSize)
	}
	buf := make([]byte, pageHeaderSize+metaSize)
	var m1 boltMeta
	var err1 error
	if _, err := f.ReadAt(buf, pageSize); err != nil {
		err1 = fmt.Errorf("cannot be read: %v", err)
	} else {
		m1, err1 = parseMeta(buf)
	}
	var m boltMeta
	switch {
	case err0 != nil && err1 != nil:
		return fmt.Errorf("both meta pages are damaged (page 0: %v; page 1: %v)", err0, err1)
	case err0 != nil:
		m = m1
	case err1 != nil:
		m = m0
	case m1.txid > m0.txid:
		m = m1
	default:
		m = m0
	}
	// One damaged meta page is what a crash while writing it leaves;
	// bbolt then uses the other, the previous transaction, whose pages
	// no later transaction overwrote. The check below verifies that one.
	if int64(m.pageSize) != pageSize {
		return fmt.Errorf("its meta pages disagree about the page size (%d and %d)", pageSize, m.pageSize)
	}
	if m.pgid < 2 {
		return fmt.Errorf("its meta page gives an impossible high-water mark of %d pages", m.pgid)
	}
	if m.pgid > uint64(size)/uint64(pageSize) {
		return fmt.Errorf("it is truncated: %d bytes long, but its last transaction (txid %d) uses %d pages of %d bytes (%d bytes)",
			size, m.txid, m.pgid, pageSize, m.pgid*uint64(pageSize))
	}
	c := &checker{f: f, pageSize: pageSize, hwm: m.pgid, state: make([]uint8, m.pgid)}
	c.state[0], c.state[1] = inUse, inUse
	if m.freelist != noFreelist {
		if err := c.freelist(m.freelist); err != nil {
			return err
		}
	}
	if err := c.bucket(m.root, nil); err != nil {
		return err
	}
	if m.freelist != noFreelist {
		for id, s := range c.state {
			if s == unknown {
				return fmt.Errorf("page %d is neither in use nor free (unreachable unfreed)", id)
			}
		}
	}
	return nil
}

const (
	unknown uint8 = iota
	inUse
	free
)

type checker struct {
	f        io.ReaderAt
	pageSize int64
	hwm      uint64
	state    []uint8
	spare    [][]byte // page buffers to reuse
}

func (c *checker) get() []byte {
	if n := len(c.spare); n > 0 {
		b := c.spare[n-1]
		c.spare = c.spare[:n-1]
		return b
	}
	return make([]byte, c.pageSize)
}

func (c *checker) put(b []byte) {
	if int64(len(b)) == c.pageSize {
		c.spare = append(c.spare, b)
	}
}

// read returns page id with its overflow pages, after checking that they
// lie below the high-water mark and no other reference claimed them.
func (c *checker) read(id uint64, path []uint64, freelist bool) ([]byte, error) {
	where := func() string {
		if len(path) == 0 {
			return ""
		}
		return fmt.Sprintf(" (reached through pages %v)", path)
	}
	if id < 2 || id >= c.hwm {
		return nil, fmt.Errorf("a reference to page %d lies outside the file's %d pages%s", id, c.hwm, where())
	}
	b := c.get()
	if _, err := c.f.ReadAt(b, int64(id)*c.pageSize); err != nil {
		return nil, fmt.Errorf("page %d cannot be read: %v", id, err)
	}
	if got := ne.Uint64(b); got != id {
		return nil, fmt.Errorf("page %d is labelled page %d%s", id, got, where())
	}
	switch f := ne.Uint16(b[8:]); {
	case freelist && f != flagFreelist:
		return nil, fmt.Errorf("page %d has type %#x where the freelist belongs", id, f)
	case !freelist && f != flagBranch && f != flagLeaf:
		return nil, fmt.Errorf("page %d has type %#x where a branch or leaf page belongs%s", id, f, where())
	}
	overflow := uint64(ne.Uint32(b[12:]))
	if id+overflow >= c.hwm {
		return nil, fmt.Errorf("page %d with %d overflow pages runs past the file's %d pages%s", id, overflow, c.hwm, where())
	}
	for p := id; p <= id+overflow; p++ {
		switch c.state[p] {
		case inUse:
			return nil, fmt.Errorf("page %d is referenced twice%s", p, where())
		case free:
			return nil, fmt.Errorf("page %d is in use and also on the freelist%s", p, where())
		}
		c.state[p] = inUse
	}
	if overflow > 0 {
		b = append(b, make([]byte, overflow*uint64(c.pageSize))...)
		if _, err := c.f.ReadAt(b[c.pageSize:], (int64(id)+1)*c.pageSize); err != nil {
			return nil, fmt.Errorf("page %d cannot be read: %v", id, err)
		}
	}
	return b, nil
}

func (c *checker) freelist(id uint64) error {
	b, err := c.read(id, nil, true)
	if err != nil {
		return fmt.Errorf("freelist: %w", err)
	}
	count, off := uint64(ne.Uint16(b[10:])), uint64(pageHeaderSize)
	if count == 0xFFFF {
		count, off = ne.Uint64(b[pageHeaderSize:]), off+8
	}
	if count > (uint64(len(b))-off)/8 {
		return fmt.Errorf("freelist page %d claims %d entries, more than it holds", id, count)
	}
	for i := range count {
		p := ne.Uint64(b[off+8*i:])
		switch {
		case p < 2 || p >= c.hwm:
			return fmt.Errorf("freelist page %d lists page %d, outside the file's %d pages", id, p, c.hwm)
		case c.state[p] != unknown:
			return fmt.Errorf("freelist page %d lists page %d twice, or a page in use", id, p)
		}
		c.state[p] = free
	}
	return nil
}

// bucket checks the tree of a bucket whose root is page root.
func (c *checker) bucket(root uint64, path []uint64) error {
	return c.page(root, nil, nil, path)
}

// page checks the subtree at id, whose keys must lie in [lo, hi).
func (c *checker) page(id uint64, lo, hi []byte, path []uint64) error {
	b, err := c.read(id, path, false)
	if err != nil {
		return err
	}
	defer c.put(b)
	return c.node(b, id, lo, hi, append(path, id))
}

// node checks the elements of page b (id 0 for an inline bucket's page).
func (c *checker) node(b []byte, id uint64, lo, hi []byte, path []uint64) error {
	flags, count := ne.Uint16(b[8:]), int(ne.Uint16(b[10:]))
	if pageHeaderSize+count*elemSize > len(b) {
		return fmt.Errorf("page %d claims %d elements, more than it holds", id, count)
	}
	if flags != flagBranch && flags != flagLeaf {
		return fmt.Errorf("page %d has type %#x where a branch or leaf page belongs", id, flags)
	}
	prev := lo
	for i := range count {
		e := pageHeaderSize + i*elemSize
		var pos, ksize, vsize uint64
		if flags == flagBranch {
			pos, ksize = uint64(ne.Uint32(b[e:])), uint64(ne.Uint32(b[e+4:]))
		} else {
			pos, ksize, vsize = uint64(ne.Uint32(b[e+4:])), uint64(ne.Uint32(b[e+8:])), uint64(ne.Uint32(b[e+12:]))
		}
		start := uint64(e) + pos
		if start+ksize+vsize > uint64(len(b)) {
			return fmt.Errorf("element %d of page %d points past the page's end", i, id)
		}
		key := b[start : start+ksize]
		// The first key may equal the parent's (lo); later ones must
		// grow strictly.
		if cmp := bytes.Compare(key, prev); prev != nil && (cmp < 0 || cmp == 0 && i > 0) {
			return fmt.Errorf("keys out of order on page %d at element %d", id, i)
		}
		if hi != nil && bytes.Compare(key, hi) >= 0 {
			return fmt.Errorf("keys out of order on page %d: element %d lies beyond its parent's range", id, i)
		}
		prev = key
		if flags == flagBranch {
			next := hi
			if i+1 < count {
				e2 := pageHeaderSize + (i+1)*elemSize
				p2, k2 := uint64(e2)+uint64(ne.Uint32(b[e2:])), uint64(ne.Uint32(b[e2+4:]))
				if p2+k2 > uint64(len(b)) {
					return fmt.Errorf("element %d of page %d points past the page's end", i+1, id)
				}
				next = b[p2 : p2+k2]
			}
			if err := c.page(ne.Uint64(b[e+8:]), key, next, path); err != nil {
				return err
			}
			continue
		}
		if ne.Uint32(b[e:])&bucketLeaf == 0 {
			continue
		}
		// A nested bucket: its root page, or its only page inline.
		v := b[start+ksize : start+ksize+vsize]
		if len(v) < 16 {
			return fmt.Errorf("bucket %q on page %d has a %d-byte header", key, id, len(v))
		}
		if root := ne.Uint64(v); root != 0 {
			if err := c.bucket(root, path); err != nil {
				return err
			}
			continue
		}
		inline := v[16:]
		if len(inline) < pageHeaderSize {
			return fmt.Errorf("inline bucket %q on page %d is too short", key, id)
		}
		if err := c.node(inline, 0, nil, nil, path); err != nil {
			return fmt.Errorf("inline bucket %q on page %d: %w", key, id, err)
		}
	}
	return nil
}

// checkPath opens path and checks it with checkFile.
func checkPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	return checkFile(f, fi.Size())
}
