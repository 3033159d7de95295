package audit

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// oneFileLog writes a log of n records in audit.log alone and returns its
// directory and head.
func oneFileLog(t *testing.T, n int, opts Options) (string, Anchor) {
	t.Helper()
	dir := t.TempDir()
	if opts.Now == nil {
		opts.Now = newClock().Now
	}
	l := openLog(t, dir, opts)
	appendN(t, l, 0, n)
	seq, hash := l.Head()
	closeLog(t, l)
	return dir, Anchor{Seq: seq, Hash: hash}
}

// The log alone cannot tell that its end was cut: a file cut at a line
// boundary, emptied or deleted is a shorter log that verifies. The head
// kept outside the log can.
func TestVerifyWithTheHeadCatchesACutTail(t *testing.T) {
	t.Parallel()
	tests := map[string]func(t *testing.T, dir string){
		"the file cut after its 13th line, as head -n 13 does": func(t *testing.T, dir string) {
			editFile(t, dir, currentName, func(l []string) []string { return l[:13] })
		},
		"the file emptied": func(t *testing.T, dir string) {
			writeLines(t, filepath.Join(dir, currentName), nil)
		},
		"the file deleted": func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, currentName)); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, cut := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir, head := oneFileLog(t, 15, Options{})
			cut(t, dir)
			if _, err := Verify(dir); err != nil {
				t.Fatalf("Verify without the head = %v; the log alone was expected to look sound", err)
			}
			_, err := VerifyWith(dir, VerifyOptions{Anchor: &head})
			if got := problem(err); got != ProblemTailCut {
				t.Fatalf("VerifyWith(head seq %d) = %v; want %q", head.Seq, err, ProblemTailCut)
			}
		})
	}
	t.Run("the whole directory deleted", func(t *testing.T) {
		t.Parallel()
		dir, head := oneFileLog(t, 3, Options{})
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		_, err := VerifyWith(dir, VerifyOptions{Anchor: &head})
		if got := problem(err); got != ProblemTailCut {
			t.Fatalf("VerifyWith(head seq %d) of a deleted directory = %v; want %q", head.Seq, err, ProblemTailCut)
		}
	})
}

// Records after the head are those whose state change had not committed
// when the healer stopped: the log may be ahead of its head, never behind.
func TestVerifyWithAHeadBeforeTheEnd(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l := openLog(t, dir, Options{Now: newClock().Now})
	appendN(t, l, 0, 10)
	seq, hash := l.Head()
	appendN(t, l, 10, 3)
	closeLog(t, l)
	rep, err := VerifyWith(dir, VerifyOptions{Anchor: &Anchor{Seq: seq, Hash: hash}})
	if err != nil {
		t.Fatalf("VerifyWith(head seq %d) = %v; want no error", seq, err)
	}
	if rep.PastAnchor != 3 || rep.LastSeq != 13 {
		t.Errorf("PastAnchor %d, LastSeq %d; want 3 and 13", rep.PastAnchor, rep.LastSeq)
	}
}

func TestHeadIsTheLastRecordOnDisk(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l := openLog(t, dir, Options{Now: newClock().Now})
	if seq, hash := l.Head(); seq != 0 || hash != Genesis {
		t.Errorf("Head of an empty log = %d, %s; want 0 and genesis", seq, hash)
	}
	recs := appendN(t, l, 0, 4)
	if seq, hash := l.Head(); seq != 4 || hash != recs[3].Hash {
		t.Errorf("Head = %d, %s; want 4, %s", seq, hash, recs[3].Hash)
	}
}

var (
	testKey  = []byte("0123456789abcdef0123456789abcdef")
	otherKey = []byte("fedcba9876543210fedcba9876543210")
)

// rechainUnkeyed rewrites lines[from:] as an unkeyed chain from prev, as
// someone without the key covering an edit would.
func rechainUnkeyed(t *testing.T, lines []string, from int, prev string) []string {
	t.Helper()
	for i := from; i < len(lines); i++ {
		rec, err := decodeLine([]byte(strings.TrimSuffix(lines[i], "\n")))
		if err != nil {
			t.Fatal(err)
		}
		rec.Alg = ""
		lines[i] = forge(Record{
			Seq: rec.Seq, Time: rec.Time, Kind: rec.Kind, RunID: rec.RunID, Fingerprint: rec.Fingerprint,
			Alertname: rec.Alertname, Runbook: rec.Runbook, Action: rec.Action, Target: rec.Target,
			DryRun: rec.DryRun, Argv: rec.Argv, Result: rec.Result, Reason: rec.Reason, Fields: rec.Fields, Prev: prev,
		})
		rec.Prev = prev
		prev = hashBody(rec.body())
	}
	return lines
}

func TestKeyedChain(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		key     Options // the log's
		tamper  func(t *testing.T, dir string)
		opts    VerifyOptions
		want    Problem
		wantMAC bool
	}{
		"a keyed log verifies with its key": {
			key: Options{Key: testKey}, opts: VerifyOptions{Key: testKey}, wantMAC: true,
		},
		"a keyed log fails with another key": {
			key: Options{Key: testKey}, opts: VerifyOptions{Key: otherKey}, want: ProblemMAC,
		},
		"a keyed record edited and its hash recomputed without the key fails": {
			key: Options{Key: testKey},
			tamper: func(t *testing.T, dir string) {
				editFile(t, dir, currentName, func(l []string) []string {
					rec, err := decodeLine([]byte(strings.TrimSuffix(l[4], "\n")))
					if err != nil {
						t.Fatal(err)
					}
					rec.Alertname = "NodeDown"
					l[4] = forge(rec)
					return l
				})
			},
			opts: VerifyOptions{Key: testKey}, want: ProblemMAC,
		},
		"a keyed log recomputed as an unkeyed chain fails with the key": {
			key: Options{Key: testKey},
			tamper: func(t *testing.T, dir string) {
				editFile(t, dir, currentName, func(l []string) []string { return rechainUnkeyed(t, l, 0, Genesis) })
			},
			opts: VerifyOptions{Key: testKey}, want: ProblemNotKeyed,
		},
		"an unkeyed chain edited and recomputed fails with a key": {
			tamper: func(t *testing.T, dir string) {
				editFile(t, dir, currentName, func(l []string) []string {
					l[2] = strings.Replace(l[2], `"alertname":"DiskWillFillSoon"`, `"alertname":"NodeDown"`, 1)
					return rechainUnkeyed(t, l, 2, mustDecode(t, l[1]).Hash)
				})
			},
			opts: VerifyOptions{Key: testKey}, want: ProblemNotKeyed,
		},
		"the keyed tail rewritten as unkeyed records fails": {
			key: Options{Key: testKey},
			tamper: func(t *testing.T, dir string) {
				editFile(t, dir, currentName, func(l []string) []string {
					return rechainUnkeyed(t, l, 5, mustDecode(t, l[4]).Hash)
				})
			},
			opts: VerifyOptions{Key: testKey}, want: ProblemUnkeyed,
		},
		"a keyed log without a key is not called sound": {
			key: Options{Key: testKey}, opts: VerifyOptions{}, want: ProblemKeyNeeded,
		},
		"an unkeyed log passes with a key when unkeyed logs are accepted": {
			opts: VerifyOptions{Key: testKey, AcceptUnkeyed: true}, wantMAC: true,
		},
		"an unkeyed log still verifies without a key": {},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir, _ := oneFileLog(t, 8, tt.key)
			if tt.tamper != nil {
				tt.tamper(t, dir)
			}
			rep, err := VerifyWith(dir, tt.opts)
			if got := problem(err); got != tt.want || (tt.want == "" && err != nil) {
				t.Fatalf("VerifyWith = %v; want %q", err, tt.want)
			}
			if tt.want == "" && rep.MACsChecked != tt.wantMAC {
				t.Errorf("MACsChecked = %v; want %v", rep.MACsChecked, tt.wantMAC)
			}
		})
	}
}

func mustDecode(t *testing.T, line string) Record {
	t.Helper()
	rec, err := decodeLine([]byte(strings.TrimSuffix(line, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// A log written before a key was configured goes on as a keyed chain: its
// unkeyed records come first, the keyed ones chain from them, and the
// whole verifies with the key.
func TestAnUnkeyedLogSwitchesToKeyed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := newClock()
	l := openLog(t, dir, Options{Now: c.Now})
	appendN(t, l, 0, 3)
	closeLog(t, l)
	l = openLog(t, dir, Options{Now: c.Now, Key: testKey})
	recs := appendN(t, l, 3, 3)
	closeLog(t, l)
	if recs[0].Alg != AlgHMAC || recs[0].Seq != 4 {
		t.Fatalf("first record after the key: seq %d alg %q; want seq 4, %s", recs[0].Seq, recs[0].Alg, AlgHMAC)
	}
	rep, err := VerifyWith(dir, VerifyOptions{Key: testKey, Anchor: &Anchor{Seq: 6, Hash: recs[2].Hash}})
	if err != nil {
		t.Fatalf("VerifyWith(key) = %v; want no error", err)
	}
	if rep.Keyed != 3 || rep.Records != 6 {
		t.Errorf("report: %d keyed of %d; want 3 of 6", rep.Keyed, rep.Records)
	}
	// Without the key, the healer must not chain unkeyed records onto it.
	if l, err := Open(dir, Options{}); err == nil {
		closeLog(t, l)
		t.Fatal("Open of a keyed log without its key succeeded")
	} else if !errors.Is(err, ErrCorrupt) {
		t.Errorf("Open without the key = %v; want ErrCorrupt", err)
	}
	if l, err := Open(dir, Options{Key: otherKey}); err == nil {
		closeLog(t, l)
		t.Fatal("Open of a keyed log with another key succeeded")
	}
}

func TestReadKeyFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string, perm os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), perm); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, perm); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good", string(testKey)+"\n", 0o600)
	key, err := ReadKeyFile(good)
	if err != nil || string(key) != string(testKey) {
		t.Errorf("ReadKeyFile(good) = %q, %v; want the key without its newline", key, err)
	}
	for name, path := range map[string]string{
		"a short key":            write("short", "0123456789\n", 0o600),
		"a world-readable file":  write("open", string(testKey), 0o644),
		"a file that is missing": filepath.Join(dir, "missing"),
	} {
		if _, err := ReadKeyFile(path); err == nil {
			t.Errorf("ReadKeyFile of %s succeeded", name)
		} else if strings.Contains(err.Error(), string(testKey)) {
			t.Errorf("ReadKeyFile of %s: the error holds the key: %v", name, err)
		}
	}
}

// The healer's store asks for the head in every commit: it must not wait
// behind an append that holds the log for its fsync.
func TestHeadDoesNotWaitForAnAppend(t *testing.T) {
	t.Parallel()
	l := openLog(t, t.TempDir(), Options{Now: newClock().Now})
	recs := appendN(t, l, 0, 2)
	l.mu.Lock() // as Append does while it writes and fsyncs
	seq, hash := l.Head()
	l.mu.Unlock()
	if seq != 2 || hash != recs[1].Hash {
		t.Errorf("Head = %d, %s; want 2, %s", seq, hash, recs[1].Hash)
	}
}
