#!/bin/bash
# Side-by-side benchmark of sealed Kerberos binds against TLS, same load tool
# (cmd/ldapload), bounded runs: msDS-ManagedPassword reads of 20 gMSAs as bench0 over a
# SASL GSSAPI connection with the confidentiality layer (ldap://, Kerberos from a ticket
# cache) and over LDAPS (simple bind), on our server and on Samba 4.22, at 1, 4 and 16
# connections, with the server's CPU per read.
# Needs root (apt, Samba chroot). Usage: scripts/bench-sasl.sh [seconds per run, default 5]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
D=${1:-5}s
W=$(mktemp -d /tmp/gmsa-bench-sasl.XXXXXX)
PEERS=test/interop/peers.sh
go build -o "$W/gmsa" ./cmd/gmsa
go build -o "$W/ldapload" ./cmd/ldapload
L="$W/ldapload"
export GODEBUG=x509negativeserial=1 # Samba's own certificate has a negative serial number
PIDS=()
source scripts/bench-lib.sh
trap cleanup EXIT
MSA="CN=Managed Service Accounts,DC=example,DC=test"
bash $PEERS install >/dev/null # also maps dc1.example.test to 127.0.0.1

echo "== setting up: a user bench0 and 20 gMSAs it may read, on both"
printf 'data: %s\nlog:\n  level: warn\nldap:\n  listen: 127.0.0.1:0\n  ldaps_listen: 127.0.0.1:0\nkdc:\n  listen: 127.0.0.1:0\n' "$W/ours" > "$W/ours.yaml"
"$W/gmsa" domain provision --realm EXAMPLE.TEST --data "$W/ours" --root-key-effective-time "$(date -u -d '-2 days' +%Y-%m-%dT%H:%M:%SZ)" >/dev/null
setsid "$W/gmsa" server --config "$W/ours.yaml" 2>"$W/ours.log" & PIDS+=($!)
OURS_PG=$!
for _ in $(seq 100); do [ -s "$W/ours/endpoints.json" ] && break; sleep 0.1; done
OURS_LDAP=$(python3 -c "import json;print(json.load(open('$W/ours/endpoints.json'))['ldap'].replace('127.0.0.1','dc1.example.test'))")
OURS_LDAPS=$(python3 -c "import json;print(json.load(open('$W/ours/endpoints.json'))['ldaps'])")
OURS_PW=$(cat "$W/ours/admin-password")
bash $PEERS samba-provision
SD=$(bash $PEERS dir)
bash $PEERS samba-start >/dev/null
SAMBA_PG=$(ps -o pgid= -p "$(cat "$SD/run/samba.pid")" | tr -d ' ')
SAMBA_PW='Passw0rd!Adm1n'
bash $PEERS samba-tool domain passwordsettings set --complexity=off --min-pwd-length=1 >/dev/null
for target in "ours $OURS_LDAPS $OURS_PW $W/ours/krb5.conf" "samba ldaps://127.0.0.1:636 $SAMBA_PW $SD/krb5.conf"; do
  set -- $target
  $L -url "$2" -bind-dn Administrator@example.test -password "$3" -populate users -n 1 -base "CN=Users,DC=example,DC=test"
  $L -url "$2" -bind-dn Administrator@example.test -password "$3" -populate gmsas -n 20 -base "$MSA" -allow "$(sid_of "$2" "$3" bench0)"
  echo 'Bench-Pass-123!' | KRB5_CONFIG=$4 KRB5CCNAME=FILE:$W/$1.cc kinit bench0 >/dev/null
done

echo "== msDS-ManagedPassword reads of 20 gMSAs as bench0, $D per run: sealed GSSAPI (ldap://) and LDAPS"
read_args=(-base "$MSA" -filter '(sAMAccountName=bench%d$)' -n 20 -attrs msDS-ManagedPassword -d "$D")
for c in 1 4 16; do
  KRB5_CONFIG=$W/ours/krb5.conf run "ours  sealed" "$OURS_PG" -url "$OURS_LDAP" -krb5-ccache "$W/ours.cc" -c $c "${read_args[@]}"
  run "ours  ldaps " "$OURS_PG" -url "$OURS_LDAPS" -bind-dn bench0@example.test -password Bench-Pass-123! -c $c "${read_args[@]}"
  KRB5_CONFIG=$SD/krb5.conf run "samba sealed" "$SAMBA_PG" -url ldap://dc1.example.test -krb5-ccache "$W/samba.cc" -c $c "${read_args[@]}"
  run "samba ldaps " "$SAMBA_PG" -url ldaps://127.0.0.1:636 -bind-dn bench0@example.test -password Bench-Pass-123! -c $c "${read_args[@]}"
done
