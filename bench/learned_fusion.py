#!/usr/bin/env python3
"""How much would a learned fusion gain over the default's min-max sum? Cross-fitted on one
judged split, so no query is scored by a model that saw it.

    bench/learned_fusion.py DATA FEATURES.tsv SPLIT [SEEDS]

FEATURES.tsv is `cargo run --release -p hyrank-engine --example fusion_features -- INDEX DATA
SPLIT` (the default's candidates, BM25's and dense's top 100, with their raw evidence). Every
feature is a property of the query and the scores, never of an item's identity, so a model
cannot learn which items were judged relevant (what the trained reranker's gain on SciFact
is made of, docs/EVAL.md). Per query, from the raw scores:

* mm_bm25, mm_dense: min-max over each retriever's top 100, 0 off the list (the default sums
  these two);
* bm25, cosine: the raw scores, filled in for candidates the other retriever brought;
* z_bm25, z_dense: z-scores over each top 100;
* bm25_of_best: BM25 over the query's best BM25 score; cosine_gap: cosine minus the best;
* query_words;
* (the "all" set adds) BM25 with fields summed, BM25 with the title's b at 0, log ranks.

Models, each trained on 4/5 of the queries and scoring the fifth (5 folds, shuffled by SEED):
LambdaMART (LightGBM's lambdarank; 15 leaves, 300 trees, learning rate 0.05, 100 rows per
leaf), the same trees on a pointwise logistic loss, and a logistic regression on the same
features. Prints nDCG@10 and the mean gain over the default with a 90% paired bootstrap
interval, over all queries and apart for "seen" queries (a relevant item of the query is also
relevant to a query the model trained on: SciFact holds several claims per abstract) and the
rest. Needs numpy, lightgbm, scikit-learn and pytrec_eval-terrier from PyPI.
"""
import collections
import csv
import random
import sys

import lightgbm as lgb
import numpy as np
import pytrec_eval
from sklearn.linear_model import LogisticRegression

TREES = dict(num_leaves=15, learning_rate=0.05, n_estimators=300, min_child_samples=100, verbose=-1)
LEAN = ["mm_bm25", "mm_dense", "bm25", "cosine", "query_words", "z_bm25", "z_dense", "bm25_of_best", "cosine_gap"]
ALL = LEAN + ["bm25_sum", "bm25_title_b0", "log_bm25_rank", "log_dense_rank"]
TOP = 100


def qrels(data, split):
    judged = collections.defaultdict(dict)
    for row in list(csv.reader(open(f"{data}/qrels/{split}.tsv"), delimiter="\t"))[1:]:
        judged[row[0]][row[1]] = int(row[2])
    return judged


def minmax(values, on_list):
    if not on_list.any():
        return np.zeros_like(values)
    lo, hi = values[on_list].min(), values[on_list].max()
    scaled = (values - lo) / (hi - lo) if hi > lo else np.ones_like(values)
    return np.where(on_list, scaled, 0.0)


def zscore(values, on_list):
    if not on_list.any():
        return np.zeros_like(values)
    return (values - values[on_list].mean()) / (values[on_list].std() + 1e-9)


def queries(path):
    rows = collections.defaultdict(list)
    with open(path) as f:
        for row in csv.DictReader(f, delimiter="\t"):
            rows[row["query"]].append(row)
    out = []
    for query, candidates in rows.items():
        col = lambda name, kind=float: np.array([kind(c[name]) for c in candidates], dtype=float)
        bm25, cosine = col("bm25"), col("cosine")
        bm25_rank, dense_rank = col("bm25_rank"), col("dense_rank")
        on_bm25, on_dense = bm25_rank <= TOP, dense_rank <= TOP
        features = {
            "mm_bm25": minmax(bm25, on_bm25),
            "mm_dense": minmax(cosine, on_dense),
            "bm25": bm25,
            "cosine": cosine,
            "query_words": col("query_words"),
            "z_bm25": zscore(bm25, on_bm25),
            "z_dense": zscore(cosine, on_dense),
            "bm25_of_best": bm25 / (bm25.max() + 1e-9),
            "cosine_gap": cosine - cosine.max(),
            "bm25_sum": col("bm25_sum"),
            "bm25_title_b0": col("bm25_title_b0"),
            "log_bm25_rank": np.log(bm25_rank),
            "log_dense_rank": np.log(dense_rank),
        }
        out.append((query, [c["item"] for c in candidates], features))
    return out


def ndcg(run, judged):
    evaluator = pytrec_eval.RelevanceEvaluator({q: judged[q] for q in run}, {"ndcg_cut.10"})
    return {q: r["ndcg_cut_10"] for q, r in evaluator.evaluate(run).items()}


def run_of(data, scores):
    run = {}
    for (query, items, _), score in zip(data, scores):
        order = sorted(range(len(items)), key=lambda i: (-score[i], items[i]))[:TOP]
        run[query] = {items[i]: float(TOP - k) for k, i in enumerate(order)}
    return run


def folds_of(data, seed):
    order = list(range(len(data)))
    random.Random(seed).shuffle(order)
    return order, [set(order[i::5]) for i in range(5)]


def seen_queries(data, judged, seed):
    """The queries with a relevant item that a query of another fold also judges relevant."""
    _, folds = folds_of(data, seed)
    fold = {data[i][0]: k for k, members in enumerate(folds) for i in members}
    relevant_in = collections.defaultdict(set)
    for query in fold:
        for item, grade in judged[query].items():
            if grade > 0:
                relevant_in[item].add(fold[query])
    return {q for q in fold if any(relevant_in[i] - {fold[q]} for i, g in judged[q].items() if g > 0)}


def interval(gains):
    rng = np.random.default_rng(0)
    means = [gains[rng.integers(0, len(gains), len(gains))].mean() for _ in range(10_000)]
    lo, hi = np.percentile(means, [5, 95])
    return f"{gains.mean():+.4f} [{lo:+.4f}, {hi:+.4f}]"


def cross_fitted(data, labels, names, kind, seed):
    X = [np.stack([f[n] for n in names], 1) for _, _, f in data]
    order, folds = folds_of(data, seed)
    scores = [None] * len(data)
    for held_out in folds:
        train = [i for i in order if i not in held_out]
        Xtr, ytr = np.concatenate([X[i] for i in train]), np.concatenate([labels[i] for i in train])
        if kind == "lambdamart":
            model = lgb.LGBMRanker(objective="lambdarank", **TREES)
            model.fit(Xtr, ytr, group=[len(X[i]) for i in train])
            predict = model.predict
        elif kind == "trees, pointwise":
            model = lgb.LGBMClassifier(**TREES).fit(Xtr, (ytr > 0).astype(int))
            predict = lambda x: model.predict_proba(x)[:, 1]
        else:
            mu, sd = Xtr.mean(0), Xtr.std(0) + 1e-9
            model = LogisticRegression(max_iter=2000).fit((Xtr - mu) / sd, (ytr > 0).astype(int))
            predict = lambda x: ((x - mu) / sd) @ model.coef_[0]
        for i in held_out:
            scores[i] = predict(X[i])
    return scores


def main():
    data_dir, path, split = sys.argv[1:4]
    seeds = [int(s) for s in sys.argv[4].split(",")] if len(sys.argv) > 4 else [7]
    judged = qrels(data_dir, split)
    data = [d for d in queries(path) if d[0] in judged]
    labels = [np.array([judged[q].get(i, 0) for i in items]) for q, items, _ in data]
    base = ndcg(run_of(data, [f["mm_bm25"] + f["mm_dense"] for _, _, f in data]), judged)
    print(f"{len(data)} queries; the default (min-max sum): nDCG@10 {np.mean(list(base.values())):.4f}")
    print("| model | features | fold seed | nDCG@10 | gain, 90% interval | seen | unseen |")
    print("|---|---|---|---|---|---|---|")
    for kind, names, label in [
        ("lambdamart", LEAN, "lean"),
        ("lambdamart", ALL, "all"),
        ("trees, pointwise", LEAN, "lean"),
        ("logistic regression", LEAN, "lean"),
    ]:
        for seed in seeds:
            per = ndcg(run_of(data, cross_fitted(data, labels, names, kind, seed)), judged)
            seen = seen_queries(data, judged, seed)
            gain = lambda keep: interval(np.array([per[q] - base[q] for q in per if keep(q)]))
            print(f"| {kind} | {label} | {seed} | {np.mean(list(per.values())):.4f} | {gain(lambda q: True)} | "
                  f"{gain(lambda q: q in seen)} ({len(seen)}) | {gain(lambda q: q not in seen)} |", flush=True)


if __name__ == "__main__":
    main()
