"""The systems the harness can run: names only, so the command line lists them without loading them."""

SYSTEMS = ("pipeline", "neural", "features", "dense", "bm25")
"""``pipeline`` is the assistant as it ships (hybrid retrieval, its default reader); ``neural`` and
``features`` the same retrieval with one reader forced (the trained neural reader, the feature-based
answerer); ``dense`` and ``bm25`` the shipped assistant with one retriever only. Peers (other
systems run outside the project, e.g. the repository's cairn-pipeline) come as ``peers``."""


DESCRIPTIONS = {
    "pipeline": "release-qa as shipped: hybrid retrieval (BM25 + MiniLM, rank fusion), its {reader} reader",
    "neural": "release-qa, hybrid retrieval, the neural reader (MiniLM fine-tuned on SQuAD v1.1 train)",
    "features": "release-qa, hybrid retrieval, the feature-based answerer (spaCy candidates, boosted trees)",
    "dense": "release-qa with dense-only retrieval (MiniLM + FAISS), its {reader} reader",
    "bm25": "release-qa with BM25-only retrieval (bm25s), its {reader} reader",
}
MODES = {"pipeline": "hybrid", "neural": "hybrid", "features": "hybrid", "dense": "dense", "bm25": "bm25"}
READERS = {"neural": "neural", "features": "features"}
