#!/usr/bin/env python3
"""Which score normalisation should the default hybrid fuse with?

    bench/fusion_norms.py DATA MODEL_DIR BM25_SCORES SPLIT [CACHE_DIR]

The default fuses BM25 and dense with equal weights after min-max over each retriever's top
100 ("MM"), and an item one list misses gets 0 from it. Two things make that depend on the
lists' depth (docs/EVAL.md): each list's lowest member sets its zero, and a missing item's 0
is not its score. This compares, on the same lists:

* mm: today's rule;
* tmm: theoretical min-max, "TM2C2" in Bruch, Gai & Ingber, "An Analysis of Fusion Functions
  for Hybrid Retrieval" (TOIS 2023): each score over the list's best, from the function's own
  floor (BM25 0, cosine -1), so no list member sets the scale's zero;
* the same two with the missing side filled: every candidate in either list gets its exact
  score from the other retriever too (its cosine to the query; its BM25, 0 when no term
  matches), which a search can afford (100 dot products, and BM25 scores every match anyway);
* z: z-scores over each list (DBSF's idea without its clip).

BM25_SCORES is `cargo run --release -p hyrank-engine --example bm25_scores -- INDEX DATA SPLIT`
(every match's raw score, as the generation scores). Dense vectors are sentence-transformers'
("title. text", 256 tokens, cached in CACHE_DIR as bench/prf_dense.py makes them), scored by
exact cosine. Prints nDCG@10 and Recall@100 per rule and depth, and, for the insight only, the
dense weight swept around 0.5.
"""
import sys

import numpy as np
import pytrec_eval

from passages_dense import read_qrels
from prf_dense import encode

COSINE_FLOOR = -1.0


def read_scores(path):
    scores = {}
    for line in open(path):
        q, d, s = line.rstrip("\n").split("\t")
        scores.setdefault(q, {})[d] = float(s)
    return scores


def top(scores, n):
    keys = sorted(scores, key=lambda d: (-scores[d], d))[:n]
    return {d: scores[d] for d in keys}


def normalise(rule, listed, full, floor):
    """{doc: normalised score} for the docs of `listed` (a top-n dict) and, when `full` is not
    None, for any doc asked later through the returned function."""
    values = np.array(list(listed.values()))
    hi, lo = values.max(), values.min()
    if rule == "mm":
        f = (lambda s: (s - lo) / (hi - lo)) if hi > lo else (lambda s: 1.0)
    elif rule == "tmm":
        f = (lambda s: (s - floor) / (hi - floor)) if hi > floor else (lambda s: 1.0)
    elif rule == "z":
        mu, sd = values.mean(), values.std(ddof=1) if len(values) > 1 else 0.0
        f = (lambda s: (s - mu) / sd) if sd > 0 else (lambda s: 1.0)
    return f


def fuse(rule, fill, bm25_full, cos_full, depth, w_dense):
    b_top, d_top = top(bm25_full, depth), top(cos_full, depth)
    fb = normalise(rule, b_top, bm25_full, 0.0)
    fd = normalise(rule, d_top, cos_full, COSINE_FLOOR)
    fused = {}
    for d in set(b_top) | set(d_top):
        if fill:
            b = fb(bm25_full.get(d, 0.0))
            c = fd(cos_full[d])
        else:
            # A missing side adds nothing (mm, tmm) or the list's floor (z: its lowest member).
            b = fb(b_top[d]) if d in b_top else (0.0 if rule != "z" else fb(min(b_top.values())) if b_top else 0.0)
            c = fd(d_top[d]) if d in d_top else (0.0 if rule != "z" else fd(min(d_top.values())))
        fused[d] = (1 - w_dense) * b + w_dense * c
    return fused


def main():
    data, model_dir, bm25_path, split = sys.argv[1:5]
    cache = sys.argv[5] if len(sys.argv) > 5 else "/tmp/prf-dense"
    docs, ids, queries, qids = encode(data, model_dir, cache)
    qrels, bm25 = read_qrels(data, split), read_scores(bm25_path)
    qindex = {q: i for i, q in enumerate(qids)}
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut_10", "recall_100"})
    # A query's own document is no answer to it (ArguAna, Quora): dropped, as `hyrank eval
    # search` and BEIR drop it, from both lists.
    cosines = {q: {d: c for d, c in zip(ids, (docs @ queries[qindex[q]]).tolist()) if d != q} for q in qrels}
    bm25 = {q: {d: s for d, s in hits.items() if d != q} for q, hits in bm25.items()}

    def measure(run):
        # pytrec_eval leaves out a query with no hits: it scores 0 and stays in the mean.
        m = evaluator.evaluate(run)
        ndcg = [m.get(q, {}).get("ndcg_cut_10", 0.0) for q in qrels]
        recall = [m.get(q, {}).get("recall_100", 0.0) for q in qrels]
        return np.mean(ndcg), np.mean(recall)

    print(f"{split}: {len(qrels)} queries")
    for name, run in (("bm25", {q: top(bm25.get(q, {}), 1000) for q in qrels}),
                      ("dense", {q: top(cosines[q], 1000) for q in qrels})):
        print(f"{name:24} {measure(run)[0]:.4f} ({measure(run)[1]:.4f})")
    for depth in (100, 1000):
        for rule in ("mm", "tmm", "z"):
            for fill in (False, True):
                run = {}
                for q in qrels:
                    b = bm25.get(q, {})
                    run[q] = top(fuse(rule, fill, b, cosines[q], depth, 0.5), 1000) if b else top(cosines[q], 1000)
                ndcg, recall = measure(run)
                name = f"{rule}{'+filled' if fill else ''} @{depth}"
                print(f"{name:24} {ndcg:.4f} ({recall:.4f})", flush=True)
    print("dense weight sweep, depth 100:")
    for rule, fill in (("mm", False), ("tmm", False), ("tmm", True), ("mm", True)):
        row = []
        for w in (0.3, 0.4, 0.5, 0.6, 0.7):
            run = {q: top(fuse(rule, fill, bm25.get(q, {}), cosines[q], 100, w), 1000) if bm25.get(q) else
                   top(cosines[q], 1000) for q in qrels}
            row.append(f"{w}: {measure(run)[0]:.4f}")
        print(f"  {rule}{'+filled' if fill else ''}: " + ", ".join(row), flush=True)


if __name__ == "__main__":
    main()
