#!/usr/bin/env python3
"""BM25 search latency as live writes hide rows: the steady state, and the first search after
each write (the one that finds the new set of hidden rows and updates BM25's statistics).
Standard library only.

    python3 bench/live_hidden.py INDEX_DIR OUT_DIR [--steps 1000,3000,6000,10000]

INDEX_DIR holds a published SciFact generation; it is copied into OUT_DIR/index first. The
puts rewrite SciFact's own ids in corpus order with a short title and text (the encode of a
short text is a small part of a put), so each put hides the row it replaces: the
generation's rows first, then, past 5,183 puts, live rows put before. At 0 and at each step's
number of puts, one server, caches off:

1. 200 test queries, BM25 (`mode: bm25`, `k` 10), one at a time: the steady p50;
2. 40 times a put then one BM25 search: that search's p50 and max, and the puts' p50;
3. the server's resident memory (VmRSS) then.
"""
import http.client
import json
import os
import statistics

import live_server
from live_server import request


def main():
    parser = live_server.arguments()
    parser.add_argument("--steps", default="1000,3000,6000,10000")
    parser.add_argument("--log", default="warn",
                        help="the server's HYRANK_LOG; hyrank_engine=debug logs each put's stages to OUT/server.log")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    index = live_server.scratch_copy(args.index, args.out)
    ids = [json.loads(line)["_id"] for line in open(os.path.join(args.data, "corpus.jsonl"))]
    queries = [json.loads(line)["text"] for line in open(os.path.join(args.data, "queries.jsonl"))][:200]
    steps = [int(s) for s in args.steps.split(",")]
    server = live_server.start(args.serve, index, 18284, open(os.path.join(args.out, "server.log"), "w"),
                               extra_env={"HYRANK_MAX_LIVE_ITEMS": str(max(steps) + 1000), "HYRANK_LOG": args.log})
    conn = http.client.HTTPConnection("127.0.0.1", 18284, timeout=60)
    written = 0

    def put():
        nonlocal written
        body = {"title": f"rewritten {written}", "text": "a short text"}
        ms = request(conn, "PUT", f"/v1/items/{ids[written % len(ids)]}", body)[0]
        written += 1
        return ms

    def search(query):
        return request(conn, "POST", "/v1/search", {"query": query, "mode": "bm25", "k": 10})[0]

    print("| puts | rows hidden | BM25 p50, steady | first search after a put: p50 / max | PUT p50 | server RSS |")
    print("|---|---|---|---|---|---|")
    try:
        for target in [0] + steps:
            while written < target:
                put()
            for query in queries[:20]:
                search(query)
            steady = [search(q) for q in queries]
            after, puts = [], []
            for query in queries[:40]:
                puts.append(put())
                after.append(search(query))
            print(f"| {written} | {min(written, len(ids))} | {statistics.median(steady):.2f} ms | "
                  f"{statistics.median(after):.2f} / {max(after):.1f} ms | {statistics.median(puts):.1f} ms | "
                  f"{resident_mib(server.pid):.0f} MiB |", flush=True)
    finally:
        server.terminate()
        server.wait()


def resident_mib(pid):
    """The process's resident memory now (VmRSS), in MiB."""
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


if __name__ == "__main__":
    main()
