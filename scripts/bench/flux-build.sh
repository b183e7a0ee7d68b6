#!/usr/bin/env bash
# Builds Flux source-controller and kustomize-controller (Flux v2.9.4 ships both
# at v1.9.4) from the Go module proxy into a versioned cache directory outside
# the repository, for scripts/bench/vs-flux.ts. Idempotent: a finished build is
# reused (0 s); cold it takes ~10 min on 2 cores. Prints the directory holding
# bin/ and crds/ on stdout; progress goes to stderr.
#
# `go install …@v` is refused (the modules carry replace directives for their
# own api/ submodule), so each module is copied out of the module cache, the
# replace dropped, and built in place. source-controller v1.9.4 needs
# github.com/fluxcd/pkg/artifact@v0.18.2, whose zip the proxy has refused
# (403) on some days; then v1.9.1 is built instead and the output names it.
set -euo pipefail
KC=${FLUX_KC_VERSION:-v1.9.4}; SC=${FLUX_SC_VERSION:-v1.9.4}; SC_FALLBACK=${FLUX_SC_FALLBACK:-v1.9.1}
C=${BERTH_TESTENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/berth-testenv}; mkdir -p "$C"
export GOMODCACHE=$C/gomod GOCACHE=$C/gobuild GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-trimpath
OUT=$C/flux/kc$KC-sc$SC-$(go env GOVERSION)-$(go env GOARCH)
exec 9>"$C/.flux-lock"; flock 9
if [ -f "$OUT/.complete" ]; then echo "$OUT"; exit 0; fi
start=$(date +%s)
log() { echo "[flux-build +$(( $(date +%s) - start ))s] $*" >&2; }
T=$OUT.tmp; rm -rf "$T"; mkdir -p "$T/bin" "$T/crds" "$T/src"
build() { # $1=name $2=version → $T/bin/$1, CRDs into $T/crds
  local d
  d=$(go mod download -json "github.com/fluxcd/$1@$2" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  [ -n "$d" ] || return 1
  rm -rf "$T/src/$1" && cp -r "$d" "$T/src/$1" && chmod -R u+w "$T/src/$1"
  (cd "$T/src/$1" && go mod edit -dropreplace="github.com/fluxcd/$1/api" &&
    go build -mod=mod -ldflags "-s -w" -o "$T/bin/$1" .) >&2 || return 1
  cp "$T/src/$1"/config/crd/bases/*.yaml "$T/crds/"
  echo "$2" > "$T/bin/$1.version"
}
log "kustomize-controller $KC"
build kustomize-controller "$KC"
log "source-controller $SC"
if ! build source-controller "$SC"; then
  log "source-controller $SC did not build; building $SC_FALLBACK"
  build source-controller "$SC_FALLBACK"
fi
rm -rf "$T/src"
touch "$T/.complete"; rm -rf "$OUT"; mv "$T" "$OUT"
log "done: $OUT"
echo "$OUT"
