// Package install sets a host up for the healer and the exporter, as the
// seed's integration.py install did: directories, the configuration, token
// files and systemd units. It plans first and applies only what differs, so
// running it again changes nothing, and a dry run prints the plan.
package install

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/deus-ex-machina/deus/internal/atomicfile"
)

// Change is one thing install does.
type Change struct {
	// Action is mkdir, write, copy or keep (a file that exists and differs
	// from ours and is left alone: configuration and tokens are the
	// site's once written).
	Action string
	Path   string
	Mode   fs.FileMode
	// Content is what write writes; copy copies From.
	Content []byte
	From    string
	Why     string
}

func (c Change) String() string {
	switch c.Action {
	case "mkdir":
		return fmt.Sprintf("mkdir %s (%#o)", c.Path, c.Mode)
	case "copy":
		return fmt.Sprintf("copy  %s -> %s (%#o)", c.From, c.Path, c.Mode)
	case "keep":
		return fmt.Sprintf("keep  %s (%s)", c.Path, c.Why)
	default:
		return fmt.Sprintf("write %s (%#o, %d bytes)%s", c.Path, c.Mode, len(c.Content), suffix(c.Why))
	}
}

func suffix(why string) string {
	if why == "" {
		return ""
	}
	return ": " + why
}

// Options say where to install.
type Options struct {
	// Root is prepended to every path (a chroot or an image being built;
	// "/" for this host).
	Root string
	// Files holds healer/healer.yml and systemd/*.service (deploy.Files).
	Files fs.FS
	// Healer and Exporter are the binaries to install as
	// /usr/local/bin/deus-healer and deus-exporter; empty skips one.
	Healer, Exporter string
}

// Plan returns what Apply would change.
func Plan(o Options) ([]Change, error) {
	var out []Change
	at := func(p string) string { return filepath.Join(o.Root, p) }
	for _, d := range []struct {
		path string
		mode fs.FileMode
	}{{"/etc/deus", 0o750}, {"/var/lib/deus-healer", 0o750}, {"/usr/local/bin", 0o755}, {"/etc/systemd/system", 0o755}} {
		if fi, err := os.Stat(at(d.path)); err == nil && fi.IsDir() {
			continue
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		out = append(out, Change{Action: "mkdir", Path: at(d.path), Mode: d.mode})
	}
	cfg, err := fs.ReadFile(o.Files, "healer/healer.yml")
	if err != nil {
		return nil, err
	}
	files := []struct {
		path    string
		mode    fs.FileMode
		content []byte
		keep    bool // once written, the site's
	}{
		{"/etc/deus/healer.yml", 0o640, cfg, true},
		{"/etc/deus/webhook.token", 0o600, token(), true},
		{"/etc/deus/api.token", 0o600, token(), true},
	}
	units, err := fs.Glob(o.Files, "systemd/*.service")
	if err != nil {
		return nil, err
	}
	for _, u := range units {
		b, err := fs.ReadFile(o.Files, u)
		if err != nil {
			return nil, err
		}
		files = append(files, struct {
			path    string
			mode    fs.FileMode
			content []byte
			keep    bool
		}{"/etc/systemd/system/" + filepath.Base(u), 0o644, b, false})
	}
	for _, f := range files {
		old, err := os.ReadFile(at(f.path))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			out = append(out, Change{Action: "write", Path: at(f.path), Mode: f.mode, Content: f.content, Why: "new"})
		case err != nil:
			return nil, err
		case f.keep:
			out = append(out, Change{Action: "keep", Path: at(f.path), Why: "exists; the site's to change"})
		case !bytes.Equal(old, f.content):
			out = append(out, Change{Action: "write", Path: at(f.path), Mode: f.mode, Content: f.content, Why: "differs from this version's"})
		}
	}
	for _, b := range []struct{ from, to string }{{o.Healer, "/usr/local/bin/deus-healer"}, {o.Exporter, "/usr/local/bin/deus-exporter"}} {
		if b.from == "" {
			continue
		}
		same, err := sameFile(b.from, at(b.to))
		if err != nil {
			return nil, err
		}
		if !same {
			out = append(out, Change{Action: "copy", Path: at(b.to), From: b.from, Mode: 0o755})
		}
	}
	return out, nil
}

func token() []byte { return []byte(rand.Text() + rand.Text() + "\n") }

func sameFile(a, b string) (bool, error) {
	x, err := os.ReadFile(a)
	if err != nil {
		return false, err
	}
	y, err := os.ReadFile(b)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return bytes.Equal(x, y), nil
}

// Apply makes the changes, each file written to a temporary name, synced
// and renamed into place.
func Apply(changes []Change) error {
	for _, c := range changes {
		var err error
		switch c.Action {
		case "mkdir":
			err = os.MkdirAll(c.Path, c.Mode)
		case "write":
			err = atomicfile.Write(c.Path, bytes.NewReader(c.Content), c.Mode)
		case "copy":
			var f *os.File
			if f, err = os.Open(c.From); err == nil {
				err = atomicfile.Write(c.Path, f, c.Mode)
				f.Close()
			}
		}
		if err != nil {
			return fmt.Errorf("%s: %w", c, err)
		}
	}
	return nil
}

// Summary is what to do after an install.
func Summary(changes []Change) string {
	var b strings.Builder
	n := 0
	for _, c := range changes {
		if c.Action != "keep" {
			n++
		}
	}
	if n == 0 {
		b.WriteString("nothing to change: the host is set up\n")
	}
	b.WriteString("next: systemctl daemon-reload && systemctl enable --now deus-exporter deus-healer\n")
	b.WriteString("the healer starts in dry-run mode: read /etc/deus/healer.yml, then turn dry_run off\n")
	return b.String()
}
