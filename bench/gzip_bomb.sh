#!/usr/bin/env bash
# What compressed request bodies cost the server: 32 concurrent POSTs of a 62 KB gzip body that
# decodes to 64 MB of zeros (each one far past the 64 KiB body bound, so each gets 413), and the
# server's peak resident memory (VmHWM) before and after. The figures in README ("Errors") come
# from this script: +0.3 to +0.5 MB on the 2-vCPU Xeon, where actix's own decoder (before 2026-12-07) took +1.5 GB.
#
#   bench/gzip_bomb.sh INDEX_DIR [REQUESTS]
#
# INDEX_DIR holds a published generation (the fixtures do: hyrank index --catalog
# fixtures/catalog.jsonl --index-dir INDEX_DIR). Linux only (/proc).
set -euo pipefail
index=$1 requests=${2:-32}
cd "$(dirname "$0")/.."
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
work=$(mktemp -d)
python3 -c "import gzip,sys; open(sys.argv[1],'wb').write(gzip.compress(b'\0'*64_000_000, 9))" "$work/bomb.gz"
port=18182
"$target_dir/release/hyrank-serve" --index-dir "$index" --bind 127.0.0.1:$port --watch-secs 0 --device cpu \
  > "$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 60); do curl -sf localhost:$port/healthz > /dev/null && break; sleep 0.5; done
peak() { awk '/VmHWM/ {print $2}' /proc/$server/status; }
before=$(peak)
for _ in $(seq "$requests"); do
  curl -s -o /dev/null -w '%{http_code}\n' -H 'content-type: application/json' -H 'content-encoding: gzip' \
    --data-binary @"$work/bomb.gz" localhost:$port/v1/search &
done | sort | uniq -c  # the pipe ends when every request has answered
sleep 1
after=$(peak)
echo "body $(stat -c %s "$work/bomb.gz") bytes gzip (64,000,000 decoded), $requests at once"
echo "peak RSS (VmHWM) before ${before} kB, after ${after} kB: +$(( after - before )) kB"
