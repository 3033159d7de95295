// Package audit is the healer's tamper-evident audit log: an append-only file
// of JSON lines, one record per step of the pipeline (received, matched,
// skipped, guarded, started, finished, ...), each holding the SHA-256 of the
// one before it, written and fsync'd before Append returns so that the
// healer can record a step before it takes it.
//
// Verify walks the chain and names the first record that was edited,
// inserted, deleted, reordered or cut. What the log alone cannot show is
// that records were cut from its end at a line boundary (the file emptied
// or deleted included), or that the whole chain was rewritten from some
// point on. For the first, the chain's head (Head: the last seq and hash)
// must be kept where the log cannot take it with it: the healer commits it
// to its database with every state change, and checks the log against it
// at start with VerifyWithAnchor (a copy kept off the host does the same
// against someone who can rewrite both). For the second, the chain can be
// keyed (Options.Key): each record is then sealed with HMAC-SHA256 and
// says so (Alg), and nobody without the key can recompute the chain.
//
// Crashes. Append writes a record in one write and fsyncs it; a crash can
// leave at most one incomplete last line, whose Append never returned, so
// the step it records was never taken. Verify reports such a line as
// ProblemTruncated (it cannot tell a crash from a cut). Open cuts it off,
// then appends a KindRecovered record that names its offset, length and
// SHA-256, so the log verifies again and still says what happened. A
// complete last line that is not a valid record is not a crash: Open
// refuses the log (ErrCorrupt) rather than chain onto it.
//
// If a write or fsync fails, Append cuts the file back to where it was and
// returns the error: the next record chains onto the last one that is on
// disk. If even that fails, the Log refuses every later append (ErrBroken)
// until it is opened again, when Open resumes from what is on disk. A
// record whose Append failed may thus still be in the log; it records an
// intention, and its step was not taken, because Append said so.
package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deus-ex-machina/deus/internal/atomicfile"
)

// Errors callers branch on.
var (
	// ErrLocked is returned by Open when another Log (in this process or
	// another) holds the directory.
	ErrLocked = errors.New("audit log is locked by another writer")
	// ErrCorrupt is returned by Open and Prune when the record they must
	// chain onto or read is not valid. Run Verify to find out why.
	ErrCorrupt = errors.New("audit log is corrupt")
	// ErrBroken is returned by Append after a failed write could not be
	// undone. Close the Log and open it again.
	ErrBroken = errors.New("audit log is unusable after a failed write")
)

var errClosed = errors.New("audit log is closed")

// Options configure a Log. The zero value never rotates, uses
// DefaultRedactor and time.Now.
type Options struct {
	// MaxBytes rotates audit.log before a record would make it larger.
	// A single record larger than MaxBytes still gets a file of its own.
	// Zero disables rotation by size.
	MaxBytes int64
	// MaxAge rotates audit.log before an append when its first record is
	// at least this old. Zero disables rotation by age. Rotation happens
	// only in Append: an idle log is not rotated.
	MaxAge time.Duration
	// Redact is applied to every free-text field before a record is
	// hashed. Nil means DefaultRedactor.
	Redact Redactor
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// Key, when set, keys the chain: every record appended is sealed with
	// HMAC-SHA256 under it and says so (Alg), so that a chain recomputed
	// by someone without the key fails verification. Records already in
	// the log stay as they are; the chain goes on from them. A log whose
	// last record is keyed is refused without its key.
	Key []byte
}

// file is what Log needs of the file it appends to; tests inject faults.
type file interface {
	io.Writer
	Sync() error
	Truncate(size int64) error
	Close() error
}

// Log appends records to an audit log directory. Its methods are safe for
// concurrent use; Append serialises appenders.
type Log struct {
	dir    string
	opts   Options
	lockFD *os.File

	mu        sync.Mutex
	batchBuf  []byte // AppendBatch's encoding buffer, under mu
	f         file   // audit.log; nil after a failed rotation until the next append opens it
	size      int64
	firstSeq  uint64    // of audit.log; 0 while it is empty
	firstTime time.Time // of audit.log
	lastSeq   uint64
	lastHash  string
	appended  uint64
	broken    error
	closed    bool

	// head is lastSeq and lastHash as of the last write, for Head, which
	// must not wait behind an append's fsync: the healer's store asks for
	// it in every commit.
	head atomic.Pointer[Anchor]
}

// publishHead makes lastSeq and lastHash what Head returns. l.mu is held
// (or l is not shared yet).
func (l *Log) publishHead() {
	l.head.Store(&Anchor{Seq: l.lastSeq, Hash: l.lastHash})
}

// Open opens the audit log in dir, creating dir and the log if they do not
// exist, and resumes the chain from the last record on disk. It reads only
// the first and last lines of audit.log (or the last line of the newest
// rotated file when audit.log is empty), not the whole log; Verify is what
// checks the whole chain. An incomplete last line is cut off and recorded as
// a KindRecovered record.
func Open(dir string, opts Options) (*Log, error) {
	if opts.Redact == nil {
		opts.Redact = DefaultRedactor
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	l := &Log{dir: dir, opts: opts, lockFD: lock, lastHash: Genesis}
	l.publishHead()
	recovered, err := l.resume()
	if err != nil {
		return nil, errors.Join(err, l.closeFiles())
	}
	if recovered != nil {
		if _, err := l.append(*recovered); err != nil {
			return nil, errors.Join(fmt.Errorf("record recovery: %w", err), l.closeFiles())
		}
	}
	return l, nil
}

// resume opens audit.log and loads the chain's state. It returns the
// recovered record to append if it cut off an incomplete last line.
func (l *Log) resume() (*Record, error) {
	path := filepath.Join(l.dir, currentName)
	osf, err := l.openCurrent()
	if err != nil {
		return nil, err
	}
	if err := osf.Sync(); err != nil {
		return nil, fmt.Errorf("sync %s: %w", path, err)
	}
	t, err := readTail(osf, l.size)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, currentName, err)
	}
	var recovered *Record
	if t.tornFrom < l.size {
		torn := make([]byte, l.size-t.tornFrom)
		if _, err := osf.ReadAt(torn, t.tornFrom); err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		if err := osf.Truncate(t.tornFrom); err != nil {
			return nil, fmt.Errorf("cut incomplete line of %s: %w", path, err)
		}
		if err := osf.Sync(); err != nil {
			return nil, fmt.Errorf("sync %s: %w", path, err)
		}
		sum := sha256.Sum256(torn)
		recovered = &Record{Kind: KindRecovered, Reason: "incomplete last line cut off (crash during an append)", Fields: map[string]string{
			"file":           currentName,
			"offset":         strconv.FormatInt(t.tornFrom, 10),
			"dropped_bytes":  strconv.Itoa(len(torn)),
			"dropped_sha256": hex.EncodeToString(sum[:]),
		}}
		l.size = t.tornFrom
	}
	if t.last != nil {
		last, err := checkedRecord(path, t.last, l.opts.Key)
		if err != nil {
			return nil, err
		}
		b, err := readFirstLine(io.NewSectionReader(osf, 0, l.size))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		first, err := checkedRecord(path, b, l.opts.Key)
		if err != nil {
			return nil, err
		}
		l.lastSeq, l.lastHash = last.Seq, last.Hash
		l.publishHead()
		l.firstSeq, l.firstTime = first.Seq, first.Time
		return recovered, nil
	}
	// audit.log is empty: continue from the newest rotated file, if any.
	segs, err := listSegments(os.DirFS(l.dir))
	if err != nil {
		return nil, err
	}
	for i := len(segs) - 1; i >= 0; i-- {
		if segs[i].current {
			continue
		}
		last, err := lastRecord(filepath.Join(l.dir, segs[i].name), l.opts.Key)
		if err != nil {
			return nil, err
		}
		l.lastSeq, l.lastHash = last.Seq, last.Hash
		l.publishHead()
		break
	}
	return recovered, nil
}

// openCurrent opens (or creates) audit.log for appending and sets l.f and
// l.size.
func (l *Log) openCurrent() (*os.File, error) {
	path := filepath.Join(l.dir, currentName)
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if errors.Is(statErr, os.ErrNotExist) {
		if err := atomicfile.SyncDir(l.dir); err != nil {
			f.Close()
			return nil, err
		}
	}
	l.f, l.size = f, fi.Size()
	return f, nil
}

// Append writes rec to the log and fsyncs it before returning. It sets
// rec's Seq, Time (from the clock), Prev and Hash, redacts its free-text
// fields, and returns the record as written. When it returns an error the
// record may not be on disk and the next record chains onto the previous
// one. Kinds KindRecovered and KindPruned are reserved for the log.
func (l *Log) Append(ctx context.Context, rec Record) (Record, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, err
	}
	if !rec.Kind.valid() {
		return Record{}, fmt.Errorf("kind %q is not lowercase snake_case", rec.Kind)
	}
	if rec.Kind.reserved() {
		return Record{}, fmt.Errorf("kind %q is written by the audit log only", rec.Kind)
	}
	rec = rec.normalize()
	rec.redact(l.opts.Redact)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return Record{}, err
	}
	return l.append(rec)
}

// maxKeptBatchBuf bounds the encoding buffer AppendBatch keeps between
// batches.
const maxKeptBatchBuf = 1 << 20

// AppendBatch appends recs in order with one write and one fsync, and
// returns them as written: recs itself, each record normalized, redacted
// and sealed (Seq, Time, Prev, Hash) in place, also when it fails. The
// records' fields and argv are copied before anything in them changes,
// never modified. Either every record is on disk or, with an error, none
// is. A batch that would rotate the log is appended one record
// at a time instead (each fsync'd), and may then stop part-way; the error
// says so and the records before it are written.
func (l *Log) AppendBatch(ctx context.Context, recs []Record) ([]Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for i := range recs {
		if !recs[i].Kind.valid() {
			return nil, fmt.Errorf("record %d: kind %q is not lowercase snake_case", i, recs[i].Kind)
		}
		if recs[i].Kind.reserved() {
			return nil, fmt.Errorf("record %d: kind %q is written by the audit log only", i, recs[i].Kind)
		}
	}
	prepared := recs
	for i := range prepared {
		prepared[i] = prepared[i].normalize()
		prepared[i].redact(l.opts.Redact)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if l.closed {
		return nil, errClosed
	}
	if l.broken != nil {
		return nil, fmt.Errorf("%w: %w", ErrBroken, l.broken)
	}
	if uint64(len(prepared)) > math.MaxUint64-l.lastSeq {
		return nil, errors.New("seq would overflow")
	}
	now := l.opts.Now().UTC().Round(0)
	if y := now.Year(); y < 1 || y > 9999 {
		return nil, fmt.Errorf("clock reads %s, outside what RFC 3339 can write", now)
	}
	// Records are encoded straight into the one buffer that is written.
	buf := l.batchBuf[:0]
	defer func() {
		// Kept for the next batch, unless one huge batch grew it.
		if cap(buf) <= maxKeptBatchBuf {
			l.batchBuf = buf[:0]
		}
	}()
	seq, prev := l.lastSeq, l.lastHash
	for i := range prepared {
		rec := &prepared[i]
		rec.Seq, rec.Time, rec.Prev, rec.Alg = seq+1, now, prev, l.alg()
		start := len(buf)
		buf = rec.appendBody(buf)
		rec.Hash = seal(rec.Alg, l.opts.Key, buf[start:])
		buf = appendHash(buf, rec.Hash)
		if n := len(buf) - start - 1; n > MaxRecordBytes {
			return nil, fmt.Errorf("record %d of %d bytes is larger than %d", i, n, MaxRecordBytes)
		}
		seq, prev = rec.Seq, rec.Hash
	}
	if l.dueRotation(now, int64(len(buf))) {
		for i, rec := range recs {
			w, err := l.append(rec) // normalized and redacted above
			if err != nil {
				return recs[:i], fmt.Errorf("record %d of %d: %w", i, len(recs), err)
			}
			recs[i] = w
		}
		return recs, nil
	}
	if l.f == nil {
		if _, err := l.openCurrent(); err != nil {
			return nil, err
		}
	}
	if err := l.write(buf); err != nil {
		return nil, err
	}
	if l.firstSeq == 0 && len(prepared) > 0 {
		l.firstSeq, l.firstTime = prepared[0].Seq, now
	}
	l.size += int64(len(buf))
	l.lastSeq, l.lastHash = seq, prev
	l.publishHead()
	l.appended += uint64(len(prepared))
	return prepared, nil
}

// append sets the chain fields of a normalized, redacted record and writes
// it. l.mu is held (or l is not shared yet).
func (l *Log) append(rec Record) (Record, error) {
	if l.closed {
		return Record{}, errClosed
	}
	if l.broken != nil {
		return Record{}, fmt.Errorf("%w: %w", ErrBroken, l.broken)
	}
	if l.lastSeq == math.MaxUint64 {
		return Record{}, errors.New("seq would overflow")
	}
	now := l.opts.Now().UTC().Round(0)
	if y := now.Year(); y < 1 || y > 9999 {
		return Record{}, fmt.Errorf("clock reads %s, outside what RFC 3339 can write", now)
	}
	rec = rec.normalize()
	rec.Seq, rec.Time, rec.Prev, rec.Alg = l.lastSeq+1, now, l.lastHash, l.alg()
	body := rec.body()
	rec.Hash = seal(rec.Alg, l.opts.Key, body)
	b := line(body, rec.Hash)
	if len(b)-1 > MaxRecordBytes {
		return Record{}, fmt.Errorf("record of %d bytes is larger than %d", len(b)-1, MaxRecordBytes)
	}
	if l.dueRotation(now, int64(len(b))) {
		if err := l.rotate(); err != nil {
			return Record{}, fmt.Errorf("rotate: %w", err)
		}
	}
	if l.f == nil {
		if _, err := l.openCurrent(); err != nil {
			return Record{}, err
		}
	}
	if err := l.write(b); err != nil {
		return Record{}, err
	}
	if l.firstSeq == 0 {
		l.firstSeq, l.firstTime = rec.Seq, rec.Time
	}
	l.size += int64(len(b))
	l.lastSeq, l.lastHash = rec.Seq, rec.Hash
	l.publishHead()
	l.appended++
	return rec, nil
}

// alg is the Alg of the records l appends.
func (l *Log) alg() Alg {
	if l.opts.Key != nil {
		return AlgHMAC
	}
	return ""
}

// write writes and fsyncs one line. On failure it cuts the file back to
// l.size so that no part of the line stays; if it cannot, l is broken.
func (l *Log) write(b []byte) error {
	_, err := l.f.Write(b)
	if err == nil {
		err = l.f.Sync()
	}
	if err == nil {
		return nil
	}
	err = fmt.Errorf("write %s: %w", currentName, err)
	if terr := l.f.Truncate(l.size); terr != nil {
		l.broken = errors.Join(err, fmt.Errorf("undo: %w", terr))
		return fmt.Errorf("%w: %w", ErrBroken, l.broken)
	}
	if serr := l.f.Sync(); serr != nil {
		l.broken = errors.Join(err, fmt.Errorf("undo: %w", serr))
		return fmt.Errorf("%w: %w", ErrBroken, l.broken)
	}
	return err
}

func (l *Log) dueRotation(now time.Time, n int64) bool {
	if l.size == 0 {
		return false
	}
	if l.opts.MaxBytes > 0 && l.size+n > l.opts.MaxBytes {
		return true
	}
	return l.opts.MaxAge > 0 && l.firstSeq != 0 && now.Sub(l.firstTime) >= l.opts.MaxAge
}

// rotate renames audit.log to audit-<first>-<last>.log and starts a new
// audit.log. Every record in it is already fsync'd. If it fails before the
// rename, nothing changed; after it, the next append creates audit.log.
func (l *Log) rotate() error {
	if l.f != nil {
		if err := l.f.Close(); err != nil {
			return err
		}
		l.f = nil
	}
	from := filepath.Join(l.dir, currentName)
	to := filepath.Join(l.dir, rotatedName(l.firstSeq, l.lastSeq))
	if _, err := os.Stat(to); err == nil {
		return fmt.Errorf("%s exists", to)
	}
	if err := os.Rename(from, to); err != nil {
		return err
	}
	l.size, l.firstSeq, l.firstTime = 0, 0, time.Time{}
	if err := atomicfile.SyncDir(l.dir); err != nil {
		return err
	}
	_, err := l.openCurrent()
	return err
}

// Prune deletes rotated files whose records are all older than before,
// oldest first, and stops at the first file that is not. It never deletes
// audit.log. Before it deletes a file it appends a KindPruned record naming
// the file, its seq range and the hash of its last record: that is the
// anchor from which Verify checks what remains, since the chain no longer
// starts at Genesis. It returns how many files it deleted.
func (l *Log) Prune(ctx context.Context, before time.Time) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, errClosed
	}
	segs, err := listSegments(os.DirFS(l.dir))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range segs {
		if s.current {
			break
		}
		if err := ctx.Err(); err != nil {
			return n, err
		}
		path := filepath.Join(l.dir, s.name)
		last, err := lastRecord(path, l.opts.Key)
		if err != nil {
			return n, err
		}
		if !last.Time.Before(before) {
			break
		}
		_, err = l.append(Record{Kind: KindPruned, Fields: map[string]string{
			"file":      s.name,
			"first_seq": strconv.FormatUint(s.first, 10),
			"last_seq":  strconv.FormatUint(last.Seq, 10),
			"last_hash": last.Hash,
		}})
		if err != nil {
			return n, err
		}
		if err := os.Remove(path); err != nil {
			return n, err
		}
		if err := atomicfile.SyncDir(l.dir); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// Records returns how many records this Log has appended since Open,
// including a KindRecovered record Open wrote.
func (l *Log) Records() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.appended
}

// LastSeq returns the seq of the last record on disk (0 for an empty log).
func (l *Log) LastSeq() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastSeq
}

// LastHash returns the hash of the last record on disk (Genesis for an
// empty log).
func (l *Log) LastHash() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastHash
}

// Head returns the seq and hash of the last record on disk, read together:
// (0, Genesis) for an empty log. Every record up to it is fsync'd. Kept
// where the log cannot take it with it (the healer's database), it is the
// anchor VerifyWithAnchor checks the log against.
func (l *Log) Head() (uint64, string) {
	h := l.head.Load()
	return h.Seq, h.Hash
}

// Close closes the log and releases its directory. Every appended record is
// already on disk.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	return l.closeFiles()
}

func (l *Log) closeFiles() error {
	var err error
	if l.f != nil {
		err = l.f.Close()
		l.f = nil
	}
	if l.lockFD != nil {
		l.lockFD.Close()
		l.lockFD = nil
	}
	return err
}
