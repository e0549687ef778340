"""Retrieval: the top passages for a question (dense, BM25 and by-sentence rankings fused)."""

from qa.retrieval.filters import Filters
from qa.retrieval.fusion import reciprocal_rank_fusion
from qa.retrieval.retriever import MODES, Retriever

__all__ = ["MODES", "Filters", "Retriever", "reciprocal_rank_fusion"]
