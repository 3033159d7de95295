package install

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/deus-ex-machina/deus/internal/atomicfile"
)

// Plugin is an installed plugin.
type Plugin struct {
	Name    string
	Version string
	Dir     string
}

// List returns the plugins installed in pluginsDir, by name. Folders whose
// names start with a dot (an install or a removal in progress, or one a
// crash interrupted) are skipped. A folder without a readable plugin.yml,
// or whose plugin.yml names another plugin, is reported in the error while
// the others are still listed. A missing pluginsDir holds no plugins.
func List(pluginsDir string) ([]Plugin, error) {
	ents, err := os.ReadDir(pluginsDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Plugin
	var errs []error
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") || !e.IsDir() {
			continue
		}
		dir := filepath.Join(pluginsDir, e.Name())
		m, err := ReadMeta(dir)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", dir, err))
			continue
		}
		if m.Name != e.Name() {
			errs = append(errs, fmt.Errorf("%s: %s names the plugin %q", dir, ManifestFile, m.Name))
			continue
		}
		out = append(out, Plugin{Name: m.Name, Version: m.Version, Dir: dir})
	}
	return out, errors.Join(errs...)
}

// Remove uninstalls the plugin name from pluginsDir. The name must be a
// plugin name (no slash, no dot), so that only a folder directly in
// pluginsDir can be removed. The folder is first renamed out of the way in
// one step, so that no half-removed plugin is ever visible under its name,
// and then deleted.
func Remove(pluginsDir, name string) error {
	if !ValidName(name) {
		return fmt.Errorf("remove %q: not a plugin name", name)
	}
	target := filepath.Join(pluginsDir, name)
	fi, err := os.Lstat(target)
	if err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("remove %s: %s is not a plugin folder", name, target)
	}
	aside, err := os.MkdirTemp(pluginsDir, ".remove-"+name+"-")
	if err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	// MkdirTemp found a free name; os.Rename will not replace even an
	// empty folder, so free it again. Only another Remove of the same
	// plugin could race for it, and that one would fail.
	if err := os.Remove(aside); err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	if err := os.Rename(target, aside); err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	if err := atomicfile.SyncDir(pluginsDir); err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	if err := os.RemoveAll(aside); err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	return nil
}
