#!/usr/bin/env python3
"""Paired bootstrap of the per-query nDCG@10 gain between two `hyrank eval search` configurations
(or, with the per-user files of `hyrank eval recommend`, between two recommendation modes).

    bench/paired_bootstrap.py BASE.per-query.tsv OTHER.per-query.tsv [RESAMPLES] [SEED] [METRIC]
    bench/paired_bootstrap.py OUT/random/cf.per-user.tsv OUT/random/hybrid.per-user.tsv 10000 42 recall@20

Reads the per-query files the eval writes (`query`, `ndcg@10`, ...), pairs them by query and
prints the mean gain of OTHER over BASE, how many queries improved and got worse, and the 90%
interval of the mean gain over RESAMPLES (default 10,000) resamples of the queries. METRIC is
the column compared (default `ndcg@10`). Standard library only.
"""
import csv
import json
import random
import statistics
import sys


def per_query(path, metric):
    # Search files key rows by `query`; `hyrank eval recommend`'s per-user files by `user`.
    with open(path) as f:
        reader = csv.DictReader(f, delimiter="\t")
        key = next((k for k in ("query", "user") if k in (reader.fieldnames or [])), None)
        if key is None or metric not in reader.fieldnames:
            sys.exit(f"{path}: needs a query or user column and a {metric} column, has {reader.fieldnames}")
        return {row[key]: float(row[metric]) for row in reader}


def main():
    resamples = int(sys.argv[3]) if len(sys.argv) > 3 else 10_000
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else 42
    metric = sys.argv[5] if len(sys.argv) > 5 else "ndcg@10"
    base, other = per_query(sys.argv[1], metric), per_query(sys.argv[2], metric)
    if base.keys() != other.keys():
        sys.exit("the two files do not judge the same queries")
    gains = [other[q] - base[q] for q in sorted(base)]
    rng = random.Random(seed)
    means = sorted(statistics.fmean(rng.choices(gains, k=len(gains))) for _ in range(resamples))
    print(
        json.dumps(
            {
                "metric": metric,
                "pairs": len(gains),
                "base_mean": statistics.fmean(base.values()),
                "other_mean": statistics.fmean(other.values()),
                "mean_gain": statistics.fmean(gains),
                "improved": sum(g > 0 for g in gains),
                "worse": sum(g < 0 for g in gains),
                "gain_interval_90": [means[int(0.05 * resamples)], means[int(0.95 * resamples) - 1]],
            }
        )
    )


if __name__ == "__main__":
    main()
