#!/usr/bin/env bash
# Runs every fuzzer of the module for BUDGET each (a go test -fuzztime:
# 4s, 1m, 10000x), one after another, since a fuzzing run takes one fuzzer.
# Fuzzers are found by their func Fuzz* in the test files. Each package's
# instrumented test binary is built once (go test -c -fuzz) and run from
# the package's folder with go test's own fuzz cache, which spares a build
# and link per fuzzer. A failing input is saved under the package's
# testdata/fuzz/<Fuzzer>/; fix the bug and commit the file as a seed.
#
#   scripts/fuzz.sh 4s     (make fuzz-short, part of make test)
#   scripts/fuzz.sh 1m     (make fuzz FUZZTIME=1m)
set -euo pipefail
cd "$(dirname "$0")/.."

budget=${1:?usage: scripts/fuzz.sh BUDGET}
go=${GO:-go}
cache="$("$go" env GOCACHE)/fuzz"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mapfile -t dirs < <(grep -rlE --include='*_test.go' --exclude-dir=testdata '^func Fuzz[A-Z0-9_]' cmd internal test | xargs -r -n1 dirname | sort -u)
if [ ${#dirs[@]} -eq 0 ]; then
	echo "fuzz: no fuzzers found" >&2
	exit 1
fi

failed=()
count=0
for i in "${!dirs[@]}"; do
	dir=${dirs[$i]}
	bin="$tmp/$i.test"
	pkg=$("$go" list -f '{{.ImportPath}}' "./$dir")
	"$go" test -c -o "$bin" -fuzz '^Fuzz' "./$dir"
	list=$(cd "$dir" && "$bin" -test.list '^Fuzz')
	for f in $(grep '^Fuzz' <<<"$list"); do
		count=$((count + 1))
		echo "== ./$dir $f (fuzztime $budget)"
		if ! (cd "$dir" && "$bin" -test.run '^$' -test.fuzz "^$f\$" -test.fuzztime "$budget" -test.fuzzcachedir "$cache/$pkg"); then
			failed+=("./$dir $f")
		fi
	done
done

if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzz: ${#failed[@]} of $count fuzzers failed; their inputs are under testdata/fuzz/ of:" >&2
	printf '  %s\n' "${failed[@]}" >&2
	echo "re-run one with: go test ./<package> -run '<Fuzzer>/<file>'" >&2
	exit 1
fi
echo "fuzz: $count fuzzers passed, $budget each"
