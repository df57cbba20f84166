#!/bin/bash
# The DC locator records served by 'gmsa server' (dns.listen) against dnsmasq serving the
# same records from its command line, side by side with one load tool (dnsperf, BIND's):
# a mix of the SRV and A queries a host makes to find a DC, over UDP, at 1 and 4
# clients, with each server's CPU per query. Per-source limits are raised for the run
# (dnsperf is one source).
# Usage (root): scripts/bench-dns.sh [seconds per run, default 5] [rounds, default 2]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
D=${1:-5}
ROUNDS=${2:-2}
command -v dnsperf >/dev/null && command -v dnsmasq >/dev/null ||
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dnsperf dnsmasq-base >/dev/null
W=$(mktemp -d /tmp/gmsa-bench-dns.XXXXXX)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done' EXIT
cpu_ticks() { local t=0; for st in /proc/[0-9]*/stat; do read -r -a f < "$st" 2>/dev/null || continue
  [ "${f[4]}" = "$1" ] && t=$((t + f[13] + f[14])); done; echo $t; }
go build -o "$W/gmsa" ./cmd/gmsa

printf 'data: %s\ndev: true\nlog:\n  level: warn\nldap:\n  listen: 127.0.0.1:10389\n  ldaps_listen: 127.0.0.1:10636\nkdc:\n  listen: 127.0.0.1:10088\ndns:\n  listen: 127.0.0.1:10053\n  queries_per_second: 10000000\nmetrics:\n  listen: "off"\n' "$W/data" > "$W/gmsa.yaml"
setsid "$W/gmsa" server --config "$W/gmsa.yaml" >"$W/gmsa.out" 2>"$W/gmsa.log" & PIDS+=($!); OURS=$!
SRV="--srv-host=_ldap._tcp.dc._msdcs.example.test,dc1.example.test,10389,0,100 --srv-host=_ldap._tcp.example.test,dc1.example.test,10389,0,100
  --srv-host=_kerberos._tcp.example.test,dc1.example.test,10088,0,100 --srv-host=_kerberos._udp.example.test,dc1.example.test,10088,0,100
  --srv-host=_ldap._tcp.Default-First-Site-Name._sites.dc._msdcs.example.test,dc1.example.test,10389,0,100
  --host-record=dc1.example.test,127.0.0.1 --host-record=example.test,127.0.0.1"
# shellcheck disable=SC2086 # one argument per record
setsid dnsmasq -k --port=10054 --listen-address=127.0.0.1 --bind-interfaces --no-resolv --no-hosts --no-poll \
  --user=root --pid-file="$W/dnsmasq.pid" --cache-size=0 --auth-zone=example.test --auth-server=dc1.example.test $SRV \
  >"$W/dnsmasq.log" 2>&1 & PIDS+=($!); MASQ=$!
for _ in $(seq 100); do [ -s "$W/data/endpoints.json" ] && break; sleep 0.1; done

cat > "$W/queries" <<Q
_ldap._tcp.dc._msdcs.example.test SRV
_kerberos._tcp.example.test SRV
_kerberos._udp.example.test SRV
_ldap._tcp.Default-First-Site-Name._sites.dc._msdcs.example.test SRV
dc1.example.test A
_ldap._tcp.example.test SRV
Q
for port in 10053 10054; do # both answer the same records
  dig @127.0.0.1 -p $port +short SRV _ldap._tcp.dc._msdcs.example.test | grep -q '10389 dc1.example.test.' || { echo "port $port does not answer"; exit 1; }
done

run() { # NAME PGID PORT CLIENTS
  local before after out qps
  before=$(cpu_ticks "$2")
  out=$(dnsperf -s 127.0.0.1 -p "$3" -d "$W/queries" -l "$D" -c "$4" -T "$4" -q 64 2>&1)
  after=$(cpu_ticks "$2")
  qps=$(sed -n 's/.*Queries per second: *\([0-9.]*\).*/\1/p' <<<"$out")
  local lost; lost=$(sed -n 's/.*Queries lost: *\([0-9]*\).*/\1/p' <<<"$out")
  local n; n=$(sed -n 's/.*Queries completed: *\([0-9]*\).*/\1/p' <<<"$out")
  echo "$1 clients=$4 qps=$qps completed=$n lost=$lost server_cpu_us_per_query=$(( n > 0 ? (after - before) * 1000000 / $(getconf CLK_TCK) / n : 0 ))"
}
echo "== $ROUNDS rounds of ${D}s per run, alternating"
for _ in $(seq "$ROUNDS"); do
  for c in 1 4; do
    run "ours   " "$OURS" 10053 $c
    run "dnsmasq" "$MASQ" 10054 $c
  done
done
