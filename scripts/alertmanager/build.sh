#!/usr/bin/env bash
# Builds Prometheus Alertmanager (Apache-2.0) from the Go module proxy into a versioned cache outside the
# repository, for the notification tests. Idempotent: a finished build is reused (0 s).
# The module zip lacks the web UI's built assets (ui/app/dist, made by npm in Alertmanager's release build),
# which `go:embed` requires, so `go install …@v` cannot work: the module is downloaded, copied, given a
# one-page placeholder UI and built from there. The API (/api/v2) is unaffected.
# Prints the binary's path on stdout; progress goes to stderr.
source "$(dirname "${BASH_SOURCE[0]}")/../testenv.sh"
testenv_begin alertmanager alertmanager "${ALERTMANAGER_VERSION:-0.35.0}"
M=$(testenv_module_dir github.com/prometheus/alertmanager)
S=$T/src; cp -r "$M" "$S"; chmod -R u+w "$S"
for ui in elm mantine; do
  mkdir -p "$S/ui/app/dist/$ui"
  echo '<!doctype html><title>Alertmanager</title><p>UI not built (berth test build); use /api/v2.' >"$S/ui/app/dist/$ui/index.html"
done
(cd "$S" && go build -mod=mod -ldflags "-s -w" -o "$T/alertmanager" ./cmd/alertmanager) >&2
rm -rf "$S"
testenv_finish
