#!/usr/bin/env python3
"""Would pseudo-relevance feedback on the dense side lift the hybrid's first stage?

    bench/prf_dense.py DATA MODEL_DIR BM25_RUN SPLIT [CACHE_DIR]

Rocchio feedback on query vectors (Rocchio 1971; for dense retrievers, Li et al., "Pseudo
Relevance Feedback with Deep Language Models and Dense Retrievers: Successes and Pitfalls",
TOIS 2023): the hybrid's first pass (BM25 and dense fused as the engine's default fuses:
min-max over the top 100 of each list, equal weights) names its top k documents; the query
vector becomes `normalize(v + beta * mean(top-k document vectors))`, the dense list is searched
again with it (exact cosine here, HNSW in the engine), and fused with the same BM25 list. The
cost at query time would be one more vector search, no encoder call.

Document vectors are each document's first 256 tokens ("title text"), what the engine embeds,
encoded by sentence-transformers (CPU, 2 threads) and cached in CACHE_DIR (default
/tmp/prf-dense). BM25_RUN is as for bench/passages_dense.py: the run file of `hyrank eval
search --depth 200 --configs "hybrid-linear+bm25=1+dense=0+rerank=off+candidates=200"` on
SPLIT. Prints nDCG@10 and Recall@100 of the dense list and the hybrid for each (k, beta).
Needs sentence-transformers and pytrec_eval-terrier.
"""
import json
import os
import sys

import numpy as np
import pytrec_eval
import torch
from sentence_transformers import SentenceTransformer

from passages_dense import minmax, read_bm25_run, read_qrels

DEPTH = 100


def encode(data, model_dir, cache):
    if os.path.exists(f"{cache}/docs.npy"):
        return (np.load(f"{cache}/docs.npy"), json.load(open(f"{cache}/ids.json")),
                np.load(f"{cache}/queries.npy"), json.load(open(f"{cache}/qids.json")))
    torch.set_num_threads(2)
    os.makedirs(cache, exist_ok=True)
    model = SentenceTransformer(model_dir, device="cpu")
    model.max_seq_length = 256
    docs = [json.loads(line) for line in open(f"{data}/corpus.jsonl")]
    texts = [(d.get("title", "") + ". " + d.get("text", "")).strip() for d in docs]
    vectors = model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
    queries = [json.loads(line) for line in open(f"{data}/queries.jsonl")]
    qvectors = model.encode([q["text"] for q in queries], batch_size=64, normalize_embeddings=True,
                            convert_to_numpy=True)
    ids, qids = [d["_id"] for d in docs], [q["_id"] for q in queries]
    np.save(f"{cache}/docs.npy", vectors)
    np.save(f"{cache}/queries.npy", qvectors)
    json.dump(ids, open(f"{cache}/ids.json", "w"))
    json.dump(qids, open(f"{cache}/qids.json", "w"))
    return vectors, ids, qvectors, qids


def dense_list(docs, ids, v):
    s = docs @ v
    top = np.argpartition(-s, DEPTH)[:DEPTH]
    return {ids[d]: float(s[d]) for d in top}


def fuse(dense, bm25):
    a, b = minmax(dense), minmax(bm25) if bm25 else {}
    return {d: a.get(d, 0.0) + b.get(d, 0.0) for d in set(a) | set(b)}


def main():
    data, model_dir, bm25_run, split = sys.argv[1:5]
    cache = sys.argv[5] if len(sys.argv) > 5 else "/tmp/prf-dense"
    docs, ids, queries, qids = encode(data, model_dir, cache)
    row = {d: i for i, d in enumerate(ids)}
    qrels, bm25 = read_qrels(data, split), read_bm25_run(bm25_run)
    qindex = {q: i for i, q in enumerate(qids)}
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut_10", "recall_100"})

    def report(name, dense, hybrid):
        for kind, run in (("dense", dense), ("hybrid", hybrid)):
            m = evaluator.evaluate(run).values()
            ndcg = np.mean([x["ndcg_cut_10"] for x in m])
            recall = np.mean([x["recall_100"] for x in m])
            print(f"{split}\t{name}\t{kind}\tnDCG@10 {ndcg:.4f}\tRecall@100 {recall:.4f}", flush=True)

    first_dense = {q: dense_list(docs, ids, queries[qindex[q]]) for q in qrels}
    first_hybrid = {q: fuse(first_dense[q], bm25.get(q, {})) for q in qrels}
    report("no feedback", first_dense, first_hybrid)
    for k in (3, 5, 10):
        for beta in (0.25, 0.5, 1.0):
            dense, hybrid = {}, {}
            for q in qrels:
                top = sorted(first_hybrid[q].items(), key=lambda x: (-x[1], x[0]))[:k]
                centroid = docs[[row[d] for d, _ in top]].mean(axis=0)
                v = queries[qindex[q]] + beta * centroid
                dense[q] = dense_list(docs, ids, v / np.linalg.norm(v))
                hybrid[q] = fuse(dense[q], bm25.get(q, {}))
            report(f"k {k} beta {beta}", dense, hybrid)


if __name__ == "__main__":
    main()
