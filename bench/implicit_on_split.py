#!/usr/bin/env python3
"""Trains benfred/implicit's ALS on the exact split `hyrank eval recommend` wrote and scores it
the same way (users' train items excluded; Recall@k = hits / test items, and the capped form
hits / min(k, test items)).

    python3 bench/implicit_on_split.py OUT/random [factors reg iterations alpha]
"""
import sys
from pathlib import Path

from implicit.als import AlternatingLeastSquares
from split_io import read_split

split_dir = Path(sys.argv[1])
factors, reg, iterations, alpha = (int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])) if len(sys.argv) > 5 else (64, 0.05, 15, 1.0)
k = 20
matrix, held = read_split(split_dir)
model = AlternatingLeastSquares(factors=factors, regularization=reg, iterations=iterations, alpha=alpha, random_state=42, use_gpu=False)
model.fit(matrix, show_progress=False)
recall = capped = 0.0
for u, truth in held.items():
    ids, _ = model.recommend(u, matrix[u], N=k, filter_already_liked_items=True)
    hits = len(truth & set(int(i) for i in ids))
    recall += hits / len(truth)
    capped += hits / min(k, len(truth))
import implicit
print(f"implicit {implicit.__version__} ALS factors={factors} reg={reg} iterations={iterations} alpha={alpha}: "
      f"Recall@{k} {recall / len(held):.4f}, capped Recall@{k} {capped / len(held):.4f} over {len(held)} users")
