#!/usr/bin/env python3
"""What browsing costs (a search with filters or a sort and no query) on a catalog of N items.

    python3 bench/browse_latency.py WORK_DIR [--items 50000] [--runs 50]

Writes WORK_DIR/catalog.jsonl (N items with short titles, a `category` of 25 values, a
`brand` of 200 and a `price`; seed 7), indexes it into WORK_DIR/idx unless that exists
(`hyrank index`), starts `hyrank-serve` on it with its caches off (`live_server.start`), and sends each
request below `--runs` times one at a time, printing the median and 99th percentile of the
engine's own `timings.total_ms` (the server's time, not the client's) and the hits counted.
A query search is timed beside the browses for scale. Needs HYRANK_MODEL_DIR when run outside
the repository root, and a release build.
"""

import argparse
import http.client
import json
import os
import random
import subprocess
import time

import live_server

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOUNS = ["kettle", "tent", "lamp", "stove", "mug", "pack", "jacket", "boot", "rope", "knife"]
COLOURS = ["red", "blue", "green", "black", "white", "grey", "orange", "yellow"]

REQUESTS = [
    ("one category (1/25 of items), k 24", {"filters": {"category": "c07"}, "k": 24}),
    ("one category, cheapest first", {"filters": {"category": "c07"}, "sort": [{"field": "price"}], "k": 24}),
    ("one category, facet brand", {"filters": {"category": "c07"}, "facets": ["brand"], "k": 24}),
    ("every item, cheapest first", {"sort": [{"field": "price"}], "k": 24}),
    ("every item by brand, then cheapest", {"sort": [{"field": "brand"}, {"field": "price"}], "k": 24}),
    ("every item but one category", {"exclude": {"category": "c07"}, "k": 24}),
    ("query \"blue kettle\" (hybrid, for scale)", {"query": "blue kettle", "k": 24}),
]


def write_catalog(path: str, items: int) -> None:
    rng = random.Random(7)
    with open(path, "w", encoding="utf-8") as out:
        for i in range(items):
            item = {
                "id": f"P{i:07d}",
                "title": f"{rng.choice(COLOURS)} {rng.choice(NOUNS)} {i}",
                "text": "",
                "fields": {
                    "category": f"c{rng.randrange(25):02d}",
                    "brand": f"b{rng.randrange(200):03d}",
                    "price": round(rng.uniform(5, 500), 2),
                },
            }
            out.write(json.dumps(item) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("work_dir")
    parser.add_argument("--items", type=int, default=50000)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--port", type=int, default=18932)
    parser.add_argument("--serve", default=os.path.join(ROOT, "target/release/hyrank-serve"), help="the server binary")
    args = parser.parse_args()
    os.makedirs(args.work_dir, exist_ok=True)
    catalog = os.path.join(args.work_dir, "catalog.jsonl")
    index = os.path.join(args.work_dir, "idx")
    if not os.path.exists(index):
        write_catalog(catalog, args.items)
        t = time.time()
        hyrank = os.path.join(ROOT, "target/release/hyrank")
        subprocess.run([hyrank, "index", "--catalog", catalog, "--index-dir", index], check=True, stdout=subprocess.DEVNULL)
        print(f"indexed {args.items} items in {time.time() - t:.0f} s")
    server = live_server.start(args.serve, index, args.port)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=60)
        print("| request | total | p50 ms | p99 ms |")
        print("| --- | --- | --- | --- |")
        for name, body in REQUESTS:
            took, total = [], None
            for _ in range(args.runs):
                _, answer = live_server.request(conn, "POST", "/v1/search", body)
                took.append(answer["timings"]["total_ms"])
                total = answer["total"]
            p50, p99 = live_server.percentile(took, 50), live_server.percentile(took, 99)
            print(f"| {name} | {total} | {p50:.2f} | {p99:.2f} |", flush=True)
    finally:
        server.terminate()
        server.wait()

if __name__ == "__main__":
    main()
