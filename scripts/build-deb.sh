#!/bin/bash
# Builds the Debian package with nfpm (deploy/nfpm.yaml): gmsa in /usr/bin, the
# gmsa-server and gmsa-agent units, the default /etc/gmsa/gmsa.yaml and agent.yaml
# (conffiles), and a gmsa system user created on install.
#   scripts/build-deb.sh [VERSION] [OUTDIR]   default version 0.0.0~git<commit>, OUTDIR dist/
# GMSA_BIN=path packages a binary already built instead of building one.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
NFPM=github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.48.0
VERSION=${1:-0.0.0~git$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
out=${2:-dist}
ARCH=$(dpkg --print-architecture)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -z "${GMSA_BIN:-}" ]; then
	CGO_ENABLED=0 GOARCH=$ARCH go build -trimpath -ldflags "-s -w" -o "$tmp/gmsa" ./cmd/gmsa
	GMSA_BIN=$tmp/gmsa
fi
mkdir -p "$out"
deb="$out/gmsa_${VERSION}_${ARCH}.deb"
sed -e "s#\${GMSA_BIN}#$GMSA_BIN#; s#\${VERSION}#$VERSION#; s#\${ARCH}#$ARCH#" deploy/nfpm.yaml > "$tmp/nfpm.yaml"
go run "$NFPM" package --config "$tmp/nfpm.yaml" --packager deb --target "$deb" >&2
echo "$deb"
