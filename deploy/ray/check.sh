#!/usr/bin/env bash
# The Ray driver end to end on this machine: a catalog embedded as N shards by Ray tasks on a
# local Ray, assembled, and its vectors compared byte for byte with a single-process build.
# Not part of every CI run (Ray is a large install): `pip install "ray==2.60.0"`, then
#   deploy/ray/check.sh [CATALOG] [SHARDS] [-- extra hyrank flags]
set -euo pipefail
cd "$(dirname "$0")/../.."
catalog=${1:-fixtures/beir-tiny/corpus.jsonl} shards=${2:-3}
shift $(( $# < 2 ? $# : 2 ))
[ "${1:-}" = "--" ] && shift
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 deploy/ray/embed.py --catalog "$catalog" --index-dir "$work/ray" --shards "$shards" \
  --shard-dir "$work/shards" -- "$@" | grep -Ev '^\s' 
start=$(date +%s.%N)
target/release/hyrank index --catalog "$catalog" --index-dir "$work/single" --no-reuse-embeddings "$@" > /dev/null
echo "single process: $(python3 -c "import time; print(round(time.time() - $start, 2))") s"
cmp "$work/ray/generations/000001/dense.vectors" "$work/single/generations/000001/dense.vectors"
echo "dense.vectors byte-identical to the single-process build"
