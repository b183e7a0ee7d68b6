#!/usr/bin/env bash
# Builds the kstatus oracle (scripts/kstatus/main.go: sigs.k8s.io/cli-utils v0.37.2's status.Compute) from the
# Go module proxy into a cache outside the repository, keyed by the source's hash. Idempotent: 0 s when built.
# Prints the binary's path on stdout; progress goes to stderr.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
C=${BERTH_TESTENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/berth-testenv}; mkdir -p "$C/kstatus"
export GOMODCACHE=$C/gomod GOCACHE=$C/gobuild GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-trimpath
KEY=$(cat "$HERE/go.mod" "$HERE/go.sum" "$HERE/main.go" | sha256sum | cut -c1-16)
BIN=$C/kstatus/kstatus-oracle-$KEY-$(go env GOVERSION)-$(go env GOARCH)
exec 9>"$C/kstatus/.lock"; flock 9
if [ -x "$BIN" ]; then echo "$BIN"; exit 0; fi
start=$(date +%s)
echo "[kstatus-build] kstatus oracle (cli-utils v0.37.2)" >&2
(cd "$HERE" && go build -mod=readonly -ldflags "-s -w" -o "$BIN.tmp" .) >&2
mv "$BIN.tmp" "$BIN"
echo "[kstatus-build] done in $(( $(date +%s) - start ))s: $BIN" >&2
echo "$BIN"
