#!/usr/bin/env python3
"""A fresh server's first requests: start `hyrank-serve`, time its first three searches, stop it.

    python3 bench/first_requests.py INDEX_DIR [--warm-up true|false] [--budget-ms N]
        [--reranker trained|late_interaction] [--runs 3]

Each run starts a new server (response cache off) on INDEX_DIR, waits for /readyz, and sends
three SciFact-like claims one at a time, printing each answer's time and, when the rerank was
cut by its budget, how many candidates it reranked. Run it with `--warm-up true` and `false`
alternately to see what warming the models up before serving changes (docs/SERVICE.md).
Needs HYRANK_MODEL_DIR when run outside the repository root, and a release build.
"""

import argparse
import json
import os
import subprocess
import time
import urllib.request

QUERIES = [
    "Vitamin D deficiency is associated with multiple sclerosis.",
    "ALDH1 expression is associated with poorer prognosis for breast cancer.",
    "Smoking increases the risk of lung cancer.",
]


def one_run(args, port: int) -> str:
    env = dict(os.environ, HYRANK_WARM_UP=args.warm_up, HYRANK_RESPONSE_CACHE_ENTRIES="0")
    if args.budget_ms:
        env["HYRANK_RERANK_BUDGET_MS"] = str(args.budget_ms)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    started = time.time()
    server = subprocess.Popen(
        [os.path.join(root, "target/release/hyrank-serve"), "--index-dir", args.index_dir, "--bind", f"127.0.0.1:{port}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1)
                break
            except OSError:
                if server.poll() is not None:
                    raise SystemExit("the server exited; run it by hand to see why")
                time.sleep(0.05)
        ready = time.time() - started
        times = []
        for query in QUERIES:
            body = {"query": query, "k": 10}
            if args.reranker:
                body["rerank"] = {"reranker": args.reranker, "depth": args.depth}
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/v1/search", data=json.dumps(body).encode(), headers={"content-type": "application/json"}
            )
            t = time.time()
            answer = json.load(urllib.request.urlopen(request))
            took = f"{(time.time() - t) * 1e3:.0f} ms"
            cut = answer.get("rerank_cut")
            times.append(took + (f" (reranked {cut['reranked']}/{cut['depth']})" if cut else ""))
        return f"warm_up {args.warm_up}, ready in {ready:.1f} s: " + ", ".join(times)
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("index_dir")
    parser.add_argument("--warm-up", default="true", choices=["true", "false"])
    parser.add_argument("--budget-ms", type=int)
    parser.add_argument("--reranker", choices=["trained", "late_interaction"])
    parser.add_argument("--depth", type=int, default=30)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--port", type=int, default=18931)
    args = parser.parse_args()
    for _ in range(args.runs):
        print(one_run(args, args.port), flush=True)


if __name__ == "__main__":
    main()
