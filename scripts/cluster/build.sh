#!/usr/bin/env bash
# Builds the real test control plane (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, kwok) from the Go module proxy into a versioned cache
# directory outside the repository. Idempotent: a finished build is reused (0 s).
# Prints the binary directory on stdout; progress goes to stderr.
set -euo pipefail
K=${K8S_VERSION:-1.36.3}; E=${ETCD_VERSION:-3.6.13}; W=${KWOK_VERSION:-0.8.0}
C=${BERTH_TESTENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/berth-testenv}; mkdir -p "$C"
export GOMODCACHE=$C/gomod GOCACHE=$C/gobuild GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-trimpath
BIN=$C/bin/k8s$K-etcd$E-kwok$W-$(go env GOVERSION)-$(go env GOARCH)
exec 9>"$C/.lock"; flock 9
if [ -f "$BIN/.complete" ]; then echo "$BIN"; exit 0; fi
start=$(date +%s)
log() { echo "[cluster-build +$(( $(date +%s) - start ))s] $*" >&2; }
T=$BIN.tmp; rm -rf "$T"; mkdir -p "$T"

# kube: k8s.io/kubernetes replaces its staging modules with ./staging paths, so
# `go install …@v1.x` is refused; a wrapper module maps each to v0.x of its own.
log "kubernetes v$K: resolving modules"
S=$C/src/k8s$K; rm -rf "$S"; mkdir -p "$S"; cd "$S"; go mod init local/k8sbin >/dev/null 2>&1
GOMOD=$(go mod download -json "k8s.io/kubernetes@v$K" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
go mod edit -go=1.26.0 -require="k8s.io/kubernetes@v$K"
for m in $(awk '$1 ~ /^k8s\.io\// && $2=="v0.0.0" {print $1}' "$GOMOD"); do
  go mod edit -replace="$m=$m@v0.${K#1.}"; done
CMDS="k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl"
# Explicit @v: a bare `go get pkg` means @upgrade and would jump to a newer minor.
go get -tool $(for c in $CMDS; do echo "$c@v$K"; done) >&2
LD="-s -w"; MIN=$(echo "$K" | cut -d. -f2)
# Version ldflags: without them --version prints v0.0.0-master, which kwokctl
# and some version checks treat as unknown.
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  LD+=" -X $p.gitVersion=v$K -X $p.gitMajor=1 -X $p.gitMinor=$MIN -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"; done
log "building kube binaries"
go build -ldflags "$LD" -o "$T/" $CMDS >&2

# etcd: the server module requires real versions, so a wrapper needs no replaces.
log "etcd v$E"
S=$C/src/etcd$E; rm -rf "$S"; mkdir -p "$S"; cd "$S"; go mod init local/etcdbin >/dev/null 2>&1
go get -tool "go.etcd.io/etcd/server/v3@v$E" >&2
go build -ldflags "-s -w" -o "$T/etcd" go.etcd.io/etcd/server/v3 >&2

# kwok: fake nodes and pods; standalone kwok needs the stages kwokctl uses by default.
log "kwok v$W"
GOBIN=$T go install -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@v$W" >&2
KS=$GOMODCACHE/sigs.k8s.io/kwok@v$W/kustomize/stage
for f in node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
  cat "$KS/$f.yaml"; echo "---"; done > "$T/kwok-stages.yaml"
"$T/kube-apiserver" --version | grep -q "v$K"
"$T/etcd" --version >&2
touch "$T/.complete"; rm -rf "$BIN"; mv "$T" "$BIN"
log "done: $BIN"
echo "$BIN"
