#!/usr/bin/env python3
"""Live writes under measurement: POST /v1/events latency and throughput, and search latency
with and without a stream of writes. Standard library only; wrk drives the searches.

    python3 bench/live_writes.py INDEX_DIR OUT_DIR [--seconds 20] [--singles 500] [--batches 20]

INDEX_DIR holds a published SciFact generation (any generation works for the writes; the
searches are the SciFact test queries). The generation is copied into OUT_DIR/index first, so the
benchmark's events land in a scratch live log, never in INDEX_DIR's. Phases, one server:

1. single-event writes, one at a time: p50/p99 latency as the client sees it (HTTP included);
2. batches of 1,000 events, one at a time: events/s; then 8 clients writing single events at
   once (group commit: concurrent writes share a flush), writes/s and events per flush;
3. searches at concurrency 8 (wrk, caches off) for --seconds: p50/p99, no writes;
4. the same while one client streams single-event writes as fast as they are acknowledged:
   search p50/p99, non-2xx responses, writes done and their p50/p99.

Prints a markdown table; raw wrk output and /metrics are left in OUT_DIR.
"""
import http.client
import json
import os
import random
import re
import statistics
import subprocess
import threading
import time

import live_server
from live_server import percentile


def post(conn, body):
    return live_server.request(conn, "POST", "/v1/events", body)[0]


def wrk(args, lua, port, label):
    out = subprocess.run(["wrk", "-t2", "-c8", f"-d{args.seconds}s", "--latency", "-s", lua, f"http://127.0.0.1:{port}"],
                         capture_output=True, text=True, check=True).stdout
    open(os.path.join(args.out, f"wrk-{label}.txt"), "w").write(out)

    def latency(q):
        value, unit = re.search(rf"^\s+{q}%\s+([\d.]+)(us|ms|s)", out, re.M).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return latency(50), latency(99), rps, int(non2xx.group(1)) if non2xx else 0, errors.group(1) if errors else "none"


def main():
    parser = live_server.arguments()
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--singles", type=int, default=500)
    parser.add_argument("--batches", type=int, default=20)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    index = live_server.scratch_copy(args.index, args.out)
    ids = [json.loads(line)["_id"] for line in open(os.path.join(args.data, "corpus.jsonl"))]
    lua = os.path.join(args.out, "search.lua")
    with open(lua, "w") as f:
        subprocess.run(["python3", "bench/make_wrk_script.py", args.data, "test", '{"k": 10}'], stdout=f, check=True)

    port = 18282
    server = live_server.start(args.serve, index, port, open(os.path.join(args.out, "server.log"), "w"))
    try:
        rng = random.Random(7)
        event = lambda: {"user": f"bench-{rng.randrange(5000)}", "item": rng.choice(ids), "weight": 1}
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        singles = [post(conn, json.dumps({"events": [event()]})) for _ in range(args.singles)]
        batch_ms = [post(conn, json.dumps({"events": [event() for _ in range(1000)]})) for _ in range(args.batches)]
        batch_rate = 1000 * len(batch_ms) / (sum(batch_ms) / 1000)

        def flushes():
            m = http.client.HTTPConnection("127.0.0.1", port)
            m.request("GET", "/metrics")
            text = m.getresponse().read().decode()
            return int(re.search(r"^hyrank_live_flushes_total (\d+)", text, re.M).group(1))

        parallel, lock = [], threading.Lock()

        def parallel_writer():
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            mine = [post(c, json.dumps({"events": [event()]})) for _ in range(200)]
            with lock:
                parallel.extend(mine)

        flushes_before, start = flushes(), time.perf_counter()
        threads = [threading.Thread(target=parallel_writer) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        parallel_seconds = time.perf_counter() - start
        per_flush = len(parallel) / max(1, flushes() - flushes_before)

        quiet = wrk(args, lua, port, "no-writes")
        during, stop = [], threading.Event()

        def writer():
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            while not stop.is_set():
                during.append(post(c, json.dumps({"events": [event()]})))

        thread = threading.Thread(target=writer)
        thread.start()
        busy = wrk(args, lua, port, "with-writes")
        stop.set()
        thread.join()
        metrics = http.client.HTTPConnection("127.0.0.1", port)
        metrics.request("GET", "/metrics")
        open(os.path.join(args.out, "metrics.txt"), "wb").write(metrics.getresponse().read())
    finally:
        server.terminate()
        server.wait()

    print(f"{args.singles} single-event writes, {args.batches} batches of 1,000, searches at c8 for {args.seconds} s "
          f"(caches off), 2 wrk threads and 1 writer\n")
    print("| measurement | p50 | p99 | rate | failed |")
    print("|---|---|---|---|---|")
    print(f"| write, 1 event (alone) | {statistics.median(singles):.2f} ms | {percentile(singles, 99):.2f} ms | "
          f"{1000 / statistics.mean(singles):.0f} writes/s | 0 |")
    print(f"| write, 1,000 events (alone) | {statistics.median(batch_ms):.1f} ms | {percentile(batch_ms, 99):.1f} ms | "
          f"{batch_rate:,.0f} events/s | 0 |")
    print(f"| write, 1 event, 8 clients at once | {statistics.median(parallel):.2f} ms | {percentile(parallel, 99):.2f} ms | "
          f"{len(parallel) / parallel_seconds:.0f} writes/s, {per_flush:.2f} events per flush | 0 |")
    print(f"| search c8, no writes | {quiet[0]:.2f} ms | {quiet[1]:.2f} ms | {quiet[2]:.0f} req/s | {quiet[3]} non-2xx, socket errors {quiet[4]} |")
    print(f"| search c8, writes streaming | {busy[0]:.2f} ms | {busy[1]:.2f} ms | {busy[2]:.0f} req/s | {busy[3]} non-2xx, socket errors {busy[4]} |")
    print(f"| write, 1 event, during the searches | {statistics.median(during):.2f} ms | {percentile(during, 99):.2f} ms | "
          f"{len(during) / args.seconds:.0f} writes/s ({len(during)} writes) | 0 |")


if __name__ == "__main__":
    main()
