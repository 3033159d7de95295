package install

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

var files = fstest.MapFS{
	"healer/healer.yml":             {Data: []byte("global: {dry_run: true}\n")},
	"systemd/deus-healer.service":   {Data: []byte("[Service]\nExecStart=/usr/local/bin/deus-healer\n")},
	"systemd/deus-exporter.service": {Data: []byte("[Service]\nExecStart=/usr/local/bin/deus-exporter\n")},
}

func actions(cs []Change) string {
	var s []string
	for _, c := range cs {
		s = append(s, c.Action+" "+filepath.Base(c.Path))
	}
	return strings.Join(s, ", ")
}

func TestInstallIsIdempotent(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	bin := filepath.Join(t.TempDir(), "healer")
	if err := os.WriteFile(bin, []byte("binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	o := Options{Root: root, Files: files, Healer: bin}

	plan, err := Plan(o)
	if err != nil {
		t.Fatal(err)
	}
	want := "mkdir deus, mkdir deus-healer, mkdir bin, mkdir system, write healer.yml, write webhook.token, write api.token, " +
		"write deus-exporter.service, write deus-healer.service, copy deus-healer"
	if got := actions(plan); got != want {
		t.Fatalf("first plan:\n got %s\nwant %s", got, want)
	}
	// Planning (a dry run) changes nothing.
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Fatalf("Plan wrote into %s", root)
	}
	if err := Apply(plan); err != nil {
		t.Fatal(err)
	}
	tok, err := os.Stat(filepath.Join(root, "etc/deus/api.token"))
	if err != nil || tok.Mode().Perm() != 0o600 || tok.Size() < 40 {
		t.Errorf("api.token: %v, mode %v, %d bytes; want 0600 and a long random token", err, tok.Mode(), tok.Size())
	}

	// Again: nothing to change but what is the site's.
	plan, err = Plan(o)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := actions(plan), "keep healer.yml, keep webhook.token, keep api.token"; got != want {
		t.Errorf("second plan: got %s, want %s", got, want)
	}

	// A site's edit of the configuration is kept; a changed unit is put back.
	cfg := filepath.Join(root, "etc/deus/healer.yml")
	unit := filepath.Join(root, "etc/systemd/system/deus-healer.service")
	for _, p := range []string{cfg, unit} {
		if err := os.WriteFile(p, []byte("edited\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	plan, err = Plan(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := Apply(plan); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(cfg); string(b) != "edited\n" {
		t.Errorf("the site's configuration was overwritten: %q", b)
	}
	if b, _ := os.ReadFile(unit); !strings.Contains(string(b), "ExecStart") {
		t.Errorf("the unit was not restored: %q", b)
	}
}
