"""Answering: candidates from the retrieved passages, then one decision.

``base`` holds the ``Answerer`` protocol, the ``Candidate`` record and the decision (pick,
decline, alternatives); ``feature_answerer`` and ``neural`` are the two answerers; the neural one
reads with ``span_reader`` (the ONNX span model) and is scored by its calibration; ``features``
turns questions, sentences and spans into the feature answerer's numbers.
"""

from qa.answer.base import Answerer, Candidate, answer, answer_from_candidates
from qa.answer.feature_answerer import AnswererSettings, FeatureAnswerer
from qa.answer.neural import Calibration, NeuralAnswerer
from qa.answer.span_reader import ReadSpan, SpanReader, SpanReaderSettings

__all__ = [
    "Answerer",
    "AnswererSettings",
    "Calibration",
    "Candidate",
    "FeatureAnswerer",
    "NeuralAnswerer",
    "ReadSpan",
    "SpanReader",
    "SpanReaderSettings",
    "answer",
    "answer_from_candidates",
]
