#!/usr/bin/env bash
# Builds the ORAS CLI (Apache-2.0; the OCI artifact client Flux's docs use) from the Go module proxy into a
# versioned cache outside the repository, for the OCI-artifact source tests, which push artifacts with it.
# Idempotent: a finished build is reused (0 s). Prints the binary's path on stdout; progress goes to stderr.
set -euo pipefail
V=${ORAS_VERSION:-1.3.6}
. "$(dirname "${BASH_SOURCE[0]}")/../go-build-env.sh" oras
BIN=$D/oras$V-$(go env GOVERSION)-$(go env GOARCH)
if [ -f "$BIN/.complete" ]; then echo "$BIN/oras"; exit 0; fi
start=$(date +%s)
T=$BIN.tmp; rm -rf "$T"; mkdir -p "$T"
echo "[oras-build] oras v$V" >&2
GOBIN=$T go install -ldflags "-s -w" "oras.land/oras/cmd/oras@v$V" >&2
touch "$T/.complete"; rm -rf "$BIN"; mv "$T" "$BIN"
echo "[oras-build] done in $(( $(date +%s) - start ))s: $BIN" >&2
echo "$BIN/oras"
