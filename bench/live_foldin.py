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
import shutil
import statistics
import subprocess
import time

KEY = "live-bench-write-key-0123"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("index")
    parser.add_argument("train")
    parser.add_argument("out")
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--serve", default="target/release/hyrank-serve")
    args = parser.parse_args()
    index = os.path.join(args.out, "index")
    shutil.rmtree(index, ignore_errors=True)
    current = open(os.path.join(args.index, "CURRENT")).read().strip()
    shutil.copytree(os.path.join(args.index, "generations", current), os.path.join(index, "generations", current))
    open(os.path.join(index, "CURRENT"), "w").write(current)
    rows = list(csv.DictReader(open(args.train)))
    count = collections.Counter(r["user"] for r in rows)
    users = [u for u, _ in count.most_common()]
    items = list(dict.fromkeys(r["item"] for r in rows))
    port = 18283
    server = subprocess.Popen(
        [args.serve, "--index-dir", index, "--bind", f"127.0.0.1:{port}", "--response-cache-entries", "0",
         "--query-cache-entries", "0", "--watch-secs", "0", "--device", "cpu"],
        env=dict(os.environ, HYRANK_WRITE_KEY=KEY, HYRANK_LOG="warn"),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                probe = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                probe.request("GET", "/readyz")
                if probe.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.2)
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
