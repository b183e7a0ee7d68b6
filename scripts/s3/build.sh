#!/usr/bin/env bash
# Builds versitygw (an Apache-2.0 S3 gateway over a plain directory) from the Go module proxy into a versioned
# cache outside the repository, for the ledger replica tests. Idempotent: a finished build is reused (0 s).
# Prints the binary's path on stdout; progress goes to stderr.
source "$(dirname "${BASH_SOURCE[0]}")/../testenv.sh"
testenv_begin s3 versitygw "${VERSITYGW_VERSION:-1.8.0}"
GOBIN=$T go install -ldflags "-s -w" "github.com/versity/versitygw/cmd/versitygw@v$V" >&2
testenv_finish
