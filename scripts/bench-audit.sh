#!/bin/bash
# Password reads over LDAPS with the audit trail, this tree against an earlier
# revision, same machine and load tool, alternating runs: the cost of acknowledging
# each read only after its audit record has reached the operating system.
#   scripts/bench-audit.sh REV [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
REV=${1:?usage: scripts/bench-audit.sh REV [SECONDS]}
SECS=${2:-5}
W=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; git worktree remove --force "$W/rev" >/dev/null 2>&1 || true; rm -rf "$W"; }
trap cleanup EXIT
git worktree add -q "$W/rev" "$REV"
(cd "$W/rev" && go build -o "$W/gmsa-before" ./cmd/gmsa)
go build -o "$W/gmsa-after" ./cmd/gmsa
go build -o "$W/ldapload" ./cmd/ldapload
L="$W/ldapload"
BASE=DC=example,DC=test
declare -A URL PW
for v in before after; do
  mkdir -p "$W/$v"
  "$W/gmsa-$v" server --dev --data "$W/$v" --log-level error >/dev/null 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do [ -s "$W/$v/endpoints.json" ] && break; sleep 0.1; done
  URL[$v]=$(sed -n 's/.*"ldaps": "\(.*\)".*/\1/p' "$W/$v/endpoints.json")
  PW[$v]=$(cat "$W/$v/admin-password")
  $L -url "${URL[$v]}" -bind-dn Administrator@example.test -password "${PW[$v]}" -populate users -n 1 -base "CN=Users,$BASE" >/dev/null
  sid=$(LDAPTLS_REQCERT=never ldapsearch -LLL -o ldif-wrap=no -x -H "${URL[$v]}" -D Administrator@example.test -w "${PW[$v]}" -b "CN=Users,$BASE" '(sAMAccountName=bench0)' objectSid \
        | sed -n 's/^objectSid:: //p' | python3 -c 'import sys,base64,struct;b=base64.b64decode(sys.stdin.read());print("S-1-%d-"%int.from_bytes(b[2:8],"big")+"-".join(str(x) for x in struct.unpack("<%dI"%b[1],b[8:])))')
  $L -url "${URL[$v]}" -bind-dn Administrator@example.test -password "${PW[$v]}" -populate gmsas -n 20 -base "CN=Managed Service Accounts,$BASE" -allow "$sid" >/dev/null
done
for shape in "1 16" "4 1" "16 16"; do
  set -- $shape
  for round in $(seq 1 ${ROUNDS:-2}); do
    for v in before after; do
      echo "$v c=$1 depth=$2 round=$round $($L -url "${URL[$v]}" -bind-dn bench0 -password Bench-Pass-123! -base "$BASE" \
        -filter '(sAMAccountName=bench%d$)' -n 20 -attrs msDS-ManagedPassword -c "$1" -depth "$2" -d "${SECS}s")"
    done
  done
done
wc -l "$W/before/audit.log" "$W/after/audit.log"
