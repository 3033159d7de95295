package audit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// problem returns the Problem of a *VerifyError, or "" for nil or another
// error.
func problem(err error) Problem {
	var verr *VerifyError
	if errors.As(err, &verr) {
		return verr.Problem
	}
	return ""
}

// goodLog writes a log of 15 records in three files, audit-1-5.log,
// audit-6-10.log and audit.log, and returns its directory and records.
func goodLog(t *testing.T) (string, []Record) {
	t.Helper()
	dir := t.TempDir()
	c := newClock()
	l := openLog(t, dir, Options{Now: c.Now})
	var recs []Record
	for i := range 3 {
		recs = append(recs, appendN(t, l, 5*i, 5)...)
		if i < 2 {
			l.mu.Lock()
			err := l.rotate()
			l.mu.Unlock()
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	want := []string{"audit-1-5.log", "audit-6-10.log", "audit.log"}
	if diff := cmp.Diff(want, files(t, dir)); diff != "" {
		t.Fatalf("good log files (-want +got):\n%s", diff)
	}
	return dir, recs
}

// copyLog copies the log's files into a new directory.
func copyLog(t *testing.T, from string) string {
	t.Helper()
	to := t.TempDir()
	for _, name := range files(t, from) {
		b, err := os.ReadFile(filepath.Join(from, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return to
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.SplitAfter(string(b), "\n")[:strings.Count(string(b), "\n")]
}

func writeLines(t *testing.T, path string, lines []string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(lines, "")), 0o600); err != nil {
		t.Fatal(err)
	}
}

// editFile rewrites a file of the log through fn.
func editFile(t *testing.T, dir, name string, fn func([]string) []string) {
	t.Helper()
	path := filepath.Join(dir, name)
	writeLines(t, path, fn(readLines(t, path)))
}

// forge encodes rec with a correct hash, as someone who knows the format
// would.
func forge(rec Record) string {
	body := rec.body()
	return string(line(body, hashBody(body)))
}

// rechain rewrites lines[from:] so that each chains from the one before,
// with prev the hash to start from: a forger covering an edit.
func rechain(t *testing.T, lines []string, from int, prev string) []string {
	t.Helper()
	for i := from; i < len(lines); i++ {
		rec, err := decodeLine([]byte(strings.TrimSuffix(lines[i], "\n")))
		if err != nil {
			t.Fatal(err)
		}
		rec.Prev = prev
		lines[i] = forge(rec)
		prev = hashBody(rec.body())
	}
	return lines
}

func TestVerifyDetectsTampering(t *testing.T) {
	t.Parallel()
	good, recs := goodLog(t)
	rep := mustVerify(t, good)
	if rep.Records != 15 || rep.Files != 3 || rep.LastHash != recs[14].Hash {
		t.Fatalf("good log: %d records in %d files, last hash %s; want 15 in 3, %s", rep.Records, rep.Files, rep.LastHash, recs[14].Hash)
	}

	tests := map[string]struct {
		tamper func(t *testing.T, dir string)
		want   *VerifyError // nil: not detectable by Verify alone
	}{
		"a field value edited": {
			tamper: func(t *testing.T, dir string) {
				editFile(t, dir, "audit-6-10.log", func(l []string) []string {
					l[1] = strings.Replace(l[1], `"alertname":"DiskWillFillSoon"`, `"alertname":"NodeDown"`, 1)
					return l
				})
			},
			want: &VerifyError{File: "audit-6-10.log", Line: 2, Seq: 7, Problem: ProblemHash},
		},
		"a field value edited and its hash recomputed": {
			tamper: func(t *testing.T, dir string) {
				editFile(t, dir, "audit-6-10.log", func(l []string) []string {
					rec := recs[6]
					rec.Result = "denied"
					l[1] = forge(rec)
					return l
				})
			},
			want: &VerifyError{File: "audit-6-10.log", Line: 3, Seq: 8, Problem: ProblemPrev},
		},
		"the time of a record moved": {
			tamper: func(t *testing.T, dir string) {
				editFile(t, dir, "audit.log", func(l []string) []string {
					l[0] = strings.Replace(l[0], `"time":"2026-03-01T12:`, `"time":"2026-03-01T11:`, 1)
					return l
				})
			},
			want: &VerifyError{File: "audit.log", Line: 1, Seq: 11, Problem: ProblemHash},
		},
		"a forged record inserted": {
			tamper: func(t *testing.T, dir string) {
				editFile(t, dir, "audit-6-10.log", func(l []string) []string {
					forged := Record{Seq: 8, Time: start, Kind: KindApproved, RunID: "run-1", Reason: "approved by nobody", Prev: recs[6].Hash}
					return slices.Insert(l, 2, forge(forged))
				})
			},
			want: &VerifyError{File: "audit-6-10.log", Line: 4, Seq: 8, Problem: ProblemSeqOrder},
		},
		"a record duplicated": {
			tamper: func(t *testing.T, dir string) {
				editFile(t, dir, "audit-6-10.log", func(l []string) []string { return slices.Insert(l, 2, l[1]) })
			},
			want: &VerifyError{File: "audit-6-10.log", Line: 3, Seq: 7, Problem: ProblemSeqOrder},
		},
		"a record deleted in the middle": {
			tamper: func(t *testing.T, dir string) {
				editFile(t, dir, "audit-6-10.log", func(l []string) []string { return slices.Delete(l, 2, 3) })
			},
			want: &VerifyError{File: "audit-6-10.log", Line: 3, Seq: 9, Problem: ProblemSeqGap},
		},
		"a record deleted and the seqs after it renumbered": {
			tamper: func(t *testing.T, dir string) {
				editFile(t, dir, "audit.log", func(l []string) []string {
					l = slices.Delete(l, 1, 2)
					for i := 1; i < len(l); i++ {
						l[i] = strings.Replace(l[i], fmt.Sprintf(`"seq":%d`, 12+i), fmt.Sprintf(`"seq":%d`, 11+i), 1)
					}
					return l
				})
			},
			want: &VerifyError{File: "audit.log", Line: 2, Seq: 12, Problem: ProblemHash},
		},
		"the first record deleted": {
			tamper: func(t *testing.T, dir string) {
				editFile(t, dir, "audit-1-5.log", func(l []string) []string { return l[1:] })
			},
			want: &VerifyError{File: "audit-1-5.log", Line: 1, Seq: 2, Problem: ProblemUnanchored},
		},
		"the first record replaced by a forged one": {
			tamper: func(t *testing.T, dir string) {
				editFile(t, dir, "audit-1-5.log", func(l []string) []string {
					l[0] = forge(Record{Seq: 1, Time: start, Kind: KindReceived, Alertname: "Nothing", Prev: Genesis})
					return l
				})
			},
			want: &VerifyError{File: "audit-1-5.log", Line: 2, Seq: 2, Problem: ProblemPrev},
		},
		"two records swapped": {
			tamper: func(t *testing.T, dir string) {
				editFile(t, dir, "audit-6-10.log", func(l []string) []string {
					l[1], l[2] = l[2], l[1]
					return l
				})
			},
			want: &VerifyError{File: "audit-6-10.log", Line: 2, Seq: 8, Problem: ProblemSeqGap},
		},
		"the last file cut mid-line": {
			tamper: func(t *testing.T, dir string) {
				path := filepath.Join(dir, currentName)
				fi, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.Truncate(path, fi.Size()-10); err != nil {
					t.Fatal(err)
				}
			},
			want: &VerifyError{File: "audit.log", Line: 5, Problem: ProblemTruncated},
		},
		"a rotated file cut mid-line": {
			tamper: func(t *testing.T, dir string) {
				editFile(t, dir, "audit-6-10.log", func(l []string) []string {
					l[4] = l[4][:len(l[4])/2]
					return l
				})
			},
			want: &VerifyError{File: "audit-6-10.log", Line: 5, Problem: ProblemTruncated},
		},
		"the last records cut at a line boundary": {
			tamper: func(t *testing.T, dir string) {
				editFile(t, dir, "audit.log", func(l []string) []string { return l[:3] })
			},
			want: nil, // see TestVerifyWithAnchor
		},
		"a whole rotated file deleted": {
			tamper: func(t *testing.T, dir string) {
				if err := os.Remove(filepath.Join(dir, "audit-6-10.log")); err != nil {
					t.Fatal(err)
				}
			},
			want: &VerifyError{File: "audit.log", Line: 1, Seq: 11, Problem: ProblemSeqGap},
		},
		"the first rotated file deleted": {
			tamper: func(t *testing.T, dir string) {
				if err := os.Remove(filepath.Join(dir, "audit-1-5.log")); err != nil {
					t.Fatal(err)
				}
			},
			want: &VerifyError{File: "audit-6-10.log", Line: 1, Seq: 6, Problem: ProblemUnanchored},
		},
		"rotated files reordered": {
			tamper: func(t *testing.T, dir string) {
				a, b := filepath.Join(dir, "audit-1-5.log"), filepath.Join(dir, "audit-6-10.log")
				tmp := filepath.Join(dir, "tmp")
				for _, mv := range [][2]string{{a, tmp}, {b, a}, {tmp, b}} {
					if err := os.Rename(mv[0], mv[1]); err != nil {
						t.Fatal(err)
					}
				}
			},
			want: &VerifyError{File: "audit-6-10.log", Line: 1, Seq: 1, Problem: ProblemSeqOrder},
		},
		"a rotated file renamed to claim other records": {
			tamper: func(t *testing.T, dir string) {
				if err := os.Rename(filepath.Join(dir, "audit-6-10.log"), filepath.Join(dir, "audit-6-11.log")); err != nil {
					t.Fatal(err)
				}
			},
			want: &VerifyError{File: "audit-6-11.log", Line: 1, Seq: 6, Problem: ProblemFileName},
		},
		"records moved from one file to the next": {
			tamper: func(t *testing.T, dir string) {
				var moved string
				editFile(t, dir, "audit-6-10.log", func(l []string) []string {
					moved = l[4]
					return l[:4]
				})
				editFile(t, dir, "audit.log", func(l []string) []string { return slices.Insert(l, 0, moved) })
			},
			want: &VerifyError{File: "audit-6-10.log", Line: 1, Seq: 6, Problem: ProblemFileName},
		},
		"a record reformatted without changing its values": {
			tamper: func(t *testing.T, dir string) {
				editFile(t, dir, "audit.log", func(l []string) []string {
					l[2] = strings.Replace(l[2], `","`, `", "`, 1)
					return l
				})
			},
			want: &VerifyError{File: "audit.log", Line: 3, Problem: ProblemNonCanonical},
		},
		"a field added that the hash does not cover": {
			tamper: func(t *testing.T, dir string) {
				editFile(t, dir, "audit.log", func(l []string) []string {
					l[2] = strings.Replace(l[2], `{"seq"`, `{"approved_by":"root","seq"`, 1)
					return l
				})
			},
			want: &VerifyError{File: "audit.log", Line: 3, Problem: ProblemNonCanonical},
		},
		"a key repeated so that a decoder sees another value": {
			tamper: func(t *testing.T, dir string) {
				editFile(t, dir, "audit.log", func(l []string) []string {
					l[2] = strings.Replace(l[2], `,"prev"`, `,"kind":"denied","prev"`, 1)
					return l
				})
			},
			want: &VerifyError{File: "audit.log", Line: 3, Problem: ProblemNonCanonical},
		},
		"a blank line inserted": {
			tamper: func(t *testing.T, dir string) {
				editFile(t, dir, "audit.log", func(l []string) []string { return slices.Insert(l, 1, "\n") })
			},
			want: &VerifyError{File: "audit.log", Line: 2, Problem: ProblemMalformed},
		},
		"a record edited and every record after it rechained": {
			tamper: func(t *testing.T, dir string) {
				editFile(t, dir, "audit.log", func(l []string) []string {
					l[1] = strings.Replace(l[1], `"alertname":"DiskWillFillSoon"`, `"alertname":"NodeDown"`, 1)
					return rechain(t, l, 1, recs[10].Hash)
				})
			},
			want: nil, // a keyless chain can be rewritten to its end: see TestVerifyWithAnchor
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := copyLog(t, good)
			tt.tamper(t, dir)
			_, err := Verify(dir)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify = %v; want no error (not detectable without an anchor)", err)
				}
				return
			}
			var got *VerifyError
			if !errors.As(err, &got) {
				t.Fatalf("Verify = %v; want %v", err, tt.want)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreFields(VerifyError{}, "Detail")); diff != "" {
				t.Errorf("Verify = %v\n(-want +got):\n%s", err, diff)
			}
		})
	}
}

func TestVerifyWithAnchor(t *testing.T) {
	t.Parallel()
	good, recs := goodLog(t)
	tests := map[string]struct {
		tamper         func(t *testing.T, dir string)
		seq            uint64
		hash           string
		want           *VerifyError
		wantPastAnchor uint64
	}{
		"an intact log anchored at its last record": {
			seq: 15, hash: recs[14].Hash,
		},
		"an anchor one record behind, as after a crash before the database update": {
			seq: 14, hash: recs[13].Hash, wantPastAnchor: 1,
		},
		"the last records cut at a line boundary": {
			tamper: func(t *testing.T, dir string) {
				editFile(t, dir, "audit.log", func(l []string) []string { return l[:3] })
			},
			seq: 15, hash: recs[14].Hash,
			want: &VerifyError{File: "audit.log", Line: 4, Seq: 15, Problem: ProblemTailCut},
		},
		"the whole current file emptied": {
			tamper: func(t *testing.T, dir string) {
				writeLines(t, filepath.Join(dir, currentName), nil)
			},
			seq: 15, hash: recs[14].Hash,
			want: &VerifyError{File: "audit.log", Line: 1, Seq: 15, Problem: ProblemTailCut},
		},
		"a record edited and every record after it rechained": {
			tamper: func(t *testing.T, dir string) {
				editFile(t, dir, "audit.log", func(l []string) []string {
					l[1] = strings.Replace(l[1], `"alertname":"DiskWillFillSoon"`, `"alertname":"NodeDown"`, 1)
					return rechain(t, l, 1, recs[10].Hash)
				})
			},
			seq: 15, hash: recs[14].Hash,
			want: &VerifyError{File: "audit.log", Line: 5, Seq: 15, Problem: ProblemAnchorHash},
		},
		"the first file deleted and a forged audit_pruned record appended": {
			tamper: func(t *testing.T, dir string) {
				if err := os.Remove(filepath.Join(dir, "audit-1-5.log")); err != nil {
					t.Fatal(err)
				}
				editFile(t, dir, "audit.log", func(l []string) []string {
					return append(l, forge(Record{Seq: 16, Time: start, Kind: KindPruned, Prev: recs[14].Hash, Fields: map[string]string{
						"file": "audit-1-5.log", "first_seq": "1", "last_seq": "5", "last_hash": recs[4].Hash,
					}}))
				})
			},
			seq: 15, hash: recs[14].Hash,
			want: &VerifyError{File: "audit-6-10.log", Line: 1, Seq: 6, Problem: ProblemUnanchored},
		},
		"a wrong hash for seq 0": {
			seq: 0, hash: recs[0].Hash,
			want: &VerifyError{File: "audit.log", Line: 1, Problem: ProblemAnchorHash},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := copyLog(t, good)
			if tt.tamper != nil {
				tt.tamper(t, dir)
			}
			rep, err := VerifyWithAnchor(dir, tt.seq, tt.hash)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("VerifyWithAnchor = %v; want no error", err)
				}
				if rep.PastAnchor != tt.wantPastAnchor {
					t.Errorf("PastAnchor = %d; want %d", rep.PastAnchor, tt.wantPastAnchor)
				}
				return
			}
			var got *VerifyError
			if !errors.As(err, &got) {
				t.Fatalf("VerifyWithAnchor = %v; want %v", err, tt.want)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreFields(VerifyError{}, "Detail")); diff != "" {
				t.Errorf("VerifyWithAnchor = %v\n(-want +got):\n%s", err, diff)
			}
		})
	}
}

func TestVerifyEmptyLogs(t *testing.T) {
	t.Parallel()
	tests := map[string]func(t *testing.T, dir string){
		"an empty directory": func(*testing.T, string) {},
		"an empty audit.log": func(t *testing.T, dir string) { writeLines(t, filepath.Join(dir, currentName), nil) },
		"a log just opened": func(t *testing.T, dir string) {
			l := openLog(t, dir, Options{})
			closeLog(t, l)
		},
		"other files only": func(t *testing.T, dir string) {
			writeLines(t, filepath.Join(dir, "notes.txt"), []string{"hello\n"})
		},
	}
	for name, setup := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			setup(t, dir)
			rep, err := VerifyWithAnchor(dir, 0, Genesis)
			if err != nil {
				t.Fatalf("VerifyWithAnchor(0, genesis) = %v; want no error", err)
			}
			if rep.Records != 0 || rep.LastHash != Genesis {
				t.Errorf("report %+v; want no records and the genesis hash", rep)
			}
		})
	}
}

func TestVerifyMissingDirectory(t *testing.T) {
	t.Parallel()
	_, err := Verify(filepath.Join(t.TempDir(), "missing"))
	if err == nil || problem(err) != "" {
		t.Fatalf("Verify of a missing directory = %v; want an I/O error", err)
	}
}
