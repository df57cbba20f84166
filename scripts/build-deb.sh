#!/bin/bash
# Builds the Debian package: gmsa in /usr/bin, the gmsa-server.service unit, the default
# /etc/gmsa/gmsa.yaml (a conffile), and a gmsa system user created on install.
#   scripts/build-deb.sh [VERSION] [OUTDIR]   default version 0.0.0~git<commit>, OUTDIR dist/
# GMSA_BIN=path packages a binary already built instead of building one.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
version=${1:-0.0.0~git$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
out=${2:-dist}
arch=$(dpkg --print-architecture)
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
chmod 0755 "$root"

install -d "$root/DEBIAN" "$root/usr/bin" "$root/lib/systemd/system" "$root/etc/gmsa" "$root/usr/share/doc/gmsa"
if [ -n "${GMSA_BIN:-}" ]; then
	install -m 0755 "$GMSA_BIN" "$root/usr/bin/gmsa"
else
	CGO_ENABLED=0 GOARCH=$arch go build -trimpath -ldflags "-s -w" -o "$root/usr/bin/gmsa" ./cmd/gmsa
fi
install -m 0644 deploy/systemd/gmsa-server.service "$root/lib/systemd/system/"
install -m 0640 deploy/gmsa.yaml "$root/etc/gmsa/gmsa.yaml"
install -m 0644 docs/operations.md docs/cli.md docs/security.md "$root/usr/share/doc/gmsa/"
install -m 0644 deploy/grafana/gmsa-dashboard.json "$root/usr/share/doc/gmsa/"

cat > "$root/DEBIAN/control" <<CONTROL
Package: gmsa
Version: $version
Architecture: $arch
Maintainer: gmsa developers <gmsa@example.org>
Section: net
Priority: optional
Depends: adduser
Installed-Size: $(du -sk "$root" | cut -f1)
Homepage: https://example.org/gmsa
Description: group Managed Service Accounts: a DC-lite and the host side
 gmsa computes gMSA passwords bit for bit as Windows does (KDS root keys), serves a
 directory with LDAP, LDAPS and a Kerberos KDC (gmsa server, run by
 gmsa-server.service), and reads gMSA passwords from AD-compatible DCs.
CONTROL
echo /etc/gmsa/gmsa.yaml > "$root/DEBIAN/conffiles"

cat > "$root/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
	if ! getent passwd gmsa >/dev/null; then
		adduser --system --group --home /var/lib/gmsa --no-create-home --gecos "gmsa server" gmsa
	fi
	install -d -o gmsa -g gmsa -m 0700 /var/lib/gmsa
	install -d -o gmsa -g gmsa -m 0750 /var/log/gmsa
	chgrp gmsa /etc/gmsa/gmsa.yaml
	if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null || true; fi
	echo "gmsa: provision the domain as the gmsa user, then 'systemctl enable --now gmsa-server' (see /usr/share/doc/gmsa/operations.md)"
fi
POSTINST
cat > "$root/DEBIAN/prerm" <<'PRERM'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then systemctl stop gmsa-server >/dev/null 2>&1 || true; fi
PRERM
cat > "$root/DEBIAN/postrm" <<'POSTRM'
#!/bin/sh
set -e
# The store in /var/lib/gmsa holds a domain (its KDS root keys and accounts): purging the
# package leaves it, and the audit trail, for the operator to keep or remove.
if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null || true; fi
POSTRM
chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm" "$root/DEBIAN/postrm"

mkdir -p "$out"
deb="$out/gmsa_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
