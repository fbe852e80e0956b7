"""What the live-write benchmarks share: their command line, a scratch copy of an index's
current generation (so a benchmark's writes never reach the real index's live log) served by
hyrank-serve with caches off and a write key, started and waited for, and a percentile."""
import argparse
import http.client
import json
import os
import shutil
import subprocess
import time

KEY = "live-bench-write-key-0123"


def arguments(description=None):
    """A parser holding what every live benchmark takes: INDEX_DIR, OUT_DIR, --data, --serve."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("index")
    parser.add_argument("out")
    parser.add_argument("--data", default=os.environ.get("HYRANK_EVAL_DATA", "../shared/data/scifact"))
    parser.add_argument("--serve", default="target/release/hyrank-serve")
    return parser


def percentile(values, p):
    """The p-th percentile of `values` (nearest rank, rounded); NaN when there are none."""
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def scratch_copy(index_dir, out_dir):
    """Copies INDEX_DIR's current generation to OUT_DIR/index and returns that path."""
    index = os.path.join(out_dir, "index")
    shutil.rmtree(index, ignore_errors=True)
    current = open(os.path.join(index_dir, "CURRENT")).read().strip()
    shutil.copytree(os.path.join(index_dir, "generations", current), os.path.join(index, "generations", current))
    open(os.path.join(index, "CURRENT"), "w").write(current)
    return index


def start(serve, index, port, log=subprocess.DEVNULL, extra_env=None):
    """hyrank-serve on 127.0.0.1:PORT with caches off and the write key (and `extra_env`, which
    may replace HYRANK_LOG's `warn`), once /readyz answers."""
    server = subprocess.Popen(
        [serve, "--index-dir", index, "--bind", f"127.0.0.1:{port}", "--response-cache-entries", "0",
         "--query-cache-entries", "0", "--watch-secs", "0", "--device", "cpu"],
        env={**os.environ, "HYRANK_WRITE_KEY": KEY, "HYRANK_LOG": "warn", **(extra_env or {})}, stdout=log,
        stderr=subprocess.STDOUT)
    for _ in range(600):
        try:
            probe = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            probe.request("GET", "/readyz")
            if probe.getresponse().status == 200:
                return server
        except OSError:
            pass
        time.sleep(0.2)
    server.terminate()
    raise SystemExit("hyrank-serve did not become ready")


def request(conn, method, path, body):
    """One authorised JSON request on `conn`: (milliseconds as the client saw them, parsed
    answer); exits naming the status on anything but 200."""
    start = time.perf_counter()
    conn.request(method, path, body=body if isinstance(body, str) else json.dumps(body),
                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"})
    response = conn.getresponse()
    data = response.read()
    elapsed = (time.perf_counter() - start) * 1000
    if response.status != 200:
        raise SystemExit(f"{method} {path} failed: {response.status} {data[:300]!r}")
    return elapsed, json.loads(data)
