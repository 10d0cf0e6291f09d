"""Evaluation: Recall@k (per label, seen/unseen codes), the TF-IDF baseline, speed and memory."""
from .baseline import TfidfLinker
from .metrics import LinkResult, hit, recall_report

__all__ = ["TfidfLinker", "LinkResult", "hit", "recall_report"]
