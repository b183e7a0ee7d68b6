#!/usr/bin/env bash
# Builds Prometheus Alertmanager (Apache-2.0) from the Go module proxy into a versioned cache outside the
# repository, for the notification tests. Idempotent: a finished build is reused (0 s).
# The module zip lacks the web UI's built assets (ui/app/dist, made by npm in Alertmanager's release build),
# which `go:embed` requires, so `go install …@v` cannot work: the module is downloaded, copied, given a
# one-page placeholder UI and built from there. The API (/api/v2) is unaffected.
# Prints the binary's path on stdout; progress goes to stderr.
set -euo pipefail
V=${ALERTMANAGER_VERSION:-0.35.0}
. "$(dirname "${BASH_SOURCE[0]}")/../go-build-env.sh" alertmanager
BIN=$D/alertmanager$V-$(go env GOVERSION)-$(go env GOARCH)
if [ -f "$BIN/.complete" ]; then echo "$BIN/alertmanager"; exit 0; fi
start=$(date +%s)
T=$BIN.tmp; rm -rf "$T"; mkdir -p "$T"
echo "[alertmanager-build] alertmanager v$V" >&2
M=$(cd "$T" && go mod download -json "github.com/prometheus/alertmanager@v$V" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
[ -d "$M" ] || { echo "[alertmanager-build] module download failed" >&2; exit 1; }
S=$T/src; cp -r "$M" "$S"; chmod -R u+w "$S"
for ui in elm mantine; do
  mkdir -p "$S/ui/app/dist/$ui"
  echo '<!doctype html><title>Alertmanager</title><p>UI not built (berth test build); use /api/v2.' >"$S/ui/app/dist/$ui/index.html"
done
(cd "$S" && go build -mod=mod -ldflags "-s -w" -o "$T/alertmanager" ./cmd/alertmanager) >&2
rm -rf "$S"
touch "$T/.complete"; rm -rf "$BIN"; mv "$T" "$BIN"
echo "[alertmanager-build] done in $(( $(date +%s) - start ))s: $BIN" >&2
echo "$BIN/alertmanager"
