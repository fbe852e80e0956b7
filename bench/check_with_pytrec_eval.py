#!/usr/bin/env python3
"""Recomputes hyrank's per-query metrics from its TREC run file with pytrec_eval and reports
the largest difference per metric.

    python3 bench/check_with_pytrec_eval.py ../shared/data/scifact/qrels/test.tsv OUT/hybrid-rrf.run OUT/hybrid-rrf.per-query.tsv

trec_eval re-sorts a run by score (then by document id) before scoring; hyrank ranks by score
with ties broken by its own item order, so queries with tied scores can differ slightly.
"""
import csv
import sys

import pytrec_eval

qrels_path, run_path, per_query_path = sys.argv[1:4]
qrels = {}
with open(qrels_path, encoding="utf-8-sig") as f:
    for row in csv.reader(f, delimiter="\t"):
        if not row or row[0] == "query-id":
            continue
        qrels.setdefault(row[0], {})[row[1]] = int(row[2])
run = {}
for line in open(run_path):
    q, _, doc, rank, score, _ = line.split()
    run.setdefault(q, {})[doc] = float(score)
evaluator = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100", "map_cut.100"})
theirs = evaluator.evaluate(run)
ours = {row["query"]: row for row in csv.DictReader(open(per_query_path), delimiter="\t")}
pairs = {"ndcg@10": "ndcg_cut_10", "recall@100": "recall_100", "map@100": "map_cut_100"}
for metric, trec in pairs.items():
    diffs = [abs(float(ours[q][metric]) - theirs.get(q, {}).get(trec, 0.0)) for q in qrels]
    mean_ours = sum(float(ours[q][metric]) for q in qrels) / len(qrels)
    mean_theirs = sum(theirs.get(q, {}).get(trec, 0.0) for q in qrels) / len(qrels)
    print(f"{metric:<11} hyrank {mean_ours:.6f}  pytrec_eval {mean_theirs:.6f}  max per-query diff {max(diffs):.2e}  queries differing >1e-6: {sum(d > 1e-6 for d in diffs)}")
