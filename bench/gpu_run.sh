#!/usr/bin/env bash
# Runs on a lent GPU machine (see the device notes in the closing notes): checks CUDA embeddings
# against the committed sentence-transformers goldens, times corpus embedding on the GPU and on
# the machine's CPU, and times sentence-transformers on the same GPU as the peer.
#
# Expects: $STASH with hyrank (built with --features cuda), corpus.jsonl and a model folder
# model/ (config.json, tokenizer.json, model.safetensors, and the sentence-transformers files).
set -uo pipefail
STASH=${STASH:-/root/stash}
OUT=${OUT:-/tmp/out}
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
B=$STASH/hyrank
M=$STASH/model
log() { echo "== $*"; }
log "device"; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; nproc
log "parity + throughput on GPU (batch 64, default)"
$B check-model --model-dir $M --device cuda --golden fixtures/golden_embeddings.json --throughput-catalog $STASH/corpus.jsonl
for bs in 32 128 256; do
  log "GPU batch $bs"
  $B check-model --model-dir $M --device cuda --batch-size $bs --golden fixtures/golden_embeddings.json --throughput-catalog $STASH/corpus.jsonl | tail -1
done
log "explicit cuda:7 (no such device) must be an error"
$B check-model --model-dir $M --device cuda:7 --golden fixtures/golden_embeddings.json; echo "exit $?"
log "CPU on this machine ($(nproc) cores), first 1000 items"
head -1000 $STASH/corpus.jsonl > /tmp/corpus1000.jsonl
$B check-model --model-dir $M --device cpu --golden fixtures/golden_embeddings.json --throughput-catalog /tmp/corpus1000.jsonl | tail -1
log "full SciFact index on GPU"
$B index --catalog $STASH/corpus.jsonl --index-dir /tmp/scifact-gpu --model-dir $M --device cuda 2>&1 | grep -E "embed items|total|peak"
log "SciFact test eval with GPU query encoding"
$B eval search --data $STASH/beir --split test --index-dir /tmp/scifact-gpu --out $OUT/eval-gpu --model-dir $M --device cuda 2>&1 | tail -8
log "peer: sentence-transformers on the same GPU"
python3 - "$STASH" <<'PY'
import json, sys, time, torch
from sentence_transformers import SentenceTransformer
stash = sys.argv[1]
docs = [json.loads(l) for l in open(f"{stash}/corpus.jsonl")]
texts = [(d["title"].strip() + ". " + d["text"].strip()) if d["title"].strip() else d["text"].strip() for d in docs]
m = SentenceTransformer(f"{stash}/model", device="cuda")
m.encode(texts[:256], batch_size=64)
for bs in (64, 256):
    torch.cuda.synchronize(); t = time.time(); m.encode(texts, batch_size=bs); torch.cuda.synchronize(); dt = time.time() - t
    print(f"sentence-transformers cuda fp32 bs={bs}: {len(texts)} items in {dt:.2f} s = {len(texts)/dt:.1f} items/s (torch {torch.__version__})")
PY
