package audit

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
)

// Problem says what is wrong with the first bad record Verify found.
type Problem string

// The problems Verify reports. Each names the tampering it reveals.
const (
	ProblemMalformed    Problem = "malformed record"
	ProblemNonCanonical Problem = "non-canonical encoding: record edited"
	ProblemHash         Problem = "hash mismatch: record edited"
	ProblemPrev         Problem = "prev does not match: record inserted, deleted or reordered"
	ProblemSeqGap       Problem = "seq gap: record deleted or reordered"
	ProblemSeqOrder     Problem = "seq repeated or out of order: record inserted or reordered"
	ProblemTruncated    Problem = "truncated line: incomplete last record (crash during an append, or cut)"
	ProblemUnanchored   Problem = "chain does not start at genesis and no audit_pruned record anchors it: earliest records deleted"
	ProblemFileName     Problem = "file name does not match its records: file renamed, emptied or cut"
	ProblemTailCut      Problem = "anchored record missing: records cut from the end"
	ProblemAnchorHash   Problem = "anchored record differs: log rewritten"
	ProblemAnchorPruned Problem = "anchored record was pruned: anchor too old to check"
	ProblemMAC          Problem = "MAC mismatch: record edited, or the key is another"
	ProblemUnkeyed      Problem = "unkeyed record after a keyed one: chain rewritten without the key"
	ProblemNotKeyed     Problem = "no keyed record: a key was given, and the log was written without one or rewritten without it"
	ProblemKeyNeeded    Problem = "keyed records, and no key to check their MACs with: the chain's links were checked, not its MACs"
)

// VerifyError is the first bad record Verify found.
type VerifyError struct {
	File    string // the file's name in the log directory
	Line    int    // 1-based; the line after the last for a missing record
	Seq     uint64 // the record's seq, when it could be read
	Problem Problem
	Detail  string // what was expected and found, when there is more to say
}

func (e *VerifyError) Error() string {
	s := fmt.Sprintf("%s:%d", e.File, e.Line)
	if e.Seq != 0 {
		s += fmt.Sprintf(" (seq %d)", e.Seq)
	}
	s += ": " + string(e.Problem)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Report is what Verify checked.
type Report struct {
	Files     int    // files read
	Records   uint64 // valid records read
	FirstSeq  uint64 // of the first record; 1 unless files were pruned
	FirstPrev string // Genesis, or the hash of the last pruned record
	LastSeq   uint64
	LastHash  string
	Recovered int // KindRecovered records: crashes Open recovered from
	Pruned    int // KindPruned records: rotated files deleted by Prune
	// PastAnchor is how many records follow the anchor given to
	// VerifyWithAnchor. A few are normal: the healer stores the anchor after
	// Append returns, so a crash in between leaves the log ahead.
	PastAnchor uint64
	// Keyed counts the keyed records (AlgHMAC); MACsChecked says whether
	// their MACs were checked, which takes the key.
	Keyed       uint64
	MACsChecked bool
}

// VerifyOptions say what else than the log itself Verify checks it
// against.
type VerifyOptions struct {
	// Anchor, when set, is the chain's head as kept outside the log (the
	// healer's database, a copy off the host): the record with its seq
	// must be in the log with its hash. The log may go on after it.
	Anchor *Anchor
	// Key is the key of a keyed chain (Options.Key). With a key every
	// keyed record's MAC is checked, and a log with records of which none
	// is keyed fails (ProblemNotKeyed) unless AcceptUnkeyed. Without one,
	// a log with keyed records fails with ProblemKeyNeeded once everything
	// else about it checked out: their MACs cannot be checked.
	Key []byte
	// AcceptUnkeyed lets a log that has no keyed record pass with a key:
	// a log about to switch to keyed records (the healer's start after a
	// key was configured, whose anchor vouches for the unkeyed chain).
	AcceptUnkeyed bool
}

// Anchor is a record's seq and hash: (0, Genesis) is an empty log.
type Anchor struct {
	Seq  uint64
	Hash string
}

// Verify checks the whole log in dir: every file in order, every record's
// encoding and hash, that each record's prev is the hash of the one before
// (across files too), that seqs go up by one, that rotated files hold the
// records their names say, that the chain starts at Genesis or at the
// anchor of an audit_pruned record, and that the last file ends with a
// complete line. It returns a *VerifyError for the first bad record found,
// or an I/O error; the Report counts what was checked up to there.
//
// Verify cannot see records cut from the end at a line boundary, nor a
// chain rewritten from some point to its end: use VerifyWithAnchor. Run on
// a log that is being written, it may see the last line half written and
// report ProblemTruncated; check again.
func Verify(dir string) (Report, error) {
	return VerifyWith(dir, VerifyOptions{})
}

// VerifyWith is Verify with an anchor, a key or both; see VerifyOptions.
//
// The rules of a keyed chain: unkeyed records may only come before the
// first keyed one (a log written before a key was configured goes on as a
// keyed chain); an unkeyed record after a keyed one is ProblemUnkeyed. The
// first keyed record's prev is the hash of the unkeyed record before it,
// so the unkeyed part is vouched for by the keyed part that follows it.
func VerifyWith(dir string, o VerifyOptions) (Report, error) {
	v := verifier{key: o.Key, acceptUnkeyed: o.AcceptUnkeyed}
	if o.Anchor != nil {
		v.anchored, v.anchorSeq, v.anchorHash = true, o.Anchor.Seq, o.Anchor.Hash
	}
	v.rep.MACsChecked = o.Key != nil
	rep, err := v.run(os.DirFS(dir))
	if err != nil && v.anchored && v.anchorSeq > 0 && errors.Is(err, fs.ErrNotExist) && !v.started {
		// The whole directory is gone, and the anchor says it held records.
		return rep, &VerifyError{
			File: currentName, Line: 1, Seq: v.anchorSeq, Problem: ProblemTailCut,
			Detail: "the log directory does not exist",
		}
	}
	return rep, err
}

// VerifyWithAnchor is Verify, and it also checks that the record with seq
// lastSeq is in the log with hash lastHash: the healer keeps the head of
// the chain (Log.Head) in its database, committed with every state change,
// and this is what detects records cut from the end of the log, a log
// emptied or deleted, or a chain rewritten up to its end. The log may hold
// records after the anchor (a crash between an append and the commit of
// the state change it preceded); Report.PastAnchor counts them. Anchor
// (0, Genesis) is an empty log.
func VerifyWithAnchor(dir string, lastSeq uint64, lastHash string) (Report, error) {
	return VerifyWith(dir, VerifyOptions{Anchor: &Anchor{Seq: lastSeq, Hash: lastHash}})
}

// pruneAnchor is what an audit_pruned record says about a deleted file.
type pruneAnchor struct {
	lastHash string // of the file's last record
	by       uint64 // the seq of the audit_pruned record
}

type verifier struct {
	key           []byte
	acceptUnkeyed bool
	// firstKeyed is where the first keyed record is, for ProblemKeyNeeded.
	firstKeyed *VerifyError

	anchored   bool
	anchorSeq  uint64
	anchorHash string
	anchorSeen bool

	rep     Report
	started bool
	// start is where the chain begins when it does not begin at Genesis:
	// it must be vouched for by an audit_pruned record.
	startFile string
	startSeq  uint64
	// pruned maps the last seq of each pruned file to the anchor its
	// audit_pruned record left.
	pruned map[uint64]pruneAnchor
	fs     fileState // the file being read
}

// run verifies the log in fsys, whose root is the log's directory.
func (v *verifier) run(fsys fs.FS) (Report, error) {
	segs, err := listSegments(fsys)
	if err != nil {
		return v.rep, err
	}
	v.pruned = map[uint64]pruneAnchor{}
	v.rep.FirstPrev = Genesis
	v.rep.LastHash = Genesis
	lastFile, lastLine := currentName, 0
	var nameErr *VerifyError
	for i, s := range segs {
		n, err := v.file(fsys, s, i == len(segs)-1)
		if err != nil {
			return v.rep, err
		}
		v.rep.Files++
		lastFile, lastLine = s.name, n
		if nameErr == nil && !s.current {
			nameErr = v.checkName(s)
		}
	}
	if v.started && v.rep.FirstSeq != 1 {
		a, ok := v.pruned[v.rep.FirstSeq-1]
		// With an anchor, only an audit_pruned record it covers counts: one
		// after it could have been appended by anyone.
		if !ok || a.lastHash != v.rep.FirstPrev || v.anchored && a.by > v.anchorSeq {
			return v.rep, &VerifyError{
				File: v.startFile, Line: 1, Seq: v.startSeq, Problem: ProblemUnanchored,
				Detail: fmt.Sprintf("first record is seq %d with prev %s", v.rep.FirstSeq, v.rep.FirstPrev),
			}
		}
	}
	if nameErr != nil {
		return v.rep, nameErr
	}
	if v.anchored {
		if err := v.checkAnchor(lastFile, lastLine); err != nil {
			return v.rep, err
		}
	}
	switch {
	case v.key == nil && v.firstKeyed != nil:
		e := *v.firstKeyed
		e.Problem = ProblemKeyNeeded
		e.Detail = fmt.Sprintf("%d keyed records from here on", v.rep.Keyed)
		return v.rep, &e
	case v.key != nil && v.rep.Keyed == 0 && v.rep.Records > 0 && !v.acceptUnkeyed:
		return v.rep, &VerifyError{
			File: lastFile, Line: lastLine, Seq: v.rep.LastSeq, Problem: ProblemNotKeyed,
			Detail: fmt.Sprintf("%d records, none with alg %s", v.rep.Records, AlgHMAC),
		}
	}
	return v.rep, nil
}

// fileState tracks the records of the file being read, for checkName.
type fileState struct {
	first, last uint64
	records     int
}

// file checks one file and returns how many lines it has. newest is true for
// the last file, the only one a crash may leave with an incomplete line;
// any other is reported the same way, as it cannot be a crash.
func (v *verifier) file(fsys fs.FS, s segment, newest bool) (int, error) {
	f, err := fsys.Open(s.name)
	if err != nil {
		return 0, err
	}
	defer func() { _ = f.Close() }() // read only: closing loses nothing
	v.fs = fileState{}
	lr := newLineReader(f)
	n := 0
	for {
		b, err := lr.next()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		n++
		bad := func(seq uint64, p Problem, detail string) (int, error) {
			return n, &VerifyError{File: s.name, Line: n, Seq: seq, Problem: p, Detail: detail}
		}
		switch {
		case errors.Is(err, io.ErrUnexpectedEOF):
			detail := ""
			if !newest {
				detail = "in a file that is not the newest"
			}
			return bad(0, ProblemTruncated, detail)
		case errors.Is(err, errLineTooLong):
			return bad(0, ProblemMalformed, fmt.Sprintf("line longer than %d bytes", MaxRecordBytes))
		case err != nil:
			return n, fmt.Errorf("read %s: %w", s.name, err)
		}
		rec, err := decodeLine(b)
		switch {
		case errors.Is(err, errNonCanonical):
			return bad(0, ProblemNonCanonical, "")
		case err != nil:
			return bad(0, ProblemMalformed, err.Error())
		}
		switch {
		case rec.Alg == AlgHMAC:
			if v.rep.Keyed == 0 {
				v.firstKeyed = &VerifyError{File: s.name, Line: n, Seq: rec.Seq}
			}
			v.rep.Keyed++
			// Without the key only the links can be checked; run
			// reports that once everything else checked out.
			if v.key != nil && !sealOK(rec.Alg, v.key, rec.body(), rec.Hash) {
				return bad(rec.Seq, ProblemMAC, "")
			}
		case v.rep.Keyed > 0:
			return bad(rec.Seq, ProblemUnkeyed, fmt.Sprintf("the chain is keyed from seq %d", v.firstKeyed.Seq))
		case hashBody(rec.body()) != rec.Hash:
			return bad(rec.Seq, ProblemHash, "")
		}
		if !v.started {
			v.started = true
			v.rep.FirstSeq, v.rep.FirstPrev = rec.Seq, rec.Prev
			v.startFile, v.startSeq = s.name, rec.Seq
			if rec.Seq == 0 {
				return bad(rec.Seq, ProblemSeqOrder, "seq 0")
			}
			if rec.Seq == 1 && rec.Prev != Genesis {
				return bad(rec.Seq, ProblemPrev, "first record does not chain from genesis")
			}
		} else {
			want := v.rep.LastSeq + 1
			switch {
			case rec.Seq > want:
				return bad(rec.Seq, ProblemSeqGap, fmt.Sprintf("want seq %d", want))
			case rec.Seq < want:
				return bad(rec.Seq, ProblemSeqOrder, fmt.Sprintf("want seq %d", want))
			case rec.Prev != v.rep.LastHash:
				return bad(rec.Seq, ProblemPrev, "")
			}
		}
		if rec.Kind == KindPruned {
			last, err := strconv.ParseUint(rec.Fields["last_seq"], 10, 64)
			if err != nil || len(rec.Fields["last_hash"]) != len(Genesis) {
				return bad(rec.Seq, ProblemMalformed, "audit_pruned record without last_seq and last_hash")
			}
			if _, seen := v.pruned[last]; !seen { // a crash in Prune may record a file twice
				v.pruned[last] = pruneAnchor{lastHash: rec.Fields["last_hash"], by: rec.Seq}
			}
			v.rep.Pruned++
		}
		if rec.Kind == KindRecovered {
			v.rep.Recovered++
		}
		if v.anchored && rec.Seq == v.anchorSeq {
			v.anchorSeen = true
			if rec.Hash != v.anchorHash {
				return bad(rec.Seq, ProblemAnchorHash, fmt.Sprintf("want hash %s", v.anchorHash))
			}
		}
		if v.fs.records == 0 {
			v.fs.first = rec.Seq
		}
		v.fs.last = rec.Seq
		v.fs.records++
		v.rep.Records++
		v.rep.LastSeq, v.rep.LastHash = rec.Seq, rec.Hash
	}
}

// checkName checks that a rotated file held the records its name says.
// Verify reports it only when the chain itself is sound, as the chain's
// problems say more.
func (v *verifier) checkName(s segment) *VerifyError {
	if v.fs.records > 0 && v.fs.first == s.first && v.fs.last == s.last {
		return nil
	}
	detail := "file is empty"
	if v.fs.records > 0 {
		detail = fmt.Sprintf("holds seq %d to %d", v.fs.first, v.fs.last)
	}
	return &VerifyError{File: s.name, Line: 1, Seq: v.fs.first, Problem: ProblemFileName, Detail: detail}
}

func (v *verifier) checkAnchor(lastFile string, lastLine int) error {
	switch {
	case v.anchorSeq == 0:
		if v.anchorHash != Genesis {
			return &VerifyError{File: lastFile, Line: 1, Problem: ProblemAnchorHash, Detail: "anchor seq 0 must have the genesis hash"}
		}
		v.rep.PastAnchor = v.rep.LastSeq
	case v.anchorSeen:
		v.rep.PastAnchor = v.rep.LastSeq - v.anchorSeq
	case v.started && v.anchorSeq < v.rep.FirstSeq:
		if v.anchorSeq == v.rep.FirstSeq-1 && v.anchorHash == v.rep.FirstPrev {
			v.rep.PastAnchor = v.rep.LastSeq - v.anchorSeq
			return nil
		}
		return &VerifyError{
			File: v.startFile, Line: 1, Seq: v.rep.FirstSeq, Problem: ProblemAnchorPruned,
			Detail: fmt.Sprintf("anchor seq %d, log starts at seq %d", v.anchorSeq, v.rep.FirstSeq),
		}
	default:
		return &VerifyError{
			File: lastFile, Line: lastLine + 1, Seq: v.anchorSeq, Problem: ProblemTailCut,
			Detail: fmt.Sprintf("log ends at seq %d", v.rep.LastSeq),
		}
	}
	return nil
}
