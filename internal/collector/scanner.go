package collector

import (
	"bufio"
	"io"
	"sync"
)

// maxLine bounds one line of a /proc file; /proc/stat's intr line is the
// longest we read, a few KiB per hundred interrupts.
const maxLine = 4 << 20

var scanBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 16*1024); return &b }}

// newScanner returns a line scanner over r whose buffer comes from a pool,
// so a scrape does not allocate a fresh one per file. Call done when the
// scanner is no longer used.
func newScanner(r io.Reader) (*bufio.Scanner, func()) {
	bp := scanBuffers.Get().(*[]byte)
	sc := bufio.NewScanner(r)
	sc.Buffer((*bp)[:0], maxLine)
	return sc, func() { scanBuffers.Put(bp) }
}
