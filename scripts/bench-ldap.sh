#!/bin/bash
# Side-by-side LDAP benchmark on one machine, same load tool (cmd/ldapload), bounded runs:
#   our server (embedded store), OpenLDAP slapd 2.5 (mdb), Samba 4.22 AD DC (chroot).
# Indexed searches among 2000 users over plain LDAP at 1, 4 and 16 connections, and
# msDS-ManagedPassword reads of 20 gMSAs over LDAPS (ours and Samba; slapd has none).
# Needs root (Samba chroot, apt). Usage: scripts/bench-ldap.sh [seconds per run, default 5]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
D=${1:-5}s
W=$(mktemp -d /tmp/gmsa-bench.XXXXXX)
PEERS=test/interop/peers.sh
go build -o "$W/gmsa" ./cmd/gmsa
go build -o "$W/ldapload" ./cmd/ldapload
L="$W/ldapload"
export GODEBUG=x509negativeserial=1 # Samba's own certificate has a negative serial number
PIDS=()
source scripts/bench-lib.sh
trap cleanup EXIT
BASE=DC=example,DC=test

echo "== setting up (users are added over LDAP by the load tool)"
# Ours.
"$W/gmsa" domain provision --realm EXAMPLE.TEST --data "$W/ours" --root-key-effective-time "$(date -u -d '-2 days' +%Y-%m-%dT%H:%M:%SZ)" >/dev/null
printf 'data: %s\nlog:\n  level: warn\nldap:\n  listen: 127.0.0.1:0\n  ldaps_listen: 127.0.0.1:0\n  allow_plain_simple_bind: true\nkdc:\n  listen: 127.0.0.1:0\n' "$W/ours" > "$W/ours.yaml"
setsid "$W/gmsa" server --config "$W/ours.yaml" 2>"$W/ours.log" & PIDS+=($!)
OURS_PG=$!
for _ in $(seq 100); do [ -s "$W/ours/endpoints.json" ] && break; sleep 0.1; done
OURS_LDAP=$(python3 -c "import json;print(json.load(open('$W/ours/endpoints.json'))['ldap'])")
OURS_LDAPS=$(python3 -c "import json;print(json.load(open('$W/ours/endpoints.json'))['ldaps'])")
OURS_PW=$(cat "$W/ours/admin-password")
$L -url "$OURS_LDAPS" -bind-dn Administrator@example.test -password "$OURS_PW" -populate users -n 2000 -base "CN=Users,$BASE"

# Samba 4.22, with simple binds allowed on plain LDAP for the search runs.
bash $PEERS install >/dev/null
bash $PEERS samba-provision
SD=$(bash $PEERS dir)
sed -i 's/^\[global\]/[global]\n\tldap server require strong auth = no/' "$SD/etc/smb.conf"
bash $PEERS samba-start >/dev/null
SAMBA_PG=$(ps -o pgid= -p "$(cat "$SD/run/samba.pid")" | tr -d ' ')
SAMBA_PW='Passw0rd!Adm1n'
bash $PEERS samba-tool domain passwordsettings set --complexity=off --min-pwd-length=1 >/dev/null
$L -url ldaps://127.0.0.1:636 -bind-dn Administrator@example.test -password "$SAMBA_PW" -populate users -n 2000 -base "CN=Users,$BASE"

# gMSAs readable by bench0 on both.
for target in "ours $OURS_LDAPS $OURS_PW" "samba ldaps://127.0.0.1:636 $SAMBA_PW"; do
  set -- $target
  sid=$(sid_of "$2" "$3" bench0)
  $L -url "$2" -bind-dn Administrator@example.test -password "$3" -populate gmsas -n 20 -base "CN=Managed Service Accounts,$BASE" -allow "$sid"
done

# slapd with the same 2000 names (uid=bench%d).
slapd_conf "$W/slapd" 1073741824 "$(printf 'index objectClass eq\nindex uid eq\naccess to * by * read')"
python3 - "$W/slapd/data.ldif" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("dn: DC=example,DC=test\nobjectClass: dcObject\nobjectClass: organization\no: example\ndc: example\n\n")
    f.write("dn: ou=people,DC=example,DC=test\nobjectClass: organizationalUnit\nou: people\n\n")
    for i in range(2000):
        f.write(f"dn: uid=bench{i},ou=people,DC=example,DC=test\nobjectClass: inetOrgPerson\nuid: bench{i}\ncn: bench{i}\nsn: b\nmail: bench{i}@example.test\nuserPassword: pw\n\n")
PY
slapadd -f "$W/slapd/slapd.conf" -q -l "$W/slapd/data.ldif" 2>/dev/null
setsid slapd -d 0 -f "$W/slapd/slapd.conf" -h 'ldap://127.0.0.1:3890/' 2>/dev/null & PIDS+=($!)
SLAPD_PG=$!
sleep 1

echo "== indexed searches among 2000 users, plain LDAP, $D per run, one request in flight per connection"
for c in 1 4 16; do
  run "ours " "$OURS_PG" -url "$OURS_LDAP" -bind-dn bench0@example.test -password Bench-Pass-123! -base "$BASE" -filter '(sAMAccountName=bench%d)' -n 2000 -attrs cn,description -c $c -d $D
  run "slapd" "$SLAPD_PG" -url ldap://127.0.0.1:3890 -bind-dn "cn=admin,$BASE" -password secret -base "$BASE" -filter '(uid=bench%d)' -n 2000 -attrs cn,mail -c $c -d $D
  run "samba" "$SAMBA_PG" -url ldap://127.0.0.1:389 -bind-dn bench0@example.test -password Bench-Pass-123! -base "$BASE" -filter '(sAMAccountName=bench%d)' -n 2000 -attrs cn,description -c $c -d $D
done
echo "== msDS-ManagedPassword reads of 20 gMSAs, LDAPS, as bench0, $D per run (depth: requests in flight per connection)"
for cd in "1 1" "4 1" "16 1" "1 16" "4 16" "16 16"; do
  set -- $cd
  run "ours " "$OURS_PG" -url "$OURS_LDAPS" -bind-dn bench0@example.test -password Bench-Pass-123! -base "CN=Managed Service Accounts,$BASE" -filter '(sAMAccountName=bench%d$)' -n 20 -attrs msDS-ManagedPassword -c $1 -depth $2 -d $D
  run "samba" "$SAMBA_PG" -url ldaps://127.0.0.1:636 -bind-dn bench0@example.test -password Bench-Pass-123! -base "CN=Managed Service Accounts,$BASE" -filter '(sAMAccountName=bench%d$)' -n 20 -attrs msDS-ManagedPassword -c $1 -depth $2 -d $D
done
