#!/usr/bin/env bash
# The README's second command, and what CI runs: set up the model, check formatting and the
# crate boundaries, then run every test (unit, property, embedding parity, end to end, and the
# analyst page in headless Chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# Services the tests start themselves (an S3 API server for the object-storage tests).
scripts/test-services.sh
cargo fmt --all -- --check
# The engine must never learn it is behind HTTP.
if cargo tree -p hyrank-engine -e normal --prefix none | grep -qE '^actix'; then
  echo "hyrank-engine depends on actix; keep HTTP in the api crate" >&2
  exit 1
fi
# The MovieLens converter on the older layouts' awkward rows (a second, no build needed).
python3 scripts/movielens_csv_test.py
# One profile for building and testing: the release build the quickstart makes is reused.
cargo test --release --workspace
# The binaries' S3 flags end to end (publish, pull, a replica server) against moto.
scripts/s3-cli-test.sh
# The analyst page in a real browser.
scripts/browser-test.sh
