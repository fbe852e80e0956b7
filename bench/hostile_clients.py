#!/usr/bin/env python3
"""What hostile or careless clients cost a running hyrank-serve: the figures docs/SERVICE.md quotes.

    bench/hostile_clients.py burst PORT [N]        # N late-interaction searches (depth 100, 1,000-character
                                                   # queries), each socket closed once sent; then a plain
                                                   # search every 2 s until one answers 200 within 0.1 s
    bench/hostile_clients.py burst-held PORT [N]   # the same burst from clients that keep their sockets
                                                   # open (they wait for the answers; closed at the end)
    bench/hostile_clients.py midway PORT [N]       # N such searches at once, each socket closed 0.2 s after
                                                   # it was sent (mid-rerank); how long the engine stays
                                                   # busy after, and the server's CPU
    bench/hostile_clients.py cache PORT [N]        # N searches with k 100, explain and a 1,000-character
                                                   # query, each new; the server's RSS and
                                                   # hyrank_response_cache_bytes every 100
    bench/hostile_clients.py connections PORT [N]  # N half-sent requests held open 12 s; the server's open
                                                   # descriptors and /healthz while they are

PID is read from the server's /proc entry listening on PORT (one server per port). Start the
server on an index of fixtures/ (scripts/quickstart.sh builds one), for `burst` with a write key
in HYRANK_WRITE_KEY (the script writes an event every 2 s to show writes are admitted apart).
Standard library only.
"""
import json
import os
import random
import socket
import sys
import threading
import time
import urllib.error
import urllib.request

WORDS = open(os.path.join(os.path.dirname(__file__), "..", "fixtures", "catalog.jsonl")).read().split()


def server_pid(port):
    """The pid whose socket listens on PORT (from /proc/net/tcp and each process's fds)."""
    inode = None
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        parts = line.split()
        if int(parts[1].split(":")[1], 16) == port and parts[3] == "0A":
            inode = parts[9]
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]" for fd in os.listdir(f"/proc/{pid}/fd")):
                return int(pid)
        except OSError:
            continue
    sys.exit(f"nothing listens on {port}")


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().split(")")[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024


def call(port, path, body=None, headers=None, timeout=60):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        headers={"content-type": "application/json", **(headers or {})},
    )
    start = time.time()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, time.time() - start, answer.read()
    except urllib.error.HTTPError as e:
        return e.code, time.time() - start, b""
    except OSError:
        return 0, time.time() - start, b""


def query():
    return " ".join(random.choice(WORDS) for _ in range(400))[:1000]


def burst(port, n=64, held=False):
    pid = server_pid(port)
    sockets = []
    key = os.environ.get("HYRANK_WRITE_KEY", "")
    cpu, start = cpu_seconds(pid), time.time()
    for _ in range(n):
        body = json.dumps({"query": query(), "k": 100, "rerank": {"reranker": "late_interaction", "depth": 100}}).encode()
        s = socket.create_connection(("127.0.0.1", port))
        head = f"POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        s.sendall(head.encode() + body)
        if held:
            sockets.append(s)
        else:
            s.close()
    print(f"sent {n} searches and {'held' if held else 'closed'} each socket in {time.time() - start:.2f} s")
    while True:
        time.sleep(2)
        search = call(port, "/v1/search", {"query": f"tent stakes {time.time()}", "k": 5})
        event = call(port, "/v1/events", {"events": [{"user": "u001", "item": "TNT-001"}]}, {"authorization": f"Bearer {key}"})
        print(f"t={time.time() - start:5.1f} s  search {search[0]} ({search[1]:.2f} s)  events {event[0]}  "
              f"server CPU {cpu_seconds(pid) - cpu:.1f} s", flush=True)
        if search[0] == 200 and search[1] < 0.1:
            break
    time.sleep(10)
    print(f"server CPU for the burst, 10 s after: {cpu_seconds(pid) - cpu:.1f} s")
    answered = 0
    for s in sockets:
        s.settimeout(0.1)
        try:
            answered += s.recv(16).startswith(b"HTTP/1.1 200")
        except OSError:
            pass
        s.close()
    if held:
        print(f"{answered} of {n} held searches were answered 200")


def midway(port, n=8):
    pid = server_pid(port)
    cpu, start = cpu_seconds(pid), time.time()

    def client():
        body = json.dumps({"query": query(), "k": 10, "rerank": {"reranker": "late_interaction", "depth": 100}}).encode()
        s = socket.create_connection(("127.0.0.1", port))
        head = f"POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        s.sendall(head.encode() + body)
        time.sleep(0.2)
        s.close()

    threads = [threading.Thread(target=client) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    while True:
        metrics = call(port, "/metrics")[2].decode()
        depth = next(l.split()[1] for l in metrics.splitlines() if l.startswith("hyrank_engine_queue_depth "))
        if depth == "0" or time.time() - start > 60:
            break
        time.sleep(0.1)
    abandoned = [l for l in metrics.splitlines() if l.startswith('hyrank_abandoned_total{route="search"}')]
    print(f"{n} clients gone after 0.2 s; engine idle after {time.time() - start:.2f} s; "
          f"server CPU {cpu_seconds(pid) - cpu:.1f} s; {abandoned}")


def cache(port, n=1000):
    pid = server_pid(port)
    print(f"RSS before: {rss_mib(pid):.0f} MiB")
    sent = 0
    for i in range(1, n + 1):
        status, _, body = call(port, "/v1/search", {"query": query(), "k": 100, "explain": True})
        sent += len(body)
        if i % 100 == 0:
            metrics = call(port, "/metrics")[2].decode()
            held = next((l.split()[1] for l in metrics.splitlines() if l.startswith("hyrank_response_cache_bytes ")), "?")
            print(f"{i} requests, {sent / 1e6:.0f} MB of answers: RSS {rss_mib(pid):.0f} MiB, cache holds {held} bytes", flush=True)


def connections(port, n=5000):
    pid = server_pid(port)
    held, failed = [], 0
    for _ in range(n):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
            s.sendall(b"POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n{")
            held.append(s)
        except OSError:
            failed += 1
    descriptors = len(os.listdir(f"/proc/{pid}/fd"))
    health = call(port, "/healthz", timeout=3)
    print(f"{len(held)} held, {failed} refused; the server has {descriptors} descriptors open; /healthz {health[0]}")
    time.sleep(12)
    for s in held:
        s.close()
    print(f"after: /healthz {call(port, '/healthz', timeout=3)[0]}")


if __name__ == "__main__":
    mode, port = sys.argv[1], int(sys.argv[2])
    count = [int(a) for a in sys.argv[3:4]]
    modes = {"burst": burst, "midway": midway, "burst-held": lambda p, *n: burst(p, *n, held=True), "cache": cache, "connections": connections}
    modes[mode](port, *count)
