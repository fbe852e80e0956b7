#!/usr/bin/env python3
"""Item-item peers on the exact split `hyrank eval recommend` wrote, scored the way it scores
(users' train items excluded; Recall@20 = hits / test items; nDCG@10 with binary gains; items
that appear only in the test file are part of the catalog but have no training signal).

    python3 bench/item_models_on_split.py OUT/random ease [lambda] [dropout]
    python3 bench/item_models_on_split.py OUT/random rp3beta [alpha] [beta]
    python3 bench/item_models_on_split.py OUT/random ease 100 0 session=600,0.7 recency=4

EASE: Steck 2019, `B = I - P diag(1/diag(P))`, `P = (X'X + Lambda)^-1`, in float64 as his
reference code; `dropout` > 0 gives EDLAE (Steck 2020, "Autoencoders that don't overfit towards
the identity"): `Lambda = lambda I + p/(1-p) diag(X'X)`.
`session=TAU,W` weighs each pair of one user's train items `(1 - W) + W exp(-|dt| / TAU)` in
X'X instead of 1 (hyrank's `--ease-session-seconds` / `--ease-session-weight`); `recency=H`
scores with the r-th most recent train item (by timestamp, then item) weighing 2^(-r / H)
(`--ease-recency-half-life`). Both read the `timestamp` column of `train.csv`: an independent
check of hyrank's EASE variants, unpruned and in float64.
RP3beta: Paudel et al. 2017 (as in Dacrema et al.'s reproducibility study): item-item weights
from two-step random walks, `W = (P_ui' P_iu)^alpha / popularity^beta`, rows l1-normalised
as in their reference implementation (no top-k pruning here).
"""
import csv
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from split_io import read_split

options = dict(a.split("=", 1) for a in sys.argv[1:] if "=" in a)
sys.argv = [a for a in sys.argv if "=" not in a]
split_dir = Path(sys.argv[1])
model_name = sys.argv[2] if len(sys.argv) > 2 else "ease"
X, held = read_split(split_dir)
X = X.astype(np.float64)
# Each user's train items with their times, in the matrix's indexes (as read_split orders them).
train_rows = list(csv.DictReader(open(split_dir / "train.csv")))
test_rows = list(csv.DictReader(open(split_dir / "test.csv")))
user_index = {u: i for i, u in enumerate(sorted({r["user"] for r in train_rows} | {r["user"] for r in test_rows}))}
item_index = {t: i for i, t in enumerate(sorted({r["item"] for r in train_rows} | {r["item"] for r in test_rows}))}
times = {}
for r in train_rows:
    times.setdefault(user_index[r["user"]], {})[item_index[r["item"]]] = float(r["timestamp"])

start = time.perf_counter()
if model_name == "ease":
    lam = float(sys.argv[3]) if len(sys.argv) > 3 else 200.0
    dropout = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    G = (X.T @ X).toarray()
    if "session" in options:
        tau, w = (float(v) for v in options["session"].split(","))
        G *= 1.0 - w
        for u, mine in times.items():
            idx = np.array(list(mine.keys()))
            t = np.array(list(mine.values()))
            G[np.ix_(idx, idx)] += w * np.exp(-np.abs(t[:, None] - t[None, :]) / tau)
    diag = np.diag_indices(G.shape[0])
    G[diag] += lam + dropout / (1.0 - dropout) * G[diag]
    P = np.linalg.inv(G)
    B = -P / np.diag(P)
    B[diag] = 0.0
    label = f"EASE lambda={lam}" + (f" EDLAE dropout={dropout}" if dropout else "")
    label += "".join(f" {k}={v}" for k, v in options.items())
elif model_name == "rp3beta":
    alpha = float(sys.argv[3]) if len(sys.argv) > 3 else 0.8
    beta = float(sys.argv[4]) if len(sys.argv) > 4 else 0.3
    Pui = sp.diags(1.0 / np.maximum(np.asarray(X.sum(axis=1)).ravel(), 1)) @ X
    Piu = sp.diags(1.0 / np.maximum(np.asarray(X.sum(axis=0)).ravel(), 1)) @ X.T.tocsr()
    popularity = np.asarray(X.sum(axis=0)).ravel()
    W = (Piu.power(alpha) @ Pui.power(alpha)).toarray()
    W = W / np.power(np.maximum(popularity, 1), beta)[None, :]
    np.fill_diagonal(W, 0.0)
    B = W / np.maximum(W.sum(axis=1, keepdims=True), 1e-12)
    label = f"RP3beta alpha={alpha} beta={beta}"
else:
    sys.exit(f"unknown model {model_name}: ease or rp3beta")
fit = time.perf_counter() - start

recall = ndcg = 0.0
k = 20
discount = 1.0 / np.log2(np.arange(2, 12))
for u, truth in held.items():
    history = X[u].indices
    weights = np.ones(len(history))
    if "recency" in options:
        mine = times.get(u, {})
        newest_first = sorted(range(len(history)), key=lambda j: (mine.get(history[j], -np.inf), history[j]), reverse=True)
        for rank, j in enumerate(newest_first):
            weights[j] = 2.0 ** (-rank / float(options["recency"]))
    scores = weights @ B[history]
    scores[history] = -np.inf
    top = np.argpartition(-scores, k)[:k]
    top = top[np.lexsort((top, -scores[top]))]
    hits = [int(i) in truth for i in top]
    recall += sum(hits) / len(truth)
    dcg = sum(d for d, h in zip(discount, hits[:10]) if h)
    idcg = discount[: min(10, len(truth))].sum()
    ndcg += dcg / idcg
n = len(held)
print(f"{label}: Recall@{k} {recall / n:.4f}, nDCG@10 {ndcg / n:.4f} over {n} users; fit {fit:.1f} s")
