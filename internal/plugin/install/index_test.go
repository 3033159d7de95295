package install

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// publish serves hello 1.0.0 and 1.1.0 and an index of them, signed
// once edit has changed its entries, and returns the index's URL.
func publish(t *testing.T, k key, edit func([]Entry) []Entry) (indexURL string) {
	t.Helper()
	files := map[string][]byte{}
	var entries []Entry
	for _, v := range []string{"1.0.0", "1.1.0"} {
		a := packHello(t, v)
		name := "hello-" + v + ".tar.gz"
		files["/plugins/"+name] = a
		files["/plugins/"+name+".sig"] = k.sign(t, a).Marshal()
		entries = append(entries, Entry{Name: "hello", Version: v, URL: name, SHA256: Checksum(a), Description: "Says Hello"})
	}
	entries = append(entries, Entry{Name: "disk-clean", Version: "0.3.0", URL: "https://plugins.example.com/disk-clean-0.3.0.tar.gz", SHA256: strings.Repeat("0", 64), Description: "frees space"})
	if edit != nil {
		entries = edit(entries)
	}
	data, err := json.Marshal(Index{Plugins: entries})
	if err != nil {
		t.Fatal(err)
	}
	sig, err := SignIndex(data, k.priv)
	if err != nil {
		t.Fatal(err)
	}
	files["/plugins/index.json"] = data
	files["/plugins/index.json.sig"] = sig.Marshal()
	return serve(t, files).URL + "/plugins/index.json"
}

func TestInstallByNameThroughASignedIndex(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	idx, err := FetchIndex(t.Context(), publish(t, s.key, nil), s.key.trusted, nil)
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, e := range Search(idx, "hello") {
		found = append(found, e.Name+"@"+e.Version)
	}
	if want := []string{"hello@1.1.0", "hello@1.0.0"}; !cmp.Equal(found, want) {
		t.Errorf("Search(hello) = %v, want %v", found, want)
	}
	opts := s.opts()
	opts.Index = idx
	res, err := Install(t.Context(), "hello", opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Version != "1.1.0" {
		t.Errorf("installing hello gave %s, want the newest, 1.1.0", res.Version)
	}
	res, err = Install(t.Context(), "hello@1.0.0", opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Version != "1.0.0" || res.Replaced != "1.1.0" {
		t.Errorf("installing hello@1.0.0: %+v, want 1.0.0 replacing 1.1.0", res)
	}
}

func TestInstallByNameRefusesWhatTheIndexDoesNotVouchFor(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		edit func([]Entry) []Entry
		src  string
		is   error
		want string
	}{
		{
			name: "an entry whose checksum is not the archive's",
			edit: func(es []Entry) []Entry { es[1].SHA256 = strings.Repeat("a", 64); return es },
			src:  "hello", is: ErrChecksum, want: "the index lists sha256 " + strings.Repeat("a", 64) + ", the archive is ",
		},
		{
			name: "an entry whose archive is another version",
			edit: func(es []Entry) []Entry {
				es[1].URL, es[1].SHA256 = es[0].URL, es[0].SHA256
				return es
			},
			src: "hello", want: "the index lists hello 1.1.0, the archive's plugin.yml says hello 1.0.0",
		},
		{name: "a name the index does not list", src: "nope", want: "nope is not in the index"},
		{name: "a version the index does not list", src: "hello@9", want: "hello 9 is not in the index"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newSetup(t)
			idx, err := FetchIndex(t.Context(), publish(t, s.key, tc.edit), s.key.trusted, nil)
			if err != nil {
				t.Fatal(err)
			}
			opts := s.opts()
			opts.Index = idx
			_, err = Install(t.Context(), tc.src, opts)
			if err == nil || tc.is != nil && !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %v containing %q", err, tc.is, tc.want)
			}
			s.assertNothingLeft(t)
		})
	}
}

func TestFetchIndexRefusesAnIndexNotSignedAsOne(t *testing.T) {
	t.Parallel()
	k, other := newKey(t), newKey(t)
	data := []byte(`{"plugins":[]}`)
	asArchive := k.sign(t, data)
	byOther, err := SignIndex(data, other.priv)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		sig  Signature
		is   error
	}{
		{"an archive's signature", asArchive, ErrBadSignature},
		{"an index signed by an unknown key", byOther, ErrUnknownKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "index.json")
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path+".sig", tc.sig.Marshal(), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := FetchIndex(t.Context(), path, k.trusted, nil); !errors.Is(err, tc.is) {
				t.Errorf("got %v, want %v", err, tc.is)
			}
		})
	}
}

func TestParseIndexReportsEveryProblemWithItsPosition(t *testing.T) {
	t.Parallel()
	data := `{"plugins":[
		{"name":"ok","version":"1.0.0","url":"ok.tar.gz","sha256":"` + strings.Repeat("a", 64) + `","homepage":"ignored"},
		{"name":"Bad/Name","version":"","url":"","sha256":"xyz"},
		{"name":"ok","version":"1.0.0","url":"again.tar.gz","sha256":"` + strings.Repeat("b", 64) + `"}
	]}`
	_, err := ParseIndex([]byte(data))
	for _, want := range []string{
		`plugins[1].name "Bad/Name"`,
		`plugins[1].version ""`,
		"plugins[1].url: missing",
		`plugins[1].sha256 "xyz"`,
		"plugins[2]: ok@1.0.0 is listed already at plugins[0]",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseIndex error %v; want it to contain %q", err, want)
		}
	}
}

func TestSearchMatchesNamesAndDescriptionsIgnoringCase(t *testing.T) {
	t.Parallel()
	idx := &Index{Plugins: []Entry{
		{Name: "disk-clean", Version: "1.9.0", Description: "Frees SPACE"},
		{Name: "disk-clean", Version: "1.10.0", Description: "Frees SPACE"},
		{Name: "nginx-reload", Version: "1", Description: "reloads nginx"},
	}}
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"space", []string{"disk-clean 1.10.0", "disk-clean 1.9.0"}},
		{"NGINX", []string{"nginx-reload 1"}},
		{"", []string{"disk-clean 1.10.0", "disk-clean 1.9.0", "nginx-reload 1"}},
		{"nothing", nil},
	} {
		var got []string
		for _, e := range Search(idx, tc.query) {
			got = append(got, e.Name+" "+e.Version)
		}
		if !cmp.Equal(got, tc.want) {
			t.Errorf("Search(%q) = %v; want %v", tc.query, got, tc.want)
		}
	}
}

func TestCompareVersionsOrdersNumbersAsNumbers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"1.10.0", "1.9.2", 1},
		{"1.0", "1.0.0", -1},
		{"2.0.0", "2.0.0", 0},
		{"1.0.0-rc1", "1.0.0-rc2", -1},
	} {
		if got := compareVersions(tc.a, tc.b); got != tc.want {
			t.Errorf("compareVersions(%q, %q) = %d; want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
