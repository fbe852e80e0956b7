"""Reads the split `hyrank eval recommend` writes (`train.csv`, `test.csv`) for the peer scripts:
users and items indexed in sorted order, the train positives as a binary users x items matrix,
and each test user's held-out item indexes."""
import csv
from pathlib import Path

import numpy as np
import scipy.sparse as sp


def read_split(split_dir):
    split_dir = Path(split_dir)
    train = list(csv.DictReader(open(split_dir / "train.csv")))
    test = list(csv.DictReader(open(split_dir / "test.csv")))
    users = sorted({r["user"] for r in train} | {r["user"] for r in test})
    items = sorted({r["item"] for r in train} | {r["item"] for r in test})
    uix = {u: i for i, u in enumerate(users)}
    iix = {t: i for i, t in enumerate(items)}
    rows = [uix[r["user"]] for r in train]
    cols = [iix[r["item"]] for r in train]
    matrix = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(users), len(items)))
    matrix.data[:] = 1.0
    held = {}
    for r in test:
        held.setdefault(uix[r["user"]], set()).add(iix[r["item"]])
    return matrix, held
