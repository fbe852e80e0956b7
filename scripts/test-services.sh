#!/usr/bin/env bash
# Installs the services the integration tests start for themselves: moto's S3 server (PyPI
# `moto[server]`), which the object-storage tests (tests/integration/ship.rs) run on a free
# port of 127.0.0.1, one per test. Idempotent: does nothing when `moto_server` is on PATH.
set -euo pipefail
if command -v moto_server >/dev/null 2>&1; then
  exit 0
fi
echo "test-services: installing moto[server]==5.2.5 from PyPI" >&2
python3 -m pip install --quiet --disable-pip-version-check "moto[server]==5.2.5"
# pyenv puts new console scripts behind a shim only after a rehash.
if command -v pyenv >/dev/null 2>&1; then
  pyenv rehash
fi
command -v moto_server >/dev/null 2>&1 || {
  echo "test-services: moto_server is not on PATH after installing moto[server]" >&2
  exit 1
}
