#!/usr/bin/env python3
"""Where one hybrid search's time goes, as the server reports it, one request at a time.

    bench/search_timings.py PORT [DATA] [WARMUP] [BODY]

Against a running `hyrank-serve` (start it with `--response-cache-entries 0
--query-cache-entries 0` so every request encodes its query), sends each judged test query of
DATA (default ../shared/data/scifact) as `{"query": ..., "k": 10}` plus the JSON object BODY
(default `{}`; e.g. `'{"highlight": true}'` or `'{"sort": [{"field": "genres"}]}'`) after
WARMUP (default 100) warm-up requests, and prints the medians of the client's time and of the
response's own `timings` (engine total, encode, fusion, highlight, facets, each retriever),
with the highlight's 90th percentile.
"""
import json
import statistics
import sys
import time
import urllib.request


def search(port, query, extra):
    body = json.dumps({"query": query, "k": 10, **extra}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/search", data=body,
                                     headers={"Content-Type": "application/json"})
    start = time.perf_counter()
    answer = json.load(urllib.request.urlopen(request))
    return (time.perf_counter() - start) * 1000, answer["timings"]


def main():
    port = sys.argv[1]
    data = sys.argv[2] if len(sys.argv) > 2 else "../shared/data/scifact"
    warmup = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    extra = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    texts = {q["_id"]: q["text"] for q in map(json.loads, open(f"{data}/queries.jsonl"))}
    judged = [line.split("\t")[0] for line in list(open(f"{data}/qrels/test.tsv"))[1:]]
    queries = [texts[q] for q in dict.fromkeys(judged)]
    for query in queries[:warmup]:
        search(port, query, extra)
    rows = [search(port, query, extra) for query in queries]
    median = statistics.median
    retrievers = {name: round(median(t["retrieve_ms"].get(name, 0.0) for _, t in rows), 2)
                  for name in rows[0][1]["retrieve_ms"]}
    stage = lambda name: [t.get(name, 0.0) for _, t in rows]
    highlight = sorted(stage("highlight_ms"))
    print(f"hybrid {json.dumps(extra)} client p50 {median(c for c, _ in rows):.2f} ms, "
          f"engine total {median(stage('total_ms')):.2f}, encode {median(stage('embed_ms')):.2f}, "
          f"fusion {median(stage('fusion_ms')):.3f}, highlight {median(highlight):.2f} "
          f"(p90 {highlight[int(0.9 * len(highlight))]:.2f}), facets {median(stage('facets_ms')):.3f}, "
          f"retrievers {retrievers}")


if __name__ == "__main__":
    main()
