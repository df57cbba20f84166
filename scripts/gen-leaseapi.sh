#!/usr/bin/env bash
# Regenerates internal/agent/leaseapi from its .proto (protoc from Debian's
# protobuf-compiler; the Go plugins at the versions go.mod's modules pin).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
GOBIN=$bin go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
GOBIN=$bin go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
PATH=$bin:$PATH protoc -I internal/agent/leaseapi --go_out=. --go_opt=module=gmsa \
  --go-grpc_out=. --go-grpc_opt=module=gmsa internal/agent/leaseapi/credentialsfetcher.proto
