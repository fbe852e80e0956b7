#!/usr/bin/env python3
"""Does a trained model's gain come from items its training judged, or does it carry to new ones?

    bench/seen_items.py TRAIN_QRELS TEST_QRELS BASE.per-query.tsv OTHER.per-query.tsv [RESAMPLES] [SEED]

SciFact's claims cite a small set of abstracts, and about two thirds of the test queries have a
relevant abstract that is also relevant to some training query. A model trained on the train
judgments (the reranker of `hyrank train-reranker`, a fine-tuned encoder) can learn those items
rather than relevance, and a held-out catalog will not reward that. This splits the test queries
into **seen** (some relevant item is also relevant in TRAIN_QRELS) and **unseen** (none is), and
for each part prints the queries, both means, the mean gain of OTHER over BASE with its 90%
paired-bootstrap interval, and how many queries improved and got worse; first, the share of
the evaluated queries' relevant items that are also relevant in TRAIN_QRELS.

The qrels are BEIR TSVs (`query-id corpus-id score`, a header line); the per-query files are
`hyrank eval search`'s. Standard library only.
"""
import json
import random
import statistics
import sys

from paired_bootstrap import per_query


def relevant(path):
    by_query = {}
    with open(path) as f:
        for number, line in enumerate(f, 1):
            fields = line.split()
            if number == 1 and not fields[-1].lstrip("-").isdigit():
                continue  # the header
            if len(fields) != 3:
                sys.exit(f"{path}:{number}: expected `query-id corpus-id score`, got {line!r}")
            if int(fields[2]) >= 1:
                by_query.setdefault(fields[0], set()).add(fields[1])
    return by_query


def interval(gains, resamples, seed):
    rng = random.Random(seed)
    means = sorted(statistics.fmean(rng.choices(gains, k=len(gains))) for _ in range(resamples))
    return [means[int(0.05 * resamples)], means[int(0.95 * resamples) - 1]]


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    train, test = relevant(sys.argv[1]), relevant(sys.argv[2])
    base, other = per_query(sys.argv[3], "ndcg@10"), per_query(sys.argv[4], "ndcg@10")
    resamples = int(sys.argv[5]) if len(sys.argv) > 5 else 10_000
    seed = int(sys.argv[6]) if len(sys.argv) > 6 else 42
    if base.keys() != other.keys():
        sys.exit("the two files do not judge the same queries")
    missing = sorted(set(base) - set(test))
    if missing:
        sys.exit(f"{len(missing)} evaluated queries have no relevant item in {sys.argv[2]}, e.g. {missing[0]}")
    trained_items = set().union(*train.values())
    parts = {"seen": [], "unseen": []}
    for query in sorted(base):
        parts["seen" if test[query] & trained_items else "unseen"].append(query)
    test_items = set().union(*(test[q] for q in base))
    report = {"relevant_items_seen": round(len(test_items & trained_items) / len(test_items), 4)}
    for name, queries in parts.items():
        if not queries:
            report[name] = {"queries": 0}
            continue
        gains = [other[q] - base[q] for q in queries]
        report[name] = {
            "queries": len(queries),
            "base_mean": round(statistics.fmean(base[q] for q in queries), 4),
            "other_mean": round(statistics.fmean(other[q] for q in queries), 4),
            "mean_gain": round(statistics.fmean(gains), 4),
            "gain_interval_90": [round(x, 4) for x in interval(gains, resamples, seed)],
            "improved": sum(g > 0 for g in gains),
            "worse": sum(g < 0 for g in gains),
        }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
