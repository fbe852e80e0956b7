#!/usr/bin/env python3
"""A BEIR folder whose queries each carry one typo, for measuring typo tolerance.

    python3 bench/typo_queries.py ../shared/data/scifact /tmp/scifact-typo [--seed 7] [--every]

In each query one word of five or more ASCII letters, drawn at random (with --every, each
such word: the worst case for typo tolerance's time), gets one random edit:
a deletion, an insertion, a substitution or a swap of two neighbouring letters (the four
kinds of typo Damerau counted). A query with no such word is kept as it is. The corpus and
the judgments are linked, not copied; the output folder is made if absent.
"""

import argparse
import random
import re
import string

import beir_queries


def typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(len(word))
    kind = rng.choice(["delete", "insert", "substitute", "swap"])
    if kind == "delete":
        return word[:i] + word[i + 1 :]
    if kind == "insert":
        return word[:i] + rng.choice(string.ascii_lowercase) + word[i:]
    if kind == "substitute":
        return word[:i] + rng.choice(string.ascii_lowercase.replace(word[i].lower(), "")) + word[i + 1 :]
    i = min(i, len(word) - 2)
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", help="a BEIR folder: corpus.jsonl, queries.jsonl, qrels/")
    parser.add_argument("out", help="the folder to write")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--every", action="store_true", help="a typo in every such word, not in one")
    args = parser.parse_args()
    rng = random.Random(args.seed)

    def change(text: str) -> str:
        words = text.split(" ")
        long = [i for i, w in enumerate(words) if re.fullmatch(r"[A-Za-z]{5,}", w)]
        for i in long if args.every else [rng.choice(long)] if long else []:
            words[i] = typo(words[i], rng)
        return " ".join(words)

    changed, total = beir_queries.rewrite(args.data, args.out, change)
    print(f"{changed} of {total} queries carry a typo (a swap of two equal letters changes nothing)")


if __name__ == "__main__":
    main()
