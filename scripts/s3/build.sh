#!/usr/bin/env bash
# Builds versitygw (an Apache-2.0 S3 gateway over a plain directory) from the Go module proxy into a versioned
# cache outside the repository, for the ledger replica tests. Idempotent: a finished build is reused (0 s).
# Prints the binary's path on stdout; progress goes to stderr.
set -euo pipefail
V=${VERSITYGW_VERSION:-1.8.0}
. "$(dirname "${BASH_SOURCE[0]}")/../go-build-env.sh" s3
BIN=$D/versitygw$V-$(go env GOVERSION)-$(go env GOARCH)
if [ -f "$BIN/.complete" ]; then echo "$BIN/versitygw"; exit 0; fi
start=$(date +%s)
T=$BIN.tmp; rm -rf "$T"; mkdir -p "$T"
echo "[s3-build] versitygw v$V" >&2
GOBIN=$T go install -ldflags "-s -w" "github.com/versity/versitygw/cmd/versitygw@v$V" >&2
touch "$T/.complete"; rm -rf "$BIN"; mv "$T" "$BIN"
echo "[s3-build] done in $(( $(date +%s) - start ))s: $BIN" >&2
echo "$BIN/versitygw"
