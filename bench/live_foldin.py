#!/usr/bin/env python3
"""What live writes cost the requests they change, on a generation with CF (ALS or EASE).

    python3 bench/live_foldin.py INDEX_DIR TRAIN_CSV OUT_DIR [--items 100]

INDEX_DIR's current generation is copied to OUT_DIR/index (the writes never reach INDEX_DIR's
log) and served with caches off. TRAIN_CSV is the interactions file it was built from (user,
item, ... columns), to pick the heaviest and the median user. Prints, as engine time p50 over
40 requests each: recommend for the heaviest and the median user before and after one live
event (ALS re-solves the user's factors), and for a new user with 5 events; then the latency of
--items deletes and --items field updates (HTTP, one connection).
"""
import argparse
import collections
import csv
import http.client
import json
import os
import statistics
import time

import live_server
from live_server import KEY



def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("index")
    parser.add_argument("train")
    parser.add_argument("out")
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--serve", default="target/release/hyrank-serve")
    args = parser.parse_args()
    index = live_server.scratch_copy(args.index, args.out)
    rows = list(csv.DictReader(open(args.train)))
    count = collections.Counter(r["user"] for r in rows)
    users = [u for u, _ in count.most_common()]
    items = list(dict.fromkeys(r["item"] for r in rows))
    port = 18283
    server = live_server.start(args.serve, index, port)
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

        def call(method, path, body=None):
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"}
            start = time.perf_counter()
            c.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
            response = c.getresponse()
            data = json.loads(response.read() or b"null")
            if response.status != 200:
                raise SystemExit(f"{method} {path}: {response.status} {data}")
            return (time.perf_counter() - start) * 1000, data

        def recommend(user):
            return [call("POST", "/v1/recommend", {"user": user, "k": 10})[1] for _ in range(40)]

        def engine_p50(results):
            return statistics.median(r["timings"]["total_ms"] for r in results)

        print("| user | train rows | engine p50, stored factors | engine p50, after one live event |")
        print("|---|---|---|---|")
        for label, user in [("heaviest", users[0]), ("median", users[len(users) // 2])]:
            before = recommend(user)
            top = before[0]["hits"][0]["id"]
            call("POST", "/v1/events", {"events": [{"user": user, "item": top, "weight": 5}]})
            after = recommend(user)
            assert all(h["id"] != top for h in after[0]["hits"]), "the event's item is still recommended"
            print(f"| {label} ({user}) | {count[user]} | {engine_p50(before):.2f} ms | {engine_p50(after):.2f} ms |")
        call("POST", "/v1/events", {"events": [{"user": "live-bench-new-user", "item": i} for i in items[:5]]})
        print(f"| a new user, 5 events | 0 | — | {engine_p50(recommend('live-bench-new-user')):.2f} ms |")
        victims = items[-2 * args.items:]
        updates = [call("PUT", f"/v1/items/{i}/fields", {"fields": {"live_bench": n}})[0]
                   for n, i in enumerate(victims[:args.items])]
        deletes = [call("DELETE", f"/v1/items/{i}")[0] for i in victims[args.items:]]
        print(f"\n{args.items} field updates: p50 {statistics.median(updates):.2f} ms, max {max(updates):.2f} ms; "
              f"{args.items} deletes: p50 {statistics.median(deletes):.2f} ms, max {max(deletes):.2f} ms (HTTP)")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
