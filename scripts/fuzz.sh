#!/usr/bin/env bash
# Fuzzing at volume (issue 18), not part of every CI run: every reader (catalog JSON Lines and
# CSV, plain and gzip; interactions; the server's settings TOML) and every request body against
# generated inputs (tests/integration/fuzz.rs). Nothing may panic, and no request may get a 5xx.
# Prints the inputs tried and the time each family took; docs/SERVICE.md ("Reliability") keeps
# the last run's figures.
#
#   HYRANK_FUZZ_CASES=20000 HYRANK_FUZZ_REQUESTS=2000 scripts/fuzz.sh
#   (inputs per reader family, default 20000; request bodies, each sent to six routes, default 2000)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
export HYRANK_FUZZ_CASES="${HYRANK_FUZZ_CASES:-20000}" HYRANK_FUZZ_REQUESTS="${HYRANK_FUZZ_REQUESTS:-2000}"
cargo test --release -q -p hyrank-tests --test integration -- --ignored --nocapture --test-threads=1 \
  fuzz::fuzz_readers_at_volume fuzz::fuzz_requests_at_volume 2>&1 | grep -E "FUZZ|panicked|test result|FAILED"
