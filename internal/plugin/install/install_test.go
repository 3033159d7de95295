package install

import (
	"archive/tar"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// writeSigned writes archive and its signature into dir as name and
// name.sig, and returns the archive's path.
func writeSigned(t testing.TB, dir, name string, archive []byte, sig Signature) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, archive, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p+".sig", sig.Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// setup is a trusted key, a folder of sources and an empty plugins folder
// beside it, in a base folder that holds nothing else.
type setup struct {
	key     key
	base    string
	src     string
	plugins string
}

func newSetup(t *testing.T) setup {
	t.Helper()
	base := t.TempDir()
	s := setup{key: newKey(t), base: base, src: filepath.Join(base, "src"), plugins: filepath.Join(base, "plugins")}
	if err := os.Mkdir(s.src, 0o755); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s setup) opts() Options {
	return Options{PluginsDir: s.plugins, Trusted: s.key.trusted}
}

// assertNothingLeft fails unless the plugins folder is empty or missing
// and nothing was written beside it.
func (s setup) assertNothingLeft(t *testing.T) {
	t.Helper()
	if got := names(t, s.plugins); len(got) != 0 {
		t.Errorf("plugins folder holds %v after a refusal, want nothing", got)
	}
	for _, n := range names(t, s.base) {
		if n != "plugins" && n != "src" {
			t.Errorf("%s was written beside the plugins folder", n)
		}
	}
}

func TestInstallAGoodArchiveInstallsAndRuns(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	archive := packHello(t, "1.0.0")
	sig := s.key.sign(t, archive)
	path := writeSigned(t, s.src, "hello-1.0.0.tar.gz", archive, sig)
	res, err := Install(t.Context(), path, s.opts())
	if err != nil {
		t.Fatal(err)
	}
	want := Result{
		Name: "hello", Version: "1.0.0", Dir: filepath.Join(s.plugins, "hello"),
		KeyID: KeyID(s.key.pub), SHA256: Checksum(archive),
	}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("Result (-want +got):\n%s", diff)
	}
	if got := names(t, s.plugins); !cmp.Equal(got, []string{"hello"}) {
		t.Errorf("plugins folder holds %v, want only hello", got)
	}
	checkTree(t, res.Dir)
	modes := map[string]fs.FileMode{}
	err = filepath.WalkDir(res.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == res.Dir {
			return err
		}
		fi, err := d.Info()
		rel, _ := filepath.Rel(res.Dir, p)
		modes[filepath.ToSlash(rel)] = fi.Mode()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	wantModes := map[string]fs.FileMode{
		"bin":          fs.ModeDir | 0o755,
		"bin/hello":    0o755,
		"bin/hi":       fs.ModeSymlink | 0o777,
		"plugin.yml":   0o644,
		"share":        fs.ModeDir | 0o755,
		"share/1.0.0":  0o644,
		"share/README": 0o644,
	}
	if diff := cmp.Diff(wantModes, modes); diff != "" {
		t.Errorf("installed tree (-want +got):\n%s", diff)
	}
	out, err := exec.CommandContext(t.Context(), filepath.Join(res.Dir, "bin", "hi")).Output()
	if err != nil || string(out) != "hello 1.0.0\n" {
		t.Errorf("running the installed plugin: %q, %v; want \"hello 1.0.0\\n\"", out, err)
	}
}

func TestInstallAFolderPacksItAndVerifiesTheSignatureBesideIt(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	dir := filepath.Join(s.src, "hello")
	writeTree(t, dir, helloTree("1.0.0"))
	archive, err := Pack(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir+".sig", s.key.sign(t, archive).Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Install(t.Context(), dir+"/", s.opts()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.plugins, "hello", "bin", "hello")); err != nil {
		t.Error(err)
	}
	// A change to the folder after signing is a changed archive.
	if err := os.WriteFile(filepath.Join(dir, "bin", "hello"), []byte("#!/bin/sh\nrm -rf /\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Install(t.Context(), dir, s.opts()); !errors.Is(err, ErrChecksum) {
		t.Errorf("installing a folder changed after signing: got %v, want ErrChecksum", err)
	}
}

func TestInstallReplacesAnOlderVersionOnlyOnceTheNewOneIsComplete(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	install := func(version string, tamper bool) (Result, error) {
		archive := packHello(t, version)
		sig := s.key.sign(t, archive)
		if tamper {
			archive[len(archive)/2] ^= 1
		}
		return Install(t.Context(), writeSigned(t, s.src, "hello-"+version+".tar.gz", archive, sig), s.opts())
	}
	if _, err := install("1.0.0", false); err != nil {
		t.Fatal(err)
	}
	if _, err := install("2.0.0", true); !errors.Is(err, ErrChecksum) {
		t.Fatalf("a tampered 2.0.0: got %v, want ErrChecksum", err)
	}
	if m, err := ReadMeta(filepath.Join(s.plugins, "hello")); err != nil || m.Version != "1.0.0" {
		t.Fatalf("after a refused upgrade: %+v, %v; want 1.0.0 still installed", m, err)
	}
	res, err := install("2.0.0", false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Replaced != "1.0.0" || res.Version != "2.0.0" {
		t.Errorf("Result %+v; want 2.0.0 replacing 1.0.0", res)
	}
	if got := names(t, s.plugins); !cmp.Equal(got, []string{"hello"}) {
		t.Errorf("plugins folder holds %v, want only hello", got)
	}
	if got := names(t, filepath.Join(s.plugins, "hello", "share")); !cmp.Equal(got, []string{"2.0.0", "README"}) {
		t.Errorf("share holds %v, want the new version's files only", got)
	}
}

func TestInstallRefusesAndLeavesNothingBehind(t *testing.T) {
	t.Parallel()
	other := newKey(t)
	man := reg("plugin.yml", manifest)
	for _, tc := range []struct {
		name string
		// archive returns the archive and its signature; nil means signed
		// by the trusted key.
		archive func(t *testing.T, k key) ([]byte, *Signature)
		opts    func(o *Options)
		is      error
		want    string
	}{
		{
			name: "a tampered archive, one byte flipped",
			archive: func(t *testing.T, k key) ([]byte, *Signature) {
				a := packHello(t, "1.0.0")
				sig := k.sign(t, a)
				a[len(a)/2] ^= 0x01
				return a, &sig
			},
			is: ErrChecksum, want: "file is ",
		},
		{
			name: "another key's signature under the trusted key's ID",
			archive: func(t *testing.T, k key) ([]byte, *Signature) {
				a := packHello(t, "1.0.0")
				sig := other.sign(t, a)
				sig.KeyID = KeyID(k.pub)
				return a, &sig
			},
			is: ErrBadSignature, want: "does not verify with key ",
		},
		{
			name: "a signature by an unknown key",
			archive: func(t *testing.T, _ key) ([]byte, *Signature) {
				a := packHello(t, "1.0.0")
				sig := other.sign(t, a)
				return a, &sig
			},
			is: ErrUnknownKey, want: "signed by key " + KeyID(other.pub),
		},
		{
			name: "an entry climbing out with ../evil",
			archive: func(t *testing.T, _ key) ([]byte, *Signature) {
				return tarGz(t, man, reg("../evil", "x")), nil
			},
			is: ErrUnsafe, want: "../evil has a .. element",
		},
		{
			name: "an entry climbing out from a folder, bin/../../evil",
			archive: func(t *testing.T, _ key) ([]byte, *Signature) {
				return tarGz(t, man, reg("bin/../../evil", "x")), nil
			},
			is: ErrUnsafe, want: "bin/../../evil",
		},
		{
			name: "an absolute path",
			archive: func(t *testing.T, _ key) ([]byte, *Signature) {
				return tarGz(t, man, reg("/tmp/evil", "x")), nil
			},
			is: ErrUnsafe, want: "/tmp/evil is an absolute path",
		},
		{
			name: "a symlink to /etc/passwd and a file written through it",
			archive: func(t *testing.T, _ key) ([]byte, *Signature) {
				return tarGz(t, man, symlink("passwd", "/etc/passwd"), reg("passwd", "root::0:0::/:/bin/sh\n")), nil
			},
			is: ErrUnsafe, want: "symlink passwd points to the absolute path /etc/passwd",
		},
		{
			name: "a symlink up out of the plugin",
			archive: func(t *testing.T, _ key) ([]byte, *Signature) {
				return tarGz(t, man, symlink("bin", "../.."), reg("bin/evil", "x")), nil
			},
			is: ErrUnsafe, want: "symlink bin points to ../..",
		},
		{
			name: "a file written through a symlink inside the plugin",
			archive: func(t *testing.T, _ key) ([]byte, *Signature) {
				return tarGz(t, man, dirEntry("lib/"), symlink("bin", "lib"), reg("bin/evil", "x")), nil
			},
			is: ErrUnsafe, want: "bin/evil lies under the symlink bin",
		},
		{
			name: "a symlink that escapes only through another symlink",
			archive: func(t *testing.T, _ key) ([]byte, *Signature) {
				return tarGz(t, man, dirEntry("d/"), symlink("d/s", ".."), symlink("d/l", "s/..")), nil
			},
			is: ErrUnsafe, want: "symlink d/l resolves outside the plugin",
		},
		{
			name: "a hard link",
			archive: func(t *testing.T, _ key) ([]byte, *Signature) {
				return tarGz(t, man, entry{hdr: tar.Header{Name: "shadow", Typeflag: tar.TypeLink, Linkname: "/etc/shadow"}}), nil
			},
			is: ErrUnsafe, want: "shadow is a hard link",
		},
		{
			name: "a device file",
			archive: func(t *testing.T, _ key) ([]byte, *Signature) {
				return tarGz(t, man, entry{hdr: tar.Header{Name: "mem", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 1, Mode: 0o666}}), nil
			},
			is: ErrUnsafe, want: "mem is a device",
		},
		{
			name: "a setuid executable",
			archive: func(t *testing.T, _ key) ([]byte, *Signature) {
				e := reg("bin/su", "#!/bin/sh\n")
				e.hdr.Mode = 0o4755
				return tarGz(t, man, e), nil
			},
			is: ErrUnsafe, want: "bin/su has a setuid",
		},
		{
			name: "a file named twice",
			archive: func(t *testing.T, _ key) ([]byte, *Signature) {
				return tarGz(t, man, reg("plugin.yml", "name: other\nversion: 1\n")), nil
			},
			is: ErrUnsafe, want: "plugin.yml appears twice",
		},
		{
			name: "an archive that unpacks to more than the limit",
			archive: func(t *testing.T, _ key) ([]byte, *Signature) {
				return tarGz(t, man, reg("zeros", strings.Repeat("\x00", 1<<20))), nil
			},
			opts: func(o *Options) { o.MaxUnpackedBytes = 64 << 10 },
			is:   ErrTooLarge, want: "more than 65536 bytes (at zeros)",
		},
		{
			name: "an archive of more entries than the limit",
			archive: func(t *testing.T, _ key) ([]byte, *Signature) {
				return tarGz(t, man, reg("a", ""), reg("b", ""), reg("c", "")), nil
			},
			opts: func(o *Options) { o.MaxFiles = 3 },
			is:   ErrTooLarge, want: "more than 3 entries",
		},
		{
			name: "an archive larger than the limit",
			archive: func(t *testing.T, _ key) ([]byte, *Signature) {
				return packHello(t, "1.0.0"), nil
			},
			opts: func(o *Options) { o.MaxArchiveBytes = 100 },
			is:   ErrTooLarge, want: "the limit is 100",
		},
		{
			name: "an archive without a plugin.yml",
			archive: func(t *testing.T, _ key) ([]byte, *Signature) {
				return tarGz(t, reg("bin/run", "x")), nil
			},
			want: "read plugin.yml",
		},
		{
			name: "a plugin.yml naming a path",
			archive: func(t *testing.T, _ key) ([]byte, *Signature) {
				return tarGz(t, reg("plugin.yml", "name: ../../etc\nversion: 1\n")), nil
			},
			want: `name "../../etc"`,
		},
		{
			name: "an archive that is not gzip",
			archive: func(t *testing.T, _ key) ([]byte, *Signature) {
				return []byte("PK\x03\x04 a zip"), nil
			},
			want: "read archive: gzip",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newSetup(t)
			archive, sig := tc.archive(t, s.key)
			if sig == nil {
				good := s.key.sign(t, archive)
				sig = &good
			}
			path := writeSigned(t, s.src, "hello-1.0.0.tar.gz", archive, *sig)
			opts := s.opts()
			if tc.opts != nil {
				tc.opts(&opts)
			}
			_, err := Install(t.Context(), path, opts)
			if err == nil || tc.is != nil && !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %v containing %q", err, tc.is, tc.want)
			}
			s.assertNothingLeft(t)
		})
	}
}

func TestInstallRefusesMissingOrMalformedSignatures(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	path := filepath.Join(s.src, "hello-1.0.0.tar.gz")
	if err := os.WriteFile(path, packHello(t, "1.0.0"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Install(t.Context(), path, s.opts()); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "signature") {
		t.Errorf("without a .sig: got %v, want a missing signature", err)
	}
	if err := os.WriteFile(path+".sig", []byte(`{"key_id":"x"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Install(t.Context(), path, s.opts()); err == nil || !strings.Contains(err.Error(), "signature "+path+".sig: key_id") {
		t.Errorf("with a malformed .sig: got %v, want the file and the field named", err)
	}
	s.assertNothingLeft(t)
}

func TestInstallWithoutTrustedKeysRefusesEverything(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	archive := packHello(t, "1.0.0")
	path := writeSigned(t, s.src, "hello-1.0.0.tar.gz", archive, s.key.sign(t, archive))
	opts := s.opts()
	opts.Trusted = nil
	if _, err := Install(t.Context(), path, opts); err == nil || !strings.Contains(err.Error(), "no trusted keys") {
		t.Errorf("got %v, want no trusted keys", err)
	}
	s.assertNothingLeft(t)
}

// serve serves files by path from a loopback server.
func serve(t *testing.T, files map[string][]byte) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b) //nolint:errcheck // the client reports a short body
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestInstallByURL(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	archive := packHello(t, "1.0.0")
	srv := serve(t, map[string][]byte{
		"/p/hello-1.0.0.tar.gz":     archive,
		"/p/hello-1.0.0.tar.gz.sig": s.key.sign(t, archive).Marshal(),
		"/p/unsigned.tar.gz":        archive,
	})
	res, err := Install(t.Context(), srv.URL+"/p/hello-1.0.0.tar.gz", s.opts())
	if err != nil {
		t.Fatal(err)
	}
	if res.Name != "hello" || res.Version != "1.0.0" {
		t.Errorf("Result %+v, want hello 1.0.0", res)
	}
	_, err = Install(t.Context(), srv.URL+"/p/unsigned.tar.gz", s.opts())
	if err == nil || !strings.Contains(err.Error(), "unsigned.tar.gz.sig: 404") {
		t.Errorf("an archive without a signature: got %v, want the .sig's 404", err)
	}
	small := s.opts()
	small.MaxArchiveBytes = 100
	_, err = Install(t.Context(), srv.URL+"/p/hello-1.0.0.tar.gz", small)
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("an archive over the limit: got %v, want ErrTooLarge", err)
	}
}

func TestInstallRefusesURLsAnyoneBetweenCouldChange(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, url, want string }{
		{"plain http to another host", "http://plugins.example.com/hello.tar.gz", "plain http is allowed only to a loopback address"},
		{"another scheme", "ftp://plugins.example.com/hello.tar.gz", `scheme "ftp": want https`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newSetup(t)
			_, err := Install(t.Context(), tc.url, s.opts())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
			s.assertNothingLeft(t)
		})
	}
}

func TestInstallRefusesARedirectToPlainHTTPElsewhere(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	srv := httptest.NewServer(http.RedirectHandler("http://plugins.example.com/hello.tar.gz", http.StatusFound))
	t.Cleanup(srv.Close)
	_, err := Install(t.Context(), srv.URL+"/hello.tar.gz", s.opts())
	if err == nil || !strings.Contains(err.Error(), "plain http is allowed only to a loopback address") {
		t.Errorf("got %v, want the redirect refused", err)
	}
	s.assertNothingLeft(t)
}

func TestInstallOfABareNameWithoutAnIndexSaysHowToNameAFolder(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	_, err := Install(t.Context(), "hello", s.opts())
	if err == nil || !strings.Contains(err.Error(), "write ./hello for a folder here") {
		t.Errorf("got %v, want a hint", err)
	}
}

func TestMoveAsideKeepsThePreviousVersionUntilTheRenameSucceeded(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	target, tmp := filepath.Join(dir, "hello"), filepath.Join(dir, ".install-1")
	writeTree(t, target, map[string]file{"v1": {body: "old", mode: 0o644}})
	// Nothing at tmp: the second rename fails, and the first is undone.
	if err := moveAside(tmp, target); err == nil {
		t.Fatal("moveAside from a missing folder succeeded")
	}
	if got := names(t, dir); !cmp.Equal(got, []string{"hello"}) {
		t.Fatalf("after a failed move: %v, want hello alone", got)
	}
	if got := names(t, target); !cmp.Equal(got, []string{"v1"}) {
		t.Fatalf("after a failed move hello holds %v, want the old version", got)
	}
	writeTree(t, tmp, map[string]file{"v2": {body: "new", mode: 0o644}})
	if err := moveAside(tmp, target); err != nil {
		t.Fatal(err)
	}
	if got := names(t, target); !cmp.Equal(got, []string{"v2"}) {
		t.Errorf("hello holds %v, want the new version", got)
	}
	if got := names(t, tmp); !cmp.Equal(got, []string{"v1"}) {
		t.Errorf("the temporary folder holds %v, want the old version for the caller to remove", got)
	}
}
