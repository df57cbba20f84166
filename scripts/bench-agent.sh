#!/bin/bash
# The agent's cost on a host: `gmsa agent once` refreshing 1 and N gMSAs (keytabs) from
# one `gmsa server` (wall time, peak RSS), the LDAP requests one refresh of N accounts
# sends (from gmsa_agent_dc_requests_total: one bind, one search, not one per account),
# and the daemon's RSS idle after its first refresh with 1 and with N accounts.
# Usage: scripts/bench-agent.sh [N, default 100] [rounds, default 3]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
N=${1:-100}
ROUNDS=${2:-3}
W=$(mktemp -d /tmp/gmsa-bench-agent.XXXXXX)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done' EXIT
go build -o "$W/gmsa" ./cmd/gmsa
G="$W/gmsa"
setsid "$G" server --dev --data "$W/data" --log-level warn --ldap-listen 127.0.0.1:10389 --ldaps-listen 127.0.0.1:10636 \
  --kdc-listen 127.0.0.1:10088 >"$W/server.log" 2>&1 & PIDS+=($!)
for _ in $(seq 100); do [ -s "$W/data/endpoints.json" ] && break; sleep 0.1; done
export GMSA_SERVER=ldaps://127.0.0.1:10636 LDAPTLS_CACERT=$W/data/tls/ca.pem GMSA_USER=Administrator
export GMSA_PASSWORD; GMSA_PASSWORD=$(cat "$W/data/admin-password")
echo 'Reader-Passw0rd!' > "$W/reader.pw"
"$G" user new reader --new-password-file "$W/reader.pw" >/dev/null
for i in $(seq -w 1 "$N"); do
  "$G" account new "svc$i" --dns-host-name "svc$i.example.test" --spn "http/svc$i.example.test" \
    --principals-allowed reader --enctypes aes128,aes256 >/dev/null
done
config() { # config FILE COUNT METRICS_PORT
  mkdir -p "$W/out-$2" "$W/state-$2"
  { printf 'domain: example.test\nservers: [ldaps://127.0.0.1:10636]\nkdcs: [127.0.0.1:10088]\nca_file: %s\n' "$W/data/tls/ca.pem"
    printf 'state_dir: %s\nidentity: {user: reader@example.test, password_file: %s}\nmetrics: {listen: "127.0.0.1:%s"}\naccounts:\n' "$W/state-$2" "$W/reader.pw" "$3"
    for i in $(seq -w 1 "$N" | head -n "$2"); do printf '  - name: svc%s\n    keytab: {path: %s/svc%s.keytab}\n' "$i" "$W/out-$2" "$i"; done
  } > "$1"
}
config "$W/one.yaml" 1 19461
config "$W/all.yaml" "$N" 19462
echo "gmsa agent once (cold: keys derived, salts asked of the KDC), $ROUNDS rounds:"
for r in $(seq "$ROUNDS"); do
  for c in one all; do
    rm -rf "$W/state-"*/status.json
    /usr/bin/time -f "%e %M" -o "$W/time" "$G" agent once --config "$W/$c.yaml" >/dev/null
    read -r secs rss < "$W/time"
    printf '  %-4s accounts: %6.3f s, peak RSS %6d KiB\n' "$([ $c = one ] && echo 1 || echo "$N")" "$secs" "$rss"
  done
done
echo "gmsa agent run, after its first refresh:"
for c in one:19461:1 all:19462:$N; do
  IFS=: read -r f port n <<<"$c"
  rm -rf "$W/state-"*/status.json
  setsid "$G" agent run --config "$W/$f.yaml" --log-level warn >>"$W/agent.log" 2>&1 & pid=$!; PIDS+=($pid)
  for _ in $(seq 300); do grep -q '"ok": true' "$W/state-$([ "$f" = one ] && echo 1 || echo "$N")/status.json" 2>/dev/null && break; sleep 0.1; done
  sleep 2
  req=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^gmsa_agent_dc_requests_total/ {print $2}')
  ok=$(grep -c '"ok": true' "$W/state-$n/status.json")
  printf '  %-4s accounts: %s refreshed, %s LDAP requests, RSS %s KiB (VmHWM %s KiB)\n' "$n" "$ok" "$req" \
    "$(awk '/^VmRSS/ {print $2}' /proc/$pid/status)" "$(awk '/^VmHWM/ {print $2}' /proc/$pid/status)"
  kill -TERM $pid; wait $pid 2>/dev/null || true
done
