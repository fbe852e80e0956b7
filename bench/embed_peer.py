#!/usr/bin/env python3
"""hyrank's encoder against sentence-transformers (PyTorch, CPU) on the same texts and threads.

    bench/embed_peer.py [--hyrank target/release/hyrank] [--model-dir models/all-MiniLM-L6-v2]
        [--data ../shared/data/scifact] [--items 200] [--queries 300] [--threads 2]
        [--precisions f32,int8,w8a8] [--repeats 3] [--onnx]

Throughput: the first --items abstracts of the corpus ("title. text", up to 256 tokens), embedded
in batches, items/s (median of --repeats runs). Latency: the first --queries test queries,
each encoded alone, p50 and p99 in milliseconds. hyrank runs through `hyrank check-model`
(`--throughput-catalog`, `--latency-queries`), which also checks each precision against the
goldens; sentence-transformers runs in this process with torch.set_num_threads(--threads).
Both sides get the same thread count; hyrank through RAYON_NUM_THREADS, the pool candle's
CPU kernels run on. Prints one markdown table with the ratio to the peer on each row.

--onnx adds ONNX Runtime, f32 and its dynamic int8 export, as second peers. Their
sentence-transformers extra cannot share an environment with sentence-transformers 6, so run
the whole script, PyTorch peer included, from a venv of its own:

    python3 -m venv /tmp/onnx-venv && /tmp/onnx-venv/bin/pip install "sentence-transformers[onnx]"
    HF_HUB_OFFLINE=1 /tmp/onnx-venv/bin/python bench/embed_peer.py --onnx
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time


def hyrank_run(args, precision, catalog, queries):
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads), HYRANK_LOG="warn")
    cmd = [args.hyrank, "check-model", "--model-dir", args.model_dir, "--device", "cpu", "--precision", precision,
           "--throughput-catalog", catalog, "--latency-queries", queries, "--repeats", str(args.repeats)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{out.stdout}\n{out.stderr}")
    items = float(re.search(r"median ([\d.]+) items/s", out.stdout).group(1))
    p50, p99 = (float(x) for x in re.search(r"query p50 ([\d.]+) ms, p99 ([\d.]+) ms", out.stdout).groups())
    worst = float(re.search(r"worst cosine ([\d.]+)", out.stdout).group(1))
    return items, p50, p99, worst


def onnx_models(args, tmp):
    """sentence-transformers' ONNX Runtime backend, f32 and int8, on a copy of the model
    directory (the shipped one stays untouched): the f32 graph exported and saved, then
    `export_dynamic_quantized_onnx_model` with the CPU's own config (avx512_vnni where the CPU
    has VNNI, else avx2), re-loaded from its file. Both with `args.threads` intra-op threads.
    Needs sentence-transformers[onnx]; that extra pins transformers below 4.58, which
    sentence-transformers 6 cannot use, so run this script from a venv of its own (module
    docstring)."""
    import shutil
    import onnxruntime
    from sentence_transformers import SentenceTransformer, export_dynamic_quantized_onnx_model
    copy = os.path.join(tmp, "minilm")
    if not os.path.exists(copy):
        shutil.copytree(os.path.abspath(args.model_dir), copy)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = args.threads
    kwargs = {"provider": "CPUExecutionProvider", "session_options": options}
    f32 = SentenceTransformer(copy, device="cpu", backend="onnx", model_kwargs=kwargs)
    f32.save_pretrained(copy)
    config = "avx512_vnni" if "avx512_vnni" in open("/proc/cpuinfo").read() else "avx2"
    export_dynamic_quantized_onnx_model(f32, config, copy)
    int8 = SentenceTransformer(copy, device="cpu", backend="onnx",
                               model_kwargs=dict(kwargs, file_name=f"onnx/model_qint8_{config}.onnx"))
    return [("ONNX Runtime f32", f32), (f"ONNX Runtime int8 ({config})", int8)]


def peer_run(args, texts, queries, model=None):
    import torch
    from sentence_transformers import SentenceTransformer
    torch.set_num_threads(args.threads)
    if model is None:
        model = SentenceTransformer(args.model_dir, device="cpu")
    model.max_seq_length = 256
    model.encode(texts[:16], batch_size=8)
    runs = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        vectors = model.encode(texts, batch_size=8, normalize_embeddings=True)
        runs.append(len(texts) / (time.perf_counter() - start))
    latencies = []
    for q in queries:
        start = time.perf_counter()
        model.encode([q], batch_size=1)
        latencies.append((time.perf_counter() - start) * 1000)
    latencies.sort()
    return statistics.median(runs), percentile(latencies, 50), percentile(latencies, 99), torch.__version__, vectors


def percentile(sorted_values, p):
    index = min(len(sorted_values) - 1, max(0, round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[index]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hyrank", default="target/release/hyrank")
    parser.add_argument("--model-dir", default="models/all-MiniLM-L6-v2")
    parser.add_argument("--data", default="../shared/data/scifact")
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precisions", default="f32,int8,w8a8")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--onnx", action="store_true",
                        help="also ONNX Runtime through sentence-transformers, f32 and int8; "
                             "needs sentence-transformers[onnx] (a venv of its own: see the docstring)")
    args = parser.parse_args()

    docs = [json.loads(line) for line in open(os.path.join(args.data, "corpus.jsonl"))][: args.items]
    texts = [(d["title"].strip() + ". " + d["text"].strip()) if d.get("title", "").strip() else d["text"].strip()
             for d in docs]
    test_ids = set()
    with open(os.path.join(args.data, "qrels", "test.tsv")) as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            if fields[0] != "query-id":
                test_ids.add(fields[0])
    queries = [q["text"] for q in map(json.loads, open(os.path.join(args.data, "queries.jsonl"))) if q["_id"] in test_ids]
    queries = queries[: args.queries]

    with tempfile.TemporaryDirectory() as tmp:
        catalog = os.path.join(tmp, "catalog.jsonl")
        with open(catalog, "w") as f:
            for d in docs:
                f.write(json.dumps({"id": d["_id"], "title": d.get("title", ""), "text": d["text"]}) + "\n")
        query_file = os.path.join(tmp, "queries.txt")
        with open(query_file, "w") as f:
            f.write("\n".join(q.replace("\n", " ") for q in queries) + "\n")
        peer_items, peer_p50, peer_p99, torch_version, reference = peer_run(args, texts, queries)
        others = []
        if args.onnx:
            for name, model in onnx_models(args, tmp):
                items, p50, p99, _, vectors = peer_run(args, texts, queries, model)
                others.append((name, items, p50, p99, float((vectors * reference).sum(axis=1).min())))
        rows = []
        for precision in args.precisions.split(","):
            rows.append((precision, *hyrank_run(args, precision, catalog, query_file)))

    print(f"\n{len(texts)} abstracts, {len(queries)} queries, {args.threads} threads, "
          f"median of {args.repeats} runs; peer: sentence-transformers on torch {torch_version}\n")
    print("| encoder | items/s | × peer | query p50 ms | query p99 ms | p50 × peer | worst cosine to goldens |")
    print("|---|---|---|---|---|---|---|")
    print(f"| sentence-transformers f32 | {peer_items:.1f} | 1.00 | {peer_p50:.2f} | {peer_p99:.2f} | 1.00 | (reference) |")
    for name, items, p50, p99, worst in others:
        print(f"| sentence-transformers, {name} | {items:.1f} | {items / peer_items:.2f} | {p50:.2f} | {p99:.2f} | "
              f"{p50 / peer_p50:.2f} | {worst:.6f} (to PyTorch's, on the abstracts) |")
    for precision, items, p50, p99, worst in rows:
        print(f"| hyrank {precision} | {items:.1f} | {items / peer_items:.2f} | {p50:.2f} | {p99:.2f} | "
              f"{p50 / peer_p50:.2f} | {worst:.6f} |")


if __name__ == "__main__":
    main()
