#!/bin/bash
# Runs every native fuzz target for the given time (default 10s).
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-10s}
for pkg in $(go list ./internal/...); do
  for f in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
    echo "fuzz $pkg $f"
    go test "$pkg" -run '^$' -fuzz "^$f\$" -fuzztime "$t" >/tmp/gmsa-fuzz.log 2>&1 || { cat /tmp/gmsa-fuzz.log; exit 1; }
  done
done
