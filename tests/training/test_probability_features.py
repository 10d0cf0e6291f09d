"""The pooled feature model of the probabilities: fitted where a second feature (the margin to
the next code) decides, chosen over the per-path maps by cross-validation on dev, saved as
format v2 and loaded with v1 files, malformed files refused with a coded error."""
import json
import math
import random
import warnings

import pytest

from spacy_syncabel.evaluation.reliability import ScoredMention
from spacy_syncabel.linking.probability import (FORMAT, FORMAT_V2, ProbabilityCalibrator)
from spacy_syncabel.linking.probability_features import path_features
from spacy_syncabel.training.probability import calibrate_probabilities, with_probabilities
from spacy_syncabel.training.probability_features import choose_paths, fit_feature_model


def _mention(rng, path, doc):
    """One mention whose chance of being right depends on the margin between its first and
    second code (retriever), not on its score; exact matches nearly sure."""
    if path == "dictionary":
        second = rng.uniform(0.2, 0.8)
        nbest = [{"code": "A", "name": "a", "score": 1.0, "logprob": 0.0, "path": path},
                 {"code": "B", "name": "b", "score": second, "logprob": 0.0, "path": path}]
        return ScoredMention("DIS", nbest, rng.random() < 0.97, doc=doc)
    score = rng.uniform(0.4, 0.9)
    margin = rng.uniform(0.0, 0.3)
    nbest = [{"code": "A", "name": "a", "score": score, "logprob": 0.0, "path": path},
             {"code": "B", "name": "b", "score": score - margin, "logprob": 0.0, "path": path}]
    return ScoredMention("DIS", nbest, rng.random() < 0.1 + 2.8 * margin, doc=doc)


def _set(n, seed):
    rng = random.Random(seed)
    return [_mention(rng, ("retriever", "dictionary")[i % 2], f"doc{i // 10}.{i % 10}")
            for i in range(n)]


def _fit(dev, rule):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return calibrate_probabilities(dev, "platt", rule=rule)


def test_the_margin_matters_the_feature_model_sees_it_and_auto_chooses_it():
    dev, test = _set(600, 0), _set(1200, 1)
    maps, feats, auto = _fit(dev, "maps"), _fit(dev, "features"), _fit(dev, "auto")
    assert maps.model is None and maps.fit["rule"] == "maps"
    coef = dict(zip(feats.model.columns, feats.model.coef))
    assert coef["retriever:margin"] > 1.0  # standardised: a strong positive effect
    assert abs(coef["retriever:score"]) < coef["retriever:margin"] / 3
    # the score map cannot tell a wide margin from a narrow one; the model can
    wide, narrow = test[0].nbest, [dict(test[0].nbest[0]), dict(test[0].nbest[1])]
    wide = [dict(wide[0], score=0.7), dict(wide[1], score=0.42)]
    narrow = [dict(narrow[0], score=0.7), dict(narrow[1], score=0.69)]
    assert maps.probabilities(wide)[0] == pytest.approx(maps.probabilities(narrow)[0])
    assert feats.probabilities(wide)[0] > feats.probabilities(narrow)[0] + 0.5
    # among the wide-margin answers (right 2 times in 3) the maps say the path's mean rate
    for cal, off in ((maps, lambda gap: gap > 0.2), (feats, lambda gap: gap < 0.05)):
        wide_rows = [m for m in with_probabilities(cal, test) if m.path == "retriever"
                     and m.nbest[0]["score"] - m.nbest[1]["score"] > 0.2]
        gap = abs(sum(m.probability() for m in wide_rows) - sum(m.correct for m in wide_rows))
        assert off(gap / len(wide_rows))
    assert auto.fit["rule"] == "features" and auto.model is not None
    cv = auto.fit["rule_cv"]
    assert set(cv) == {"maps", "features:C=0.1", "features:C=1", "features:C=10"}
    assert min(v["log_loss"] for k, v in cv.items() if k != "maps") < cv["maps"]["log_loss"]
    best = min((k for k in cv if k != "maps"), key=lambda k: cv[k]["log_loss"])
    assert auto.fit["feature_c"] == float(best.split("=")[1])
    assert "retriever" in auto.model.paths
    assert set(auto.model.paths) == set(choose_paths(cv["maps"], cv[best]))
    for m in test[:40]:  # a path left to the maps gets the maps' probability
        if m.path not in auto.model.paths:
            assert auto.probabilities(m.nbest)[0] == pytest.approx(maps.probabilities(m.nbest)[0])


def test_auto_takes_the_model_only_on_the_paths_whose_held_out_loss_it_lowers():
    maps = {"per_path": {"lm": {"log_loss": 0.65}, "retriever": {"log_loss": 0.69},
                         "dictionary": {"log_loss": 0.046}}}
    model = {"per_path": {"lm": {"log_loss": 0.67}, "retriever": {"log_loss": 0.55},
                          "dictionary": {"log_loss": 0.046}}}
    assert choose_paths(maps, model) == ["retriever"]
    assert choose_paths(maps, maps) == []


def test_a_small_path_gets_its_indicator_only():
    dev = _set(400, 2)
    lm = [ScoredMention("DIS", [{"code": "A", "score": 0.9 - 0.01 * i, "similarity": 0.5,
                                 "path": "lm"},
                                {"code": "B", "score": 0.1, "similarity": 0.4, "path": "lm"}],
                        i % 3 == 0, doc=f"lm{i}") for i in range(12)]
    model = fit_feature_model(dev + lm, prior_weight=2.0)
    assert "lm" in model.columns and not any(c.startswith("lm:") for c in model.columns)
    p = [model.probability(m.nbest) for m in lm]
    assert max(p) - min(p) < 1e-12  # one rate for the path, whatever its scores
    many = lm * 3  # 36 mentions: its features come in
    assert any(c.startswith("lm:") for c in fit_feature_model(dev + many, 2.0).columns)


def test_lm_features_read_the_lms_own_log_prob_and_the_ranking_margin():
    nbest = [{"code": "A", "score": 0.5, "similarity": 0.8, "path": "lm"},
             {"code": "B", "score": 0.25, "similarity": 0.7, "path": "lm"}]
    f = path_features(nbest, prior_weight=10.0)
    assert f["log_score"] == pytest.approx(math.log(0.5))
    assert f["similarity"] == pytest.approx(0.8)
    assert f["margin"] == pytest.approx(math.log(2) + 1.0)
    assert path_features(nbest[:1], 10.0)["margin"] == 5.0  # no second entry: the cap


def test_v2_save_load_round_trip_is_plain_json(tmp_path):
    cal = _fit(_set(600, 3), "features")
    cal.nil_threshold = 0.35
    data = cal.to_dict()
    assert data["format"] == FORMAT_V2 and data["model"]["kind"] == "logistic"
    path = tmp_path / "probability.json"
    path.write_text(json.dumps(data), encoding="utf8")
    loaded = ProbabilityCalibrator.from_dict(json.loads(path.read_text(encoding="utf8")))
    assert loaded.nil_threshold == 0.35 and loaded.model == cal.model
    for m in _set(50, 9):
        assert loaded.probabilities(m.nbest) == pytest.approx(cal.probabilities(m.nbest))


def test_a_v1_file_still_loads_and_maps_only_writes_v1():
    cal = _fit(_set(600, 3), "maps")
    data = json.loads(json.dumps(cal.to_dict()))
    assert data["format"] == FORMAT and "model" not in data
    loaded = ProbabilityCalibrator.from_dict(data)
    assert loaded.model is None
    m = _set(4, 8)[0]
    assert loaded.probabilities(m.nbest) == pytest.approx(cal.probabilities(m.nbest))


@pytest.mark.parametrize("edit,code", [
    (lambda d: d.pop("model"), "E640"),
    (lambda d: d.update(format=FORMAT), "E641"),
    (lambda d: d["model"]["coef"].pop(), "E501"),
    (lambda d: d["model"].update(scale=[0.0] * len(d["model"]["scale"])), "E501"),
    (lambda d: d["model"]["columns"].__setitem__(0, "lm:length"), "E501"),
    (lambda d: d["model"].update(kind="forest"), "E501"),
    (lambda d: d.update(format="spacy_syncabel.probability.v3"), "E500"),
])
def test_a_malformed_v2_file_is_refused_with_a_coded_error(edit, code):
    data = json.loads(json.dumps(_fit(_set(400, 5), "features").to_dict()))
    edit(data)
    with pytest.raises(ValueError, match=code):
        ProbabilityCalibrator.from_dict(data, "probability.json")


def test_auto_keeps_the_maps_on_a_dev_set_too_small_to_compare_them():
    cal = _fit(_set(60, 7), "auto")
    assert cal.fit["rule"] == "maps" and cal.model is None and cal.fit["rule_cv"] is None
    assert cal.to_dict()["format"] == FORMAT


def test_an_unknown_rule_is_refused():
    with pytest.raises(ValueError, match="E642"):
        calibrate_probabilities(_set(100, 6), rule="forest")
