#!/bin/bash
# The offline KDS engine end to end: a new root key, the password a DC would hand a
# gMSA today (with the previous one), the blob it would serve, and a keytab from it.
set -euo pipefail
cd "$(dirname "$0")/.."
G=bin/gmsa
D=$(mktemp -d /tmp/gmsa-demo.XXXXXX)
echo "# working in $D"
set -x
$G kds generate --out "$D/root-key.json" --effective-time 2026-01-01T00:00:00Z
$G kds compute --root-key-file "$D/root-key.json" --sid S-1-5-21-1004336348-1177238915-682003330-1105 \
  --created 2026-02-01T09:30:00Z --interval-days 30 --account 'svc-web$' --domain example.test
$G kds compute --root-key-file "$D/root-key.json" --sid S-1-5-21-1004336348-1177238915-682003330-1105 \
  --created 2026-02-01T09:30:00Z --interval-days 30 -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["managed_password_blob"])' > "$D/blob.b64"
$G blob decode --file "$D/blob.b64" --account 'svc-web$' --domain example.test
$G keytab create --blob-file "$D/blob.b64" --account 'svc-web$' --domain example.test --kvno 3 \
  --spn http/web.example.test --out "$D/svc-web.keytab"
