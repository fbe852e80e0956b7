#!/usr/bin/env bash
# Times `hyrank publish` and `hyrank pull` of one generation through a local S3 API server
# (moto, in memory: scripts/test-services.sh installs it), with peak memory of each.
#   bench/ship.sh INDEX_DIR   (e.g. a SciFact generation with its reranker states)
set -euo pipefail
cd "$(dirname "$0")/.."
index=${1:?usage: bench/ship.sh INDEX_DIR}
scripts/test-services.sh
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
moto_server -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
moto=$!
work=$(mktemp -d)
trap 'kill $moto 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do python3 -c "import socket; socket.create_connection(('127.0.0.1',$port))" 2>/dev/null && break; sleep 0.1; done
python3 -c "import urllib.request as u; u.urlopen(u.Request('http://127.0.0.1:$port/bench', method='PUT'))"
export AWS_ENDPOINT_URL=http://127.0.0.1:$port AWS_ALLOW_HTTP=true AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1
bin=target/release/hyrank
du -sh "$index/generations/$(cat "$index/CURRENT")"
for step in publish pull; do
  if [ $step = publish ]; then args=(publish --index-dir "$index" --to s3://bench/gen); else args=(pull --from s3://bench/gen --index-dir "$work/replica"); fi
  /usr/bin/time -f "$step: %e s wall, %M KiB peak" "$bin" "${args[@]}"
done
