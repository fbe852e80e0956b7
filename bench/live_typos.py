#!/usr/bin/env python3
"""What live writes cost the searches that read typos or complete a word: BM25 with
`fuzziness: auto` (the default) and, with `--prefix`, `prefix: last`, whose readings are
cached per word between searches. Standard library only.

    python3 bench/live_typos.py INDEX_DIR OUT_DIR --data /tmp/scifact-typo [--queries 200] [--prefix] [--preload 0] [--delete 0]

INDEX_DIR holds a published generation; it is copied into OUT_DIR/index first and served with
the response and query caches off (`live_server.start`). `--data` is a BEIR folder whose
queries carry typos (`bench/typo_queries.py`) or stop partway through their last word
(`bench/prefix_queries.py`). One server, the queries one at a time, each pass in the same
order, after `--preload` puts of the corpus's documents under new ids (live rows, as a server
holds them between builds) and `--delete` deletes of the corpus's first documents (rows hidden
until the next build):

1. first sight: each query once (no word of it read yet);
2. again: each query once more (its words' readings cached);
3. after a put: a put of a new item (a new id, so no row is hidden; the title and text of the
   corpus's next document, so the live rows hold words near the queries'), then the query:
   what a stream of writes leaves a search that has been seen before.

Printed: each pass's p50 and p90 as the engine measured them (`timings.total_ms`), and the puts' p50.
"""
import http.client
import json
import os
import statistics

import live_server
from live_server import request


def main():
    parser = live_server.arguments(__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--prefix", action="store_true", help="search with prefix: last")
    parser.add_argument("--preload", type=int, default=0, help="documents put live before the passes")
    parser.add_argument("--delete", type=int, default=0, help="the corpus's first documents deleted before the passes")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    index = live_server.scratch_copy(args.index, args.out)
    queries = [json.loads(line)["text"] for line in open(os.path.join(args.data, "queries.jsonl"))]
    queries = queries[: args.queries]
    server = live_server.start(args.serve, index, 18285, open(os.path.join(args.out, "server.log"), "w"),
                               extra_env={"HYRANK_MAX_LIVE_ITEMS": str(args.preload + len(queries) + 1000)})
    conn = http.client.HTTPConnection("127.0.0.1", 18285, timeout=60)
    bm25 = {"prefix": "last"} if args.prefix else {}
    documents = max(len(queries), args.preload)
    corpus = [json.loads(line) for _, line in zip(range(documents), open(os.path.join(args.data, "corpus.jsonl")))]
    written = 0

    def put():
        nonlocal written
        document = corpus[written % len(corpus)]
        body = {"title": document.get("title", ""), "text": document.get("text", "")}
        ms = request(conn, "PUT", f"/v1/items/live-typos-{written}", body)[0]
        written += 1
        return ms

    def search(query):
        body = {"query": query, "mode": "bm25", "k": 10, "bm25": bm25}
        return request(conn, "POST", "/v1/search", body)[1]["timings"]["total_ms"]

    try:
        for _ in range(args.preload):
            put()
        for line in list(zip(range(args.delete), open(os.path.join(args.data, "corpus.jsonl")))):
            request(conn, "DELETE", f"/v1/items/{json.loads(line[1])['_id']}", "")
        first = [search(q) for q in queries]
        again = [search(q) for q in queries]
        after, puts = [], []
        for query in queries:
            puts.append(put())
            after.append(search(query))
    finally:
        server.terminate()
        server.wait()
    print(f"{len(queries)} queries from {args.data}, bm25 {json.dumps(bm25)}, {args.preload} documents put and {args.delete} deleted first")
    print("| pass | p50 | p90 |")
    print("|---|---|---|")
    for name, took in [("first sight", first), ("again", again), ("again, after a put", after)]:
        print(f"| {name} | {statistics.median(took):.2f} ms | {live_server.percentile(took, 90):.2f} ms |")
    print(f"PUT p50 {statistics.median(puts):.1f} ms")


if __name__ == "__main__":
    main()
