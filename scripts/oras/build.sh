#!/usr/bin/env bash
# Builds the ORAS CLI (Apache-2.0; the OCI artifact client Flux's docs use) from the Go module proxy into a
# versioned cache outside the repository, for the OCI-artifact source tests, which push artifacts with it.
# Idempotent: a finished build is reused (0 s). Prints the binary's path on stdout; progress goes to stderr.
source "$(dirname "${BASH_SOURCE[0]}")/../testenv.sh"
testenv_begin oras oras "${ORAS_VERSION:-1.3.6}"
GOBIN=$T go install -ldflags "-s -w" "oras.land/oras/cmd/oras@v$V" >&2
testenv_finish
