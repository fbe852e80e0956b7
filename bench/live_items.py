#!/usr/bin/env python3
"""Items written live under measurement: PUT /v1/items/{id} latency (the model's encode of the
item is most of it), how soon a new item is found, and what the live rows cost a search.
Standard library only; wrk drives the searches.

    python3 bench/live_items.py INDEX_DIR OUT_DIR [--items 500] [--seconds 20]

INDEX_DIR holds a published SciFact generation; it is copied into OUT_DIR/index first, so the
writes land in a scratch live log. The items put are SciFact abstracts under new ids
(`live-<id>`): real lengths, and each has a twin in the generation, which is what a catalog
team's new product usually is too. Phases, one server:

1. searches at concurrency 8 (wrk, caches off), no live items: p50/p99, req/s;
2. --items puts, one at a time; after each answer, a BM25 search for the item's title and a
   dense search for its text, each checked for the new id in its top 10 (the time from the
   put's start until both found it is reported);
3. the searches of phase 1 again, with the live items on top of the generation.

Prints a markdown table; raw wrk output and /metrics are left in OUT_DIR.
"""
import http.client
import json
import os
import random
import statistics
import subprocess
import time

import live_server
from live_server import request
from live_server import percentile
from live_writes import wrk


def main():
    parser = live_server.arguments()
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--seconds", type=int, default=20)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    index = live_server.scratch_copy(args.index, args.out)
    corpus = [json.loads(line) for line in open(os.path.join(args.data, "corpus.jsonl"))]
    items = random.Random(11).sample(corpus, args.items)
    lua = os.path.join(args.out, "search.lua")
    with open(lua, "w") as f:
        subprocess.run(["python3", "bench/make_wrk_script.py", args.data, "test", '{"k": 10}'], stdout=f, check=True)

    port = 18283
    server = live_server.start(args.serve, index, port, open(os.path.join(args.out, "server.log"), "w"))
    try:
        before = wrk(args, lua, port, "no-live-items")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        puts, found_ms, missed = [], [], []
        for doc in items:
            item_id = f"live-{doc['_id']}"
            body = {"title": doc.get("title", ""), "text": doc.get("text", "")}
            start = time.perf_counter()
            put_ms, answer = request(conn, "PUT", f"/v1/items/{item_id}", body)
            assert answer["created"], answer
            _, bm25 = request(conn, "POST", "/v1/search", {"query": doc["title"] or doc["text"][:200], "mode": "bm25", "k": 10})
            _, dense = request(conn, "POST", "/v1/search", {"query": doc["text"][:1000] or doc["title"], "mode": "dense", "k": 10})
            elapsed = (time.perf_counter() - start) * 1000
            puts.append(put_ms)
            if all(item_id in [h["id"] for h in r["hits"]] for r in (bm25, dense)):
                found_ms.append(elapsed)
            else:
                missed.append(item_id)
        after = wrk(args, lua, port, "with-live-items")
        metrics = http.client.HTTPConnection("127.0.0.1", port)
        metrics.request("GET", "/metrics")
        open(os.path.join(args.out, "metrics.txt"), "wb").write(metrics.getresponse().read())
    finally:
        server.terminate()
        server.wait()

    print(f"{args.items} SciFact abstracts put as new items one at a time; searches at c8 for {args.seconds} s "
          f"(caches off), 2 wrk threads\n")
    print("| measurement | p50 | p99 | rate | notes |")
    print("|---|---|---|---|---|")
    print(f"| PUT /v1/items/{{id}} (embed, durable append, index) | {statistics.median(puts):.1f} ms | "
          f"{percentile(puts, 99):.1f} ms | {1000 / statistics.mean(puts):.1f} puts/s | |")
    if found_ms:
        print(f"| put start → found by BM25 and dense (top 10) | {statistics.median(found_ms):.1f} ms | "
              f"{percentile(found_ms, 99):.1f} ms | | {len(found_ms)}/{len(items)} found by the first searches after the answer |")
    if missed:
        print(f"| not in both top 10s at once | | | | {len(missed)}: {', '.join(missed[:5])} |")
    print(f"| search c8, no live items | {before[0]:.2f} ms | {before[1]:.2f} ms | {before[2]:.0f} req/s | {before[3]} non-2xx |")
    print(f"| search c8, {args.items} live items | {after[0]:.2f} ms | {after[1]:.2f} ms | {after[2]:.0f} req/s | {after[3]} non-2xx |")


if __name__ == "__main__":
    main()
