#!/usr/bin/env python3
"""The Lucene peer (Pyserini/Anserini) on a BEIR corpus: BM25 with and without RM3 feedback.

    bench/lucene_peer.py DATA SPLIT OUT [CONFIG ...]

DATA is a BEIR folder (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv). The corpus is indexed
once into OUT/lucene-index as one field, "title text" (BEIR's "flat" regressions), with
Lucene's English analyzer (Porter stems, its stop words) and document vectors stored, which
RM3 reads. Each CONFIG is `bm25:K1:B` or `rm3:K1:B:FB_DOCS:FB_TERMS:ORIGINAL_WEIGHT`; the
default runs Anserini's BEIR setting (k1 0.9, b 0.4) and its RM3 defaults (10 documents, 10
terms, the original query at 0.5) on top, plus the same two at tantivy's k1 1.2, b 0.75.
Each writes OUT/NAME.per-query.tsv in the format of `hyrank eval search` (`query`,
`ndcg@10`, `recall@100`), so `bench/paired_bootstrap.py` compares a peer run with ours, and
OUT/NAME.scores.tsv (`query doc score`, the top 1,000), the input `bench/fusion_norms.py`
fuses with exact MiniLM cosines: the "Lucene + MiniLM, convex" peer.
A hit whose id is its query's is dropped, as `hyrank eval search` drops it by default and as
BEIR and Pyserini's `--remove-query` do (ArguAna and Quora hold their queries as documents).
nDCG@10 and Recall@100 come from pytrec_eval (trec_eval's definitions). Needs pyserini 1.6
(PyPI) and JAVA_HOME on a JDK >= 21.

RM3: Lavrenko & Croft, "Relevance-Based Language Models", SIGIR 2001; the interpolation with
the original query is Abdul-Jaleel et al., "UMass at TREC 2004". Anserini's defaults are
those of Lin's regressions (fbDocs 10, fbTerms 10, originalQueryWeight 0.5).
"""
import json
import os
import subprocess
import sys
import time

DEFAULT_CONFIGS = ["bm25:0.9:0.4", "rm3:0.9:0.4:10:10:0.5", "bm25:1.2:0.75", "rm3:1.2:0.75:10:10:0.5"]


def read_qrels(path):
    qrels = {}
    # utf-8-sig: a byte-order mark is not data; blank lines are no rows (as hyrank reads them).
    with open(path, encoding="utf-8-sig") as f:
        for number, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if number == 1 and not fields[-1].lstrip("-").isdigit():
                continue
            qrels.setdefault(fields[0], {})[fields[1]] = int(fields[2])
    return qrels


def build_index(data, out):
    index = os.path.join(out, "lucene-index")
    if os.path.isdir(index) and any(name.startswith("segments_") for name in os.listdir(index)):
        return index  # built by an earlier run
    docs = os.path.join(out, "lucene-docs")
    os.makedirs(docs, exist_ok=True)
    with open(os.path.join(data, "corpus.jsonl"), encoding="utf-8-sig") as src, \
            open(os.path.join(docs, "docs.jsonl"), "w") as dst:
        for line in src:
            if not line.strip():
                continue
            doc = json.loads(line)
            doc["_id"] = str(doc["_id"])
            # BEIR's loader reads an absent or null title (and text) as "".
            contents = ((doc.get("title") or "") + " " + (doc.get("text") or "")).strip()
            dst.write(json.dumps({"id": doc["_id"], "contents": contents}) + "\n")
    subprocess.run(
        [sys.executable, "-m", "pyserini.index.lucene", "--collection", "JsonCollection",
         "--input", docs, "--index", index, "--generator", "DefaultLuceneDocumentGenerator",
         "--threads", "2", "--storeDocvectors", "--storePositions"],
        check=True,
    )
    return index


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    data, split, out = sys.argv[1:4]
    configs = sys.argv[4:] or DEFAULT_CONFIGS
    os.makedirs(out, exist_ok=True)
    # pyserini 1.6 builds an OpenAI client when its search module is imported and fails without
    # a key; nothing here calls it.
    os.environ.setdefault("OPENAI_API_KEY", "not-used")
    import pytrec_eval
    from pyserini.search.lucene import LuceneSearcher

    qrels = read_qrels(os.path.join(data, "qrels", f"{split}.tsv"))
    queries = {}
    with open(os.path.join(data, "queries.jsonl"), encoding="utf-8-sig") as f:
        for line in f:
            if not line.strip():
                continue
            q = json.loads(line)
            if str(q["_id"]) in qrels:
                queries[str(q["_id"])] = q["text"]
    # A judged query without text would leave the mean silently (hyrank refuses it too).
    missing = sorted(set(qrels) - set(queries))
    if missing:
        sys.exit(f"{len(missing)} judged queries have no text in queries.jsonl: {', '.join(missing[:10])}")
    searcher = LuceneSearcher(build_index(data, out))
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100"})
    for config in configs:
        parts = config.split(":")
        kind, k1, b = parts[0], float(parts[1]), float(parts[2])
        searcher.set_bm25(k1, b)
        if kind == "rm3":
            searcher.set_rm3(int(parts[3]), int(parts[4]), float(parts[5]))
        elif kind == "bm25":
            searcher.unset_rm3()
        else:
            sys.exit(f"{config}: expected bm25:K1:B or rm3:K1:B:FB_DOCS:FB_TERMS:WEIGHT")
        run, millis = {}, []
        for qid, text in queries.items():
            start = time.perf_counter()
            hits = searcher.search(text, k=1001)
            millis.append((time.perf_counter() - start) * 1000)
            # A document can come back twice from Lucene only by a collection fault; keep the first.
            run[qid] = {}
            for hit in [h for h in hits if h.docid != qid][:1000]:
                run[qid].setdefault(hit.docid, hit.score)
        scores = evaluator.evaluate(run)
        name = config.replace(":", "_")
        with open(os.path.join(out, f"{name}.scores.tsv"), "w") as f:
            for qid, hits in run.items():
                for docid, score in hits.items():
                    f.write(f"{qid}\t{docid}\t{score}\n")
        with open(os.path.join(out, f"{name}.per-query.tsv"), "w") as f:
            f.write("query\tndcg@10\trecall@100\n")
            for qid in queries:
                s = scores.get(qid, {"ndcg_cut_10": 0.0, "recall_100": 0.0})
                f.write(f"{qid}\t{s['ndcg_cut_10']:.6f}\t{s['recall_100']:.6f}\n")
        # pytrec_eval leaves out a query with no hits: it scores 0, as in the per-query file.
        ndcg = sum(scores.get(q, {}).get("ndcg_cut_10", 0.0) for q in queries) / len(queries)
        recall = sum(scores.get(q, {}).get("recall_100", 0.0) for q in queries) / len(queries)
        millis.sort()
        print(f"{config:28} nDCG@10 {ndcg:.4f}  Recall@100 {recall:.4f}  p50 {millis[len(millis) // 2]:.1f} ms  ({len(queries)} queries)")


if __name__ == "__main__":
    main()
