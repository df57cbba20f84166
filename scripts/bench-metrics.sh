#!/bin/bash
# What metrics cost: two 'gmsa server' processes on copies of one provisioned domain,
# one with metrics.listen on (and scraped every second, as Prometheus would, faster than
# usual) and one without; the same load tool (cmd/ldapload) alternates between them:
# indexed searches and msDS-ManagedPassword reads over LDAPS at 1 and 4 connections,
# with each server's CPU per operation.
# Usage: scripts/bench-metrics.sh [seconds per run, default 5] [rounds, default 2]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
D=${1:-5}s
ROUNDS=${2:-2}
W=$(mktemp -d /tmp/gmsa-bench-metrics.XXXXXX)
PEERS=test/interop/peers.sh
go build -o "$W/gmsa" ./cmd/gmsa
go build -o "$W/ldapload" ./cmd/ldapload
L="$W/ldapload"
PIDS=()
source scripts/bench-lib.sh
trap 'cleanup; [ -n "${SCRAPER:-}" ] && kill "$SCRAPER" 2>/dev/null || true' EXIT
USERS="CN=Users,DC=example,DC=test"
MSA="CN=Managed Service Accounts,DC=example,DC=test"
BACK=$(date -u -d '-2 days' +%Y-%m-%dT%H:%M:%SZ)

start() { # NAME METRICS-LISTEN: a server on DATA=$W/NAME; sets URL and PG
  printf 'data: %s\nlog:\n  level: warn\nldap:\n  listen: 127.0.0.1:0\n  ldaps_listen: 127.0.0.1:0\nkdc:\n  listen: "off"\nmetrics:\n  listen: %s\n' "$W/$1" "$2" > "$W/$1.yaml"
  setsid "$W/gmsa" server --config "$W/$1.yaml" >"$W/$1.out" 2>"$W/$1.log" & PIDS+=($!)
  PG=$!
  for _ in $(seq 100); do [ -s "$W/$1/endpoints.json" ] && break; sleep 0.1; done
  URL=$(python3 -c "import json;print(json.load(open('$W/$1/endpoints.json'))['ldaps'])"); }

echo "== one domain: 1000 users and 20 gMSAs readable by bench0, copied for the second server"
"$W/gmsa" domain provision --realm EXAMPLE.TEST --data "$W/off" --root-key-effective-time "$BACK" >/dev/null
start off off; OFF_URL=$URL; OFF_PG=$PG
ADMIN=(-bind-dn Administrator@example.test -password "$(cat "$W/off/admin-password")")
$L -url "$OFF_URL" "${ADMIN[@]}" -populate users -n 1000 -base "$USERS" >/dev/null
$L -url "$OFF_URL" "${ADMIN[@]}" -populate gmsas -n 20 -base "$MSA" -allow "$(sid_of "$OFF_URL" "$(cat "$W/off/admin-password")" bench0)" >/dev/null
"$W/gmsa" backup --data "$W/off" --out "$W/domain.bak" >/dev/null
"$W/gmsa" restore --data "$W/on" --in "$W/domain.bak" >/dev/null
start on 127.0.0.1:0; ON_URL=$URL; ON_PG=$PG
HEALTH=$(python3 -c "import json;print(json.load(open('$W/on/endpoints.json'))['health'])")
(while :; do curl -s -o /dev/null "${HEALTH}metrics"; sleep 1; done) & SCRAPER=$!

echo "== $ROUNDS rounds of $D per run, alternating"
search=(-bind-dn bench0@example.test -password Bench-Pass-123! -base "$USERS" -filter '(sAMAccountName=bench%d)' -n 1000 -attrs sAMAccountName -d "$D")
pw=(-bind-dn bench0@example.test -password Bench-Pass-123! -base "$MSA" -filter '(sAMAccountName=bench%d$)' -n 20 -attrs msDS-ManagedPassword -d "$D")
for r in $(seq "$ROUNDS"); do
  for c in 1 4; do
    run "off search   c=$c" "$OFF_PG" -url "$OFF_URL" -c $c "${search[@]}"
    run "on  search   c=$c" "$ON_PG" -url "$ON_URL" -c $c "${search[@]}"
    run "off password c=$c" "$OFF_PG" -url "$OFF_URL" -c $c "${pw[@]}"
    run "on  password c=$c" "$ON_PG" -url "$ON_URL" -c $c "${pw[@]}"
  done
done
echo "== the metrics server's counts after the runs"
curl -s "${HEALTH}metrics" | grep -E '^gmsa_(ldap_requests_total|password_reads_total)'
