#!/usr/bin/env bash
# Builds Gitea (MIT) from the Go module proxy into a versioned cache outside the repository, for the forge
# (commit status, pull-request comment) tests. Idempotent: a finished build is reused (0 s).
# v1.26.0, not the newer v1.27.x: from 1.27 Gitea's module is named gitea.dev and needs gitea.dev/* modules
# the Go module proxy does not serve (403), so it cannot be built from the proxy alone.
# Gitea's go.mod has replace directives, so `go install …@v` is refused: the module is downloaded, copied and
# built from there. SQLite needs CGO. Built without the `bindata` tag, Gitea reads its templates and options
# (locales, licences) from disk, so those are kept beside the binary (test/support/gitea.ts points
# STATIC_ROOT_PATH there); the frontend bundle (made by npm in Gitea's release build) is absent, which leaves
# the API and the plain HTML login working.
# Prints the binary's path on stdout; progress goes to stderr.
export CGO_ENABLED=1
source "$(dirname "${BASH_SOURCE[0]}")/../testenv.sh"
testenv_begin gitea gitea "${GITEA_VERSION:-1.26.0}"
M=$(testenv_module_dir code.gitea.io/gitea)
S=$T/src; cp -r "$M" "$S"; chmod -R u+w "$S"
(cd "$S" && go build -mod=mod -tags "sqlite sqlite_unlock_notify" \
  -ldflags "-s -w -X main.Version=$V -X main.Tags=sqlite" -o "$T/gitea" .) >&2
mv "$S/templates" "$S/options" "$T/"; mkdir -p "$T/public"; cp -r "$S/public/." "$T/public/" 2>/dev/null || true
rm -rf "$S"
testenv_finish
