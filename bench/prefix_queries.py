#!/usr/bin/env python3
"""A BEIR folder whose queries stop partway through their last word, as a search box sees
them while the words are typed, for measuring search as you type (`bm25.prefix: last`).

    python3 bench/prefix_queries.py ../shared/data/scifact /tmp/scifact-typing [--share 0.5]

Each query loses its closing punctuation ("...properties." is typed "...properties" first),
then its last word keeps the first `share` of its characters, rounded up and at least two
("properties" becomes "prope"). A last word of two characters or fewer is kept whole. The
corpus and the judgments are linked, not copied; the output folder is made if absent.
"""

import argparse
import math

import beir_queries


def typed_so_far(text: str, share: float) -> str:
    text = text.rstrip().rstrip(".?!,;:")
    head, _, last = text.rpartition(" ")
    if len(last) <= 2:
        return text
    keep = max(2, math.ceil(len(last) * share))
    return (head + " " if head else "") + last[:keep]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", help="a BEIR folder: corpus.jsonl, queries.jsonl, qrels/")
    parser.add_argument("out", help="the folder to write")
    parser.add_argument("--share", type=float, default=0.5, help="of the last word's characters kept")
    args = parser.parse_args()
    cut, total = beir_queries.rewrite(args.data, args.out, lambda text: typed_so_far(text, args.share))
    print(f"{cut} of {total} queries were cut (or lost their closing punctuation)")

if __name__ == "__main__":
    main()
