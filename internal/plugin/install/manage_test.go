package install

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func installHello(t *testing.T, s setup, name, version string) {
	t.Helper()
	dir := t.TempDir()
	tree := helloTree(version)
	tree["plugin.yml"] = file{body: "name: " + name + "\nversion: " + version + "\n", mode: 0o644}
	writeTree(t, dir, tree)
	archive, err := Pack(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := writeSigned(t, s.src, name+"-"+version+".tar.gz", archive, s.key.sign(t, archive))
	if _, err := Install(t.Context(), path, s.opts()); err != nil {
		t.Fatal(err)
	}
}

func TestListAndRemove(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	installHello(t, s, "hello", "1.0.0")
	installHello(t, s, "disk-clean", "0.3.0")
	// What List passes over: an install a crash interrupted, and a file.
	if err := os.Mkdir(filepath.Join(s.plugins, ".install-123"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.plugins, "README"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := List(s.plugins)
	if err != nil {
		t.Fatal(err)
	}
	want := []Plugin{
		{Name: "disk-clean", Version: "0.3.0", Dir: filepath.Join(s.plugins, "disk-clean")},
		{Name: "hello", Version: "1.0.0", Dir: filepath.Join(s.plugins, "hello")},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
	if err := Remove(s.plugins, "hello"); err != nil {
		t.Fatal(err)
	}
	got, err = List(s.plugins)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want[:1], got); diff != "" {
		t.Errorf("List after Remove (-want +got):\n%s", diff)
	}
	if got := names(t, s.plugins); !cmp.Equal(got, []string{".install-123", "README", "disk-clean"}) {
		t.Errorf("plugins folder holds %v after Remove, want nothing of hello", got)
	}
	if err := Remove(s.plugins, "hello"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("removing it again: got %v, want fs.ErrNotExist", err)
	}
}

func TestListReportsAFolderWithoutAManifestAndListsTheRest(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	installHello(t, s, "hello", "1.0.0")
	if err := os.Mkdir(filepath.Join(s.plugins, "broken"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := List(s.plugins)
	if err == nil || !strings.Contains(err.Error(), "broken: read plugin.yml") {
		t.Errorf("got %v, want the broken folder named", err)
	}
	if len(got) != 1 || got[0].Name != "hello" {
		t.Errorf("List = %+v, want hello still listed", got)
	}
}

func TestListOfAMissingFolderIsEmpty(t *testing.T) {
	t.Parallel()
	got, err := List(filepath.Join(t.TempDir(), "none"))
	if err != nil || len(got) != 0 {
		t.Errorf("List = %v, %v; want nothing and no error", got, err)
	}
}

func TestRemoveRefusesAnythingButAPluginName(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	installHello(t, s, "hello", "1.0.0")
	for _, name := range []string{"", ".", "..", "../src", "hello/bin", "hello.old", ".install-1", "/etc"} {
		if err := Remove(s.plugins, name); err == nil || !strings.Contains(err.Error(), "not a plugin name") {
			t.Errorf("Remove(%q) = %v; want not a plugin name", name, err)
		}
	}
	if got := names(t, s.plugins); !cmp.Equal(got, []string{"hello"}) {
		t.Errorf("plugins folder holds %v, want hello untouched", got)
	}
	if got := names(t, s.src); len(got) == 0 {
		t.Error("the folder beside the plugins was removed")
	}
}

func TestRemoveRefusesASymlink(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	if err := os.MkdirAll(s.plugins, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(s.src, filepath.Join(s.plugins, "src")); err != nil {
		t.Fatal(err)
	}
	if err := Remove(s.plugins, "src"); err == nil || !strings.Contains(err.Error(), "is not a plugin folder") {
		t.Errorf("got %v, want the symlink refused", err)
	}
	if _, err := os.Stat(s.src); err != nil {
		t.Errorf("the symlink's target: %v", err)
	}
}
