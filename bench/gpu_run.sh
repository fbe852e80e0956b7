#!/usr/bin/env bash
# Everything the open issues ask of a GPU, in one device window (about 6 minutes on an H200):
#
#  1. embeddings on CUDA against the committed sentence-transformers goldens (parity);
#  2. embedding throughput, hyrank (candle) against sentence-transformers (PyTorch) on the same
#     GPU and the same SciFact abstracts, fp32 (the peer also in fp16, for reference);
#  3. the machine's CPU with 2 and with all cores (does candle scale with cores?); the embedding
#     shards of issue 19 as plain processes and, with `ray` in SECTIONS, run by Ray itself;
#  4. SciFact indexed on the GPU, and `hyrank eval search` on test with GPU query encoding;
#  5. the trained cross-encoder trained on the GPU with the settings of docs/EVAL.md's run 2,
#     then SciFact test reranked by it over the top 100 (eval keeps k = 100 hits, and the
#     rerank window is max(depth, k)); section 7 evaluates over the trained depth;
#  6. reranking over HTTP (`bench/rerank_latency.py`): top 30 and top 100 at concurrency 1 and
#     16, caches off.
#
# Every step has its own time limit and failing steps do not stop the rest; the last lines are
# one summary table. $OUT gets few files (the device tool brings back at most 8): summary.tsv,
# logs.tar.gz (every step's log, the eval reports and run files) and the trained reranker
# (its manifest and tensors, to evaluate it on another machine).
#
# Inputs, all under $STASH (scripts/gpu-bundle.sh makes them here and the device tool carries
# them): bin/hyrank and bin/hyrank-serve built by scripts/build-cuda.sh, model/ (the model
# folder as scripts/setup.sh unpacks it) and scifact/ (corpus.jsonl, queries.jsonl, qrels/).
#
# Smoke test on a CPU machine before spending device time (tiny data, CPU, short limits):
#   DEV=cpu SMOKE=1 STASH=/tmp/stash BIN=target/release MODEL=models/all-MiniLM-L6-v2 \
#     DATA=fixtures/beir-tiny TRAIN_QRELS=fixtures/beir-tiny/train/qrels.tsv \
#     TRAIN_QUERIES=fixtures/beir-tiny/train/queries.jsonl OUT=/tmp/gpu-smoke bench/gpu_run.sh
set -uo pipefail
cd "$(dirname "$0")/.."
DEV=${DEV:-cuda}
SMOKE=${SMOKE:-0}
STASH=${STASH:-/root/stash}
OUT=${OUT:-/tmp/gpu-out}
BIN=${BIN:-$STASH/bin}
MODEL=${MODEL:-$STASH/model}
DATA=${DATA:-$STASH/scifact}
WORK=${WORK:-/tmp/hyrank-gpu-work}
TRAIN_QRELS=${TRAIN_QRELS:-$DATA/qrels/train.tsv}
TRAIN_QUERIES=${TRAIN_QUERIES:-$DATA/queries.jsonl}
LOGS=$WORK/logs
rm -rf "$LOGS"
mkdir -p "$OUT" "$WORK" "$LOGS"
SUMMARY=$OUT/summary.tsv
: > "$SUMMARY"

# CUDA's user-space libraries: the driver from the host mount, cuBLAS/cuRAND/NVRTC from the
# toolkit or from PyTorch's wheels, wherever this image keeps them.
libdirs=/usr/local/nvidia/lib64:/usr/local/nvidia/lib
for lib in libcuda.so.1 libcublas.so.13 libcublasLt.so.13 libcurand.so.10 libnvrtc.so.13; do
  found=$(find /usr/local/nvidia /usr/local/cuda /usr/lib/x86_64-linux-gnu /opt -name "$lib" 2>/dev/null | head -1)
  [ -n "$found" ] && libdirs=$libdirs:$(dirname "$found")
  echo "lib $lib: ${found:-not found}"
done
export LD_LIBRARY_PATH=$libdirs:${LD_LIBRARY_PATH:-}


note() { printf '%s\t%s\n' "$1" "$2" >>"$SUMMARY"; }
# step NAME SECONDS CMD...: runs CMD with a time limit, logging to $LOGS/NAME.log.
step() {
  local name=$1 limit=$2
  shift 2
  echo "== $name (limit ${limit}s)"
  local t0
  t0=$(date +%s.%N)
  timeout "$limit" "$@" >"$LOGS/$name.log" 2>&1
  local rc=$?
  local secs
  secs=$(python3 -c "import time; print(f'{time.time() - $t0:.1f}')")
  tail -n 15 "$LOGS/$name.log"
  note "$name" "exit $rc in ${secs}s"
  # The logs so far, in case the device call's own limit ends the run before the EXIT trap.
  tar -czf "$OUT/logs.tar.gz" -C "$LOGS" . 2>/dev/null
  return $rc
}

echo "== machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee "$LOGS/gpu.txt"
note gpu "$(head -1 "$LOGS/gpu.txt")"
note cpu_cores "$(nproc)"

# Which parts run (a rerun can pick a few): embed cpu shards ray index rerank http profile halves
# layers-profile variants (ray only when asked: it needs Ray, scripts/gpu-bundle.sh's third part).
SECTIONS=${SECTIONS:-embed cpu shards index rerank http profile halves variants}
# 1: also the item states on the host and a 256-pair pass, against the defaults.
HOST_COMPARE=${HOST_COMPARE:-1}
has() { [[ " $SECTIONS " == *" $1 "* ]]; }
STARTED=$(date +%s)
# Stop starting new reranker variants after this many seconds, to end inside a device window.
BUDGET_S=${BUDGET_S:-420}
# Whatever happens (a step past its limit, the device call's own limit), the logs come back and
# no server outlives the run: a stale one would answer the next run's requests.
server=
finish() {
  [ -n "$server" ] && kill "$server" 2>/dev/null
  tar -czf "$OUT/logs.tar.gz" -C "$LOGS" . 2>/dev/null
}
trap finish EXIT
if [ "$DEV" = cuda ]; then PRECISIONS="f16 bf16"; else PRECISIONS="int8 w8a8"; fi
if [ "$SMOKE" = 1 ]; then
  BATCHES="8"; EPOCHS=1; DEPTH=10; MINE=10; ITEM_TOKENS=32; REQUESTS_C1=4; REQUESTS_C16=16; TRAIN_LIMIT=600
  CPU_ITEMS=10; CPU_QUERIES=5; SHARD_ITEMS=10
else
  BATCHES="64 256"; EPOCHS=3; DEPTH=30; MINE=30; ITEM_TOKENS=128; REQUESTS_C1=64; REQUESTS_C16=256; TRAIN_LIMIT=300
  CPU_ITEMS=200; CPU_QUERIES=100; SHARD_ITEMS=400
fi

# 1 + 2: parity and throughput.
if has embed; then
for bs in $BATCHES; do
  step "embed-$DEV-bs$bs" 120 "$BIN/hyrank" check-model --model-dir "$MODEL" --device "$DEV" --batch-size "$bs" \
    --golden fixtures/golden_embeddings.json --throughput-catalog "$DATA/corpus.jsonl"
  note "hyrank embed $DEV bs$bs" "$(grep -E 'items/s' "$LOGS/embed-$DEV-bs$bs.log" | tail -1)"
  note "hyrank parity $DEV bs$bs" "$(grep -iE 'cosine' "$LOGS/embed-$DEV-bs$bs.log" | tail -1)"
done
# Reduced precisions (f16/bf16 are the GPU's; int8 and w8a8 are the CPU's and are refused on a GPU).
for precision in $PRECISIONS; do
  step "embed-$DEV-$precision" 120 "$BIN/hyrank" check-model --model-dir "$MODEL" --device "$DEV" \
    --precision "$precision" --batch-size "${BATCHES##* }" --golden fixtures/golden_embeddings.json \
    --throughput-catalog "$DATA/corpus.jsonl"
  note "hyrank embed $DEV $precision" "$(grep -E 'items/s' "$LOGS/embed-$DEV-$precision.log" | tail -1)"
  note "hyrank parity $DEV $precision" "$(grep -iE 'worst cosine' "$LOGS/embed-$DEV-$precision.log" | tail -1)"
done
# Where an embedding batch's time goes (HYRANK_EMBED_PROFILE=1: the device synchronised at each
# phase; candle's path only has the per-layer phases): total ms per phase over the catalog.
step "embed-$DEV-profile" 120 env HYRANK_EMBED_PROFILE=1 HYRANK_LOG=warn,hyrank_embed_profile=info \
  "$BIN/hyrank" check-model --model-dir "$MODEL" --device "$DEV" --batch-size "${BATCHES%% *}" \
  --throughput-catalog "$DATA/corpus.jsonl"
note "embed profile $DEV bs${BATCHES%% *}: total ms per phase (share)" "$(python3 - "$LOGS/embed-$DEV-profile.log" <<'PY'
import re, sys
totals = {}
for line in open(sys.argv[1]):
    m = re.search(r'hyrank_embed_profile: phase="?([^"=]+?)"? texts=(\d+) tokens=(\d+) ms=([\d.]+)', line)
    if m:
        totals[m.group(1)] = totals.get(m.group(1), 0.0) + float(m.group(4))
# The layer phases are inside "encoder": shares are of the three outer phases' sum.
outer = sum(v for k, v in totals.items() if not k.startswith("layer"))
print("; ".join(f"{k} {v:.0f} ms ({100 * v / outer:.0f}%)" for k, v in totals.items()) if outer else "no phases logged")
PY
)"
if [ "$DEV" = cuda ]; then
  step "cuda-index-out-of-range" 30 "$BIN/hyrank" check-model --model-dir "$MODEL" --device cuda:7 \
    --golden fixtures/golden_embeddings.json
  note "cuda:7 (no such device)" "$(tail -1 "$LOGS/cuda-index-out-of-range.log")"
fi
step "peer-sentence-transformers" 180 python3 - "$MODEL" "$DATA/corpus.jsonl" "$DEV" "$BATCHES" <<'PY'
import json, sys, time
import torch
from sentence_transformers import SentenceTransformer
model_dir, corpus, device, batches = sys.argv[1], sys.argv[2], sys.argv[3], [int(b) for b in sys.argv[4].split()]
docs = [json.loads(line) for line in open(corpus)]
# The text hyrank embeds: "title. text" (Item::content).
texts = [(d["title"].strip() + ". " + d["text"].strip()) if d.get("title", "").strip() else d["text"].strip() for d in docs]
model = SentenceTransformer(model_dir, device=device)
model.max_seq_length = 256
def sync():
    if device == "cuda":
        torch.cuda.synchronize()
for precision in ("fp32", "fp16") if device == "cuda" else ("fp32",):
    if precision == "fp16":
        model = model.half()
    model.encode(texts[:256], batch_size=64)
    for bs in batches:
        sync(); t = time.perf_counter(); model.encode(texts, batch_size=bs); sync(); dt = time.perf_counter() - t
        print(f"peer {precision} bs{bs}: {len(texts)} items in {dt:.2f} s = {len(texts) / dt:.1f} items/s (torch {torch.__version__})")
PY
grep '^peer' "$LOGS/peer-sentence-transformers.log" | while read -r line; do note "sentence-transformers" "$line"; done
fi

# 3: the CPU on hyrank's own kernels, 2 threads and all cores, against sentence-transformers
# (PyTorch) on the same texts and threads (bench/embed_peer.py: 200 abstracts, 100 test queries).
if has cpu; then
for threads in 2 "$(nproc)"; do
  step "embed-cpu-${threads}threads" 240 env HF_HUB_OFFLINE=1 python3 bench/embed_peer.py --hyrank "$BIN/hyrank" \
    --model-dir "$MODEL" --data "$DATA" --items "$CPU_ITEMS" --queries "$CPU_QUERIES" --threads "$threads" \
    --precisions f32,w8a8 --repeats 1
  grep -E '^\|' "$LOGS/embed-cpu-${threads}threads.log" | while read -r line; do note "cpu, $threads threads" "$line"; done
done
fi

# 3b: the embedding shards of issue 19 as a Ray driver runs them (`hyrank embed --shard i/n`,
# each task with 2 threads), n tasks at once on this machine's cores: items/s against tasks.
# Ray itself is not in this image; these are the commands its tasks run.
if has shards; then
head -"$SHARD_ITEMS" "$DATA/corpus.jsonl" >"$WORK/corpus-shards.jsonl"
for n in 1 2 4 8; do
  [ $((n * 2)) -le "$(nproc)" ] || continue
  rm -rf "$WORK/shards-$n"
  t0=$(date +%s.%N)
  step "shards-$n" 240 bash -c 'for i in $(seq 0 $(($2 - 1))); do
      RAYON_NUM_THREADS=2 "$1" embed --catalog "$3" --shard "$i/$2" --out "$4" --model-dir "$5" --device cpu & done
      wait' _ "$BIN/hyrank" "$n" "$WORK/corpus-shards.jsonl" "$WORK/shards-$n" "$MODEL"
  note "shards: $n tasks x 2 threads, $SHARD_ITEMS abstracts" \
    "$(python3 -c "import time; dt = time.time() - $t0; print(f'{dt:.1f} s = {$SHARD_ITEMS / dt:.1f} items/s (model load included)')")"
done
fi

# 3c: the same shards run by Ray itself (deploy/ray/embed.py): a local Ray over all cores, n
# tasks of 2 CPUs and 2 threads each, then the assembly, whose vectors must be byte-identical
# to a one-process build of the same abstracts (issue 19). Ray comes from $STASH/ray-site
# (scripts/gpu-bundle.sh with RAY=1, carried by a third call) when the image has none.
if has ray; then
[ -d "$STASH/ray-site" ] && export PYTHONPATH=$STASH/ray-site${PYTHONPATH:+:$PYTHONPATH}
export RAY_USAGE_STATS_ENABLED=0
head -"$SHARD_ITEMS" "$DATA/corpus.jsonl" >"$WORK/corpus-ray.jsonl"
rm -rf "$WORK/ray-single"
step "ray-single" 240 "$BIN/hyrank" index --catalog "$WORK/corpus-ray.jsonl" --index-dir "$WORK/ray-single" \
  --no-reuse-embeddings --model-dir "$MODEL" --device cpu
note "ray: one process, $(nproc) threads, $SHARD_ITEMS abstracts" "$(grep -iE 'embed' "$LOGS/ray-single.log" | tail -1 | cut -c1-160)"
for n in 1 2 4 8; do
  [ $((n * 2)) -le "$(nproc)" ] || continue
  rm -rf "$WORK/ray-$n" "$WORK/ray-shards-$n"
  step "ray-$n" 240 python3 deploy/ray/embed.py --catalog "$WORK/corpus-ray.jsonl" --index-dir "$WORK/ray-$n" \
    --shards "$n" --shard-dir "$WORK/ray-shards-$n" --hyrank "$BIN/hyrank" --num-cpus "$(nproc)" \
    --cpus-per-task 2 --threads-per-task 2 -- --model-dir "$MODEL" --device cpu
  same=different
  cmp -s "$WORK/ray-$n/generations/000001/dense.vectors" "$WORK/ray-single/generations/000001/dense.vectors" \
    && same=byte-identical
  note "ray: $n tasks x 2 threads, $SHARD_ITEMS abstracts" "$(python3 -c "
import json, sys
lines = [l for l in open(sys.argv[1]) if l.startswith('{\"shards\"')]
r = json.loads(lines[-1]) if lines else None
rate = f\"{$SHARD_ITEMS / r['embed_seconds']:.1f} items/s\" if r and r['embed_seconds'] > 0 else 'under 0.01 s'
print(f\"embed {r['embed_seconds']} s = {rate}, with the assembly {r['total_seconds']} s\" if r else 'no result')
" "$LOGS/ray-$n.log"); vectors $same to one process"
done
fi

# 4: index and evaluate on the device.
if has index || has rerank || has http; then
rm -rf "$WORK/index"
step "index" 180 "$BIN/hyrank" index --catalog "$DATA/corpus.jsonl" --index-dir "$WORK/index" --model-dir "$MODEL" \
  --device "$DEV"
note "index" "$(grep -E 'embed|total' "$LOGS/index.log" | tr '\n' ' ' | cut -c1-200)"
step "eval-search" 180 "$BIN/hyrank" eval search --data "$DATA" --split test --index-dir "$WORK/index" \
  --out "$LOGS/eval-search" --model-dir "$MODEL" --device "$DEV"
note "eval search (nDCG@10, p50)" "$(grep -E '^\| (default|bm25|dense|hybrid)' "$LOGS/eval-search/report.md" 2>/dev/null | cut -c1-160 | tr '\n' ' ')"
fi

# serve INDEX PORT NAME [ENV...]: a server with every cache off, ready when this returns.
serve() {
  local index=$1 port=$2 name=$3
  shift 3
  env "$@" "$BIN/hyrank-serve" --index-dir "$index" --model-dir "$MODEL" --device "$DEV" --bind "127.0.0.1:$port" \
    --query-cache-entries 0 --response-cache-entries 0 --rerank-cache-entries 0 --watch-secs 0 --workers 4 \
    --max-inflight 256 --rerank-queue 256 >"$LOGS/serve-$name.log" 2>&1 &
  server=$!
  python3 -c "
import time, urllib.request
for _ in range(240):
    try:
        urllib.request.urlopen('http://127.0.0.1:$port/readyz', timeout=2); break
    except Exception:
        time.sleep(0.5)"
}
stop_server() {
  kill "$server" 2>/dev/null
  wait "$server" 2>/dev/null
  server=
}
# http NAME PORT DEPTH CONCURRENCY REQUESTS: bench/rerank_latency.py over SciFact's test queries.
# A sixth argument (--keep-alive) keeps one connection per client thread.
http() {
  local tag=${6:+-keepalive}
  step "http-$1-top$3-c$4$tag" 120 python3 bench/rerank_latency.py "http://127.0.0.1:$2" "$DATA/queries.jsonl" "$3" "$4" "$5" \
    "$DATA/qrels/test.tsv" ${6:-}
  note "HTTP $1: top $3, concurrency $4${6:+, kept alive}" "$(tail -2 "$LOGS/http-$1-top$3-c$4$tag.log" | tr '\n' ' ' | cut -c1-240)"
}

# 5: train the PreTTR reranker (the default shape: 128 item tokens, states precomputed) with
# docs/EVAL.md's settings, then rerank test over the top 30 and the top 100, the item states on
# the device (the default on a GPU) and, for comparison, on the host.
if has rerank || has http; then
step "train-reranker" "$TRAIN_LIMIT" "$BIN/hyrank" train-reranker --index-dir "$WORK/index" --model-dir "$MODEL" \
  --device "$DEV" --qrels "$TRAIN_QRELS" --queries "$TRAIN_QUERIES" --epochs "$EPOCHS" \
  --depth "$DEPTH" --mine-depth "$MINE" --frozen-layers 4 --hard-negatives 3 --random-negatives 1 \
  --pair-tokens 256 --prettr-item-tokens "$ITEM_TOKENS" --learning-rate 1e-4 --head-learning-rate 0.02
grep -E 'reranker: ' "$LOGS/train-reranker.log" | sed 's/.*reranker: /reranker: /' | while read -r line; do note "train-reranker" "$line"; done
generation=$(cat "$WORK/index/CURRENT" 2>/dev/null)
cp "$WORK/index/generations/$generation/manifest.json" "$OUT/reranker-manifest.json" 2>/dev/null
cp "$WORK/index/generations/$generation/reranker.safetensors" "$OUT/" 2>/dev/null
for depth in "$DEPTH" 100; do
  step "eval-rerank-top$depth" 180 "$BIN/hyrank" eval search --data "$DATA" --split test --index-dir "$WORK/index" \
    --out "$LOGS/eval-rerank-top$depth" --model-dir "$MODEL" --device "$DEV" --depth "$depth" \
    --configs "default+rerank=off,default+reranker=trained"
  note "eval rerank top $depth, states on the device (nDCG@10 .. p50 p99)" \
    "$(grep -E '^\| default' "$LOGS/eval-rerank-top$depth/report.md" 2>/dev/null | cut -c1-160 | tr '\n' ' ')"
done
# The reranker running its own query pass instead of taking the embedding pass's states
# (HYRANK_RERANK_QUERY_STATES=off, how it served before): what keeping them saves.
step "eval-rerank-top100-own-query-pass" 180 env HYRANK_RERANK_QUERY_STATES=off "$BIN/hyrank" eval search --data "$DATA" \
  --split test --index-dir "$WORK/index" --out "$LOGS/eval-rerank-top100-own-query-pass" --model-dir "$MODEL" \
  --device "$DEV" --depth 100 --configs "default+reranker=trained"
note "eval rerank top 100, the reranker's own query pass" \
  "$(grep -E '^\| default' "$LOGS/eval-rerank-top100-own-query-pass/report.md" 2>/dev/null | cut -c1-160 | tr '\n' ' ')"
[ "$HOST_COMPARE" = 1 ] && step "eval-rerank-top100-host" 180 env HYRANK_RERANK_STATES=host "$BIN/hyrank" eval search --data "$DATA" --split test \
  --index-dir "$WORK/index" --out "$LOGS/eval-rerank-top100-host" --model-dir "$MODEL" --device "$DEV" --depth 100 \
  --configs "default+reranker=trained"
[ "$HOST_COMPARE" = 1 ] && note "eval rerank top 100, states on the host" \
  "$(grep -E '^\| default' "$LOGS/eval-rerank-top100-host/report.md" 2>/dev/null | cut -c1-160 | tr '\n' ' ')"
fi

# 6: over HTTP, caches off, the rerank worker sharing passes across concurrent requests.
if has http; then
serve "$WORK/index" 8099 device
http device 8099 "$DEPTH" 1 "$REQUESTS_C1"
http device 8099 100 1 "$REQUESTS_C1"
http device 8099 100 16 "$REQUESTS_C16"
http device 8099 100 1 "$REQUESTS_C1" --keep-alive
http device 8099 100 16 "$REQUESTS_C16" --keep-alive
python3 -c 'import urllib.request; print(urllib.request.urlopen("http://127.0.0.1:8099/metrics").read().decode())' \
  | grep -E '^hyrank_(model|stage|rerank_query)' >"$LOGS/serve-metrics.txt"
note "query passes (served)" "$(grep -E '^hyrank_rerank_query_passes' "$LOGS/serve-metrics.txt" | tr '\n' ' ')"
stop_server
serve "$WORK/index" 8091 own-query-pass HYRANK_RERANK_QUERY_STATES=off
http own-query-pass 8091 100 1 "$REQUESTS_C1"
http own-query-pass 8091 100 16 "$REQUESTS_C16"
stop_server
if [ "$HOST_COMPARE" = 1 ]; then
  serve "$WORK/index" 8098 host HYRANK_RERANK_STATES=host
  http host 8098 100 1 "$REQUESTS_C1"
  http host 8098 100 16 "$REQUESTS_C16"
  stop_server
  serve "$WORK/index" 8097 pass256 HYRANK_RERANK_PASS_PAIRS=256
  http pass256 8097 100 16 "$REQUESTS_C16"
  stop_server
fi
fi

# 6b (the trained layers at f32 here; the GPU default is f16, section 6c): where a top-100 pass goes (HYRANK_RERANK_PROFILE=1: the device synchronised at each
# phase, median ms per phase over the test queries), and f32 products at TF32 (HYRANK_GPU_TF32=1:
# relevance, in-process latency, HTTP).
if has profile; then
step "embed-$DEV-tf32" 120 env HYRANK_GPU_TF32=1 "$BIN/hyrank" check-model --model-dir "$MODEL" --device "$DEV" \
  --batch-size "${BATCHES##* }" --golden fixtures/golden_embeddings.json --throughput-catalog "$DATA/corpus.jsonl"
note "hyrank embed $DEV f32 at TF32" "$(grep -E 'items/s' "$LOGS/embed-$DEV-tf32.log" | tail -1)"
note "hyrank parity $DEV f32 at TF32" "$(grep -iE 'worst cosine' "$LOGS/embed-$DEV-tf32.log" | tail -1)"
for variant in f32 tf32; do
  tf32=$([ "$variant" = tf32 ] && echo 1 || echo 0)
  step "profile-$variant" 180 env HYRANK_RERANK_PROFILE=1 HYRANK_LOG=warn,hyrank_indexer=info,hyrank_rerank_profile=info HYRANK_GPU_TF32="$tf32" "$BIN/hyrank" eval search \
    --data "$DATA" --split test --index-dir "$WORK/index" --out "$LOGS/profile-$variant" --model-dir "$MODEL" \
    --device "$DEV" --depth 100 --configs "default+reranker=trained" --rerank-precision f32
  note "profile $variant, top 100: median ms per phase" "$(python3 - "$LOGS/profile-$variant.log" <<'PY'
import re, statistics, sys
phases = {}
for line in open(sys.argv[1]):
    m = re.search(r'hyrank_rerank_profile: phase="?([^"=]+?)"? pairs=(\d+) tokens=(\d+) ms=([\d.]+)', line)
    if m:
        phases.setdefault(m.group(1), []).append((float(m.group(4)), int(m.group(2)), int(m.group(3))))
print("; ".join(f"{k} {statistics.median(v[0] for v in vs):.2f} ms (n {len(vs)}, pairs {statistics.median(v[1] for v in vs):.0f}, tokens {statistics.median(v[2] for v in vs):.0f})"
                for k, vs in phases.items()))
PY
)"
done
step "eval-rerank-top100-tf32" 180 env HYRANK_GPU_TF32=1 "$BIN/hyrank" eval search --data "$DATA" --split test \
  --index-dir "$WORK/index" --out "$LOGS/eval-rerank-top100-tf32" --model-dir "$MODEL" --device "$DEV" --depth 100 \
  --configs "default+rerank=off,default+reranker=trained" --rerank-precision f32
note "eval rerank top 100, TF32" \
  "$(grep -E '^\| default' "$LOGS/eval-rerank-top100-tf32/report.md" 2>/dev/null | cut -c1-160 | tr '\n' ' ')"
serve "$WORK/index" 8095 tf32 HYRANK_GPU_TF32=1 HYRANK_RERANK_PRECISION=f32
http tf32 8095 "$DEPTH" 1 "$REQUESTS_C1"
http tf32 8095 100 1 "$REQUESTS_C1"
http tf32 8095 100 16 "$REQUESTS_C16"
stop_server
fi

# 6c: the trained layers at f16 and bf16 on the GPU (`--rerank-precision`, a serving choice: the
# frozen query pass stays at the generation's f32), alone and with TF32 for the f32 products left.
if has halves; then
evalq() { # NAME DEPTH LAYERS ENV... : eval of the trained reranker over the top DEPTH, its layers at LAYERS
  local name=$1 depth=$2 layers=$3
  shift 3
  step "eval-$name" 180 env "$@" "$BIN/hyrank" eval search --data "$DATA" --split test --index-dir "$WORK/index" \
    --out "$LOGS/eval-$name" --model-dir "$MODEL" --device "$DEV" --depth "$depth" --configs "default+reranker=trained" \
    --rerank-precision "$layers"
  note "eval $name, top $depth (nDCG@10 .. p50 p99)" \
    "$(grep -E '^\| default' "$LOGS/eval-$name/report.md" 2>/dev/null | cut -c1-160 | tr '\n' ' ')"
}
evalq layers-f32 100 f32 HYRANK_GPU_TF32=0
evalq layers-f16 100 f16 HYRANK_GPU_TF32=0
evalq layers-bf16 100 bf16 HYRANK_GPU_TF32=0
evalq layers-f16-tf32 100 f16 HYRANK_GPU_TF32=1
evalq layers-f16-tf32-top30 "$DEPTH" f16 HYRANK_GPU_TF32=1
fi
# Where a top-100 pass goes at the GPU default (f16 layers), phase by phase; also alone as
# section layers-profile.
if has halves || has layers-profile; then
step "profile-f16" 180 env HYRANK_RERANK_PROFILE=1 HYRANK_LOG=warn,hyrank_indexer=info,hyrank_rerank_profile=info \
  "$BIN/hyrank" eval search --data "$DATA" --split test --index-dir "$WORK/index" --rerank-precision f16 \
  --out "$LOGS/profile-f16" --model-dir "$MODEL" --device "$DEV" --depth 100 --configs "default+reranker=trained"
note "profile f16 layers, top 100: median ms per phase" "$(python3 - "$LOGS/profile-f16.log" <<'PY'
import re, statistics, sys
phases = {}
for line in open(sys.argv[1]):
    m = re.search(r'hyrank_rerank_profile: phase="?([^"=]+?)"? pairs=(\d+) tokens=(\d+) ms=([\d.]+)', line)
    if m:
        phases.setdefault(m.group(1), []).append(float(m.group(4)))
print("; ".join(f"{k} {statistics.median(vs):.2f} ms (n {len(vs)})" for k, vs in phases.items()))
PY
)"
fi
if has halves; then
serve "$WORK/index" 8094 f16-tf32 HYRANK_RERANK_PRECISION=f16 HYRANK_GPU_TF32=1
http f16-tf32 8094 "$DEPTH" 1 "$REQUESTS_C1"
http f16-tf32 8094 100 1 "$REQUESTS_C1"
http f16-tf32 8094 100 16 "$REQUESTS_C16"
stop_server
serve "$WORK/index" 8093 f16 HYRANK_RERANK_PRECISION=f16
http f16 8093 100 1 "$REQUESTS_C1"
http f16 8093 100 16 "$REQUESTS_C16"
stop_server
fi

# 7: the same reranker trained over an f16 generation (frozen layers and stored states at f16
# arithmetic; the trained layers stay f32), if the budget allows.
if has variants; then
for precision in ${VARIANTS:-f16}; do
  if [ $(($(date +%s) - STARTED)) -gt "$BUDGET_S" ]; then
    note "variant $precision" "skipped: past BUDGET_S"
    continue
  fi
  index=$WORK/index-$precision
  rm -rf "$index"
  step "variant-$precision-index" 120 "$BIN/hyrank" index --catalog "$DATA/corpus.jsonl" --index-dir "$index" \
    --model-dir "$MODEL" --device "$DEV" --precision "$precision" || continue
  step "variant-$precision-train" "$TRAIN_LIMIT" "$BIN/hyrank" train-reranker --index-dir "$index" --model-dir "$MODEL" \
    --device "$DEV" --qrels "$TRAIN_QRELS" --queries "$TRAIN_QUERIES" --epochs "$EPOCHS" --depth "$DEPTH" \
    --mine-depth "$MINE" --frozen-layers 4 --hard-negatives 3 --random-negatives 1 --pair-tokens 256 \
    --prettr-item-tokens "$ITEM_TOKENS" --learning-rate 1e-4 --head-learning-rate 0.02 || continue
  note "variant $precision train" "$(grep -E 'kept epoch' "$LOGS/variant-$precision-train.log" | sed 's/.*reranker: //' | cut -c1-200)"
  step "variant-$precision-eval" 180 "$BIN/hyrank" eval search --data "$DATA" --split test --index-dir "$index" \
    --out "$LOGS/variant-$precision-eval" --model-dir "$MODEL" --device "$DEV" --depth "$DEPTH" \
    --configs "default+rerank=off,default+reranker=trained"
  note "variant $precision eval top $DEPTH (nDCG@10 .. p50 p99)" "$(grep -E '^\| default' "$LOGS/variant-$precision-eval/report.md" 2>/dev/null | cut -c1-120 | tr '\n' ' ')"
  serve "$index" 8096 "variant-$precision"
  http "variant-$precision" 8096 100 1 "$REQUESTS_C1"
  http "variant-$precision" 8096 100 16 "$REQUESTS_C16"
  stop_server
done
fi

server=

echo
echo "== summary ($DEV)"
column -t -s $'\t' "$SUMMARY" 2>/dev/null || cat "$SUMMARY"
