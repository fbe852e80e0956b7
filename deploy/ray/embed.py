#!/usr/bin/env python3
"""Embeds a catalog in shards as Ray tasks, then assembles the index from them.

Each task runs `hyrank embed --shard i/n` on whichever node Ray places it (a GPU node when the
task asks for one), writing `shard-i-of-n.bin` into a folder every node can reach (a shared
file system). The driver then runs `hyrank index --embeddings` once, which refuses a missing
shard or one embedded with another model. Ray only schedules: the work and its checks are
hyrank's own.

    python3 deploy/ray/embed.py --catalog items.jsonl --index-dir data/index \
        --shards 8 --shard-dir /shared/shards [--address auto] [--gpus-per-task 1] \
        [--index-arg=--interactions --index-arg=events.csv] [-- model flags for both, e.g. --precision int8]

On one machine without `--address` it starts a local Ray with `--num-cpus` logical CPUs. Note
from this project's 2-core machine: `ray.init(num_cpus=2)` with two 1-CPU tasks can hang
there; give Ray 3 logical CPUs (the default here) or fractional CPUs per task.
"""

import argparse
import json
import pathlib
import subprocess
import sys
import time

import ray


def parse():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", required=True)
    parser.add_argument("--index-dir", required=True)
    parser.add_argument("--shards", type=int, required=True)
    parser.add_argument("--shard-dir", required=True, help="shared folder for the shard files")
    parser.add_argument("--hyrank", default="target/release/hyrank", help="the hyrank binary on every node")
    parser.add_argument("--address", help="an existing Ray cluster (e.g. auto); default: a local one")
    parser.add_argument("--num-cpus", type=float, default=3, help="logical CPUs of a local Ray")
    parser.add_argument("--cpus-per-task", type=float, default=1)
    parser.add_argument("--gpus-per-task", type=float, default=0)
    parser.add_argument("--threads-per-task", type=int, help="RAYON_NUM_THREADS of each task")
    parser.add_argument("--index-arg", action="append", default=[],
                        help="a flag for the assembling `hyrank index` only (repeat; e.g. --index-arg=--interactions)")
    parser.add_argument("extra", nargs="*", help="model flags passed to both hyrank commands (after --)")
    return parser.parse_args()


@ray.remote
def embed_shard(hyrank, catalog, shard, shards, out, extra, threads):
    """One `hyrank embed` run; returns its shard, seconds and report line."""
    env = None
    if threads:
        import os

        env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    start = time.time()
    done = subprocess.run(
        [hyrank, "embed", "--catalog", catalog, "--shard", f"{shard}/{shards}", "--out", out, *extra],
        capture_output=True,
        text=True,
        env=env,
    )
    if done.returncode != 0:
        raise RuntimeError(f"shard {shard}/{shards} failed:\n{done.stderr}")
    return {"shard": shard, "seconds": time.time() - start, "report": done.stdout.strip()}


def main():
    args = parse()
    if args.address:
        ray.init(address=args.address)
    else:
        ray.init(num_cpus=args.num_cpus, include_dashboard=False)
    start = time.time()
    tasks = [
        embed_shard.options(num_cpus=args.cpus_per_task, num_gpus=args.gpus_per_task).remote(
            args.hyrank, args.catalog, i, args.shards, args.shard_dir, args.extra, args.threads_per_task
        )
        for i in range(args.shards)
    ]
    shards = ray.get(tasks)
    embedded = time.time() - start
    for result in sorted(shards, key=lambda r: r["shard"]):
        print(result["report"], flush=True)
    assembly = subprocess.run(
        [args.hyrank, "index", "--catalog", args.catalog, "--index-dir", args.index_dir,
         "--embeddings", args.shard_dir, *args.extra, *args.index_arg],
        capture_output=True,
        text=True,
    )
    sys.stdout.write(assembly.stdout)
    if assembly.returncode != 0:
        sys.stderr.write(assembly.stderr)
        sys.exit(assembly.returncode)
    print(json.dumps({"shards": args.shards, "embed_seconds": round(embedded, 2),
                      "total_seconds": round(time.time() - start, 2)}))


if __name__ == "__main__":
    main()
