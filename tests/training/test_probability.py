"""`calibrate --target-precision`: the NIL threshold chosen on a dev set."""
import random
import warnings

import pytest

from spacy_syncabel.evaluation.reliability import ScoredMention, at_threshold, ece
from spacy_syncabel.training.probability import (calibrate_probabilities, choose_nil_threshold,
                                                 with_probabilities)


def _dev(n=900, seed=3):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        path = ("lm", "retriever", "dictionary")[i % 3]
        score = 1.0 if path == "dictionary" else rng.random()
        p = {"lm": score ** 2, "retriever": 0.1 + 0.8 * score, "dictionary": 0.95}[path]
        out.append(ScoredMention("DIS", [{"code": "C", "name": "x", "score": score,
                                          "logprob": 0.0, "path": path}], rng.random() < p))
    out += [ScoredMention("DIS", [], False)] * 20  # no candidate: never linked, still counted
    return out


@pytest.mark.parametrize("target", [0.8, 0.9])
def test_target_precision_picks_the_lowest_threshold_meeting_it(target):
    dev = _dev()
    cal = calibrate_probabilities(dev, "isotonic", target_precision=target)
    scored = with_probabilities(cal, dev)
    probs = [m.probability() for m in scored]
    correct = [m.correct for m in scored]
    point = at_threshold(probs, correct, len(dev), cal.nil_threshold)
    assert point["precision"] >= target
    assert cal.fit["dev_operating_point"]["coverage"] == pytest.approx(point["coverage"])
    lower = [p for p in set(probs) if p < cal.nil_threshold]
    assert lower and at_threshold(probs, correct, len(dev), max(lower))["precision"] < target
    assert 0.0 < point["coverage"] < 1.0


def test_the_fit_records_dev_ece_before_and_after():
    dev = _dev()
    cal = calibrate_probabilities(dev, "platt")
    assert cal.nil_threshold is None
    assert cal.fit["dev_ece"]["all"] < cal.fit["dev_ece_raw"]["all"]
    scored = with_probabilities(cal, dev)
    assert ece([m.probability() for m in scored], [m.correct for m in scored]) \
        == pytest.approx(cal.fit["dev_ece"]["all"])


def test_an_unreachable_precision_warns_and_saves_no_threshold():
    dev = [ScoredMention("DIS", [{"code": "C", "score": 0.5, "path": "lm",
                                  "probability": 0.5}], i % 2 == 0) for i in range(40)]
    with pytest.warns(UserWarning, match="W500"):
        assert choose_nil_threshold(dev, 0.9) is None
    with pytest.raises(ValueError, match="E503"):
        choose_nil_threshold(dev, 1.5)


def test_a_small_path_gets_its_own_accuracy_not_the_joint_map():
    # 12 LM-ranked mentions, right 3 times, with scores (near 1) on which the joint map,
    # fitted on the other paths, would say ~0.9
    small = [ScoredMention("DIS", [{"code": "C", "score": 0.97 + 0.002 * i, "path": "lm"}],
                           i % 4 == 0) for i in range(12)]
    dev = [m for m in _dev() if m.path != "lm"] + small
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cal = calibrate_probabilities(dev, "platt")
    assert any("W610" in str(w.message) for w in caught)
    linked = [m for m in dev if m.nbest]
    acc = sum(m.correct for m in linked) / len(linked)
    p = cal.maps["lm"].of(small[0].nbest[0])
    assert p == pytest.approx((3 + 2 * acc) / 14, abs=1e-6)
    assert cal.maps["lm"].of(small[-1].nbest[0]) == pytest.approx(p)
    assert cal.maps["*"].of(small[0].nbest[0]) > p + 0.3
