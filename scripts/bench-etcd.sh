#!/bin/bash
# One 'gmsa server' on the embedded bolt store beside one on a three-member etcd cluster
# (Debian's etcd-server, as peers.sh unpacks it), same load tool (cmd/ldapload), bounded
# runs: LDAP adds per second from one client, indexed searches and msDS-ManagedPassword
# reads over LDAPS at 1, 4 and 16 connections with the server's (and etcd's) CPU per
# operation, and the time a change made on one etcd-backed server takes to be served by
# a second one.
# Usage: scripts/bench-etcd.sh [seconds per run, default 5]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
D=${1:-5}s
W=$(mktemp -d /tmp/gmsa-bench-etcd.XXXXXX)
PEERS=test/interop/peers.sh
ETCD=$(bash $PEERS etcd)
go build -o "$W/gmsa" ./cmd/gmsa
go build -o "$W/ldapload" ./cmd/ldapload
L="$W/ldapload"
PIDS=()
source scripts/bench-lib.sh
trap 'cleanup; [ -n "${ETCD_PG:-}" ] && kill -TERM -- -"$ETCD_PG" 2>/dev/null || true' EXIT
USERS="CN=Users,DC=example,DC=test"
MSA="CN=Managed Service Accounts,DC=example,DC=test"
BACK=$(date -u -d '-2 days' +%Y-%m-%dT%H:%M:%SZ)

echo "== a three-member etcd cluster on loopback (one process group)"
CLUSTER="m0=http://127.0.0.1:42380,m1=http://127.0.0.1:42382,m2=http://127.0.0.1:42384"
member() { echo "\"$ETCD\" --name m$1 --data-dir \"$W/etcd$1\" --listen-client-urls http://127.0.0.1:$2 --advertise-client-urls http://127.0.0.1:$2 \
  --listen-peer-urls http://127.0.0.1:$3 --initial-advertise-peer-urls http://127.0.0.1:$3 --initial-cluster $CLUSTER \
  --initial-cluster-state new --log-level error 2>>\"$W/etcd.log\" &"; }
setsid bash -c "$(member 0 42379 42380) $(member 1 42381 42382) $(member 2 42383 42384) wait" >/dev/null & PIDS+=($!)
ETCD_PG=$!
ENDPOINTS="http://127.0.0.1:42379,http://127.0.0.1:42381,http://127.0.0.1:42383"
for _ in $(seq 100); do "$W/gmsa" server --check-config --data "$W/a" --store etcd --etcd-endpoints "$ENDPOINTS" >/dev/null 2>&1 && break; sleep 0.2; done

echo "== servers: bolt, and etcd A and B on one domain"
start() { # NAME [store settings]: a server with its own data directory; sets URL and PG
  printf 'data: %s\nlog:\n  level: warn\nldap:\n  listen: 127.0.0.1:0\n  ldaps_listen: 127.0.0.1:0\nkdc:\n  listen: "off"\n%s' "$W/$1" "${2:-}" > "$W/$1.yaml"
  setsid "$W/gmsa" server --config "$W/$1.yaml" >"$W/$1.out" 2>"$W/$1.log" & PIDS+=($!)
  PG=$!
  for _ in $(seq 100); do [ -s "$W/$1/endpoints.json" ] && break; sleep 0.1; done
  URL=$(python3 -c "import json;print(json.load(open('$W/$1/endpoints.json'))['ldaps'])"); }
"$W/gmsa" domain provision --realm EXAMPLE.TEST --data "$W/bolt" --root-key-effective-time "$BACK" >/dev/null
"$W/gmsa" domain provision --realm EXAMPLE.TEST --data "$W/a" --store etcd --etcd-endpoints "$ENDPOINTS" --root-key-effective-time "$BACK" >/dev/null
ETCD_CFG=$(printf 'store:\n  backend: etcd\n  etcd:\n    endpoints: [%s]\n' "$ENDPOINTS")
start bolt; BOLT_URL=$URL; BOLT_PG=$PG
start a "$ETCD_CFG"; A_URL=$URL; A_PG=$PG
start b "$ETCD_CFG"; B_URL=$URL

echo "== writes: 1000 users added over LDAPS by one client (each add fsynced by bolt, or committed by the etcd quorum)"
for target in "bolt $BOLT_URL $W/bolt/admin-password" "etcd $A_URL $W/a/admin-password"; do
  set -- $target
  echo -n "$1 "; $L -url "$2" -bind-dn Administrator@example.test -password "$(cat "$3")" -populate users -n 1000 -base "$USERS"
  $L -url "$2" -bind-dn Administrator@example.test -password "$(cat "$3")" -populate gmsas -n 20 -base "$MSA" -allow "$(sid_of "$2" "$(cat "$3")" bench0)" >/dev/null
done

echo "== reads, $D per run: indexed searches of 1000 users, and password reads of 20 gMSAs as bench0"
search=(-base "$USERS" -filter '(sAMAccountName=bench%d)' -n 1000 -attrs sAMAccountName -d "$D")
pw=(-bind-dn bench0@example.test -password Bench-Pass-123! -base "$MSA" -filter '(sAMAccountName=bench%d$)' -n 20 -attrs msDS-ManagedPassword -d "$D")
echo "   first reads after the writes, 2s:"
run "bolt search  " "$BOLT_PG" -url "$BOLT_URL" -bind-dn bench0@example.test -password Bench-Pass-123! -c 1 "${search[@]:0:8}" -d 2s
run "etcd search  " "$A_PG" -url "$A_URL" -bind-dn bench0@example.test -password Bench-Pass-123! -c 1 "${search[@]:0:8}" -d 2s
echo "   repeated reads:"
for c in 1 4 16; do
  run "bolt search  " "$BOLT_PG" -url "$BOLT_URL" -bind-dn bench0@example.test -password Bench-Pass-123! -c $c "${search[@]}"
  E0=$(cpu_ticks "$ETCD_PG"); run "etcd search  " "$A_PG" -url "$A_URL" -bind-dn bench0@example.test -password Bench-Pass-123! -c $c "${search[@]}"
  echo "     etcd cluster CPU during the run: $(( ($(cpu_ticks "$ETCD_PG") - E0) * 1000 / $(getconf CLK_TCK) )) ms"
  run "bolt password" "$BOLT_PG" -url "$BOLT_URL" -c $c "${pw[@]}"
  E0=$(cpu_ticks "$ETCD_PG"); run "etcd password" "$A_PG" -url "$A_URL" -c $c "${pw[@]}"
  echo "     etcd cluster CPU during the run: $(( ($(cpu_ticks "$ETCD_PG") - E0) * 1000 / $(getconf CLK_TCK) )) ms"
done

echo "== a change on server A served by server B (modify acknowledged → B's search returns it)"
$L -url "$A_URL" -bind-dn Administrator@example.test -password "$(cat "$W/a/admin-password")" -propagate "$B_URL" -base "CN=bench0,$USERS" -n 200
