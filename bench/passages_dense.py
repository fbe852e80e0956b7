#!/usr/bin/env python3
"""Would scoring long documents by passages help the dense retriever, alone and in the hybrid?

    bench/passages_dense.py DATA MODEL_DIR BM25_RUN SPLIT [CACHE_DIR]

MiniLM reads 256 tokens; 71% of SciFact's title + abstract texts are longer (median 316). Each
document is cut into windows of 254 tokens overlapping by 32, each window encoded by
sentence-transformers (CPU, 2 threads; cached in CACHE_DIR, default /tmp/passages-dense), and a
document scored against the query by its first window (what the engine does: truncation),
the best window (MaxP, Dai & Callan, SIGIR 2019), the mean of its windows' vectors, or the mean
of first and best. Each is fused with BM25 as the engine's default fuses (min-max over the top
100 of each list, equal weights, an item missing from a list adds nothing).

BM25_RUN is the run file of `hyrank eval search --depth 200 --configs
"hybrid-linear+bm25=1+dense=0+rerank=off+candidates=200"` on SPLIT (add `+fields=bm25f` on a
generation built before BM25F became the default): the BM25 list already
min-max-normalised (its positive scores; the rest are the dense list's, weighted 0). Prints
nDCG@10 and Recall@100 for each scoring, dense alone and fused. Needs sentence-transformers,
tokenizers and pytrec_eval-terrier.
"""
import csv
import json
import os
import sys

import numpy as np
import pytrec_eval
import torch
from sentence_transformers import SentenceTransformer
from tokenizers import Tokenizer

WINDOW, OVERLAP, DEPTH = 254, 32, 100


def encode(data, model_dir, cache):
    if os.path.exists(f"{cache}/passages.npy"):
        return (np.load(f"{cache}/passages.npy"), np.load(f"{cache}/owner.npy"),
                json.load(open(f"{cache}/ids.json")), np.load(f"{cache}/queries.npy"),
                json.load(open(f"{cache}/qids.json")))
    torch.set_num_threads(2)
    os.makedirs(cache, exist_ok=True)
    tok = Tokenizer.from_file(f"{model_dir}/tokenizer.json")
    tok.no_truncation()
    tok.no_padding()
    model = SentenceTransformer(model_dir, device="cpu")
    ids, passages, owner = [], [], []
    for line in open(f"{data}/corpus.jsonl"):
        d = json.loads(line)
        text = (d.get("title", "") + " " + d.get("text", "")).strip()
        offsets = tok.encode(text, add_special_tokens=False).offsets
        start = 0
        while True:
            passages.append(text[offsets[start][0] if start < len(offsets) else len(text):])
            owner.append(len(ids))
            if start + WINDOW >= len(offsets):
                break
            start += WINDOW - OVERLAP
        ids.append(d["_id"])
    vectors = model.encode(passages, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
    queries = [json.loads(line) for line in open(f"{data}/queries.jsonl")]
    qvectors = model.encode([q["text"] for q in queries], batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    qids = [q["_id"] for q in queries]
    np.save(f"{cache}/passages.npy", vectors)
    np.save(f"{cache}/owner.npy", np.array(owner))
    np.save(f"{cache}/queries.npy", qvectors)
    json.dump(ids, open(f"{cache}/ids.json", "w"))
    json.dump(qids, open(f"{cache}/qids.json", "w"))
    return vectors, np.array(owner), ids, qvectors, qids


def read_qrels(data, split):
    """{query id: {document id: grade}} from DATA/qrels/SPLIT.tsv."""
    qrels = {}
    with open(f"{data}/qrels/{split}.tsv") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    return qrels


def read_bm25_run(path):
    """{query id: {document id: score}} of a run file's positive scores (the BM25 list of a
    `bm25=1+dense=0` run; the rest are the dense list's, weighted 0)."""
    bm25 = {}
    for line in open(path):
        q, _, d, _, score, _ = line.split()
        if float(score) > 0:
            bm25.setdefault(q, {})[d] = float(score)
    return bm25


def minmax(run):
    lo, hi = min(run.values()), max(run.values())
    return {d: (s - lo) / (hi - lo) if hi > lo else 1.0 for d, s in run.items()}


def main():
    data, model_dir, bm25_run, split = sys.argv[1:5]
    cache = sys.argv[5] if len(sys.argv) > 5 else "/tmp/passages-dense"
    passages, owner, ids, queries, qids = encode(data, model_dir, cache)
    starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    first = passages[starts]
    mean = np.add.reduceat(passages, starts, axis=0)
    mean /= np.linalg.norm(mean, axis=1, keepdims=True)
    qrels, bm25 = read_qrels(data, split), read_bm25_run(bm25_run)
    qindex = {q: i for i, q in enumerate(qids)}
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut_10", "recall_100"})
    scorings = {
        "first window (truncation)": lambda v, p: first @ v,
        "best window (MaxP)": lambda v, p: np.maximum.reduceat(p, starts),
        "mean of windows": lambda v, p: mean @ v,
        "mean of first and best": lambda v, p: 0.5 * (first @ v + np.maximum.reduceat(p, starts)),
    }
    for name, score in scorings.items():
        dense, hybrid = {}, {}
        for q in qrels:
            v = queries[qindex[q]]
            s = score(v, passages @ v)
            top = np.argpartition(-s, DEPTH)[:DEPTH]
            dense[q] = {ids[d]: float(s[d]) for d in top}
            a, b = minmax(dense[q]), minmax(bm25[q]) if bm25.get(q) else {}
            hybrid[q] = {d: a.get(d, 0.0) + b.get(d, 0.0) for d in set(a) | set(b)}
        for kind, run in (("dense", dense), ("hybrid", hybrid)):
            m = evaluator.evaluate(run).values()
            ndcg = np.mean([x["ndcg_cut_10"] for x in m])
            recall = np.mean([x["recall_100"] for x in m])
            print(f"{split}\t{name}\t{kind}\tnDCG@10 {ndcg:.4f}\tRecall@100 {recall:.4f}", flush=True)


if __name__ == "__main__":
    main()
