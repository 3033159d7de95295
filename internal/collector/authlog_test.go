package collector

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// updateSamples runs one Update of c and returns the samples it wrote, keyed
// by series as they appear in the exposition (`name{label="value"}`),
// together with Update's error.
func updateSamples(t *testing.T, c Collector) (map[string]float64, error) {
	t.Helper()
	var w Writer
	err := c.Update(t.Context(), &w)
	got := map[string]float64{}
	for line := range strings.Lines(string(w.Bytes())) {
		line = strings.TrimSuffix(line, "\n")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("sample line %q has no value", line)
		}
		v, perr := strconv.ParseFloat(line[i+1:], 64)
		if perr != nil {
			t.Fatalf("sample line %q: %v", line, perr)
		}
		if _, dup := got[line[:i]]; dup {
			t.Fatalf("series %s written twice", line[:i])
		}
		got[line[:i]] = v
	}
	return got, err
}

// mustUpdate is updateSamples for an Update that must succeed.
func mustUpdate(t *testing.T, c Collector) map[string]float64 {
	t.Helper()
	got, err := updateSamples(t, c)
	if err != nil {
		t.Fatalf("Update() = %v; want nil", err)
	}
	return got
}

// seriesValue returns the value of one series, failing the test when the
// series was not written.
func seriesValue(t *testing.T, samples map[string]float64, series string) float64 {
	t.Helper()
	v, ok := samples[series]
	if !ok {
		t.Fatalf("series %s absent; got %v", series, samples)
	}
	return v
}

// samplesOf keeps the samples of one metric family.
func samplesOf(samples map[string]float64, name string) map[string]float64 {
	got := map[string]float64{}
	for series, v := range samples {
		if series == name || strings.HasPrefix(series, name+"{") {
			got[series] = v
		}
	}
	return got
}

// authFixture is a host root with /var/log and a state file outside it.
type authFixture struct {
	root  string
	log   string // /var/log/auth.log under root
	state string
}

func newAuthFixture(t *testing.T) authFixture {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "var", "log"), 0o755); err != nil {
		t.Fatal(err)
	}
	return authFixture{
		root:  root,
		log:   filepath.Join(root, "var", "log", "auth.log"),
		state: filepath.Join(t.TempDir(), "authlog.json"),
	}
}

// collector returns a fresh Authlog, as after an exporter restart.
func (f authFixture) collector() *Authlog {
	return &Authlog{
		Paths:     Paths{Proc: filepath.Join(f.root, "proc"), Root: f.root},
		Files:     []string{"/var/log/auth.log"},
		StateFile: f.state,
	}
}

// appendLog appends text to the file at path, creating it if needed.
func appendLog(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// sshdFailures returns n distinct sshd "Failed password" lines.
func sshdFailures(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "Nov 23 10:00:%02d web1 sshd[%d]: Failed password for root from 203.0.113.5 port %d ssh2\n",
			i%60, 1201+i, 51122+i)
	}
	return b.String()
}

const (
	sshdAccepted = "Nov 23 10:01:00 web1 sshd[1301]: Accepted publickey for deploy from 198.51.100.7 port 40022 ssh2: ED25519 SHA256:Wc1\n"
	sudoFailure  = "Nov 23 10:02:00 web1 sudo: pam_unix(sudo:auth): authentication failure; logname=alice uid=1000 euid=0 tty=/dev/pts/0 ruser=alice rhost=  user=alice\n"
)

// wantAuthFailures runs Update and compares deus_auth_failures_total with
// want, where a service missing from want must read 0.
func wantAuthFailures(t *testing.T, c *Authlog, want map[string]float64) {
	t.Helper()
	w := map[string]float64{}
	for _, s := range AuthServices {
		w[`deus_auth_failures_total{service="`+s+`"}`] = want[s]
	}
	got := samplesOf(mustUpdate(t, c), "deus_auth_failures_total")
	if diff := cmp.Diff(w, got); diff != "" {
		t.Errorf("deus_auth_failures_total mismatch (-want +got):\n%s", diff)
	}
}

func TestAuthlog(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		run  func(t *testing.T, f authFixture)
	}{
		{
			name: "a first run without state starts at the end of the log",
			run: func(t *testing.T, f authFixture) {
				appendLog(t, f.log, sshdFailures(3)+sudoFailure)
				c := f.collector()
				wantAuthFailures(t, c, nil)
				appendLog(t, f.log, sshdAccepted+sshdFailures(2)+sudoFailure)
				wantAuthFailures(t, c, map[string]float64{"sshd": 2, "sudo": 1})
				wantAuthFailures(t, c, map[string]float64{"sshd": 2, "sudo": 1})
			},
		},
		{
			name: "a partial line is counted once it is complete, and only once",
			run: func(t *testing.T, f authFixture) {
				appendLog(t, f.log, sshdAccepted)
				c := f.collector()
				wantAuthFailures(t, c, nil)
				line := sshdFailures(1)
				appendLog(t, f.log, line[:40])
				wantAuthFailures(t, c, nil)
				appendLog(t, f.log, line[40:60])
				wantAuthFailures(t, c, nil)
				appendLog(t, f.log, line[60:])
				wantAuthFailures(t, c, map[string]float64{"sshd": 1})
				wantAuthFailures(t, c, map[string]float64{"sshd": 1})
			},
		},
		{
			name: "rename rotation counts the end of the old file and all of the new one once",
			run: func(t *testing.T, f authFixture) {
				appendLog(t, f.log, sshdFailures(5))
				c := f.collector()
				wantAuthFailures(t, c, nil)
				appendLog(t, f.log, sshdFailures(2))
				if err := os.Rename(f.log, f.log+".1"); err != nil {
					t.Fatal(err)
				}
				appendLog(t, f.log, sshdFailures(3)+sudoFailure)
				wantAuthFailures(t, c, map[string]float64{"sshd": 5, "sudo": 1})
				appendLog(t, f.log, sshdFailures(1))
				wantAuthFailures(t, c, map[string]float64{"sshd": 6, "sudo": 1})
			},
		},
		{
			name: "a scrape between the rename and the new file drains the old file",
			run: func(t *testing.T, f authFixture) {
				appendLog(t, f.log, sshdFailures(5))
				c := f.collector()
				wantAuthFailures(t, c, nil)
				appendLog(t, f.log, sshdFailures(1))
				if err := os.Rename(f.log, f.log+".1"); err != nil {
					t.Fatal(err)
				}
				appendLog(t, f.log+".1", sshdFailures(1)) // a late write through the daemon's open descriptor
				wantAuthFailures(t, c, map[string]float64{"sshd": 2})
				appendLog(t, f.log, sshdFailures(2))
				wantAuthFailures(t, c, map[string]float64{"sshd": 4})
			},
		},
		{
			name: "a restart after draining a renamed log does not count the drained lines again",
			run: func(t *testing.T, f authFixture) {
				appendLog(t, f.log, sshdFailures(5))
				c := f.collector()
				wantAuthFailures(t, c, nil)
				appendLog(t, f.log, sshdFailures(2))
				if err := os.Rename(f.log, f.log+".1"); err != nil {
					t.Fatal(err)
				}
				wantAuthFailures(t, c, map[string]float64{"sshd": 2})

				restarted := f.collector()
				appendLog(t, f.log, sshdFailures(3))
				wantAuthFailures(t, restarted, map[string]float64{"sshd": 3})
			},
		},
		{
			name: "rename rotation with more than MaxRead left finishes the old file first",
			run: func(t *testing.T, f authFixture) {
				c := f.collector()
				c.MaxRead = 64 << 10
				appendLog(t, f.log, sshdAccepted)
				wantAuthFailures(t, c, nil)
				appendLog(t, f.log, sshdFailures(2000)) // about three reads of MaxRead
				if _, err := updateSamples(t, c); err != nil {
					t.Fatal(err)
				}
				if err := os.Rename(f.log, f.log+".1"); err != nil {
					t.Fatal(err)
				}
				appendLog(t, f.log, sshdFailures(3))
				for range 3 {
					if _, err := updateSamples(t, c); err != nil {
						t.Fatal(err)
					}
				}
				wantAuthFailures(t, c, map[string]float64{"sshd": 2003})
			},
		},
		{
			name: "a rotation while down with more than MaxRead left finishes the old file first",
			run: func(t *testing.T, f authFixture) {
				appendLog(t, f.log, sshdAccepted)
				wantAuthFailures(t, f.collector(), nil)
				appendLog(t, f.log, sshdFailures(2000))
				if err := os.Rename(f.log, f.log+".1"); err != nil {
					t.Fatal(err)
				}
				appendLog(t, f.log, sshdFailures(3))
				c := f.collector()
				c.MaxRead = 64 << 10
				for range 3 {
					if _, err := updateSamples(t, c); err != nil {
						t.Fatal(err)
					}
				}
				wantAuthFailures(t, c, map[string]float64{"sshd": 2003})
			},
		},
		{
			name: "copytruncate starts over at the top of the file",
			run: func(t *testing.T, f authFixture) {
				appendLog(t, f.log, sshdFailures(5))
				c := f.collector()
				wantAuthFailures(t, c, nil)
				appendLog(t, f.log, sshdFailures(1))
				wantAuthFailures(t, c, map[string]float64{"sshd": 1})
				if err := os.Truncate(f.log, 0); err != nil {
					t.Fatal(err)
				}
				appendLog(t, f.log, sudoFailure+sshdFailures(1))
				wantAuthFailures(t, c, map[string]float64{"sshd": 2, "sudo": 1})
				wantAuthFailures(t, c, map[string]float64{"sshd": 2, "sudo": 1})
			},
		},
		{
			name: "a restart continues from the saved offset",
			run: func(t *testing.T, f authFixture) {
				appendLog(t, f.log, sshdFailures(5))
				c := f.collector()
				wantAuthFailures(t, c, nil)
				appendLog(t, f.log, sshdFailures(2))
				wantAuthFailures(t, c, map[string]float64{"sshd": 2})
				line := sshdFailures(1)
				appendLog(t, f.log, sshdFailures(3)+line[:30])
				wantAuthFailures(t, c, map[string]float64{"sshd": 5})

				// The new process counts from zero: the three lines the
				// old one read are not counted again, and the partial line
				// it left behind is counted once it is complete.
				restarted := f.collector()
				appendLog(t, f.log, line[30:]+sudoFailure)
				wantAuthFailures(t, restarted, map[string]float64{"sshd": 1, "sudo": 1})
				wantAuthFailures(t, restarted, map[string]float64{"sshd": 1, "sudo": 1})
			},
		},
		{
			name: "a rotation while the exporter is down counts the rest of the old file and the new one",
			run: func(t *testing.T, f authFixture) {
				appendLog(t, f.log, sshdFailures(5))
				wantAuthFailures(t, f.collector(), nil)
				appendLog(t, f.log, sshdFailures(2))
				if err := os.Rename(f.log, f.log+".1"); err != nil {
					t.Fatal(err)
				}
				appendLog(t, f.log, sshdFailures(3)+sudoFailure)
				restarted := f.collector()
				wantAuthFailures(t, restarted, map[string]float64{"sshd": 5, "sudo": 1})
				wantAuthFailures(t, restarted, map[string]float64{"sshd": 5, "sudo": 1})
			},
		},
		{
			name: "a truncation while the exporter is down reads the file from its start",
			run: func(t *testing.T, f authFixture) {
				appendLog(t, f.log, sshdFailures(5))
				wantAuthFailures(t, f.collector(), nil)
				if err := os.Truncate(f.log, 0); err != nil {
					t.Fatal(err)
				}
				appendLog(t, f.log, sshdFailures(1))
				wantAuthFailures(t, f.collector(), map[string]float64{"sshd": 1})
			},
		},
		{
			name: "a corrupt state file is reported and the tail starts at the end",
			run: func(t *testing.T, f authFixture) {
				appendLog(t, f.log, sshdFailures(5))
				if err := os.WriteFile(f.state, []byte("{not json"), 0o600); err != nil {
					t.Fatal(err)
				}
				c := f.collector()
				if _, err := updateSamples(t, c); err == nil {
					t.Errorf("Update() with a corrupt state file = nil; want an error")
				}
				appendLog(t, f.log, sshdFailures(1))
				wantAuthFailures(t, c, map[string]float64{"sshd": 1})
				wantAuthFailures(t, f.collector(), nil)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, newAuthFixture(t))
		})
	}
}

func TestAuthlogWithoutLogReportsNoDataAndZeros(t *testing.T) {
	t.Parallel()
	f := newAuthFixture(t)
	c := f.collector()
	for range 2 {
		got, err := updateSamples(t, c)
		if !errors.Is(err, ErrNoData) {
			t.Errorf("Update() = %v; want an error wrapping ErrNoData", err)
		}
		want := map[string]float64{}
		for _, s := range AuthServices {
			want[`deus_auth_failures_total{service="`+s+`"}`] = 0
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("samples mismatch (-want +got):\n%s", diff)
		}
	}
}
