"""ECE and precision/coverage of scored mentions."""
import pytest

from spacy_syncabel.evaluation.reliability import (ScoredMention, ece, ece_noise_floor,
                                                   precision_coverage,
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


def test_ece_noise_floor_is_the_ece_of_labels_drawn_from_the_probabilities():
    import numpy as np

    probs = [0.05 + 0.9 * i / 89 for i in range(90)]
    floor = ece_noise_floor(probs, draws=200, seed=3)
    labels = np.random.default_rng(3).random((200, 90)) < np.array(probs)
    sims = [ece(probs, row.tolist()) for row in labels]
    assert floor["mean"] == pytest.approx(float(np.mean(sims)))
    assert floor["share_at_most_0.05"] == pytest.approx(float(np.mean(np.array(sims) <= 0.05)))
    # a few dozen mentions score well above 0.05 however well calibrated; thousands do not
    assert floor["mean"] > 0.05 and floor["share_at_most_0.05"] < 0.5
    assert ece_noise_floor(probs * 50, draws=200)["p95"] < 0.03
    # certain probabilities leave nothing to chance
    assert ece_noise_floor([0.0, 1.0] * 10)["mean"] == 0.0


def test_the_report_gives_each_path_its_noise_floor():
    ms = [ScoredMention("DIS", [{"code": "A", "score": 0.6, "path": "lm"}], i % 2 == 0)
          for i in range(20)]
    report = reliability_report(ms)
    floor = report["per_path"]["lm"]["ece_noise_floor"]
    assert 0.0 < floor["mean"] < floor["p95"] and report["ece_noise_floor"] == floor
    from spacy_syncabel.evaluation.summary import calibration_tables

    line = next(r for r in calibration_tables(report).splitlines() if r.startswith("lm "))
    assert f"{floor['mean']:.3f} / {floor['p95']:.3f}" in line
