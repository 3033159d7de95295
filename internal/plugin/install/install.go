package install

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/deus-ex-machina/deus/internal/atomicfile"
)

// Defaults for the zero Options.
const (
	defaultTimeout          = time.Minute
	defaultMaxArchiveBytes  = 64 << 20
	defaultMaxUnpackedBytes = 256 << 20
	defaultMaxFiles         = 4096
	maxSignatureBytes       = 4 << 10
)

// Options says where plugins go, whom to trust and how much to accept.
type Options struct {
	// PluginsDir holds one folder per installed plugin, named after it. It
	// is created when missing.
	PluginsDir string
	// Trusted holds the keys a plugin's signature must be by.
	Trusted *Keyring
	// Index resolves a source that is a bare name (NAME or NAME@VERSION).
	Index *Index
	// SignatureFile is the signature's path when it is not beside the
	// source (SOURCE.sig).
	SignatureFile string
	// Client fetches URLs; nil is http.Client's zero value. Its redirects
	// are held to the same rule as the first URL (https, or http to a
	// loopback address).
	Client *http.Client
	// Timeout bounds each fetch (default a minute).
	Timeout time.Duration
	// MaxArchiveBytes bounds the archive (default 64 MiB),
	// MaxUnpackedBytes what it unpacks to (256 MiB) and MaxFiles its
	// entries (4096).
	MaxArchiveBytes  int64
	MaxUnpackedBytes int64
	MaxFiles         int
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = defaultTimeout
	}
	if o.MaxArchiveBytes <= 0 {
		o.MaxArchiveBytes = defaultMaxArchiveBytes
	}
	if o.MaxUnpackedBytes <= 0 {
		o.MaxUnpackedBytes = defaultMaxUnpackedBytes
	}
	if o.MaxFiles <= 0 {
		o.MaxFiles = defaultMaxFiles
	}
	return o
}

// Result describes an installed plugin.
type Result struct {
	Name    string
	Version string
	// Dir is the plugin's folder, PluginsDir/Name.
	Dir string
	// KeyID is the key that signed the archive, SHA256 the archive's
	// checksum.
	KeyID  string
	SHA256 string
	// Replaced is the version this one replaced, if one was installed.
	Replaced string
}

// Install installs the plugin at src, which is
//   - an http(s) URL of a .tar.gz, its signature at the same URL plus .sig
//     (plain http only to a loopback address);
//   - a path with a slash in it or ending in .tar.gz: an archive, or a
//     folder that is packed first (Pack), its signature at the path plus
//     .sig;
//   - otherwise a name, NAME or NAME@VERSION, looked up in opts.Index;
//     the archive must then match the index entry's checksum, and the
//     plugin.yml inside its name and version.
//
// The archive's checksum and signature are verified against opts.Trusted
// before anything is unpacked. It is unpacked into a temporary folder in
// PluginsDir, which must then hold a plugin.yml with a valid name and
// version, and the folder is renamed to PluginsDir/NAME; a previous
// version there is swapped out in the same step (or, where the system
// cannot swap, moved aside and put back should the rename fail) and only
// then removed. Any error leaves PluginsDir as it was.
func Install(ctx context.Context, src string, opts Options) (Result, error) {
	opts = opts.withDefaults()
	if opts.PluginsDir == "" {
		return Result{}, errors.New("install: no plugins directory")
	}
	if len(opts.Trusted.IDs()) == 0 {
		return Result{}, errors.New("install: no trusted keys")
	}
	archive, sig, entry, err := opts.load(ctx, src)
	if err != nil {
		return Result{}, fmt.Errorf("install %s: %w", src, err)
	}
	if entry != nil && Checksum(archive) != entry.SHA256 {
		return Result{}, fmt.Errorf("install %s: %w: the index lists sha256 %s, the archive is %s", src, ErrChecksum, entry.SHA256, Checksum(archive))
	}
	if err := opts.Trusted.Verify(archive, sig); err != nil {
		return Result{}, fmt.Errorf("install %s: %w", src, err)
	}
	res, err := opts.place(archive, entry)
	if err != nil {
		return Result{}, fmt.Errorf("install %s: %w", src, err)
	}
	res.KeyID, res.SHA256 = sig.KeyID, sig.SHA256
	return res, nil
}

// load gets the archive and its signature, and the index entry when src
// is a name.
func (o Options) load(ctx context.Context, src string) ([]byte, Signature, *Entry, error) {
	f := newFetcher(o.Client, o.Timeout)
	var entry *Entry
	loc := src
	switch {
	case isURL(src):
	case strings.Contains(src, "://"):
		scheme, _, _ := strings.Cut(src, "://")
		return nil, Signature{}, nil, fmt.Errorf("scheme %q: want https", scheme)
	case strings.ContainsRune(src, '/') || strings.HasSuffix(src, ".tar.gz") || src == "." || src == "..":
	default:
		if o.Index == nil {
			return nil, Signature{}, nil, fmt.Errorf("%q is not a URL or a path (write ./%s for a folder here), and no index is configured", src, src)
		}
		name, version, _ := strings.Cut(src, "@")
		e, err := o.Index.Lookup(name, version)
		if err != nil {
			return nil, Signature{}, nil, err
		}
		if loc, err = o.Index.location(e); err != nil {
			return nil, Signature{}, nil, err
		}
		entry = &e
	}
	var archive []byte
	var err error
	if fi, statErr := os.Stat(loc); !isURL(loc) && statErr == nil && fi.IsDir() {
		archive, err = Pack(loc)
		if err == nil && int64(len(archive)) > o.MaxArchiveBytes {
			err = fmt.Errorf("%w: %s packs to %d bytes, the limit is %d", ErrTooLarge, loc, len(archive), o.MaxArchiveBytes)
		}
		loc = filepath.Clean(loc)
	} else {
		archive, err = f.get(ctx, loc, o.MaxArchiveBytes)
	}
	if err != nil {
		return nil, Signature{}, nil, err
	}
	sigLoc := o.SignatureFile
	if sigLoc == "" {
		sigLoc = loc + ".sig"
		if isURL(loc) {
			if sigLoc, err = sigURL(loc); err != nil {
				return nil, Signature{}, nil, err
			}
		}
	}
	sigData, err := f.get(ctx, sigLoc, maxSignatureBytes)
	if err != nil {
		return nil, Signature{}, nil, fmt.Errorf("signature: %w", err)
	}
	sig, err := ParseSignature(sigData)
	if err != nil {
		return nil, Signature{}, nil, fmt.Errorf("signature %s: %w", sigLoc, err)
	}
	return archive, sig, entry, nil
}

// place unpacks a verified archive beside the plugins and renames it into
// place; nothing of it remains on an error.
func (o Options) place(archive []byte, entry *Entry) (res Result, err error) {
	// Plugins run as other users, and nothing in them is secret.
	if err := os.MkdirAll(o.PluginsDir, 0o755); err != nil { //nolint:gosec // G301: see above
		return Result{}, err
	}
	tmp, err := os.MkdirTemp(o.PluginsDir, ".install-")
	if err != nil {
		return Result{}, err
	}
	// After the rename tmp is gone, or holds the replaced version.
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil { //nolint:gosec // G302: a plugin folder, as Pack makes them
		return Result{}, err
	}
	if err := unpack(bytes.NewReader(archive), tmp, limits{files: o.MaxFiles, bytes: o.MaxUnpackedBytes}); err != nil {
		return Result{}, err
	}
	meta, err := ReadMeta(tmp)
	if err != nil {
		return Result{}, err
	}
	if entry != nil && (meta.Name != entry.Name || meta.Version != entry.Version) {
		return Result{}, fmt.Errorf("the index lists %s %s, the archive's %s says %s %s", entry.Name, entry.Version, ManifestFile, meta.Name, meta.Version)
	}
	if err := atomicfile.SyncDir(tmp); err != nil {
		return Result{}, err
	}
	target := filepath.Join(o.PluginsDir, meta.Name)
	res = Result{Name: meta.Name, Version: meta.Version, Dir: target}
	if old, err := ReadMeta(target); err == nil {
		res.Replaced = old.Version
	}
	if err := replace(tmp, target); err != nil {
		return Result{}, err
	}
	return res, atomicfile.SyncDir(o.PluginsDir)
}

// replace puts the folder tmp at target. When target exists the two are
// exchanged, so that tmp then holds the old version for the caller to
// remove; where the system cannot exchange, target is moved aside first
// and put back should the rename fail.
func replace(tmp, target string) error {
	fi, err := os.Lstat(target)
	if errors.Is(err, fs.ErrNotExist) {
		return os.Rename(tmp, target)
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() && fi.Mode()&fs.ModeSymlink == 0 {
		return fmt.Errorf("%s exists and is not a plugin folder", target)
	}
	if err := exchange(tmp, target); err == nil {
		return nil
	}
	return moveAside(tmp, target)
}

// moveAside replaces target with tmp in two renames, for systems and
// filesystems that cannot exchange: target is moved aside, tmp takes its
// place (or target is put back), and the old version ends up at tmp.
func moveAside(tmp, target string) error {
	aside := tmp + ".old"
	if err := os.Rename(target, aside); err != nil {
		return err
	}
	if err := os.Rename(tmp, target); err != nil {
		if back := os.Rename(aside, target); back != nil {
			return errors.Join(err, fmt.Errorf("put the previous version back from %s: %w", aside, back))
		}
		return err
	}
	// tmp is gone; the caller's RemoveAll(tmp) is a no-op, so move the old
	// version to where it will remove it.
	return os.Rename(aside, tmp)
}
