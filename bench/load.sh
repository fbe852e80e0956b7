#!/usr/bin/env bash
# Load test of hybrid search over HTTP with wrk: concurrency 1, 8 and 32, then concurrency 8
# while two new generations are swapped in. Both caches are off, so every request encodes its
# query and runs both retrievers (the 300 SciFact test queries in turn).
#
#   bench/load.sh INDEX_DIR OUT_DIR [SECONDS] [EXTRA hyrank-serve FLAGS...]
#
# e.g. `bench/load.sh data/scifact out/load-unbatched 30 --query-batch 0` for the server without
# its model worker.
# INDEX_DIR must hold a published generation of SciFact (hyrank index --catalog
# ../shared/data/scifact/corpus.jsonl --index-dir INDEX_DIR). The swap phase publishes copies of
# the serving generation as new generations (same data, new names, the indexer's rename
# protocol) and asks /admin/reload for each; it removes them afterwards and restores CURRENT.
set -euo pipefail
index=$1 out=$2 seconds=${3:-30}
shift $(( $# < 3 ? $# : 3 ))
data=${HYRANK_EVAL_DATA:-../shared/data/scifact}
cd "$(dirname "$0")/.."
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
mkdir -p "$out"
python3 bench/make_wrk_script.py "$data" test '{"k": 10}' > "$out/search.lua"
admin_key=load-test-admin-key-$$
port=18181
HYRANK_ADMIN_KEY=$admin_key "$target_dir/release/hyrank-serve" --index-dir "$index" --bind 127.0.0.1:$port \
  --response-cache-entries 0 --query-cache-entries 0 --watch-secs 0 --device cpu "$@" > "$out/server.log" 2>&1 &
server=$!
original=$(cat "$index/CURRENT")
cleanup() {
  # Wait for it to exit, so the next run's server finds the index's live-log lock free.
  kill $server 2>/dev/null && wait $server 2>/dev/null || true
  printf '%s' "$original" > "$index/CURRENT.tmp" && mv "$index/CURRENT.tmp" "$index/CURRENT"
  rm -rf "$index/generations/load-swap-1" "$index/generations/load-swap-2"
}
trap cleanup EXIT
until curl -sf "http://127.0.0.1:$port/readyz" > /dev/null; do
  if ! kill -0 $server 2>/dev/null; then
    echo "hyrank-serve exited before it was ready; $out/server.log ends:" >&2
    tail -3 "$out/server.log" >&2
    exit 1
  fi
  sleep 0.5
done

for c in 1 8 32; do
  threads=$(( c < 2 ? c : 2 ))
  echo "== concurrency $c" | tee "$out/c$c.txt"
  wrk -t$threads -c$c -d${seconds}s --latency -s "$out/search.lua" "http://127.0.0.1:$port" | tee -a "$out/c$c.txt"
done

publish() { # copy the original generation as $1 and point CURRENT at it
  local name=$1 dir="$index/generations/$1"
  cp -r "$index/generations/$original" "$dir"
  python3 - "$dir/manifest.json" "$name" <<'PY'
import json, sys
path, name = sys.argv[1], sys.argv[2]
manifest = json.load(open(path)); manifest["generation"] = name
json.dump(manifest, open(path, "w"), indent=2)
PY
  printf '%s' "$name" > "$index/CURRENT.tmp" && mv "$index/CURRENT.tmp" "$index/CURRENT"
}
swap_seconds=$(( seconds + 10 ))
echo "== concurrency 8 with two generation swaps" | tee "$out/swap.txt"
wrk -t2 -c8 -d${swap_seconds}s --latency -s "$out/search.lua" "http://127.0.0.1:$port" > "$out/swap-wrk.txt" &
wrk_pid=$!
for n in 1 2; do
  sleep $(( swap_seconds / 3 ))
  publish load-swap-$n
  start=$(date +%s.%N)
  curl -s -X POST -H "Authorization: Bearer $admin_key" "http://127.0.0.1:$port/admin/reload" | tee -a "$out/swap.txt"
  echo " (reload took $(python3 -c "import time; print(round(time.time() - $start, 3))") s)" | tee -a "$out/swap.txt"
done
wait $wrk_pid
cat "$out/swap-wrk.txt" | tee -a "$out/swap.txt"
curl -s "http://127.0.0.1:$port/metrics" > "$out/metrics.txt"
grep -E '^hyrank_(generation_reloads_total|serving_generation|engine_rejected_total)' "$out/metrics.txt" | tee -a "$out/swap.txt"
