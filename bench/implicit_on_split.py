#!/usr/bin/env python3
"""Trains benfred/implicit's ALS on the exact split `hyrank eval recommend` wrote and scores it
the same way (users' train items excluded; Recall@k = hits / test items, and the capped form
hits / min(k, test items)).

    python3 bench/implicit_on_split.py OUT/random [factors reg iterations alpha]
"""
import csv
import sys
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from implicit.als import AlternatingLeastSquares

split_dir = Path(sys.argv[1])
factors, reg, iterations, alpha = (int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])) if len(sys.argv) > 5 else (64, 0.05, 15, 1.0)
k = 20
train = list(csv.DictReader(open(split_dir / "train.csv")))
test = list(csv.DictReader(open(split_dir / "test.csv")))
users = sorted({r["user"] for r in train} | {r["user"] for r in test})
items = sorted({r["item"] for r in train} | {r["item"] for r in test})
uix = {u: i for i, u in enumerate(users)}
iix = {t: i for i, t in enumerate(items)}
rows = [uix[r["user"]] for r in train]
cols = [iix[r["item"]] for r in train]
matrix = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(users), len(items)))
model = AlternatingLeastSquares(factors=factors, regularization=reg, iterations=iterations, alpha=alpha, random_state=42, use_gpu=False)
model.fit(matrix, show_progress=False)
held = {}
for r in test:
    held.setdefault(r["user"], set()).add(iix[r["item"]])
recall = capped = 0.0
for user, truth in held.items():
    u = uix[user]
    ids, _ = model.recommend(u, matrix[u], N=k, filter_already_liked_items=True)
    hits = len(truth & set(int(i) for i in ids))
    recall += hits / len(truth)
    capped += hits / min(k, len(truth))
import implicit
print(f"implicit {implicit.__version__} ALS factors={factors} reg={reg} iterations={iterations} alpha={alpha}: "
      f"Recall@{k} {recall / len(held):.4f}, capped Recall@{k} {capped / len(held):.4f} over {len(held)} users")
