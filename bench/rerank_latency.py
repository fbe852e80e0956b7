#!/usr/bin/env python3
"""Latency of trained-reranker searches over HTTP at a given concurrency.

    bench/rerank_latency.py URL QUERIES_JSONL DEPTH CONCURRENCY REQUESTS [QRELS_TSV]

Sends REQUESTS searches (the queries in turn, k 10, rerank {"reranker": "trained", "depth":
DEPTH}) from CONCURRENCY threads to a running hyrank-serve (start it with the caches off:
--response-cache-entries 0 --query-cache-entries 0 --rerank-cache-entries 0) and prints the
median, p90, p99 and maximum latency and the throughput. With QRELS_TSV (a BEIR qrels file),
only the queries it judges are sent (e.g. SciFact's 300 test queries, by their `_id`), and the
answers' mean nDCG@10 against its judgments is printed (linear gains, as pytrec_eval: what the
answers served under this load were worth, cut or not). Every response must be 200 and carry a learned combination.

`--budget-ms=N` gives each search a rerank budget (`rerank.budget_ms`); the output then says how
many answers were cut short and what share of the window was reranked on average.
`--reranker=late_interaction` measures the untrained reranker instead (no trained reranker
needed: a fixtures index will do).

By default each request opens its own connection (as the figures in docs/EVAL.md before
2026-12-04's twenty-fifth stop were taken); `--keep-alive` (anywhere on the line) keeps one
connection per thread, as a client with a connection pool does, so that the TCP set-up is not
in the latency.
Standard library only.
"""
import json
import math
import statistics
import sys
import threading
import time
import urllib.parse
import urllib.request
import http.client


def main():
    keep_alive = "--keep-alive" in sys.argv
    flags = dict(a[2:].split("=", 1) for a in sys.argv if a.startswith("--") and "=" in a)
    unknown = [a for a in sys.argv if a.startswith("--") and a != "--keep-alive" and a.split("=")[0] not in ("--budget-ms", "--reranker")]
    if unknown or any(a in ("--budget-ms", "--reranker") for a in sys.argv):
        sys.exit(f"unknown or incomplete flags {unknown or sys.argv}: give --budget-ms=N and --reranker=NAME with '='")
    budget_ms = int(flags["budget-ms"]) if "budget-ms" in flags else None
    reranker = flags.get("reranker", "trained")
    sys.argv = [a for a in sys.argv if not a.startswith("--")]
    url, queries_path, depth, concurrency, requests = sys.argv[1:6]
    url = url.rstrip("/")
    depth, concurrency, requests = int(depth), int(concurrency), int(requests)
    judged = None
    if len(sys.argv) > 6:
        judged = {}
        with open(sys.argv[6]) as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) == 3 and parts[2].lstrip("-").isdigit():
                    judged.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    with open(queries_path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    picked = [row for row in rows if judged is None or row.get("_id") in judged]
    queries = [row["text"] for row in picked]
    query_ids = [row.get("_id") for row in picked]
    if not queries:
        sys.exit(f"no queries to send from {queries_path}")
    latencies, errors, shares, ndcgs, lock = [], [], [], [], threading.Lock()

    def ndcg10(ids, relevance):
        gain = sum(relevance.get(i, 0) / math.log2(rank + 2) for rank, i in enumerate(ids[:10]))
        ideal = sum(r / math.log2(rank + 2) for rank, r in enumerate(sorted(relevance.values(), reverse=True)[:10]))
        return gain / ideal if ideal > 0 else 0.0
    next_index = iter(range(requests))

    parsed = urllib.parse.urlsplit(url)
    if keep_alive and parsed.scheme not in ("http", "https"):
        sys.exit(f"--keep-alive needs an http:// or https:// URL, not {url}")
    Connection = http.client.HTTPSConnection if parsed.scheme == "https" else http.client.HTTPConnection

    def post(connection, data):
        """The answer's hits: over `connection` when given (kept alive), else a new one."""
        headers = {"content-type": "application/json"}
        if connection is None:
            request = urllib.request.Request(url + "/v1/search", data=data, headers=headers)
            with urllib.request.urlopen(request, timeout=600) as response:
                return json.load(response)
        connection.request("POST", parsed.path + "/v1/search", body=data, headers=headers)
        response = connection.getresponse()
        answer = response.read()
        if response.status != 200:
            raise ValueError(f"HTTP {response.status}: {answer[:200]!r}")
        return json.loads(answer)

    def worker():
        connection = Connection(parsed.hostname, parsed.port, timeout=600) if keep_alive else None
        if connection is not None:
            connection.connect()  # before the first timed request, as a pool has it open
        while True:
            with lock:
                i = next(next_index, None)
            if i is None:
                if connection is not None:
                    connection.close()
                return
            rerank = {"reranker": reranker, "depth": depth}
            if budget_ms is not None:
                rerank["budget_ms"] = budget_ms
            body = {"query": queries[i % len(queries)], "k": 10, "rerank": rerank}
            data = json.dumps(body).encode()
            start = time.perf_counter()
            try:
                answer = post(connection, data)
                took = time.perf_counter() - start
                hits, cut = answer["hits"], answer.get("rerank_cut")
                # Past a cut, hits keep their fused order and have no rerank score.
                reranked = hits[: cut["reranked"]] if cut else hits
                part = "combination" if reranker == "trained" else "rerank"
                if not all(h["breakdown"].get(part) for h in reranked):
                    raise ValueError(f"a reranked hit without its {part}")
                with lock:
                    latencies.append(took)
                    shares.append(cut["reranked"] / cut["depth"] if cut else 1.0)
                    if judged is not None:
                        ndcgs.append(ndcg10([h["id"] for h in hits], judged[query_ids[i % len(queries)]]))
            except Exception as e:  # noqa: BLE001 - every failure is counted and shown
                if connection is not None:
                    connection.close()  # the next request opens a fresh one
                with lock:
                    errors.append(repr(e))

    began = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - began
    latencies.sort()
    def quantile(q):
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else None

    print(
        json.dumps(
            {
                "depth": depth,
                "reranker": reranker,
                "budget_ms": budget_ms,
                "cut": sum(1 for share in shares if share < 1.0),
                "reranked_share_mean": statistics.mean(shares) if shares else None,
                "ndcg10_mean": statistics.mean(ndcgs) if ndcgs else None,
                "concurrency": concurrency,
                "keep_alive": keep_alive,
                "requests": requests,
                "ok": len(latencies),
                "errors": errors[:5],
                "p50_s": statistics.median(latencies) if latencies else None,
                "p90_s": quantile(0.9),
                "p99_s": quantile(0.99),
                "max_s": latencies[-1] if latencies else None,
                "req_per_s": len(latencies) / wall,
            }
        )
    )
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
