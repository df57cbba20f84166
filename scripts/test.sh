#!/bin/bash
# The test command: installs what the tests need on a fresh Debian 12 machine (root),
# then runs lint, unit tests with the race detector (fuzz seeds included), short fuzzing
# runs, and the interop tests against real peers (Samba 4.22 AD DC, MIT Kerberos, ldap-utils).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin

step() { printf '\n== %s\n' "$*"; }

step "installing test peers (apt, debootstrap chroot with Samba 4.22)"
if [ "$(id -u)" -ne 0 ]; then echo "scripts/test.sh installs packages and runs a DC in a chroot: run it as root" >&2; exit 1; fi
bash test/interop/peers.sh install

step "go modules"
go mod download

step "lint: go vet, staticcheck, gofmt"
make --no-print-directory lint

step "unit tests (fuzz seeds included), then again with the race detector"
go test -count=1 ./...
go test -race -count=1 ./...

step "fuzzing (10 s per target)"
bash scripts/fuzz.sh 10s

step "adversarial tests: a real server under hostile clients (docs/security.md)"
go test -tags adversarial -count=1 -v ./test/adversarial/ 2>&1 | grep -v ' level=WARN msg="\(connection refused\|request refused\)'

step "interop tests against real peers"
go test -tags interop -count=1 -v ./test/interop/
