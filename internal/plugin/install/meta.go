package install

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"

	"go.yaml.in/yaml/v3"
)

// ManifestFile is the plugin's manifest at the root of its tree.
const ManifestFile = "plugin.yml"

const maxManifestBytes = 1 << 20

// Meta is what installing needs of a plugin's manifest: its name, which is
// its folder under the plugins directory, and its version. Every other key
// is internal/plugin's to read.
type Meta struct {
	Name    string `yaml:"name"`
	Version string `yaml:"version"`
}

// ArchiveName is the file name Pack's output is published under:
// NAME-VERSION.tar.gz (and its signature NAME-VERSION.tar.gz.sig).
func (m Meta) ArchiveName() string {
	return m.Name + "-" + m.Version + ".tar.gz"
}

var (
	namePattern    = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
	versionPattern = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$`)
)

// ValidName reports whether name can name a plugin: lowercase letters,
// digits, '-' and '_', at most 64, never a slash or a dot, so that it is
// always one plain folder name.
func ValidName(name string) bool {
	return namePattern.MatchString(name)
}

func validVersion(v string) bool {
	return versionPattern.MatchString(v)
}

// ReadMeta reads the name and version from dir's plugin.yml.
func ReadMeta(dir string) (Meta, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return Meta{}, err
	}
	defer root.Close() //nolint:errcheck // only read through
	return readMeta(root.FS())
}

func readMeta(fsys fs.FS) (Meta, error) {
	f, err := fsys.Open(ManifestFile)
	if err != nil {
		return Meta{}, fmt.Errorf("read %s: %w", ManifestFile, err)
	}
	defer f.Close() //nolint:errcheck // only read
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return Meta{}, fmt.Errorf("read %s: not a regular file", ManifestFile)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxManifestBytes+1))
	if err != nil {
		return Meta{}, fmt.Errorf("read %s: %w", ManifestFile, err)
	}
	if len(data) > maxManifestBytes {
		return Meta{}, fmt.Errorf("read %s: larger than %d bytes", ManifestFile, maxManifestBytes)
	}
	return parseMeta(data)
}

func parseMeta(data []byte) (Meta, error) {
	var m Meta
	if err := yaml.Unmarshal(data, &m); err != nil {
		return Meta{}, fmt.Errorf("decode %s: %w", ManifestFile, err)
	}
	var errs []error
	if !ValidName(m.Name) {
		errs = append(errs, fmt.Errorf("%s: name %q: want 1 to 64 of a-z, 0-9, '-' and '_', starting with a letter or digit", ManifestFile, m.Name))
	}
	if !validVersion(m.Version) {
		errs = append(errs, fmt.Errorf("%s: version %q: want 1 to 64 of A-Z, a-z, 0-9, '.', '+', '-' and '_', starting with a letter or digit", ManifestFile, m.Version))
	}
	return m, errors.Join(errs...)
}
