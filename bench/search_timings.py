#!/usr/bin/env python3
"""Where one hybrid search's time goes, as the server reports it, one request at a time.

    bench/search_timings.py PORT [DATA] [WARMUP]

Against a running `hyrank-serve` (start it with `--response-cache-entries 0
--query-cache-entries 0` so every request encodes its query), sends each line of QUERIES_FILE
(default: the SciFact test queries, one per line, made by bench/embed_peer.py's recipe) as
`{"query": ..., "k": 10}` after WARMUP (default 100) warm-up requests, and prints the medians of
the client's time and of the response's own `timings` (engine total, encode, each retriever).
"""
import json
import statistics
import sys
import time
import urllib.request


def search(port, query):
    body = json.dumps({"query": query, "k": 10}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/search", data=body,
                                     headers={"Content-Type": "application/json"})
    start = time.perf_counter()
    answer = json.load(urllib.request.urlopen(request))
    return (time.perf_counter() - start) * 1000, answer["timings"]


def main():
    port = sys.argv[1]
    data = sys.argv[2] if len(sys.argv) > 2 else "../shared/data/scifact"
    warmup = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    texts = {q["_id"]: q["text"] for q in map(json.loads, open(f"{data}/queries.jsonl"))}
    judged = [line.split("\t")[0] for line in list(open(f"{data}/qrels/test.tsv"))[1:]]
    queries = [texts[q] for q in dict.fromkeys(judged)]
    for query in queries[:warmup]:
        search(port, query)
    rows = [search(port, query) for query in queries]
    median = statistics.median
    retrievers = {name: round(median(t["retrieve_ms"].get(name, 0.0) for _, t in rows), 2)
                  for name in rows[0][1]["retrieve_ms"]}
    print(f"hybrid client p50 {median(c for c, _ in rows):.2f} ms, "
          f"engine total {median(t['total_ms'] for _, t in rows):.2f}, "
          f"encode {median(t['embed_ms'] for _, t in rows):.2f}, retrievers {retrievers}")


if __name__ == "__main__":
    main()
