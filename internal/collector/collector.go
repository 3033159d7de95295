// Package collector reads the state of a host from /proc, /sys and a few
// files of its own, and writes it in the Prometheus text format. Vitals use
// node_exporter's metric names, labels and units; what node_exporter does not
// have is prefixed with deus_.
package collector

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
)

// Collector writes one group of metrics. Update is called at scrape time,
// never concurrently with itself: the Scraper serialises calls per collector.
type Collector interface {
	Update(ctx context.Context, w *Writer) error
}

// ErrNoData reports that a collector found nothing to read on this host (for
// example no PSI support in the kernel). It is not counted as a failure.
var ErrNoData = errors.New("no data on this host")

// Paths are the roots under which the host is read, so that a fixture tree or
// a host mounted into a container (/host/proc) can stand in for the real one.
type Paths struct {
	Proc string
	Sys  string
	Root string
}

// DefaultPaths are the paths of the running host.
func DefaultPaths() Paths {
	return Paths{Proc: "/proc", Sys: "/sys", Root: "/"}
}

func (p Paths) proc(elem ...string) string {
	return filepath.Join(append([]string{p.Proc}, elem...)...)
}

func (p Paths) sys(elem ...string) string {
	return filepath.Join(append([]string{p.Sys}, elem...)...)
}

// rootPath maps a path as seen by the host (a mount point, /etc/passwd) to
// where it is visible to this process.
func (p Paths) rootPath(path string) string {
	if p.Root == "" || p.Root == "/" {
		return path
	}
	return filepath.Join(p.Root, path)
}

// hostPath strips the root prefix from a path read from a mount table, so
// that metrics name mount points as the host sees them.
func (p Paths) hostPath(path string) string {
	if p.Root == "" || p.Root == "/" {
		return path
	}
	root := strings.TrimSuffix(p.Root, "/")
	if path == root {
		return "/"
	}
	if rest, ok := strings.CutPrefix(path, root+"/"); ok {
		return "/" + rest
	}
	return path
}

// readSmall reads a small file such as one under /proc/sys.
func readSmall(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}
