#!/usr/bin/env python3
"""Would score regularization lift the default hybrid? Measured on one judged split.

    bench/score_regularization.py DATA FEATURES.tsv VECTORS SPLIT

The cluster hypothesis (documents close to each other are relevant to the same queries) says a
candidate's score should move toward its neighbours' scores: Diaz, "Regularizing ad hoc
retrieval scores" (CIKM 2005). Per query, over the default's candidates (BM25's and dense's top
100), each candidate's k nearest other candidates by document cosine are found, and a score s
becomes (1 - alpha) * s + alpha * (the neighbours' scores averaged, weighted by their cosine,
negatives as 0). Applied to the fused score, to the min-max BM25 side only (the dense
neighbourhood carries BM25 evidence to documents that miss a query word), or to the min-max
dense side only. A search could afford it: 200 x 200 dot products over vectors it already holds.

FEATURES.tsv is `cargo run --release -p hyrank-engine --example fusion_features -- INDEX DATA
SPLIT`, VECTORS the same generation's `dense.vectors` (f32 rows in `item_index` order). Prints
nDCG@10 for the default (min-max over each top 100, equal weights, 0 off a list) and for each
alpha and k, then the honest estimate of choosing a cell: a 2-fold split of the queries (seeded),
the best cell chosen on one half and scored on the other, both ways. Needs numpy and
pytrec_eval-terrier.
"""
import csv
import random
import sys
from collections import defaultdict

import numpy as np
import pytrec_eval

ALPHAS = (0.05, 0.1, 0.2, 0.3)
KS = (3, 5, 10)
TARGETS = ("fused", "bm25", "dense")


def min_max(x, listed):
    """Min-max over the listed members, 0 for the rest (the default's rule)."""
    if not listed.any():
        return np.zeros_like(x)
    hi, lo = x[listed].max(), x[listed].min()
    return np.where(listed, (x - lo) / (hi - lo) if hi > lo else 1.0, 0.0)


def main():
    data, features, vectors, split = sys.argv[1:5]
    dim = 384
    docs = np.fromfile(vectors, dtype=np.float32).reshape(-1, dim)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    rows = defaultdict(list)
    for r in csv.DictReader(open(features), delimiter="\t"):
        rows[r["query"]].append(r)
    qrels = defaultdict(dict)
    for r in list(csv.reader(open(f"{data}/qrels/{split}.tsv"), delimiter="\t"))[1:]:
        qrels[r[0]][r[1]] = int(r[2])
    evaluator = pytrec_eval.RelevanceEvaluator(dict(qrels), {"ndcg_cut_10"})
    prepared = {}
    for q, rs in rows.items():
        index = np.array([int(r["item_index"]) for r in rs])
        bm25 = min_max(np.array([float(r["bm25"]) for r in rs]), np.array([int(r["bm25_rank"]) <= 100 for r in rs]))
        dense = min_max(np.array([float(r["cosine"]) for r in rs]), np.array([int(r["dense_rank"]) <= 100 for r in rs]))
        sims = docs[index] @ docs[index].T
        np.fill_diagonal(sims, -np.inf)
        prepared[q] = ([r["item"] for r in rs], bm25, dense, sims)

    def per_query(alpha, k, target):
        run = {}
        for q, (ids, bm25, dense, sims) in prepared.items():
            near = np.argpartition(-sims, k, axis=1)[:, :k]
            weight = np.take_along_axis(sims, near, 1).clip(min=0)

            def smooth(x):
                if alpha == 0:
                    return x
                return (1 - alpha) * x + alpha * (weight * x[near]).sum(1) / np.maximum(weight.sum(1), 1e-9)

            if target == "fused":
                fused = smooth(0.5 * bm25 + 0.5 * dense)
            elif target == "bm25":
                fused = 0.5 * smooth(bm25) + 0.5 * dense
            else:
                fused = 0.5 * bm25 + 0.5 * smooth(dense)
            order = np.argsort(-fused, kind="stable")[:100]
            run[q] = {ids[i]: float(fused[i]) for i in order}
        m = evaluator.evaluate(run)
        return {q: m.get(q, {}).get("ndcg_cut_10", 0.0) for q in qrels}

    base = per_query(0, 3, "fused")
    print(f"{split}: {len(qrels)} queries; the default {np.mean(list(base.values())):.4f}")
    cells = {}
    for target in TARGETS:
        for k in KS:
            for alpha in ALPHAS:
                cells[(target, k, alpha)] = per_query(alpha, k, target)
            print(f"{target:6} k {k:2}: " + "  ".join(
                f"a {a}: {np.mean(list(cells[(target, k, a)].values())):.4f}" for a in ALPHAS), flush=True)
    queries = sorted(qrels)
    random.Random(7).shuffle(queries)
    halves = (queries[: len(queries) // 2], queries[len(queries) // 2:])
    for pick, score in ((0, 1), (1, 0)):
        best = max(cells, key=lambda c: np.mean([cells[c][q] for q in halves[pick]]))
        gain = [cells[best][q] - base[q] for q in halves[score]]
        print(f"chosen on half {pick} {best}: on half {score} {np.mean(gain):+.4f} "
              f"({sum(g > 0 for g in gain)} better, {sum(g < 0 for g in gain)} worse)")


if __name__ == "__main__":
    main()
