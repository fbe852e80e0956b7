#!/usr/bin/env bash
# The README's first command: set up the model, build, index the bundled fixture catalog and
# serve it on http://127.0.0.1:8080 (Ctrl-C stops the server).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --bin hyrank --bin hyrank-serve
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
bin="$target_dir/release"
"$bin/hyrank" index \
  --catalog fixtures/catalog.jsonl \
  --interactions fixtures/interactions.csv \
  --index-dir data/index
exec "$bin/hyrank-serve" --index-dir data/index --bind "${HYRANK_BIND:-127.0.0.1:8080}"
