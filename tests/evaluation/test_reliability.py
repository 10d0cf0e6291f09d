"""ECE and precision/coverage of scored mentions."""
import pytest

from spacy_syncabel.evaluation.reliability import (ScoredMention, ece, precision_coverage,
                                                   reliability_report, scored_mentions,
                                                   threshold_for_precision)


def test_ece_of_calibrated_and_overconfident_scores():
    # bin 0.7-0.8: 7 of 10 right at 0.75 -> gap 0.05; bin 0.9-1.0: all wrong at 0.95
    probs = [0.75] * 10 + [0.95] * 10
    correct = [True] * 7 + [False] * 3 + [False] * 10
    assert ece(probs, correct) == pytest.approx((10 * 0.05 + 10 * 0.95) / 20)
    assert ece([0.25] * 4, [True, False, False, False]) == pytest.approx(0.0)


def test_precision_coverage_and_threshold():
    probs = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05]
    correct = [True, True, True, False, True, False, False, False, True, False]
    rows = {r["coverage_target"]: r for r in precision_coverage(probs, correct, 10)}
    assert rows[0.5]["threshold"] == 0.5 and rows[0.5]["precision"] == pytest.approx(0.8)
    assert rows[1.0]["precision"] == pytest.approx(0.5)
    best = threshold_for_precision(probs, correct, 10, 0.75)
    assert best["threshold"] == 0.5 and best["coverage"] == pytest.approx(0.5)


def test_scored_mentions_follow_the_recall_rule_and_report_per_path():
    items = [("A", ["A"], "DIS", "d", 0, 3), ("A", ["A"], "DIS", "d", 0, 3),  # duplicate
             ("NO_CODE", ["B"], "DIS", "d", 4, 6), ("B", ["C"], "DIS", "d", 7, 9),
             ("C", [], "DIS", "d", 10, 12)]
    nbests = [[{"code": "A", "score": 1.0, "path": "dictionary"}]] * 3 + [
        [{"code": "C", "score": 0.4, "path": "lm"}], None]
    ms = scored_mentions(items, nbests)
    assert [(m.path, m.correct) for m in ms] == [("dictionary", True), ("lm", False),
                                                 ("none", False)]
    report = reliability_report(ms, nil_threshold=0.5)
    assert report["probability"] == "score"
    assert {p: s["n_mentions"] for p, s in report["per_path"].items()} == {
        "dictionary": 1, "lm": 1, "none": 1}
    assert report["operating_point"]["coverage"] == pytest.approx(1 / 3)
    assert ScoredMention("DIS").probability() == 0.0
