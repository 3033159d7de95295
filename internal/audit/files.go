package audit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// On disk.
//
// A log is a directory. audit.log is the file being written. When it
// rotates it is renamed to audit-<first seq>-<last seq>.log (decimal, no
// padding: audit-1-1000.log, audit-1001-2000.log) and a new audit.log
// starts. The names sort the files by number, not by text, and they say
// which records each file must hold, so Verify can tell a renamed or missing
// file. audit.lock is held (flock) by the one process that writes. Other
// names in the directory are ignored.

const (
	currentName = "audit.log"
	lockName    = "audit.lock"
)

func rotatedName(first, last uint64) string {
	return fmt.Sprintf("audit-%d-%d.log", first, last)
}

// parseRotatedName parses audit-<first>-<last>.log. Numbers must be written
// as rotatedName writes them (no sign, no leading zeros).
func parseRotatedName(name string) (first, last uint64, ok bool) {
	s, found := strings.CutPrefix(name, "audit-")
	if !found {
		return 0, 0, false
	}
	s, found = strings.CutSuffix(s, ".log")
	if !found {
		return 0, 0, false
	}
	a, b, found := strings.Cut(s, "-")
	if !found {
		return 0, 0, false
	}
	first, err1 := strconv.ParseUint(a, 10, 64)
	last, err2 := strconv.ParseUint(b, 10, 64)
	if err1 != nil || err2 != nil || strconv.FormatUint(first, 10) != a || strconv.FormatUint(last, 10) != b {
		return 0, 0, false
	}
	return first, last, true
}

// segment is one file of the log.
type segment struct {
	name        string
	first, last uint64 // from the name; zero for audit.log
	current     bool
}

// listSegments returns the log's files in chain order: rotated files by
// their first seq, then audit.log if it exists.
func listSegments(fsys fs.FS) ([]segment, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, err
	}
	var segs []segment
	current := false
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if e.Name() == currentName {
			current = true
			continue
		}
		if first, last, ok := parseRotatedName(e.Name()); ok {
			segs = append(segs, segment{name: e.Name(), first: first, last: last})
		}
	}
	slices.SortFunc(segs, func(a, b segment) int {
		if a.first != b.first {
			if a.first < b.first {
				return -1
			}
			return 1
		}
		return strings.Compare(a.name, b.name)
	})
	if current {
		segs = append(segs, segment{name: currentName, current: true})
	}
	return segs, nil
}

// errLineTooLong is returned for a line longer than MaxRecordBytes.
var errLineTooLong = errors.New("line too long")

// tail is the end of a file as Open and Prune need it.
type tail struct {
	last     []byte // the last complete line, without its newline; nil if none
	tornFrom int64  // where an incomplete final line starts; the file size if none
}

// readTail reads a file backwards from size until it has its last complete
// line, so its cost is the length of that line (and of an incomplete line
// after it), not of the file.
func readTail(r io.ReaderAt, size int64) (tail, error) {
	const chunk = 4096
	var buf []byte // the bytes [off, size)
	off := size
	tornFrom := int64(-1)
	for {
		if tornFrom < 0 {
			if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
				tornFrom = off + int64(i) + 1
			}
		}
		if tornFrom >= 0 {
			end := int(tornFrom - 1 - off) // the newline ending the last line
			if j := bytes.LastIndexByte(buf[:end], '\n'); j >= 0 {
				return tail{last: buf[j+1 : end], tornFrom: tornFrom}, nil
			}
			if off == 0 {
				return tail{last: buf[:end], tornFrom: tornFrom}, nil
			}
		} else if off == 0 {
			return tail{tornFrom: 0}, nil
		}
		if size-off > 2*MaxRecordBytes+2 {
			return tail{}, errLineTooLong
		}
		n := min(int64(chunk), off)
		off -= n
		b := make([]byte, int(n)+len(buf))
		if _, err := r.ReadAt(b[:n], off); err != nil {
			return tail{}, err
		}
		copy(b[n:], buf)
		buf = b
	}
}

// readFirstLine returns the first line of r without its newline, or nil if
// r holds no complete line.
func readFirstLine(r io.Reader) ([]byte, error) {
	lr := newLineReader(r)
	b, err := lr.next()
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, nil
	}
	return b, err
}

// lineReader reads newline-terminated lines of at most MaxRecordBytes.
type lineReader struct {
	br  *bufio.Reader
	buf []byte
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 64<<10)}
}

// next returns the next line without its newline. At the end of the input
// it returns io.EOF, or io.ErrUnexpectedEOF with the bytes of a final line
// that has no newline. A line longer than MaxRecordBytes is errLineTooLong.
func (lr *lineReader) next() ([]byte, error) {
	lr.buf = lr.buf[:0]
	for {
		frag, err := lr.br.ReadSlice('\n')
		if len(lr.buf)+len(frag) > MaxRecordBytes+1 {
			return nil, errLineTooLong
		}
		lr.buf = append(lr.buf, frag...)
		switch {
		case err == nil:
			return lr.buf[:len(lr.buf)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if len(lr.buf) == 0 {
				return nil, io.EOF
			}
			return lr.buf, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
	}
}

// lastRecord returns the last record of a rotated file, which must end with
// a complete line.
func lastRecord(path string, key []byte) (Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return Record{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Record{}, err
	}
	t, err := readTail(f, fi.Size())
	if err != nil {
		return Record{}, fmt.Errorf("%w: %s: %w", ErrCorrupt, path, err)
	}
	if t.tornFrom != fi.Size() || t.last == nil {
		return Record{}, fmt.Errorf("%w: %s: does not end with a complete record", ErrCorrupt, path)
	}
	return checkedRecord(path, t.last, key)
}

// checkedRecord decodes a line and checks its own hash, or its MAC under
// key when it is keyed.
func checkedRecord(path string, b []byte, key []byte) (Record, error) {
	rec, err := decodeLine(b)
	if err != nil {
		return Record{}, fmt.Errorf("%w: %s: %w", ErrCorrupt, filepath.Base(path), err)
	}
	switch {
	case rec.Alg == AlgHMAC && key == nil:
		return Record{}, fmt.Errorf("%w: %s: seq %d is keyed (%s) and no key is configured", ErrCorrupt, filepath.Base(path), rec.Seq, AlgHMAC)
	case !sealOK(rec.Alg, key, rec.body(), rec.Hash):
		what := "hash mismatch"
		if rec.Alg == AlgHMAC {
			what = "MAC mismatch (edited, or another key)"
		}
		return Record{}, fmt.Errorf("%w: %s: seq %d: %s", ErrCorrupt, filepath.Base(path), rec.Seq, what)
	}
	return rec, nil
}
