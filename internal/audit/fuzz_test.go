package audit

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
)

// FuzzVerify feeds arbitrary bytes to Verify as the log's current file, and
// as a rotated file before a valid one. Verify must not panic, and a log it
// accepts must be one Open can resume and extend into a log it accepts
// again.
func FuzzVerify(f *testing.F) {
	seedDir := f.TempDir()
	l, err := Open(seedDir, Options{Now: newClock().Now})
	if err != nil {
		f.Fatal(err)
	}
	appendN(f, l, 0, 4)
	closeLog(f, l)
	good, err := os.ReadFile(filepath.Join(seedDir, currentName))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)-7])
	f.Add(bytes.Replace(good, []byte(`"seq":2`), []byte(`"seq":3`), 1))
	f.Add([]byte{})
	f.Add([]byte("\n"))
	f.Add([]byte(`{"seq":1}` + "\n"))
	f.Add([]byte(`{"seq":18446744073709551615,"time":"9999-12-31T23:59:59.999999999Z","kind":"x","prev":"","hash":""}` + "\n"))
	f.Add(bytes.Repeat([]byte("x"), 70000))

	f.Fuzz(func(t *testing.T, data []byte) {
		// In memory: the fuzzer runs this thousands of times a second, and
		// creating and deleting files that often slows the disk to a crawl.
		// The bytes as a rotated file that a valid log follows:
		v := verifier{}
		_, _ = v.run(fstest.MapFS{"audit-1-4.log": {Data: data}, currentName: {Data: good}})

		// The bytes as the current file:
		v = verifier{}
		rep, err := v.run(fstest.MapFS{currentName: {Data: data}})
		if err != nil {
			return
		}
		if rep.Records != uint64(bytes.Count(data, []byte("\n"))) {
			t.Fatalf("Verify accepted %d records in %d lines", rep.Records, bytes.Count(data, []byte("\n")))
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, currentName), data, 0o600); err != nil {
			t.Fatal(err)
		}
		l, err := Open(dir, Options{})
		if err != nil {
			t.Fatalf("Open of a log Verify accepts: %v", err)
		}
		defer closeLog(t, l)
		if _, err := l.Append(t.Context(), Record{Kind: KindReceived}); err != nil {
			t.Fatalf("Append: %v", err)
		}
		if _, err := Verify(dir); err != nil {
			t.Fatalf("Verify after an append to a log it accepted: %v", err)
		}
	})
}
