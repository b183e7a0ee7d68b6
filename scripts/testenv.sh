# Sourced by scripts/*/build.sh: the shared part of building a test server from the Go module proxy into a
# versioned cache outside the repository (~/.cache/berth-testenv/<dir>/), idempotent and locked against a
# concurrent build of the same thing.
#   testenv_begin DIR NAME VERSION   sets C (cache), BIN (final dir), T (staging dir), exits 0 printing
#                                    $BIN/NAME when a finished build is there
#   testenv_finish                   marks T complete, moves it to BIN and prints $BIN/NAME
# CGO_ENABLED is 0 unless the caller exports it before sourcing.
set -euo pipefail
testenv_begin() {
  TE_DIR=$1 TE_NAME=$2 V=$3
  C=${BERTH_TESTENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/berth-testenv}; mkdir -p "$C/$TE_DIR"
  export GOMODCACHE=$C/gomod GOCACHE=$C/gobuild GOTOOLCHAIN=local CGO_ENABLED=${CGO_ENABLED:-0} GOFLAGS=-trimpath
  BIN=$C/$TE_DIR/$TE_NAME$V-$(go env GOVERSION)-$(go env GOARCH)
  exec 9>"$C/$TE_DIR/.lock"; flock 9
  if [ -f "$BIN/.complete" ]; then echo "$BIN/$TE_NAME"; exit 0; fi
  TE_START=$(date +%s)
  T=$BIN.tmp; rm -rf "$T"; mkdir -p "$T"
  echo "[$TE_DIR-build] $TE_NAME v$V" >&2
}
# Downloads module $1@v$V and prints its read-only directory in the module cache.
testenv_module_dir() {
  local m
  m=$(cd "$T" && go mod download -json "$1@v$V" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [ -d "$m" ] || { echo "[$TE_DIR-build] module download failed: $1@v$V" >&2; exit 1; }
  echo "$m"
}
testenv_finish() {
  touch "$T/.complete"; rm -rf "$BIN"; mv "$T" "$BIN"
  echo "[$TE_DIR-build] done in $(( $(date +%s) - TE_START ))s: $BIN" >&2
  echo "$BIN/$TE_NAME"
}
