#!/usr/bin/env bash
# The analyst page (/ui) in a real headless Chromium: Debian's `chromium` driven by
# playwright-core, against hyrank-serve on a fresh index of the fixtures. Installs chromium
# (apt) and playwright-core (npm, pinned in tests/browser/package-lock.json) when missing.
# Screenshots land in tests/browser/artifacts/ (or $HYRANK_ARTIFACTS).
set -euo pipefail
cd "$(dirname "$0")/.."
chromium_bin=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$chromium_bin" ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo -n"
  echo "installing Debian's chromium for the browser tests" >&2
  $sudo apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q chromium >/dev/null
  chromium_bin=$(command -v chromium)
fi
(cd tests/browser && npm ci --no-audit --no-fund --silent)
cargo build --release --bin hyrank --bin hyrank-serve
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$target_dir/release/hyrank" index --catalog fixtures/catalog.jsonl --interactions fixtures/interactions.csv \
  --index-dir "$work/index" >"$work/index.log" 2>&1 || { cat "$work/index.log" >&2; exit 1; }
HYRANK_SERVE_BIN="$target_dir/release/hyrank-serve" \
HYRANK_INDEX_DIR="$work/index" \
HYRANK_MODEL_DIR="$PWD/models/all-MiniLM-L6-v2" \
CHROMIUM="$chromium_bin" \
  node --test tests/browser/
