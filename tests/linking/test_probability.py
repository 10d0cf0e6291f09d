"""The probability calibrator: per-path maps fitted on scored mentions, saved as JSON only,
monotone in the score within a path, n-best probabilities that never rise."""
import json
import random

import pytest

from spacy_syncabel.evaluation.reliability import ScoredMention
from spacy_syncabel.linking.probability import JOINT, ProbabilityCalibrator, ScoreMap
from spacy_syncabel.training.probability import fit_calibrator, fit_map


def _mentions(n=600, seed=0):
    """Scored mentions whose chance of being right depends on the path and the score: LM
    scores are over-confident, retrieval cosines under-confident, exact matches nearly sure."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        path = ("lm", "retriever", "dictionary")[i % 3]
        score = 1.0 if path == "dictionary" else rng.random()
        p = {"lm": score ** 3, "retriever": min(1.0, 0.2 + score * 0.7), "dictionary": 0.97}[path]
        nbest = [{"code": f"C{i}", "name": "x", "score": score, "logprob": 0.0, "path": path},
                 {"code": f"D{i}", "name": "y", "score": score * 0.8, "logprob": 0.0,
                  "path": path}]
        out.append(ScoredMention("DIS", nbest, rng.random() < p))
    return out


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_fit_save_load_round_trip_is_plain_json(method, tmp_path):
    cal = fit_calibrator(_mentions(), method)
    cal.nil_threshold = 0.4
    assert set(cal.maps) == {JOINT, "lm", "retriever", "dictionary"}
    path = tmp_path / "probability.json"
    path.write_text(json.dumps(cal.to_dict()), encoding="utf8")
    loaded = ProbabilityCalibrator.from_dict(json.loads(path.read_text(encoding="utf8")))
    assert loaded.nil_threshold == 0.4
    for m in _mentions(60, seed=1):
        assert loaded.probabilities(m.nbest) == pytest.approx(cal.probabilities(m.nbest))
    # the per-path maps differ: one score, three probabilities
    probe = [{"code": "C", "score": 0.3, "path": p} for p in ("lm", "retriever")]
    assert cal.probabilities(probe[1:])[0] - cal.probabilities(probe[:1])[0] > 0.2


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_probability_is_monotone_in_the_score_within_a_path(method):
    cal = fit_calibrator(_mentions(), method)
    for path in ("lm", "retriever"):
        probs = [cal.probabilities([{"code": "C", "score": s / 100, "path": path}])[0]
                 for s in range(101)]
        assert all(b >= a - 1e-12 for a, b in zip(probs, probs[1:]))
        assert probs[-1] > probs[0]
        assert all(0.0 <= p <= 1.0 for p in probs)


def test_nbest_probabilities_never_rise_and_sum_to_at_most_one():
    cal = ProbabilityCalibrator({JOINT: ScoreMap("platt", coef=8.0, intercept=-2.0)})
    nbest = [{"code": c, "score": s, "path": "lm"} for c, s in
             (("a", 0.6), ("b", 0.9), ("c", 0.8), ("d", 0.1))]
    probs = cal.probabilities(nbest)
    assert all(b <= a for a, b in zip(probs, probs[1:]))
    assert sum(probs) <= 1.0 + 1e-9
    assert probs[0] == pytest.approx(ScoreMap("platt", coef=8.0, intercept=-2.0)(0.6))


def test_a_constant_outcome_or_score_gives_a_constant_map():
    m = fit_map([1.0] * 50, [True] * 49 + [False], "platt")
    assert m.coef == 0.0 and m(1.0) == pytest.approx(49.5 / 51)


@pytest.mark.parametrize("data, code", [
    ({"format": "other"}, "E500"),
    ({"format": "spacy_syncabel.probability.v1", "maps": {}}, "E501"),
    ({"format": "spacy_syncabel.probability.v1",
      "maps": {"lm": {"method": "platt", "coef": -1.0, "intercept": 0.0}}}, "E501"),
    ({"format": "spacy_syncabel.probability.v1",
      "maps": {"lm": {"method": "isotonic", "x": [0.0, 1.0], "y": [0.9, 0.1]}}}, "E501"),
    ({"format": "spacy_syncabel.probability.v1",
      "maps": {"beam": {"method": "platt", "coef": 1.0, "intercept": 0.0}}}, "E501"),
    ({"format": "spacy_syncabel.probability.v1", "nil_threshold": 2,
      "maps": {"lm": {"method": "platt", "coef": 1.0, "intercept": 0.0}}}, "E501"),
])
def test_a_damaged_file_is_refused_with_a_code(data, code):
    with pytest.raises(ValueError, match=code):
        ProbabilityCalibrator.from_dict(data)


def test_the_lm_map_reads_the_value_the_lm_ranked_by():
    """With the linker's prior weight, the LM path's probability follows log(score) +
    weight × similarity: monotone in the score at a fixed similarity, and a candidate the
    retriever also liked is more probable at the same score."""
    rng = random.Random(4)
    ms = []
    for i in range(400):
        score, sim = rng.random(), rng.random()
        ms.append(ScoredMention("DIS", [{"code": "C", "score": score, "similarity": sim,
                                         "logprob": -1.0, "path": "lm"}],
                                rng.random() < sim))  # only the similarity tells
    cal = fit_calibrator(ms, "platt", prior_weight=5.0)
    assert cal.maps["lm"].feature == "rank" and cal.maps["lm"].prior_weight == 5.0
    p = lambda s, sim: cal.probabilities([{"code": "C", "score": s, "similarity": sim,  # noqa
                                           "path": "lm"}])[0]
    assert p(0.5, 0.9) - p(0.5, 0.1) > 0.3
    probs = [p(s / 50, 0.5) for s in range(1, 51)]
    assert all(b >= a - 1e-12 for a, b in zip(probs, probs[1:]))
    again = ProbabilityCalibrator.from_dict(json.loads(json.dumps(cal.to_dict())))
    assert again.maps["lm"] == cal.maps["lm"]
