#!/usr/bin/env bash
# The project's test command (README "Test"): formatting, vet, the whole
# test suite under the race detector, and a short run of every fuzz target.
# FUZZTIME (default 10s) sets the length of each fuzz run; FUZZTIME=0 skips them.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

echo "== go vet"
go vet ./...

echo "== go test -race"
go test -race -count=1 -timeout 30m ./...

fuzztime=${FUZZTIME:-10s}
if [ "$fuzztime" != "0" ]; then
  echo "== fuzz ($fuzztime per target)"
  # Every FuzzXxx function in the module, run one at a time in its package.
  grep -rl --include='*_test.go' '^func Fuzz' . | while read -r file; do
    pkg=$(dirname "$file")
    for fn in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$file" | sed 's/^func //'); do
      echo "-- $pkg $fn"
      go test -run '^$' -fuzz "^${fn}\$" -fuzztime "$fuzztime" "$pkg" >/tmp/hearsay-fuzz.$$ 2>&1 || {
        cat /tmp/hearsay-fuzz.$$; rm -f /tmp/hearsay-fuzz.$$; exit 1; }
    done
  done
  rm -f /tmp/hearsay-fuzz.$$
fi
echo "== all tests passed"
