# Sourced by the scripts/*/build.sh that build a test tool from the Go module proxy: the shared cache
# (outside the repository), the Go settings, and one lock per tool. Usage:
#   . "$(dirname "${BASH_SOURCE[0]}")/../go-build-env.sh" <tool-dir>
# Sets C (the cache), D (the tool's cache dir, created) and takes the tool's lock on fd 9.
C=${BERTH_TESTENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/berth-testenv}
D=$C/$1; mkdir -p "$D"
export GOMODCACHE=$C/gomod GOCACHE=$C/gobuild GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-trimpath
exec 9>"$D/.lock"; flock 9
