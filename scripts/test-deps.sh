#!/usr/bin/env bash
# System packages the full test suite needs beyond Node, Go and git: Debian's chromium (the status page is
# tested in headless Chromium), openssh-server (SSH sources are tested against a real sshd), curl, openssl, docker-registry and
# apache2-utils (charts from an OCI registry with htpasswd auth).
# Runs before `npm test` (npm's pretest); installs what is missing with apt-get when run as root.
set -euo pipefail
missing=()
command -v chromium >/dev/null || missing+=(chromium)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v curl >/dev/null || missing+=(curl)
command -v openssl >/dev/null || missing+=(openssl)
command -v flock >/dev/null || missing+=(util-linux)
# An OCI registry (distribution) with htpasswd auth, for charts pulled from oci://.
command -v docker-registry >/dev/null || missing+=(docker-registry)
command -v htpasswd >/dev/null || missing+=(apache2-utils)
# A C compiler and libc headers: Gitea (the forge tests) is built with CGO for SQLite.
command -v gcc >/dev/null || missing+=(gcc)
[ -e /usr/include/stdio.h ] || missing+=(libc6-dev)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing test dependencies: ${missing[*]}" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "the test suite needs these Debian packages: ${missing[*]} (apt-get install ${missing[*]})" >&2
  exit 1
fi
