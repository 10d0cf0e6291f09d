"""Recall@k, composite gold codes, per-label and seen/unseen breakdowns."""
import pytest

from spacy_syncabel.evaluation.metrics import LinkResult, hit, recall_report


def test_hit_at_k():
    assert hit("A", ["B", "A"], 2) and not hit("A", ["B", "A"], 1)
    assert not hit("A", [], 5)


def test_composite_gold_needs_every_code():
    assert hit("A+B", ["B+A"], 1)
    assert not hit("A+B", ["A", "B"], 2)  # two separate predictions are not one composite link
    assert not hit("A+B", ["A"], 1)


def test_report_per_label_and_seen_unseen():
    results = [LinkResult("A", ["A", "B"], "X"), LinkResult("B", ["C", "B"], "X"),
               LinkResult("C", ["D"], "Y"), LinkResult("A+C", ["A+C"], "Y")]
    rep = recall_report(results, (1, 2), seen_codes={"A", "B"})
    assert rep["recall@1"] == pytest.approx(2 / 4) and rep["recall@2"] == pytest.approx(3 / 4)
    assert rep["per_label"]["X"]["recall@1"] == pytest.approx(0.5)
    assert rep["per_label"]["Y"]["n_mentions"] == 2
    assert rep["seen"]["n_mentions"] == 2 and rep["seen"]["recall@2"] == 1.0
    assert rep["unseen"]["n_mentions"] == 2 and rep["unseen"]["recall@1"] == pytest.approx(0.5)
