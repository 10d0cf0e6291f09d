"""Evaluation: the paper's Recall@k (exact code sets; per label, seen/unseen codes), the TF-IDF
baseline, prediction-file scoring, speed and memory."""
from .baseline import TfidfLinker
from .metrics import LinkResult, canonical, code_set, hit, recall_report, score_links

__all__ = ["TfidfLinker", "LinkResult", "canonical", "code_set", "hit", "recall_report",
           "score_links"]
