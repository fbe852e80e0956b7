#!/usr/bin/env bash
# Search and recommendations over HTTP on a large catalog, with and without field filters: the
# figures of docs/EVAL.md's "A per-field index of values", "The HNSW walk, ours" and "The CF
# scan at 8 bits". Caches off, wrk at concurrency 1; run it for the binary before a change and
# after, alternating, in one session.
#
#   bench/catalog_load.sh SERVE_BINARY INDEX_DIR OUT_DIR [TEST_CSV] [SECONDS]
#   bench/catalog_load.sh --compare OUT_A/answers.json OUT_B/answers.json
#
# Search: the 300 SciFact test queries as text (HYRANK_EVAL_DATA, default ../shared/data/scifact),
# `{"k": 10}` alone and with `filters: {FIELD: VALUE}` for each of FILTERS (default FIELD genres,
# FILTERS "Western Documentary Sci-Fi Drama", MovieLens' genres). With TEST_CSV (the test.csv
# `hyrank eval recommend` writes beside the index it builds): `{"k": 10}` recommendations for
# each of its users, and the answers for its first 500 users (modes hybrid and cf, k 20) written
# to OUT_DIR/answers.json; `--compare` counts the users whose answers (ids and scores to 6
# decimals) two runs share.
set -euo pipefail
if [ "${1:-}" = --compare ]; then
  exec python3 - "$2" "$3" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
for mode in ("hybrid", "cf"):
    keys = [k for k in a if k.startswith(mode + " ")]
    print(f"{mode}: {sum(a[k] == b.get(k) for k in keys)} of {len(keys)} answers identical")
PY
fi
serve=$1 index=$2 out=$3 test_csv=${4:-} seconds=${5:-10}
field=${FIELD:-genres} filters=${FILTERS:-Western Documentary Sci-Fi Drama}
data=${HYRANK_EVAL_DATA:-../shared/data/scifact}
cd "$(dirname "$0")/.."
mkdir -p "$out"
port=18182
"$serve" --index-dir "$index" --bind 127.0.0.1:$port --response-cache-entries 0 --query-cache-entries 0 \
  --watch-secs 0 --device cpu > "$out/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null && wait $server 2>/dev/null || true' EXIT
until curl -sf "http://127.0.0.1:$port/readyz" > /dev/null; do
  kill -0 $server 2>/dev/null || { echo "the server exited; $out/server.log ends:" >&2; tail -3 "$out/server.log" >&2; exit 1; }
  sleep 0.5
done
echo "resident memory after start-up: $(grep VmRSS /proc/$server/status | awk '{print $2, $3}')" | tee "$out/summary.txt"
run() { # label, lua script
  wrk -t1 -c1 -d${seconds}s --latency -s "$2" "http://127.0.0.1:$port" > "$out/wrk-$1.txt"
  printf '%s p50 %s p99 %s req/s %s non-2xx %s\n' "$1" "$(awk '$1 == "50%" {print $2}' "$out/wrk-$1.txt")" \
    "$(awk '$1 == "99%" {print $2}' "$out/wrk-$1.txt")" "$(awk '/Requests\/sec/ {print $2}' "$out/wrk-$1.txt")" \
    "$(awk '/Non-2xx/ {print $NF}' "$out/wrk-$1.txt" | grep . || echo 0)" | tee -a "$out/summary.txt"
}
python3 bench/make_wrk_script.py "$data" test '{"k": 10}' > "$out/search.lua"
run search "$out/search.lua"
for value in $filters; do
  template=$(python3 -c 'import json,sys; print(json.dumps({"k": 10, "filters": {sys.argv[1]: sys.argv[2]}}))' "$field" "$value")
  python3 bench/make_wrk_script.py "$data" test "$template" > "$out/search-$value.lua"
  run "search-$value" "$out/search-$value.lua"
done
if [ -n "$test_csv" ]; then
  python3 bench/make_wrk_script.py --recommend "$test_csv" '{"k": 10}' > "$out/recommend.lua"
  run recommend "$out/recommend.lua"
  python3 - "$test_csv" "http://127.0.0.1:$port" "$out/answers.json" <<'PY'
import csv, json, sys, urllib.request
path, base, out = sys.argv[1:4]
with open(path, newline="", encoding="utf-8") as f:
    rows = csv.reader(f)
    next(rows)
    users = list(dict.fromkeys(row[0] for row in rows))[:500]
answers = {}
for mode in ("hybrid", "cf"):
    for user in users:
        body = json.dumps({"user": user, "k": 20, "mode": mode}).encode()
        request = urllib.request.Request(base + "/v1/recommend", data=body, headers={"content-type": "application/json"})
        hits = json.load(urllib.request.urlopen(request))["hits"]
        answers[f"{mode} {user}"] = [(h["id"], round(h["score"], 6)) for h in hits]
json.dump(answers, open(out, "w"))
PY
fi
