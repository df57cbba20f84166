#!/bin/bash
# The directory at scale, side by side on one machine with the same load tool
# (cmd/ldapload): our server (embedded store, users added by 'gmsa user import', then
# 'gmsa compact'),
# OpenLDAP slapd 2.5 (mdb, slapadd, indexes on objectClass, uid and cn) and Samba 4.22
# (users added offline with ldbadd into its sam.ldb, 5000 per transaction), each holding N users bench0…
# with description "team i%100". Measured: the bulk load, start-up time, RSS idle and
# after an enumeration, indexed equality searches at 1, 4 and 16 connections, an AND of
# two indexed terms, an unindexed search over the whole domain, a paged enumeration of
# every user, and msDS-ManagedPassword reads (ours and Samba; slapd has none).
# Needs root (Samba chroot, apt). Usage:
#   scripts/bench-scale.sh [users, default 100000] [seconds per run, default 5] ["ours slapd samba"]
# Our server runs with memory.limit $GMSA_BENCH_MEMORY_LIMIT (default 512 MiB) and
# memory.object_cache $GMSA_BENCH_OBJECT_CACHE (default 20 000, the server's).
# GMSA_BENCH_KEEP=1 keeps the working directory (its ours/gmsa.db for in-process benchmarks).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
N=${1:-100000}
D=${2:-5}s
SERVERS=${3:-ours slapd samba}
W=$(mktemp -d /var/tmp/gmsa-scale.XXXXXX)
PEERS=test/interop/peers.sh
go build -o "$W/gmsa" ./cmd/gmsa
go build -o "$W/ldapload" ./cmd/ldapload
L="$W/ldapload"
export GODEBUG=x509negativeserial=1 # Samba's own certificate has a negative serial number
PIDS=()
source scripts/bench-lib.sh
trap 'cleanup; if [ -n "${GMSA_BENCH_KEEP:-}" ]; then echo "kept $W"; else rm -rf "$W"; fi' EXIT
BASE=DC=example,DC=test
has() { [[ " $SERVERS " == *" $1 "* ]]; }
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
rss_mb() { ps -o rss= -g "$1" | awk '{s+=$1} END {printf "%.0f", s/1024}'; }
# heap_mb PID: the process's anonymous memory (its heap; the rest of its RSS is mapped files).
heap_mb() { awk '/RssAnon/ {printf "%.0f", $2/1024}' "/proc/$1/status"; }
wait_port() { for _ in $(seq 2000); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.01; done; return 1; }

# users.{csv,ldif}: the same N users for each server's bulk path.
python3 - "$N" "$W" <<'PY'
import sys
n, w = int(sys.argv[1]), sys.argv[2]
with open(f"{w}/users.csv", "w") as f:
    f.write("SamAccountName,Name,Description\n")
    for i in range(n):
        f.write(f"bench{i},bench{i},team {i % 100}\n")
import os
os.makedirs(f"{w}/samba", exist_ok=True)
for chunk in range(0, n, 5000):  # one ldbadd transaction each: ldbadd holds a whole file's in memory
    with open(f"{w}/samba/users-{chunk // 5000:04d}.ldif", "w") as f:
        for i in range(chunk, min(n, chunk + 5000)):
            f.write(f"dn: CN=bench{i},CN=Users,DC=example,DC=test\nobjectClass: user\nsAMAccountName: bench{i}\n"
                    f"description: team {i % 100}\nuserAccountControl: 514\n\n")
with open(f"{w}/slapd.ldif", "w") as f:
    f.write("dn: DC=example,DC=test\nobjectClass: dcObject\nobjectClass: organization\no: example\ndc: example\n\n")
    f.write("dn: ou=people,DC=example,DC=test\nobjectClass: organizationalUnit\nou: people\n\n")
    for i in range(n):
        f.write(f"dn: uid=bench{i},ou=people,DC=example,DC=test\nobjectClass: inetOrgPerson\nuid: bench{i}\n"
                f"cn: bench{i}\nsn: b\ndescription: team {i % 100}\n\n")
PY

if has ours; then
  echo "== ours: provision, bulk import of $N users, start"
  "$W/gmsa" domain provision --realm EXAMPLE.TEST --data "$W/ours" --root-key-effective-time "$(date -u -d '-2 days' +%Y-%m-%dT%H:%M:%SZ)" >/dev/null
  t=$(date +%s%N); "$W/gmsa" user import "$W/users.csv" --data "$W/ours" >/dev/null
  echo "ours bulk_load_ms=$(ms "$t") db_mb=$(( $(stat -c %s "$W/ours/gmsa.db") >> 20 ))"
  t=$(date +%s%N); "$W/gmsa" compact --data "$W/ours" >/dev/null
  echo "ours compact_ms=$(ms "$t") db_mb=$(( $(stat -c %s "$W/ours/gmsa.db") >> 20 ))"
  printf 'data: %s\nlog:\n  level: warn\nldap:\n  listen: 127.0.0.1:0\n  ldaps_listen: 127.0.0.1:0\n  allow_plain_simple_bind: true\nkdc:\n  listen: "off"\nmemory:\n  limit: %s\n  object_cache: %s\n' \
    "$W/ours" "${GMSA_BENCH_MEMORY_LIMIT:-536870912}" "${GMSA_BENCH_OBJECT_CACHE:-20000}" > "$W/ours.yaml"
  t=$(date +%s%N)
  setsid "$W/gmsa" server --config "$W/ours.yaml" 2>"$W/ours.log" & PIDS+=($!)
  OURS_PG=$!
  for _ in $(seq 2000); do [ -s "$W/ours/endpoints.json" ] && break; sleep 0.002; done
  echo "ours startup_ms=$(ms "$t")"
  OURS_LDAP=$(python3 -c "import json;print(json.load(open('$W/ours/endpoints.json'))['ldap'])")
  OURS_LDAPS=$(python3 -c "import json;print(json.load(open('$W/ours/endpoints.json'))['ldaps'])")
  OURS_PW=$(cat "$W/ours/admin-password")
  $L -url "$OURS_LDAPS" -bind-dn Administrator@example.test -password "$OURS_PW" -populate gmsas -n 20 -base "CN=Managed Service Accounts,$BASE" \
    -allow "$(sid_of "$OURS_LDAPS" "$OURS_PW" Administrator)" >/dev/null
  sleep 2; echo "ours rss_idle_mb=$(rss_mb "$OURS_PG") anon_mb=$(heap_mb "$OURS_PG")"
fi

if has slapd; then
  echo "== slapd: slapadd of $N users, start"
  slapd_conf "$W/slapd" 17179869184 "$(printf 'sizelimit unlimited\nindex objectClass eq\nindex uid eq\nindex cn eq')"
  t=$(date +%s%N); slapadd -f "$W/slapd/slapd.conf" -q -l "$W/slapd.ldif" 2>/dev/null
  echo "slapd bulk_load_ms=$(ms "$t")"
  t=$(date +%s%N)
  setsid slapd -d 0 -f "$W/slapd/slapd.conf" -h 'ldap://127.0.0.1:3890/' 2>/dev/null & PIDS+=($!)
  SLAPD_PG=$!
  wait_port 3890; echo "slapd startup_ms=$(ms "$t")"
  sleep 2; echo "slapd rss_idle_mb=$(rss_mb "$SLAPD_PG")"
fi

if has samba; then
  echo "== samba: provision, ldbadd of $N users offline, start"
  bash $PEERS install >/dev/null
  bash $PEERS samba-stop >/dev/null 2>&1 || true
  bash $PEERS samba-provision
  SD=$(bash $PEERS dir)
  sed -i 's/^\[global\]/[global]\n\tldap server require strong auth = no/' "$SD/etc/smb.conf"
  t=$(date +%s%N)
  for f in "$W"/samba/users-*.ldif; do
    cp "$f" "$SD/tmp-users.ldif"
    bash $PEERS chroot ldbadd -H /srv/dc/private/sam.ldb /srv/dc/tmp-users.ldif >/dev/null
  done
  echo "samba bulk_load_ms=$(ms "$t")"
  rm -f "$SD/tmp-users.ldif"
  t=$(date +%s%N)
  bash $PEERS samba-start >/dev/null
  wait_port 389; echo "samba startup_ms=$(ms "$t")"
  SAMBA_PG=$(ps -o pgid= -p "$(cat "$SD/run/samba.pid")" | tr -d ' ')
  SAMBA_PW='Passw0rd!Adm1n'
  $L -url ldaps://127.0.0.1:636 -bind-dn Administrator@example.test -password "$SAMBA_PW" -populate gmsas -n 20 -base "CN=Managed Service Accounts,$BASE" \
    -allow "$(sid_of ldaps://127.0.0.1:636 "$SAMBA_PW" Administrator)" >/dev/null
  sleep 2; echo "samba rss_idle_mb=$(rss_mb "$SAMBA_PG")"
fi

# each LABEL ARGS…: one run per server selected, with its own filter spellings.
each() { local what=$1 ours=$2 slapd=$3 samba=$4; shift 4
  has ours && run "ours  $what" "$OURS_PG" -url "$OURS_LDAP" -bind-dn Administrator@example.test -password "$OURS_PW" -base "$BASE" -filter "$ours" "$@"
  has slapd && [ -n "$slapd" ] && run "slapd $what" "$SLAPD_PG" -url ldap://127.0.0.1:3890 -bind-dn "cn=admin,$BASE" -password secret -base "$BASE" -filter "$slapd" "$@"
  has samba && run "samba $what" "$SAMBA_PG" -url ldap://127.0.0.1:389 -bind-dn Administrator@example.test -password "$SAMBA_PW" -base "$BASE" -filter "$samba" "$@"
  return 0; }

echo "== searches among $N users, plain LDAP, $D per run"
for c in 1 4 16; do
  each "indexed c=$c" '(sAMAccountName=bench%d)' '(uid=bench%d)' '(sAMAccountName=bench%d)' -n "$N" -attrs cn,description -c $c -d $D
done
each "and-indexed c=4" '(&(objectCategory=person)(cn=bench%d))' '(&(objectClass=inetOrgPerson)(cn=bench%d))' '(&(objectCategory=person)(cn=bench%d))' -n "$N" -attrs cn -c 4 -d $D
each "unindexed c=1" '(description=nomatch)' '(description=nomatch)' '(description=nomatch)' -attrs cn -c 1 -d $D
each "unindexed c=4" '(description=nomatch)' '(description=nomatch)' '(description=nomatch)' -attrs cn -c 4 -d $D
each "enumerate page=1000" '(objectClass=user)' '(objectClass=inetOrgPerson)' '(objectClass=user)' -attrs cn -page 1000 -c 1 -d $D
has ours && echo "ours rss_after_enumeration_mb=$(rss_mb "$OURS_PG") anon_mb=$(heap_mb "$OURS_PG")"
has slapd && echo "slapd rss_after_enumeration_mb=$(rss_mb "$SLAPD_PG")"
has samba && echo "samba rss_after_enumeration_mb=$(rss_mb "$SAMBA_PG")"

echo "== msDS-ManagedPassword reads of 20 gMSAs, LDAPS, as Administrator, $D per run"
has ours && run "ours  passwords c=4 depth=16" "$OURS_PG" -url "$OURS_LDAPS" -bind-dn Administrator@example.test -password "$OURS_PW" -base "CN=Managed Service Accounts,$BASE" \
  -filter '(sAMAccountName=bench%d$)' -n 20 -attrs msDS-ManagedPassword -c 4 -depth 16 -d $D
has samba && run "samba passwords c=4 depth=16" "$SAMBA_PG" -url ldaps://127.0.0.1:636 -bind-dn Administrator@example.test -password "$SAMBA_PW" -base "CN=Managed Service Accounts,$BASE" \
  -filter '(sAMAccountName=bench%d$)' -n 20 -attrs msDS-ManagedPassword -c 4 -depth 16 -d $D
exit 0
