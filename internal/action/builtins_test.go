package action

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// snapshot describes every entry below root: type, mode, size, mtime and
// content hash.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		s := fi.Mode().String() + " " + fi.ModTime().UTC().Format(time.RFC3339Nano)
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			s += " " + hex.EncodeToString(sum[:])
		}
		out[p] = s
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestBuiltins(t *testing.T) {
	t.Parallel()
	tempRoot, logRoot, state := t.TempDir(), t.TempDir(), t.TempDir()
	writeAged(t, filepath.Join(tempRoot, "old"), []byte("old"), 0o644, testNow.Add(-48*time.Hour))
	writeAged(t, filepath.Join(logRoot, "app.log"), []byte("log line\n"), 0o644, testNow)
	pidfile := filepath.Join(state, "svc.pid")
	sleeper, _ := startService(t)
	writeAged(t, pidfile, []byte(strconv.Itoa(sleeper)+"\n"), 0o644, testNow)

	sleep := exec.Command("sleep", "600")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sleep.Process.Kill(); _ = sleep.Wait() })

	runner := &fakeRunner{}
	actions, err := Builtins(BuiltinOptions{
		TempRoots: []string{tempRoot}, QuarantineDir: filepath.Join(state, "quarantine"),
		LogRoots: []string{logRoot}, BackupDir: filepath.Join(state, "backups"),
		Services:  []ProcessService{{Name: "svc.service", Pidfile: pidfile, Start: []string{"/bin/true"}}},
		NeverKill: []string{"postgres"}, NeverBlock: []string{"10.0.0.0/8"}, Firewall: FirewallNftables,
		HTTPAllow: []string{"https://hooks.example.com/"},
		Commands: []CommandConfig{{
			Spec: Spec{Name: "reload_pool", Tier: TierMedium, Timeout: time.Minute, Params: []Param{{Name: "pool", Type: TypeString, Pattern: "[a-z]+", Required: true}}},
			Argv: []string{"/usr/local/bin/reload", "--pool={{pool}}"},
		}},
		Runner: runner, Now: fixedClock(testNow),
	})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := NewRegistry(actions...)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range reg.Specs() {
		names = append(names, s.Name)
	}
	want := []string{"block_ip", "clean_temp_files", "http_request", "kill_process", "reload_pool", "restart_service", "rotate_log", "vacuum_journal"}
	if !slices.Equal(names, want) {
		t.Errorf("got actions %q, want %q", names, want)
	}

	dryParams := map[string]map[string]string{
		"block_ip":         {"address": "203.0.113.9", "ttl": "1h"},
		"clean_temp_files": {"path": tempRoot},
		"http_request":     {"url": "https://hooks.example.com/x"},
		"kill_process":     {"pid": strconv.Itoa(sleep.Process.Pid)},
		"reload_pool":      {"pool": "www"},
		"restart_service":  {"unit": "svc.service"},
		"rotate_log":       {"path": filepath.Join(logRoot, "app.log")},
		"vacuum_journal":   {},
	}
	before := map[string]map[string]string{"temp": snapshot(t, tempRoot), "log": snapshot(t, logRoot), "state": snapshot(t, state)}
	for _, a := range actions {
		spec := a.Spec()
		t.Run(spec.Name, func(t *testing.T) {
			if spec.Timeout <= 0 {
				t.Errorf("got timeout %v, want a positive default", spec.Timeout)
			}
			if _, ok := a.(Reverser); ok != spec.Reversible {
				t.Errorf("got Reverser %v, want it to match Spec.Reversible %v", ok, spec.Reversible)
			}
			for _, p := range spec.Params {
				if p.Default == "" {
					continue
				}
				if got, err := p.Check(p.Default); err != nil || got != p.Default {
					t.Errorf("param %s: default %q checks as %q, %v; want itself", p.Name, p.Default, got, err)
				}
			}
			res, err := a.Run(t.Context(), Request{RunID: "dry-1", DryRun: true, Params: dryParams[spec.Name]})
			if err != nil {
				t.Fatalf("dry run: %v", err)
			}
			if !strings.HasPrefix(res.Summary, "would ") {
				t.Errorf("got summary %q, want it to say what it would do", res.Summary)
			}
			if res.Target == "" {
				t.Error("got no target, want one")
			}
			if res.Undo != nil {
				t.Errorf("got undo %s from a dry run, want none", res.Undo)
			}
		})
	}
	if calls := runner.Calls(); len(calls) != 0 {
		t.Errorf("got commands %q from dry runs, want none", calls)
	}
	after := map[string]map[string]string{"temp": snapshot(t, tempRoot), "log": snapshot(t, logRoot), "state": snapshot(t, state)}
	for k := range before {
		if !maps.Equal(before[k], after[k]) {
			t.Errorf("%s: got %v after the dry runs, want %v", k, after[k], before[k])
		}
	}
	for _, pid := range []int{sleeper, sleep.Process.Pid} {
		if st, err := readStat("/proc", pid); err != nil || st.State == 'Z' {
			t.Errorf("pid %d: got state %q, %v, want it still running", pid, st.State, err)
		}
	}
}

func TestBuiltinsReportsEveryProblem(t *testing.T) {
	t.Parallel()
	_, err := Builtins(BuiltinOptions{
		TempRoots: []string{"/tmp"}, QuarantineDir: "quarantine",
		Firewall:  "pf",
		HTTPAllow: []string{"ftp://x/"},
		Commands:  []CommandConfig{{Spec: Spec{Name: "c"}, Argv: []string{"x", "{{nope}}"}}},
	})
	if err == nil {
		t.Fatal("got no error, want one")
	}
	for _, want := range []string{"quarantine dir", "unknown firewall", "allowed prefix", "{{nope}}"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got %q, want it to mention %q", err, want)
		}
	}
}
