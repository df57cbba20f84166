#!/bin/bash
# Runs every native fuzz target for the given time (default 10s).
#
# A run that ends with "context deadline exceeded" and no failing input is the
# fuzzing engine's own timeout racing a worker at the deadline, not a finding:
# that target is run once more. A real failure always writes its input under
# testdata/fuzz and prints "Failing input written to".
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-10s}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
fuzz() { go test "$1" -run '^$' -fuzz "^$2\$" -fuzztime "$t" >"$log" 2>&1; }
for pkg in $(go list ./internal/... ./cmd/...); do
  for f in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
    echo "fuzz $pkg $f"
    fuzz "$pkg" "$f" && continue
    if grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written' "$log"; then
      echo "  the engine timed out at the deadline without a finding; running $f again"
      fuzz "$pkg" "$f" && continue
    fi
    cat "$log"
    exit 1
  done
done
