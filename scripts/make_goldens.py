#!/usr/bin/env python3
"""Writes fixtures/golden_embeddings.json: sentence-transformers' embeddings of a few texts
with the same model files hyrank loads. Run once, by hand, where sentence-transformers is
installed (`pip install sentence-transformers`); the committed output is what the parity test
compares candle's embeddings against (cosine >= 0.999).

    python3 scripts/make_goldens.py models/all-MiniLM-L6-v2
"""
import json
import sys
from pathlib import Path

import sentence_transformers
from sentence_transformers import SentenceTransformer

model_dir = sys.argv[1] if len(sys.argv) > 1 else "models/all-MiniLM-L6-v2"
model = SentenceTransformer(model_dir, device="cpu")
long_text = " ".join(
    ["Alterations of the architecture of cerebral white matter in the developing human brain"] * 40
)
texts = [
    "hiking boots",
    "Kestrel Cirque 2 Bivy Tent. A silnylon fly with taped seams sheds sustained rain and wind.",
    "What is the effect of vitamin D supplementation on bone density in older adults?",
    "Crème brûlée, jalapeño & naïve café — ünïcödé, emoji 🏕️ and CJK 東京",
    "a",
    long_text,  # far past 256 tokens: checks truncation matches
]
vectors = model.encode(texts, normalize_embeddings=False, convert_to_numpy=True)
out = {
    "model_dir": model_dir,
    "sentence_transformers": sentence_transformers.__version__,
    "max_seq_length": model.max_seq_length,
    "cases": [{"text": t, "embedding": [round(float(x), 7) for x in v]} for t, v in zip(texts, vectors)],
}
Path("fixtures/golden_embeddings.json").write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
print(f"wrote {len(texts)} golden embeddings (max_seq_length {model.max_seq_length})")
