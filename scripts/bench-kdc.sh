#!/bin/bash
# Side-by-side KDC benchmark on one machine, same load tool (cmd/krbload), bounded runs:
#   our KDC (gmsa server --dev), MIT krb5kdc 1.20 (-w = cores) and Samba 4.22's KDC (chroot).
# AS exchanges with PA-ENC-TIMESTAMP and TGS exchanges for a service, over UDP, at 1, 4
# and 16 concurrent clients, with the server's CPU per request. Ours and Samba put a PAC
# in every ticket; MIT 1.20 a minimal one.
# Needs root (apt, Samba chroot).
# Usage: scripts/bench-kdc.sh [seconds per run, default 5] [servers, default "ours mit samba"]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
D=${1:-5}s
SERVERS=" ${2:-ours mit samba} "
want() { [[ $SERVERS == *" $1 "* ]]; }
maybe() { if want "$1"; then run "$@"; fi; }  # run, if that server was asked for
W=$(mktemp -d /tmp/gmsa-bench-kdc.XXXXXX)
PEERS=test/interop/peers.sh
go build -o "$W/gmsa" ./cmd/gmsa
go build -o "$W/krbload" ./cmd/krbload
L="$W/krbload"
PIDS=()
source scripts/bench-lib.sh
trap cleanup EXIT

echo "== setting up"
# Ours.
setsid "$W/gmsa" server --dev --data "$W/ours" --log-level error >/dev/null 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$W/ours/endpoints.json" ] && break; sleep 0.1; done
OURS=$(sed -n 's/.*"kdc": "\(.*\)".*/\1/p' "$W/ours/endpoints.json")
OURS_PW=$(cat "$W/ours/admin-password")
OURS_PG=$(ps -o pgid= -p "${PIDS[0]}" | tr -d ' ')

# MIT krb5kdc with a user and a service, on 127.0.0.1:8888.
if ! command -v krb5kdc >/dev/null || ! command -v kadmin.local >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends krb5-kdc krb5-admin-server >/dev/null
fi
M="$W/mit"; mkdir -p "$M"
cat > "$M/kdc.conf" <<CONF
[kdcdefaults]
	kdc_listen = 127.0.0.1:8888
	kdc_tcp_listen = 127.0.0.1:8888
[realms]
	MIT.TEST = {
		database_name = $M/principal
		key_stash_file = $M/stash
		supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
		max_life = 10h
		max_renewable_life = 7d
	}
CONF
printf '[libdefaults]\n\tdefault_realm = MIT.TEST\n[realms]\n\tMIT.TEST = {\n\t\tkdc = 127.0.0.1:8888\n\t}\n' > "$M/krb5.conf"
export KRB5_CONFIG="$M/krb5.conf" KRB5_KDC_PROFILE="$M/kdc.conf"
kdb5_util create -s -P "bench-master-$RANDOM" -r MIT.TEST >/dev/null 2>&1
kadmin.local -r MIT.TEST -q "addprinc -pw Bench-Pass-123! alice" >/dev/null 2>&1
kadmin.local -r MIT.TEST -q "addprinc -randkey HTTP/svc.mit.test" >/dev/null 2>&1
setsid krb5kdc -n -w "$(nproc)" -r MIT.TEST >/dev/null 2>&1 &
PIDS+=($!)
MIT_PG=$(ps -o pgid= -p "${PIDS[1]}" | tr -d ' ')
unset KRB5_CONFIG KRB5_KDC_PROFILE

# Samba 4.22.
SAMBA_PG=
if want samba; then
  bash $PEERS install >/dev/null
  bash $PEERS samba-provision
  bash $PEERS samba-start >/dev/null
  SD=$(bash $PEERS dir)
  SAMBA_PG=$(ps -o pgid= -p "$(cat "$SD/run/samba.pid")" | tr -d ' ')
fi
SAMBA_PW='Passw0rd!Adm1n'
sleep 1

echo "== AS and TGS exchanges, $D per run"
for c in 1 4 16; do
  maybe ours "$OURS_PG" -kdc "$OURS" -realm EXAMPLE.TEST -user Administrator -password "$OURS_PW" -mode as -c $c -d $D
  maybe mit "$MIT_PG" -kdc 127.0.0.1:8888 -realm MIT.TEST -user alice -password Bench-Pass-123! -mode as -c $c -d $D
  maybe samba "$SAMBA_PG" -kdc 127.0.0.1:88 -realm EXAMPLE.TEST -user Administrator -password "$SAMBA_PW" -mode as -c $c -d $D
done
for c in 1 4 16; do
  maybe ours "$OURS_PG" -kdc "$OURS" -realm EXAMPLE.TEST -user Administrator -password "$OURS_PW" -mode tgs -service host/dc1.example.test -c $c -d $D
  maybe mit "$MIT_PG" -kdc 127.0.0.1:8888 -realm MIT.TEST -user alice -password Bench-Pass-123! -mode tgs -service HTTP/svc.mit.test -c $c -d $D
  maybe samba "$SAMBA_PG" -kdc 127.0.0.1:88 -realm EXAMPLE.TEST -user Administrator -password "$SAMBA_PW" -mode tgs -service host/dc1.example.test -c $c -d $D
done
