#!/usr/bin/env python3
"""A soak of hyrank-serve: does memory or latency drift while it serves for a long time?

Three phases against a scratch copy of an index (its live log never reaches the real index):

1. reads: closed-loop clients (keep-alive) send hybrid searches of the SciFact test queries
   (caches off, so every request encodes), similar-item and item reads, for --read-minutes;
2. swaps: the same reads while the serving generation is copied under a new name and swapped in
   (`POST /admin/reload`) --swaps times; each swap drops the previous generation;
3. writes: the same reads plus a writer putting new items (`PUT /v1/items/{id}`, SciFact
   abstracts under new ids) and interaction events for --write-minutes.

Every --sample-seconds it records the server's resident memory (`VmRSS` of /proc/PID/status)
and the requests answered, their errors and latencies since the last sample. The report gives,
per phase, RSS at its start and end and the least-squares slope over its second half (MiB per
minute): a leak shows as a slope that does not flatten while the work stays the same. During
writes memory grows by design (each live item's text, vector and postings are held until the
next build), so that phase reports bytes per item put.

    python3 bench/soak.py INDEX_DIR OUT_DIR [--read-minutes 8] [--swaps 6] [--write-minutes 6]

A phase or a kind of work can be measured alone: a phase of 0 minutes (or 0 swaps) is
skipped, and --clients 0, --puts-per-second 0 or --events-per-second 0 leaves out the reads,
the puts or the events (e.g. puts alone: --read-minutes 0 --swaps 0 --clients 0
--events-per-second 0).
"""
import http.client
import json
import os
import random
import shutil
import statistics
import subprocess
import threading
import time

import live_server
from live_server import percentile


# Events per POST /v1/events of the writes phase.
EVENT_BATCH = 10


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def slope_per_minute(points):
    """Least-squares slope of (seconds, bytes) in MiB per minute; 0 with fewer than 3 points."""
    if len(points) < 3:
        return 0.0
    xs = [p[0] for p in points]
    ys = [p[1] / 2**20 for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var * 60 if var else 0.0


class Readers:
    """Closed-loop clients, each on its own keep-alive connection; latencies and errors are
    collected until `take()` hands them over."""

    def __init__(self, port, queries, item_ids, clients):
        self.port, self.queries, self.item_ids = port, queries, item_ids
        self.lock = threading.Lock()
        self.latencies, self.errors, self.stop = [], [], False
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(clients)]

    def run(self, seed):
        rng = random.Random(seed)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        n = 0
        while not self.stop:
            n += 1
            if n % 10 == 0:
                method, path, body = "GET", f"/v1/items/{rng.choice(self.item_ids)}/similar?k=10", None
            elif n % 10 == 5:
                method, path, body = "GET", f"/v1/items/{rng.choice(self.item_ids)}", None
            else:
                method, path = "POST", "/v1/search"
                body = json.dumps({"query": rng.choice(self.queries), "k": 10})
            start = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                data = response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as e:
                status, data = 0, repr(e).encode()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            elapsed = (time.perf_counter() - start) * 1000
            with self.lock:
                if status == 200:
                    self.latencies.append(elapsed)
                else:
                    self.errors.append(f"{method} {path}: {status} {data[:200]!r}")

    def start(self):
        for t in self.threads:
            t.start()

    def take(self):
        with self.lock:
            taken = self.latencies, self.errors
            self.latencies, self.errors = [], []
        return taken

    def finish(self):
        self.stop = True
        for t in self.threads:
            t.join()


def publish_copy(index, name):
    """Copies the serving generation as `name` and points CURRENT at it (the indexer's rename)."""
    current = open(os.path.join(index, "CURRENT")).read().strip()
    target = os.path.join(index, "generations", name)
    shutil.copytree(os.path.join(index, "generations", current), target)
    manifest_path = os.path.join(target, "manifest.json")
    manifest = json.load(open(manifest_path))
    manifest["generation"] = name
    json.dump(manifest, open(manifest_path, "w"), indent=2)
    with open(os.path.join(index, "CURRENT.tmp"), "w") as f:
        f.write(name)
    os.replace(os.path.join(index, "CURRENT.tmp"), os.path.join(index, "CURRENT"))
    return current


def main():
    parser = live_server.arguments(__doc__)
    parser.add_argument("--read-minutes", type=float, default=8)
    parser.add_argument("--swaps", type=int, default=6)
    parser.add_argument("--swap-seconds", type=float, default=40, help="reads between two swaps")
    parser.add_argument("--write-minutes", type=float, default=6)
    parser.add_argument("--puts-per-second", type=float, default=2)
    parser.add_argument("--events-per-second", type=float, default=20)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--sample-seconds", type=float, default=15)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    index = live_server.scratch_copy(args.index, args.out)
    queries = [json.loads(line)["text"] for line in open(os.path.join(args.data, "queries.jsonl"))]
    corpus = [json.loads(line) for line in open(os.path.join(args.data, "corpus.jsonl"))]
    item_ids = [d["_id"] for d in corpus]
    port = 18291
    log = open(os.path.join(args.out, "server.log"), "w")
    server = live_server.start(args.serve, index, port, log, extra_env={"HYRANK_ADMIN_KEY": live_server.KEY})
    samples = []  # (phase, seconds since start, rss, answered, errors, p50, p99)
    errors_seen = []
    t0 = time.monotonic()
    readers = Readers(port, queries, item_ids, args.clients)

    def sample(phase):
        latencies, errors = readers.take()
        errors_seen.extend(errors)
        row = (phase, time.monotonic() - t0, rss_bytes(server.pid), len(latencies), len(errors),
               percentile(latencies, 50), percentile(latencies, 99), written["puts"])
        samples.append(row)
        print(f"{row[0]:<7} {row[1]:7.0f} s  RSS {row[2] / 2**20:7.1f} MiB  {row[3]:5d} answered  "
              f"{row[4]} errors  p50 {row[5]:6.2f} ms  p99 {row[6]:6.2f} ms", flush=True)

    def run_for(phase, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(min(args.sample_seconds, max(0.0, end - time.monotonic())))
            sample(phase)

    swaps, puts, events = [], 0, 0
    written = {"puts": 0, "events": 0}
    try:
        sample("start")
        readers.start()
        run_for("reads", args.read_minutes * 60)
        for n in range(args.swaps):
            previous = publish_copy(index, f"soak-{n + 1:02d}")
            # A connection of its own each time: the server closes one left idle between swaps.
            admin = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            elapsed, outcome = live_server.request(admin, "POST", "/admin/reload", {})
            admin.close()
            # The generation swapped out is not needed again: remove it as `--keep 1` would.
            shutil.rmtree(os.path.join(index, "generations", previous), ignore_errors=True)
            swaps.append(elapsed)
            run_for("swaps", args.swap_seconds)
        stop_writing = threading.Event()
        writer_errors = []
        users = [f"soak-user-{i}" for i in range(200)]
        rng = random.Random(7)

        def put(n):
            doc = corpus[n % len(corpus)]
            return "PUT", f"/v1/items/soak-{n}", {"title": doc.get("title", ""), "text": doc.get("text", "")}, "puts", 1

        def post_events(_):
            batch = [{"user": rng.choice(users), "item": rng.choice(item_ids), "weight": 1} for _ in range(EVENT_BATCH)]
            return "POST", "/v1/events", {"events": batch}, "events", EVENT_BATCH

        def paced(per_second, write):
            """Sends `write(n)` per_second times a second until told to stop."""
            period, n = 1 / per_second, 0
            while not stop_writing.is_set():
                start = time.monotonic()
                n += 1
                method, path, body, counter, count = write(n)
                # A connection per write: at a few a second a kept one idles out.
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                try:
                    live_server.request(conn, method, path, body)
                    written[counter] += count
                except (SystemExit, OSError, http.client.HTTPException) as e:  # SystemExit: a non-200 answer
                    writer_errors.append(str(e))
                conn.close()
                time.sleep(max(0.0, period - (time.monotonic() - start)))

        writers = [threading.Thread(target=paced, args=(rate, write), daemon=True)
                   for rate, write in ((args.puts_per_second, put), (args.events_per_second / EVENT_BATCH, post_events))
                   if rate > 0 and args.write_minutes > 0]
        for thread in writers:
            thread.start()
        run_for("writes", args.write_minutes * 60)
        stop_writing.set()
        for thread in writers:
            thread.join()
        puts, events = written["puts"], written["events"]
        errors_seen.extend(writer_errors)
    finally:
        readers.finish()
        server.terminate()
        server.wait()

    with open(os.path.join(args.out, "samples.tsv"), "w") as f:
        f.write("phase\tseconds\trss_bytes\tanswered\terrors\tp50_ms\tp99_ms\tputs\n")
        for row in samples:
            f.write("\t".join(str(v) for v in row) + "\n")
    lines = [f"# Soak of hyrank-serve ({args.clients} keep-alive clients, caches off)", "",
             "| phase | minutes | RSS start → end (MiB) | slope, second half (MiB/min) | answered | errors | "
             "p50 first → last sample (ms) | p99 first → last (ms) |", "|---|---|---|---|---|---|---|---|"]
    for phase in ("reads", "swaps", "writes"):
        rows = [r for r in samples if r[0] == phase]
        if not rows:
            continue
        half = rows[len(rows) // 2:]
        minutes = (rows[-1][1] - rows[0][1]) / 60
        lines.append(
            f"| {phase} | {minutes:.1f} | {rows[0][2] / 2**20:.1f} → {rows[-1][2] / 2**20:.1f} | "
            f"{slope_per_minute([(r[1], r[2]) for r in half]):+.2f} | {sum(r[3] for r in rows)} | "
            f"{sum(r[4] for r in rows)} | {rows[0][5]:.2f} → {rows[-1][5]:.2f} | {rows[0][6]:.2f} → {rows[-1][6]:.2f} |")
    lines.append("")
    if swaps:
        lines.append(f"Swaps: {len(swaps)}, each answered in {statistics.median(swaps):.0f} ms (median).")
    if puts or events:
        # The first puts pay once (the live BM25 segment's writer and its arena); what each
        # later put holds is the slope of RSS over the puts of the phase's second half.
        rows = [r for r in samples if r[0] == "writes"]
        before = [r for r in samples if r[0] != "writes"][-1]
        half = rows[len(rows) // 2:]
        per_put = 0.0
        if len(half) >= 3 and half[-1][7] > half[0][7]:
            per_put = slope_per_minute([(r[7] * 60, r[2]) for r in half]) * 1024  # MiB per put -> KiB
        lines.append(f"Writes: {puts} items put and {events} events; RSS {before[2] / 2**20:.1f} MiB before the "
                     f"first write, {rows[0][2] / 2**20:.1f} at the first sample after, {rows[-1][2] / 2**20:.1f} at "
                     f"the end; {per_put:.1f} KiB per item put over the phase's second half.")
    lines.append(f"Errors: {len(errors_seen)}" + (f"; first: {errors_seen[0]}" if errors_seen else ""))
    report = "\n".join(lines) + "\n"
    open(os.path.join(args.out, "report.md"), "w").write(report)
    print(report)


if __name__ == "__main__":
    main()
