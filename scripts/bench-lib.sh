# Shared by the side-by-side benchmarks (sourced): L is the load tool, PIDS the
# servers started, PEERS the peers script.

# cpu_ticks PGID: user+system clock ticks of every process in a process group.
cpu_ticks() { local t=0; for st in /proc/[0-9]*/stat; do read -r -a f < "$st" 2>/dev/null || continue
  [ "${f[4]}" = "$1" ] && t=$((t + f[13] + f[14])); done; echo $t; }

# run NAME PGID load-tool-args…: one bounded run, with the server's CPU µs per operation.
run() { local name=$1 pg=$2; shift 2; local before after out ops
  before=$(cpu_ticks "$pg"); out=$($L "$@"); after=$(cpu_ticks "$pg")
  ops=$(sed -n 's/.* ops=\([0-9]*\).*/\1/p' <<<"$out")
  echo "$name $out server_cpu_us_per_op=$(( ops > 0 ? (after - before) * 1000000 / $(getconf CLK_TCK) / ops : 0 ))"; }

# cleanup stops the servers and Samba.
cleanup() { for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; bash $PEERS samba-stop >/dev/null 2>&1 || true; }

# sid_of URL PASSWORD NAME: the objectSid (S-1-…) of NAME, read over LDAPS as Administrator.
sid_of() { LDAPTLS_REQCERT=never ldapsearch -LLL -o ldif-wrap=no -x -H "$1" -D Administrator@example.test -w "$2" -b DC=example,DC=test "(sAMAccountName=$3)" objectSid \
  | sed -n 's/^objectSid:: //p' | python3 -c 'import sys,base64,struct;b=base64.b64decode(sys.stdin.read());print("S-1-%d-"%int.from_bytes(b[2:8],"big")+"-".join(str(x) for x in struct.unpack("<%dI"%b[1],b[8:])))'; }

# slapd_conf DIR MAXSIZE EXTRA: installs slapd if needed and writes DIR/slapd.conf, an mdb
# database for $BASE in DIR/db (rootdn cn=admin, password secret), with EXTRA's lines
# (indexes, limits, access) appended.
slapd_conf() { local dir=$1 maxsize=$2 extra=$3
  if ! command -v slapd >/dev/null; then DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slapd >/dev/null; fi
  mkdir -p "$dir/db"
  cat > "$dir/slapd.conf" <<CONF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile $dir/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
loglevel none
threads 4
database mdb
maxsize $maxsize
suffix "$BASE"
rootdn "cn=admin,$BASE"
rootpw secret
directory $dir/db
$extra
CONF
}
