// Package tree_test checks the repository as a whole: that it stands alone,
// so that a fresh clone into an empty folder builds, tests and scores with
// nothing beside it.
package tree_test

import (
	"bytes"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deus-ex-machina/deus/internal/testenv"
)

// TestNothingReachesOutsideTheRepository fails, naming file and line, for
// any file of the tree that refers to a folder named shared beside the
// checkout or to a relative path that climbs above the module's root.
func TestNothingReachesOutsideTheRepository(t *testing.T) {
	t.Parallel()
	root := testenv.RepoRoot(t)
	files := repoFiles(t, root)
	// The tree has hundreds of files; a handful means the listing went wrong,
	// and an empty listing must not pass as a clean tree.
	if len(files) < 100 {
		t.Fatalf("listed %d files under %s, want the whole tree", len(files), root)
	}
	for _, rel := range files {
		full := filepath.Join(root, filepath.FromSlash(rel))
		info, err := os.Lstat(full)
		if errors.Is(err, fs.ErrNotExist) {
			continue // tracked but deleted in the working tree
		}
		if err != nil {
			t.Fatal(err)
		}
		var problems []problem
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(full)
			if err != nil {
				t.Fatal(err)
			}
			problems = checkLink(rel, target)
		case info.Mode().IsRegular():
			b, err := os.ReadFile(full)
			if err != nil {
				t.Fatal(err)
			}
			problems = check(rel, b)
		}
		for _, p := range problems {
			t.Errorf("%s: %s", p.pos, p.msg)
		}
	}
}

// repoFiles lists the files of the tree relative to root, with slashes:
// those git tracks or would track (untracked but not ignored), or, outside
// a git checkout, every file but those of .git and the build's outputs.
func repoFiles(t *testing.T, root string) []string {
	t.Helper()
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = root
	out, err := cmd.Output()
	if err == nil {
		return strings.FieldsFunc(string(out), func(r rune) bool { return r == 0 })
	}
	t.Logf("git ls-files: %v; walking the tree instead", err)
	skip := map[string]bool{".git": true, "bin": true, "out": true, "data": true, "nab": true}
	var files []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if skip[rel] || d.Name() == "cache" && strings.Contains(rel, "/testdata/fuzz/") {
				return filepath.SkipDir
			}
			return nil
		}
		files = append(files, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

type problem struct{ pos, msg string }

// sibling is the name of the folder beside the checkout that a clone does
// not have.
const sibling = "shared"

// sharedRef is a reference to the sibling folder, however many folders the
// climb goes up.
var sharedRef = regexp.MustCompile(`\.\.[/\\]` + sibling + `\b`)

// check returns the problems of one file, its path relative to the root
// with slashes. Every text file is searched for a climb into a folder
// named shared (the tree has none of its own). Go files are parsed, and the
// paths they read, join or run in are resolved against the package's
// folder, where go test runs them; other text files outside testdata are
// split into words, each resolved against the file's folder, where compose,
// Markdown links and cd "$(dirname "$0")" resolve them. Testdata holds
// inputs (fuzz seeds, path traversal payloads), not paths the tree reads, so
// only the climb into shared is looked for there.
func check(rel string, b []byte) []problem {
	if bytes.IndexByte(b, 0) >= 0 {
		return nil // binary
	}
	var problems []problem
	for i, line := range strings.Split(string(b), "\n") {
		if sharedRef.MatchString(line) {
			problems = append(problems, problem{pos: rel + ":" + strconv.Itoa(i+1), msg: "refers to a shared folder beside the checkout, which a clone does not have"})
		}
	}
	dir := path.Dir(rel)
	switch {
	case inTestdata(rel):
	case strings.HasSuffix(rel, ".go"):
		problems = append(problems, checkGo(rel, dir, b)...)
	default:
		problems = append(problems, checkText(rel, dir, b)...)
	}
	return problems
}

func inTestdata(rel string) bool {
	return strings.HasPrefix(rel, "testdata/") || strings.Contains(rel, "/testdata/")
}

// checkLink refuses a relative symbolic link whose target is outside the
// root. Absolute targets are the fixtures' /proc/PID/fd links
// (/dev/null, socket:[1001]), read as text and never followed.
func checkLink(rel, target string) []problem {
	if path.IsAbs(target) || !strings.Contains(target, "..") {
		return nil
	}
	if climbs(path.Dir(rel), target) {
		return []problem{{pos: rel, msg: "symbolic link to " + target + " leaves the repository"}}
	}
	return nil
}

// climbs reports whether the relative path p, resolved against dir (both
// relative to the root), ends above the root.
func climbs(dir, p string) bool {
	if path.IsAbs(p) {
		return false
	}
	j := path.Join(dir, p)
	return j == ".." || strings.HasPrefix(j, "../")
}

// fileFuncs are the packages whose functions take file paths.
var fileFuncs = map[string]bool{"os": true, "os/exec": true, "io/fs": true, "io/ioutil": true, "path": true, "path/filepath": true}

func checkGo(rel, dir string, src []byte) []problem {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, rel, src, parser.SkipObjectResolution)
	if err != nil {
		return []problem{{pos: rel, msg: "does not parse: " + err.Error()}}
	}
	imports := map[string]string{}
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		name := path.Base(p)
		if imp.Name != nil {
			name = imp.Name.Name
		}
		imports[name] = p
	}
	var problems []problem
	report := func(pos token.Pos, msg string) {
		problems = append(problems, problem{pos: rel + ":" + strconv.Itoa(fset.Position(pos).Line), msg: msg})
	}
	literal := func(e ast.Expr) (string, bool) {
		lit, ok := e.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return "", false
		}
		s, err := strconv.Unquote(lit.Value)
		return s, err == nil
	}
	checkPath := func(e ast.Expr) {
		if s, ok := literal(e); ok && climbs(dir, s) {
			report(e.Pos(), strconv.Quote(s)+" climbs above the repository from "+dir)
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CallExpr:
			sel, ok := n.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			pkg, ok := sel.X.(*ast.Ident)
			if !ok || !fileFuncs[imports[pkg.Name]] {
				return true
			}
			if sel.Sel.Name != "Join" || imports[pkg.Name] != "path" && imports[pkg.Name] != "path/filepath" {
				for _, a := range n.Args {
					checkPath(a)
				}
				return true
			}
			// Join: each run of literal arguments is one relative path. The
			// first run, if it leads, is resolved against the package's
			// folder; any run climbing into a folder named shared is a
			// reference to it, whatever it is joined to.
			var run []string
			start := token.NoPos
			flush := func(leading bool) {
				if len(run) == 0 {
					return
				}
				p := path.Join(run...)
				switch {
				case leading && climbs(dir, p):
					report(start, strconv.Quote(p)+" climbs above the repository from "+dir)
				case isSharedClimb(p):
					report(start, strconv.Quote(p)+" refers to a shared folder beside the checkout, which a clone does not have")
				}
				run = run[:0]
			}
			leading := true
			for _, a := range n.Args {
				s, ok := literal(a)
				if !ok {
					flush(leading)
					leading = false
					continue
				}
				if len(run) == 0 {
					start = a.Pos()
				}
				run = append(run, s)
			}
			flush(leading)
		case *ast.AssignStmt: // cmd.Dir = "..."
			for i, l := range n.Lhs {
				if sel, ok := l.(*ast.SelectorExpr); ok && sel.Sel.Name == "Dir" && i < len(n.Rhs) {
					checkPath(n.Rhs[i])
				}
			}
		case *ast.KeyValueExpr: // exec.Cmd{Dir: "..."}
			if k, ok := n.Key.(*ast.Ident); ok && k.Name == "Dir" {
				checkPath(n.Value)
			}
		}
		return true
	})
	return problems
}

// isSharedClimb reports whether a cleaned relative path climbs into a
// folder named shared above where it starts.
func isSharedClimb(p string) bool {
	rest := p
	for strings.HasPrefix(rest, "../") {
		rest = rest[len("../"):]
	}
	return rest != p && (rest == sibling || strings.HasPrefix(rest, sibling+"/"))
}

// isDelim splits a line of a Makefile, script, YAML or Markdown file into
// the words that can be paths.
func isDelim(r rune) bool {
	return r == ' ' || r == '\t' || r == '\r' || strings.ContainsRune("\"'`=(){}[],;:<>|&$!*?", r)
}

func checkText(rel, dir string, b []byte) []problem {
	var problems []problem
	for i, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, "..") {
			continue
		}
		for _, word := range strings.FieldsFunc(line, isDelim) {
			if strings.Contains(word, "..") && climbs(dir, word) {
				problems = append(problems, problem{pos: rel + ":" + strconv.Itoa(i+1), msg: strconv.Quote(word) + " climbs above the repository from " + dir})
			}
		}
	}
	return problems
}

// up stands for ../ in the cases below, so that this file does not name
// the folder it refuses.
// up writes the climbs and the sibling's name into a fixture: UP/ is ../
// and SIBLING the folder's name, so that this file itself names no path
// outside the tree.
func up(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "UP/", "../"), "SIBLING", sibling)
}

func TestCheckFindsWhatLeavesTheRepository(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		file, text string
		want       []string // positions of the problems
	}{
		"a test joining its way up to a shared folder beside the checkout is refused": {
			file: "internal/healer/healer_test.go",
			text: up("package healer\n\nimport \"path/filepath\"\n\nvar p = filepath.Join(\"..\", \"..\", \"..\", \"SIBLING\", \"fixtures\", \"a.json\")\n"),
			want: []string{"internal/healer/healer_test.go:5"},
		},
		"a test reading another package's testdata is allowed": {
			file: "internal/healer/healer_test.go",
			text: "package healer\n\nimport \"path/filepath\"\n\nvar p = filepath.Join(\"..\", \"alertmanager\", \"testdata\", \"a.json\")\n",
		},
		"a test reading a literal path above the root is refused": {
			file: "internal/web/web_test.go",
			text: "package web\n\nimport \"os\"\n\nfunc f() { _, _ = os.ReadFile(\"../../../x/a.json\") }\n",
			want: []string{"internal/web/web_test.go:5"},
		},
		"a command run in a folder above the root is refused": {
			file: "test/e2e/e2e_test.go",
			text: "package e2e\n\nimport \"os/exec\"\n\nfunc f() {\n\tcmd := exec.Command(\"make\")\n\tcmd.Dir = \"../../..\"\n}\n",
			want: []string{"test/e2e/e2e_test.go:7"},
		},
		"shared joined to the root's parent is refused": {
			file: "test/e2e/e2e_test.go",
			text: up("package e2e\n\nimport \"path/filepath\"\n\nfunc f(root string) string { return filepath.Join(root, \"..\", \"SIBLING\") }\n"),
			want: []string{"test/e2e/e2e_test.go:5"},
		},
		"a path traversal payload in a test table is data, not a read": {
			file: "test/healer/injection_test.go",
			text: "package healer\n\nvar cases = []string{\"../../../../etc/passwd\", \"/../../../../etc/passwd\"}\n",
		},
		"a Makefile defaulting to a shared folder beside the checkout is refused": {
			file: "Makefile",
			text: up("DATA ?= UP/SIBLING/nab-dev/data\nOUT ?= out/x.csv\n"),
			want: []string{"Makefile:1", "Makefile:1"}, // names shared, and climbs
		},
		"a Makefile climbing out of the root is refused": {
			file: "Makefile",
			text: "nab:\n\tcd .. && go run ./test/nab\n",
			want: []string{"Makefile:2"},
		},
		"a compose file building from the root two folders up is allowed": {
			file: "deploy/compose/compose.yaml",
			text: "services:\n  healer:\n    build: {context: ../.., dockerfile: Dockerfile}\n    volumes:\n      - ../../rules:/etc/prometheus/rules:ro\n",
		},
		"a compose file mounting a folder above the root is refused": {
			file: "deploy/compose/compose.yaml",
			text: "services:\n  healer:\n    volumes:\n      - ../../../data:/data\n",
			want: []string{"deploy/compose/compose.yaml:4"},
		},
		"a relative Markdown link inside the tree is allowed": {
			file: "docs/runbooks/SignalAnomalous.md",
			text: "score: [docs/anomaly.md](../anomaly.md), `go test ./...` and so on...\n",
		},
		"a README pointing beside the checkout is refused": {
			file: "README.md",
			text: up("see `UP/SIBLING/DESIGN.md` for the whole picture\n"),
			want: []string{"README.md:1", "README.md:1"},
		},
		"a script changing to its parent folder is allowed": {
			file: "scripts/install-deps.sh",
			text: "#!/bin/sh\ncd \"$(dirname \"$0\")/..\"\n",
		},
		"a testdata README naming a shared folder beside the checkout is refused": {
			file: "testdata/nab/README.md",
			text: up("copied from `UP/SIBLING/nab-dev`\n"),
			want: []string{"testdata/nab/README.md:1"},
		},
		"a fuzz seed climbing above the root is data": {
			file: "internal/collector/testdata/fuzz/FuzzParseMountinfo/0a",
			text: "go test fuzz v1\nstring(\"1 2 0:1 ../../../../.. /x rw - ext4 /dev/a rw\")\n",
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var got []string
			for _, p := range check(tc.file, []byte(tc.text)) {
				got = append(got, p.pos)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("check(%s) problems (-want +got):\n%s", tc.file, diff)
			}
		})
	}
}

func TestCheckLinkRefusesLinksOutOfTheTree(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		file, target string
		refused      bool
	}{
		"a /proc fd fixture pointing at /dev/null": {file: "internal/exporter/testdata/fixture/proc/100/fd/0", target: "/dev/null"},
		"a /proc fd fixture naming a socket":       {file: "internal/exporter/testdata/fixture/proc/100/fd/3", target: "socket:[1001]"},
		"a link to a sibling folder":               {file: "docs/x.md", target: "../README.md"},
		"a link above the root":                    {file: "docs/x.md", target: "../../x/README.md", refused: true},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if got := len(checkLink(tc.file, tc.target)) > 0; got != tc.refused {
				t.Errorf("checkLink(%s, %s) refused = %v, want %v", tc.file, tc.target, got, tc.refused)
			}
		})
	}
}
