#!/usr/bin/env bash
# Builds the render tools (kustomize, helm, sops) from the Go module proxy into a
# versioned cache directory next to the test control plane's. Idempotent: a
# finished build is reused (0 s). Prints the binary directory on stdout;
# progress goes to stderr.
set -euo pipefail
KZ=${KUSTOMIZE_VERSION:-5.8.2}; H=${HELM_VERSION:-3.22.0}; S=${SOPS_VERSION:-3.13.3}
C=${BERTH_TESTENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/berth-testenv}; mkdir -p "$C"
export GOMODCACHE=$C/gomod GOCACHE=$C/gobuild GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-trimpath
BIN=$C/tools/kustomize$KZ-helm$H-sops$S-$(go env GOVERSION)-$(go env GOARCH)
mkdir -p "$C/tools"
# Its own lock: a tools build must not wait for (or block) a control-plane build.
exec 9>"$C/tools/.lock"; flock 9
if [ -f "$BIN/.complete" ]; then echo "$BIN"; exit 0; fi
start=$(date +%s)
log() { echo "[tools-build +$(( $(date +%s) - start ))s] $*" >&2; }
T=$BIN.tmp; rm -rf "$T"; mkdir -p "$T"

# `go install pkg@version` builds each tool from its own released go.mod (none of
# the three has replace directives), so no wrapper module is needed.
log "kustomize v$KZ"
GOBIN=$T go install -ldflags "-s -w -X sigs.k8s.io/kustomize/api/provenance.version=v$KZ" \
  "sigs.k8s.io/kustomize/kustomize/v5@v$KZ" >&2
log "helm v$H"
GOBIN=$T go install -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v$H" \
  "helm.sh/helm/v3/cmd/helm@v$H" >&2
log "sops v$S"
GOBIN=$T go install -ldflags "-s -w" "github.com/getsops/sops/v3/cmd/sops@v$S" >&2

"$T/kustomize" version >&2
"$T/helm" version --short >&2
"$T/sops" --version --disable-version-check >&2 || "$T/sops" --version >&2
touch "$T/.complete"; rm -rf "$BIN"; mv "$T" "$BIN"
log "done: $BIN"
echo "$BIN"
