#!/usr/bin/env bash
# Compiles the berth binary with `bun build --compile` into dist/.
#   scripts/build.sh [TARGET…]   e.g. bun-linux-x64 bun-linux-arm64 (default: this machine)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VERSION=$(node -p 'require("./package.json").version')
COMMIT=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
BUN=./node_modules/.bin/bun
mkdir -p dist
build() {
  local target=$1 out=$2
  "$BUN" build agent/main.ts --compile ${target:+--target="$target"} --outfile "$out" \
    --define "BERTH_VERSION=\"$VERSION\"" --define "BERTH_COMMIT=\"$COMMIT\"" >&2
  echo "$out"
}
if [ $# -eq 0 ]; then build "" dist/berth; else for t in "$@"; do build "$t" "dist/berth-${t#bun-}"; done; fi
