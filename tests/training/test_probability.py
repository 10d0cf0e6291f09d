"""`calibrate --target-precision`: the NIL threshold chosen on a dev set."""
import random
import warnings

import pytest

from spacy_syncabel.evaluation.reliability import ScoredMention, at_threshold, ece
from spacy_syncabel.training.probability import (calibrate_probabilities, choose_nil_threshold,
                                                 lm_ranked_rows, with_probabilities)


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


def _m(path, text, correct, score=0.5):
    return ScoredMention("DIS", [{"code": "C", "name": "x", "score": score, "logprob": 0.0,
                                  "path": path}], correct, text, "C", "d0")


def test_lm_ranked_rows_fit_the_lm_path_on_every_mention_the_dictionary_does_not_settle():
    saved = [_m("dictionary", "a", True, 1.0), _m("retriever", "b", True), _m("lm", "c", False),
             ScoredMention("DIS", [], False, "e", "C", "d0")]
    ranked = [_m("lm", "a", True), _m("lm", "b", False, 0.3), _m("lm", "c", False, 0.2),
              ScoredMention("DIS", [], False, "e", "C", "d0")]
    rows = lm_ranked_rows(saved, ranked)
    assert [(r.path, r.text) for r in rows] == [("dictionary", "a"), ("retriever", "b"),
                                                ("lm", "b"), ("lm", "c")]
    with pytest.raises(ValueError, match="E643"):
        lm_ranked_rows(saved, ranked[::-1])
    with pytest.raises(ValueError, match="E643"):
        lm_ranked_rows(saved, ranked[:2])


def test_the_lm_path_learns_from_the_lm_ranked_rows_and_dev_is_scored_as_saved():
    # 40 LM-ranked dev mentions, all right; 400 LM-ranked rows of the retriever's mentions,
    # a quarter right: the LM path's probability follows the 440 rows (140 right), not the 40
    saved = [_m("lm", f"l{i}", True) for i in range(40)]
    saved += [_m("retriever", f"r{i}", i % 4 == 0, 0.9) for i in range(400)]
    ranked = [_m("lm", m.text, m.correct) for m in saved]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        alone = calibrate_probabilities(saved, "platt", rule="maps")
        both = calibrate_probabilities(saved, "platt", rule="maps",
                                       fit_rows=lm_ranked_rows(saved, ranked))
    p_alone = with_probabilities(alone, saved[:1])[0].probability()
    p_both = with_probabilities(both, saved[:1])[0].probability()
    assert p_alone > 0.9 and p_both == pytest.approx(140 / 440, abs=0.03)
    assert both.fit["lm_ranked_rows"] == 440 and "lm_ranked_rows" not in alone.fit
    # the dev ECE is measured on the mentions as saved (40 LM + 400 retriever), not the rows
    scored = with_probabilities(both, saved)
    assert both.fit["dev_ece"]["all"] == pytest.approx(
        ece([m.probability() for m in scored], [m.correct for m in scored]))
