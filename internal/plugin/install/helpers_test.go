package install

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// key is a signing key and the keyring that trusts it.
type key struct {
	priv    ed25519.PrivateKey
	pub     ed25519.PublicKey
	trusted *Keyring
}

func newKey(t testing.TB) key {
	t.Helper()
	pubLine, privLine, err := Keygen()
	if err != nil {
		t.Fatal(err)
	}
	priv, err := ParsePrivateKey(privLine)
	if err != nil {
		t.Fatal(err)
	}
	trusted, err := LoadTrusted(string(pubLine))
	if err != nil {
		t.Fatal(err)
	}
	return key{priv: priv, pub: priv.Public().(ed25519.PublicKey), trusted: trusted}
}

func (k key) sign(t testing.TB, archive []byte) Signature {
	t.Helper()
	sig, err := Sign(archive, k.priv)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

type file struct {
	body string
	mode os.FileMode
	link string // a symlink's target, when set
}

// writeTree writes files (by slash-separated name) under dir.
func writeTree(t testing.TB, dir string, files map[string]file) {
	t.Helper()
	for name, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if f.link != "" {
			if err := os.Symlink(f.link, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(f.body), f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, f.mode); err != nil {
			t.Fatal(err)
		}
	}
}

func helloTree(version string) map[string]file {
	return map[string]file{
		"plugin.yml":       {body: "name: hello\nversion: " + version + "\nexec: bin/hello\n", mode: 0o600},
		"bin/hello":        {body: "#!/bin/sh\necho hello " + version + "\n", mode: 0o700},
		"bin/hi":           {link: "hello"},
		"share/README":     {body: "says hello\n", mode: 0o640},
		"share/" + version: {body: version, mode: 0o644},
	}
}

// packHello packs the hello plugin at version in a folder of its own.
func packHello(t testing.TB, version string) []byte {
	t.Helper()
	dir := t.TempDir()
	writeTree(t, dir, helloTree(version))
	archive, err := Pack(dir)
	if err != nil {
		t.Fatal(err)
	}
	return archive
}

// entry is one member of a hand-made archive.
type entry struct {
	hdr  tar.Header
	body string
}

func reg(name, body string) entry {
	return entry{hdr: tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))}, body: body}
}

func symlink(name, target string) entry {
	return entry{hdr: tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777}}
}

func dirEntry(name string) entry {
	return entry{hdr: tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755}}
}

const manifest = "name: hello\nversion: 1.0.0\n"

// tarGz writes entries as a gzipped tar, as an attacker would: nothing is
// checked.
func tarGz(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		if err := tw.WriteHeader(&e.hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// names lists what dir holds, sorted.
func names(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	slices.Sort(out)
	return out
}
