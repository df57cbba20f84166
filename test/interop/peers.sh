#!/bin/bash
# Real third-party peers for the interop tests, all bound to 127.0.0.1.
#
#   peers.sh install          host clients (ldap-utils, MIT krb5-user, python3-ldap3, impacket, dig)
#                             and a Samba 4.22 AD DC from bookworm-backports in a debootstrap
#                             chroot (the host keeps its own packages); idempotent
#   peers.sh samba-provision  a fresh EXAMPLE.TEST domain at functional level 2016
#   peers.sh samba-start      start it (root pid in $SAMBA_DIR/run/samba.pid)
#   peers.sh samba-stop       stop it by PID
#   peers.sh samba-tool ARGS  run samba-tool inside the chroot against the local sam.ldb
#   peers.sh chroot CMD ARGS  run a program of the chroot (e.g. samba-tool -H ldap://… against our server)
#   peers.sh heimdal-sasl     the SASL_PATH of Cyrus SASL's Heimdal GSSAPI plugin
#   peers.sh etcd             the path of etcd's server (for internal/store/etcd's tests)
#
# install also maps dc1.example.test to 127.0.0.1 in /etc/hosts (the host's and the
# chroot's): a Kerberos bind asks for ldap/<the host name of the URL>. And it maps
# dc1.ours.test to 127.0.0.9 on the host: our DC when adcli and msktutil join a host
# to it on the standard ports (the name comes from the LDAP ping), beside Samba's
# 127.0.0.1.
#
# State lives under $GMSA_PEERS (default /var/tmp/gmsa-peers) so a machine that already
# built the chroot reuses it. Ports on 127.0.0.1: 88, 389, 636, 3268/3269, 445, 135, 464.
set -euo pipefail
PEERS=${GMSA_PEERS:-/var/tmp/gmsa-peers}
ROOT=$PEERS/chroot
D=/srv/dc                 # the DC's directory inside the chroot
HD=$ROOT$D                # the same directory seen from the host
ADMINPASS=${SAMBA_ADMINPASS:-'Passw0rd!Adm1n'}
SAMBA_PKGS="samba samba-ad-dc samba-ad-provision samba-dsdb-modules samba-vfs-modules python3-samba winbind ldb-tools samba-testsuite"
# libfaketime runs the DC days ahead, so the tests see real password rotations; Heimdal's
# clients (they conflict with MIT's krb5-user on the host) are a second Kerberos stack.
CHROOT_EXTRA="faketime heimdal-clients"
FAKETIME_LIB=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1
HOST_PKGS="debootstrap systemd bind9-dnsutils ldap-utils krb5-user python3-ldap3 python3-impacket python3-gssapi adcli msktutil ca-certificates iproute2 faketime libsasl2-modules-gssapi-mit libgssapi3-heimdal"
# Cyrus SASL's Heimdal GSSAPI plugin conflicts with the MIT one: it is unpacked here and
# chosen with SASL_PATH.
HEIMDAL_SASL=$PEERS/heimdal-sasl
# etcd's server, for the etcd store backend's tests: unpacked like the Heimdal plugin,
# so that no service of the package starts.
ETCD_DIR=$PEERS/etcd
# The DC's name: Kerberos binds ask for a ticket to ldap/<name in the URL>.
DC_HOSTS_LINE="127.0.0.1 dc1.example.test dc1"
OUR_DC_HOSTS_LINE="127.0.0.9 dc1.ours.test"

chroot_apt() {
  mount_proc
  chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive sh -c "apt-get install -y -qq --no-install-recommends $1 || (apt-get update -qq && apt-get install -y -qq --no-install-recommends $1)"
}

mount_proc() { mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"; }

install_host() {
  local missing=()
  for p in $HOST_PKGS; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
  if [ ! -e "$HEIMDAL_SASL/usr/lib/x86_64-linux-gnu/sasl2/libgssapiv2.so" ]; then
    local tmp; tmp=$(mktemp -d)
    (cd "$tmp" && { apt-get download libsasl2-modules-gssapi-heimdal || { apt-get update -qq && apt-get download libsasl2-modules-gssapi-heimdal; }; })
    mkdir -p "$HEIMDAL_SASL" && dpkg -x "$tmp"/libsasl2-modules-gssapi-heimdal_*.deb "$HEIMDAL_SASL"
    rm -rf "$tmp"
  fi
  if [ ! -x "$ETCD_DIR/usr/bin/etcd" ]; then
    local tmp; tmp=$(mktemp -d)
    (cd "$tmp" && { apt-get download etcd-server || { apt-get update -qq && apt-get download etcd-server; }; })
    mkdir -p "$ETCD_DIR" && dpkg -x "$tmp"/etcd-server_*.deb "$ETCD_DIR"
    rm -rf "$tmp"
  fi
  grep -q 'dc1\.example\.test' /etc/hosts || echo "$DC_HOSTS_LINE" >> /etc/hosts
  grep -q 'dc1\.ours\.test' /etc/hosts || echo "$OUR_DC_HOSTS_LINE" >> /etc/hosts
}

install_samba() {
  if [ -x "$ROOT/usr/sbin/samba" ] && [ -e "$ROOT/.gmsa-ready" ]; then
    { [ -e "$ROOT$FAKETIME_LIB" ] && [ -x "$ROOT/usr/bin/kgetcred" ]; } || chroot_apt "$CHROOT_EXTRA"
    grep -q 'dc1\.example\.test' "$ROOT/etc/hosts" || echo "$DC_HOSTS_LINE" >> "$ROOT/etc/hosts"
    [ -x "$ROOT/usr/bin/ndrdump" ] || chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive sh -c \
      "apt-get install -y -qq --no-install-recommends -t bookworm-backports samba-testsuite || (apt-get update -qq && apt-get install -y -qq --no-install-recommends -t bookworm-backports samba-testsuite)"
    return
  fi
  rm -rf "$ROOT"; mkdir -p "$PEERS"
  debootstrap --variant=minbase --include=ca-certificates bookworm "$ROOT" http://deb.debian.org/debian
  printf '#!/bin/sh\nexit 101\n' > "$ROOT/usr/sbin/policy-rc.d"; chmod +x "$ROOT/usr/sbin/policy-rc.d"
  echo 'deb http://deb.debian.org/debian bookworm-backports main' > "$ROOT/etc/apt/sources.list.d/backports.list"
  cp /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
  mount_proc
  chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive sh -c \
    "apt-get update -qq && apt-get install -y -qq --no-install-recommends -t bookworm-backports $SAMBA_PKGS"
  chroot_apt "$CHROOT_EXTRA"
  chroot "$ROOT" samba --version
  echo "$DC_HOSTS_LINE" >> "$ROOT/etc/hosts"
  touch "$ROOT/.gmsa-ready"
}

samba_provision() {
  mount_proc
  rm -rf "$HD"; mkdir -p "$HD"
  chroot "$ROOT" samba-tool domain provision --use-rfc2307 --realm=EXAMPLE.TEST --domain=EXAMPLE \
    --server-role=dc --dns-backend=NONE --adminpass="$ADMINPASS" --host-name=dc1 --host-ip=127.0.0.1 \
    --targetdir=$D --function-level=2016 --option="ad dc functional level = 2016" \
    --option="interfaces = 127.0.0.1" --option="bind interfaces only = yes" > "$HD.provision.log" 2>&1
  mkdir -p "$HD/log" "$HD/run"
  sed -i -E \
    -e "s#^\s*log file = .*#\tlog file = $D/log/log.%m\n\tpid directory = $D/run\n\tncalrpc dir = $D/run/ncalrpc\n\twinbindd socket directory = $D/run/winbindd\n\tntp signd socket directory = $D/run/ntp_signd#" \
    -e "s#^\s*server services = .*#\tserver services = s3fs, rpc, ldap, cldap, kdc, drepl, winbindd, kcc#" \
    "$HD/etc/smb.conf"
  cat > "$HD/krb5.conf" <<KRB
[libdefaults]
	default_realm = EXAMPLE.TEST
	dns_lookup_realm = false
	dns_lookup_kdc = false
	rdns = false
	dns_canonicalize_hostname = false
[realms]
	EXAMPLE.TEST = {
		kdc = 127.0.0.1:88
	}
[domain_realm]
	.example.test = EXAMPLE.TEST
KRB
  # The DC's ldap/ SPNs, which samba_spnupdate (run by the dnsupdate service, not
  # started here) would register, as on a DC with DNS.
  local spn
  for spn in ldap/dc1.example.test ldap/DC1 ldap/dc1.example.test/example.test ldap/dc1.example.test/EXAMPLE; do
    chroot "$ROOT" samba-tool spn add "$spn" 'DC1$' -H $D/private/sam.ldb -s $D/etc/smb.conf >> "$HD.provision.log" 2>&1
  done
}

# samba-start [OFFSET]: with an offset such as +45d the DC's clock runs that far ahead.
samba_start() {
  mount_proc
  local pre=() p o
  if [ -n "${1:-}" ]; then pre=(env LD_PRELOAD=$FAKETIME_LIB FAKETIME="$1" FAKETIME_DONT_RESET=1); fi
  for p in 88 389 636 464; do # a port held by another program would answer for a DC that died
    o=$(port_owner "$p")
    if [ -n "$o" ]; then echo "samba-start: port $p is already taken by pid $o ($(cat /proc/"$o"/comm 2>/dev/null)); stop it first" >&2; exit 1; fi
  done
  rm -f "$HD/run/samba.pid"
  setsid chroot "$ROOT" "${pre[@]}" samba -s $D/etc/smb.conf --foreground --no-process-group \
    > "$HD/log/samba.stdout" 2>&1 < /dev/null &
  local started=""
  for _ in $(seq 1 120); do
    if ours 636 && ours 88 && [ -s "$HD/run/samba.pid" ] && kill -0 "$(cat "$HD/run/samba.pid")" 2>/dev/null; then started=1; break; fi
    if ! kill -0 $! 2>/dev/null; then break; fi # it died: no use waiting
    sleep 0.5
  done
  if [ -z "$started" ]; then
    echo "samba did not start (ports 88 and 636 are not served from the chroot); the end of its log:" >&2
    tail -n 20 "$HD/log/samba.stdout" >&2 || true
    exit 1
  fi
  echo "samba pid $(cat "$HD/run/samba.pid")"
}

# port_owner PORT: the pid listening on 127.0.0.1:PORT (TCP or UDP), if any.
port_owner() { ss -Hlntup "sport = :$1" 2>/dev/null | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -n 1; }

# ours PORT: the listener on PORT is a process of our chroot.
ours() { local o; o=$(port_owner "$1"); [ -n "$o" ] && [ "$(readlink "/proc/$o/root")" = "$(readlink -f "$ROOT")" ]; }

samba_stop() {
  [ -s "$HD/run/samba.pid" ] || return 0
  local pid; pid=$(cat "$HD/run/samba.pid")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do [ -e "/proc/$pid" ] || break; sleep 0.25; done
  rm -f "$HD/run/samba.pid"
}

case ${1:-} in
  install) install_host; install_samba ;;
  samba-provision) samba_provision ;;
  samba-start) samba_start "${2:-}" ;;
  samba-stop) samba_stop ;;
  samba-tool) shift; chroot "$ROOT" samba-tool "$@" -H $D/private/sam.ldb -s $D/etc/smb.conf ;;
  chroot) shift; mount_proc; chroot "$ROOT" "$@" ;;   # a tool of the chroot (samba-tool -H ldap://…) against any server
  dir) echo "$HD" ;;
  heimdal-sasl) echo "$HEIMDAL_SASL/usr/lib/x86_64-linux-gnu/sasl2" ;;
  etcd) echo "$ETCD_DIR/usr/bin/etcd" ;;
  *) echo "usage: $0 install|samba-provision|samba-start|samba-stop|samba-tool ARGS|chroot CMD|dir" >&2; exit 2 ;;
esac
