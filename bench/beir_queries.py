"""A BEIR folder beside another whose queries are rewritten, for the query-variant scripts
(`typo_queries.py`, `prefix_queries.py`): the corpus and the judgments are linked, not
copied, and the output folder is made if absent."""

import json
import os
from typing import Callable


def rewrite(data: str, out: str, change: Callable[[str], str]) -> tuple[int, int]:
    """Writes `out`/queries.jsonl with each query's text through `change`, links the rest of
    `data`; returns (queries changed, queries)."""
    data = os.path.realpath(data)
    os.makedirs(os.path.join(out, "qrels"), exist_ok=True)
    links = ["corpus.jsonl"] + [os.path.join("qrels", f) for f in os.listdir(os.path.join(data, "qrels"))]
    for name in links:
        target = os.path.join(out, name)
        if os.path.lexists(target):
            os.remove(target)
        os.symlink(os.path.join(data, name), target)
    changed = total = 0
    with open(os.path.join(data, "queries.jsonl"), encoding="utf-8") as source, open(
        os.path.join(out, "queries.jsonl"), "w", encoding="utf-8"
    ) as written:
        for line in source:
            query = json.loads(line)
            text = change(query["text"])
            changed += text != query["text"]
            total += 1
            query["text"] = text
            written.write(json.dumps(query) + "\n")
    return changed, total
