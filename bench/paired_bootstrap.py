#!/usr/bin/env python3
"""Paired bootstrap of the per-query nDCG@10 gain between two `hyrank eval search` configurations.

    bench/paired_bootstrap.py BASE.per-query.tsv OTHER.per-query.tsv [RESAMPLES] [SEED]

Reads the per-query files the eval writes (`query`, `ndcg@10`, ...), pairs them by query and
prints the mean gain of OTHER over BASE, how many queries improved and got worse, and the 90%
interval of the mean gain over RESAMPLES (default 10,000) resamples of the queries. Standard
library only.
"""
import csv
import json
import random
import statistics
import sys


def per_query(path):
    with open(path) as f:
        return {row["query"]: float(row["ndcg@10"]) for row in csv.DictReader(f, delimiter="\t")}


def main():
    base, other = per_query(sys.argv[1]), per_query(sys.argv[2])
    resamples = int(sys.argv[3]) if len(sys.argv) > 3 else 10_000
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else 42
    if base.keys() != other.keys():
        sys.exit("the two files do not judge the same queries")
    gains = [other[q] - base[q] for q in sorted(base)]
    rng = random.Random(seed)
    means = sorted(statistics.fmean(rng.choices(gains, k=len(gains))) for _ in range(resamples))
    print(
        json.dumps(
            {
                "queries": len(gains),
                "base_ndcg10": statistics.fmean(base.values()),
                "other_ndcg10": statistics.fmean(other.values()),
                "mean_gain": statistics.fmean(gains),
                "improved": sum(g > 0 for g in gains),
                "worse": sum(g < 0 for g in gains),
                "gain_interval_90": [means[int(0.05 * resamples)], means[int(0.95 * resamples) - 1]],
            }
        )
    )


if __name__ == "__main__":
    main()
