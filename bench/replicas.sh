#!/usr/bin/env bash
# Two replicas of one published generation under wrk load, then a new generation published:
# seconds from the compare-and-swap on CURRENT until each replica serves it, the generation's
# size and download rate, and every non-2xx answer during the swap (wrk counts them).
#
#   bench/replicas.sh INDEX_DIR OUT_DIR [SECONDS]
#
# INDEX_DIR holds a published SciFact generation (hyrank index --catalog
# ../shared/data/scifact/corpus.jsonl --index-dir INDEX_DIR); it is only read. The second
# generation is a hard-linked copy of the first under a new name. The bucket is moto's server
# (in memory), on this machine, like the replicas: figures for the plumbing, not for a real S3.
set -euo pipefail
index=$1 out=$2 seconds=${3:-20}
data=${HYRANK_EVAL_DATA:-../shared/data/scifact}
cd "$(dirname "$0")/.."
scripts/test-services.sh
bin=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release
mkdir -p "$out"
work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

s3=$(free_port)
moto_server -H 127.0.0.1 -p "$s3" > "$out/moto.log" 2>&1 & pids+=($!)
until python3 -c "import urllib.request as u; u.urlopen(u.Request('http://127.0.0.1:$s3/bench', method='PUT'))" 2>/dev/null; do sleep 0.2; done
export AWS_ENDPOINT_URL=http://127.0.0.1:$s3 AWS_ALLOW_HTTP=true AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1
url=s3://bench/replicas

# The first generation, and a copy of it under another name for the swap.
first=$(cat "$index/CURRENT")
mkdir -p "$work/publisher/generations"
cp -al "$index/generations/$first" "$work/publisher/generations/$first"
printf '%s' "$first" > "$work/publisher/CURRENT"
second=swap-$$
cp -al "$index/generations/$first" "$work/publisher/generations/$second"
rm "$work/publisher/generations/$second/manifest.json"
python3 - "$index/generations/$first/manifest.json" "$work/publisher/generations/$second/manifest.json" "$second" <<'PY'
import json, sys
manifest = json.load(open(sys.argv[1])); manifest["generation"] = sys.argv[3]
json.dump(manifest, open(sys.argv[2], "w"), indent=2)
PY
"$bin/hyrank" publish --index-dir "$work/publisher" --generation "$first" --to "$url" | tee "$out/publish-1.txt"

python3 bench/make_wrk_script.py "$data" test '{"k": 10}' > "$out/search.lua"
ports=() replicas=()
for name in a b; do
  port=$(free_port); ports+=("$port")
  "$bin/hyrank-serve" --source "$url" --index-dir "$work/replica-$name" --bind 127.0.0.1:$port --watch-secs 1 \
    --response-cache-entries 0 --query-cache-entries 0 --device cpu > "$out/replica-$name.log" 2>&1 & pids+=($!)
  replicas+=($!)
done
for i in 0 1; do
  until curl -sf "http://127.0.0.1:${ports[$i]}/readyz" > /dev/null; do
    if ! kill -0 "${replicas[$i]}" 2>/dev/null; then
      echo "replica $i exited before it was ready; its log ends:" >&2
      tail -3 "$out/replica-$([ $i = 0 ] && echo a || echo b).log" >&2
      exit 1
    fi
    sleep 0.5
  done
done

for i in 0 1; do
  wrk -t1 -c4 -d${seconds}s --latency -s "$out/search.lua" "http://127.0.0.1:${ports[$i]}" > "$out/wrk-$i.txt" &
  pids+=($!)
done
sleep $(( seconds / 3 ))
# --keep 0: no retention pass between CURRENT moving and the clock starting.
"$bin/hyrank" publish --index-dir "$work/publisher" --generation "$second" --to "$url" --keep 0 | tee "$out/publish-2.txt"
swapped_at=$(date +%s.%N)
python3 - "$swapped_at" "$second" "${ports[@]}" <<'PY' | tee "$out/swap.txt"
import json, sys, time, urllib.request
since, name, ports = float(sys.argv[1]), sys.argv[2], sys.argv[3:]
pending = set(ports)
while pending:
    for port in sorted(pending):
        info = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/index"))
        if info["manifest"]["generation"] == name:
            print(f"replica on {port}: serving {name} {time.time() - since:.2f} s after CURRENT moved")
            pending.discard(port)
    time.sleep(0.05)
PY
wait "${pids[-1]}" "${pids[-2]}"
du -sh "$index/generations/$first" | tee "$out/size.txt"
for i in 0 1; do
  echo "== replica $i" ; grep -E "Requests/sec|Non-2xx|Socket errors|50%|99%" "$out/wrk-$i.txt" || true
  grep -q "Non-2xx" "$out/wrk-$i.txt" || echo "    non-2xx: 0"
done | tee "$out/load.txt"
