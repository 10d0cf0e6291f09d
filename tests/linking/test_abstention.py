"""The NIL threshold: chosen where the answers kept give the best F1."""
import pytest

from spacy_syncabel.linking.abstention import abstention_curve, choose_threshold


def test_curve_counts_answers_kept_over_all_mentions():
    scores = [0.95, 0.9, 0.7, 0.4, 0.3, 0.1]
    correct = [True, True, False, True, False, False]
    curve = {round(r["threshold"], 2): r for r in abstention_curve(scores, correct)}
    assert curve[0.0]["p"] == pytest.approx(0.5) and curve[0.0]["r"] == pytest.approx(0.5)
    assert curve[0.8]["p"] == pytest.approx(1.0) and curve[0.8]["r"] == pytest.approx(2 / 6)
    assert curve[0.35]["answered"] == pytest.approx(4 / 6)


def test_threshold_drops_the_low_scores_that_are_mostly_wrong():
    # 60 right answers scoring high, 30 wrong ones scoring between 0.3 and 0.6, 10 right low
    scores = [0.97] * 60 + [0.3 + 0.01 * i for i in range(30)] + [0.1] * 10
    correct = [True] * 60 + [False] * 30 + [True] * 10
    threshold, curve = choose_threshold(scores, correct)
    assert 0.6 <= threshold <= 0.95
    best = max(r["f"] for r in curve)
    assert best > curve[0]["f"]
    # all right: answering everything is best, and the lowest threshold wins the tie
    assert choose_threshold([0.2, 0.9], [True, True])[0] == 0.0
