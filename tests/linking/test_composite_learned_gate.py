"""The learned composite gate (``composite_gate``): fitted on coordinated training mentions
under a masked view, saved with the linker, checked when loaded."""
import json
import warnings

import pytest
import spacy

from spacy_syncabel.linking import LinkSettings
from spacy_syncabel.linking.composite_gate import GATE_FILE, CompositeGate
from spacy_syncabel.prompting import SEP_TOKEN
from spacy_syncabel.training.pipeline_io import save_pipeline
from spacy_syncabel.training.composite_gate_fit import (choose_threshold, fit_gate,
                                                        masked_training_rows)
from spacy_syncabel.types import CorpusDoc, GoldMention

# coordinated training mentions: code sets, and single codes written with a coordinator
# (a KB name of one code, as "ictericia de piel y mucosas")
COMPOSITES = [("fiebre y cefalea", "386661006+25064002", "SINTOMA"),
              ("disnea y fiebre", "267036007+386661006", "SINTOMA"),
              ("cefalea y disnea", "25064002+267036007", "SINTOMA"),
              ("dolor abdominal y fiebre", "21522001+386661006", "SINTOMA"),
              ("hipertensión arterial y neumonía", "38341003+233604007", "ENFERMEDAD")]
SINGLES = [("ecografía de abdomen y pelvis", "418394000", "PROCEDIMIENTO"),
           ("ecografía de abdomen y de pelvis", "418394000", "PROCEDIMIENTO"),
           ("dolor de cabeza y cefalea", "25064002", "SINTOMA")]


#: coordinated single-code mentions outnumber composites (SPACCC's training split: 1,228 of
#: 1,968 coordinated mentions)
MIX = COMPOSITES + SINGLES * 3


def _docs(copies=4):
    """Training documents: each mention in its own short sentence, ``copies`` times."""
    docs = []
    for k in range(copies):
        for i, (text, code, label) in enumerate(MIX):
            sentence = f"Presenta {text} desde ayer."
            start = sentence.index(text)
            docs.append(CorpusDoc(f"d{k}-{i}", sentence,
                                  [GoldMention(start, start + len(text), label, code)]))
    return docs


def _nlp(tiny_lm, small_kb, **config):
    model, tok = tiny_lm
    nlp = spacy.blank("es")
    linker = nlp.add_pipe("syncabel_linker", config={
        "mode": "rerank", "composite": True, "composite_expand": True, "candidates": 3,
        "num_beams": 3, "n_best": 3, "cascade": False, **config})
    with pytest.warns(UserWarning):  # the tiny model is not fine-tuned (W103)
        linker.set_model(model, tok, small_kb)
    return nlp


@pytest.fixture(scope="module")
def fitted(tiny_lm, small_kb):
    nlp = _nlp(tiny_lm, small_kb)
    linker = nlp.get_pipe("syncabel_linker")
    rows = masked_training_rows(linker.engine, linker.group_for, _docs())
    return nlp, rows, fit_gate(rows, folds=4)


def _candidates(engine, mentions, groups):
    top = engine.retrieve(mentions, groups)
    return engine.composite_candidates(mentions, groups, top)


def test_training_rows_label_the_gold_candidate(fitted):
    _, rows, _ = fitted
    by_mention = {}
    for r in rows:
        by_mention.setdefault(r["mention"], []).append(r)
    # every coordinated training mention, once per copy; the gold code set among the
    # composites' candidates, never among the single-code mentions'
    assert set(by_mention) == {t for t, _, _ in COMPOSITES + SINGLES}
    assert all(len(v) == 4 * sum(t == m for m, _, _ in MIX) for t, v in by_mention.items())
    assert any(ok for _, ok in by_mention["fiebre y cefalea"][0]["candidates"])
    assert not any(ok for t, _, _ in SINGLES for r in by_mention[t] for _, ok in r["candidates"])


def test_fitted_gate_keeps_coordinated_single_code_mentions_single(fitted):
    nlp, _, gate = fitted
    assert 0.0 < gate.threshold < 1.0
    assert gate.stats["cv_right"] >= gate.stats["cv_passed"] / 2 > 0
    engine = nlp.get_pipe("syncabel_linker").engine
    mentions = ["cefalea y dolor abdominal", "ecografía de abdomen y pelvis"]
    groups = ["SINTOMA", "PROCEDIMIENTO"]
    before = _candidates(engine, mentions, groups)
    assert before[0] and before[1]  # without the gate both get composite candidates
    gated = engine.with_settings(composite_gate=True)
    gated.composite_gate = gate
    after = _candidates(gated, mentions, groups)
    # "diabetes e hipertensión"-like: split, on the conjuncts' names
    assert after[0][0].name == "cefalea" + SEP_TOKEN + "dolor abdominal"
    assert after[1] == []  # "ictericia de piel y mucosas"-like: single


def test_gate_round_trips_with_the_pipeline(fitted, tmp_path):
    nlp, _, gate = fitted
    linker = nlp.get_pipe("syncabel_linker")
    saved = linker.engine
    try:
        linker.engine = saved.with_settings()
        linker.engine.composite_gate = gate
        save_pipeline(nlp, tmp_path / "pipe", settings=saved.settings.replace(
            composite_gate=True), fine_tuned=False)
    finally:
        linker.engine = saved
    assert GATE_FILE in json.loads((tmp_path / "pipe" / "syncabel_linker" / "state.json")
                                   .read_text())["sha256"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = spacy.load(tmp_path / "pipe").get_pipe("syncabel_linker")
    assert loaded.settings.composite_gate is True
    assert loaded.engine.composite_gate == gate
    assert loaded.engine.composite_gate.threshold == gate.threshold
    mentions, groups = ["cefalea y dolor abdominal", "ecografía de abdomen y pelvis"], \
        ["SINTOMA", "PROCEDIMIENTO"]
    expected = linker.engine.with_settings(composite_gate=True)
    expected.composite_gate = gate
    assert _candidates(loaded.engine, mentions, groups) == _candidates(expected, mentions,
                                                                       groups)


def test_malformed_saved_gate_is_a_coded_error(fitted, tmp_path):
    from spacy_syncabel.saved_folder import record_checksums

    nlp, _, gate = fitted
    linker = nlp.get_pipe("syncabel_linker")
    saved = linker.engine
    try:
        linker.engine = saved.with_settings()
        linker.engine.composite_gate = gate
        nlp.to_disk(tmp_path / "pipe")
    finally:
        linker.engine = saved
    folder = tmp_path / "pipe" / "syncabel_linker"
    data = gate.to_dict()
    data["coef"] = data["coef"][:-1]  # one coefficient short
    (folder / GATE_FILE).write_text(json.dumps(data))
    state = json.loads((folder / "state.json").read_text())
    state["sha256"].update(record_checksums(folder, model=None, extra=(GATE_FILE,)))
    (folder / "state.json").write_text(json.dumps(state))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=r"E631.*'coef'"):
            spacy.load(tmp_path / "pipe")


@pytest.mark.parametrize("change,code", [
    ({"format": "other"}, "E630"), ({"version": 9}, "E631"), ({"features": []}, "E631"),
    ({"scale": None}, "E631"), ({"threshold": 1.5}, "E631"), ({"intercept": "x"}, "E631"),
])
def test_gate_file_is_checked(change, code):
    good = CompositeGate(("a", "b"), (1.0, -1.0), 0.0, (0.0, 0.0), (1.0, 1.0), 0.5).to_dict()
    assert CompositeGate.from_dict(good).threshold == 0.5
    with pytest.raises(ValueError, match=code):
        CompositeGate.from_dict({**good, **change})
    with pytest.raises(ValueError, match="E630"):
        CompositeGate.from_dict([1, 2])


def test_setting_on_without_a_gate_is_a_coded_error(tiny_lm, small_kb):
    nlp = _nlp(tiny_lm, small_kb, composite_gate=True)
    engine = nlp.get_pipe("syncabel_linker").engine
    with pytest.raises(ValueError, match="E632"):
        _candidates(engine, ["fiebre y cefalea"], ["SINTOMA"])
    assert LinkSettings().composite_gate is False  # pipelines saved without it


def test_choose_threshold_is_the_lowest_precise_enough():
    probs = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
    labels = [1, 1, 0, 1, 0, 0]
    assert choose_threshold(probs, labels, 0.5) == (0.4, {"cv_passed": 6, "cv_right": 3})
    assert choose_threshold(probs, labels, 0.75) == (0.6, {"cv_passed": 4, "cv_right": 3})
    assert choose_threshold(probs, [0] * 6, 0.5)[0] == 1.0  # none: nothing passes
    # ties pass together
    assert choose_threshold([0.5, 0.5], [1, 0], 0.6)[0] == 1.0


def test_calibrate_fits_and_saves_the_learned_gate(tiny_lm, small_kb, tmp_path):
    from spacy_syncabel.training.calibration import calibrate_pipeline

    nlp = _nlp(tiny_lm, small_kb)
    nlp.to_disk(tmp_path / "pipe")
    dev = _docs(copies=1)[:2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = calibrate_pipeline(tmp_path / "pipe", dev, weights=(1000.0,), cascade=False,
                                    train_docs=_docs())
        loaded = spacy.load(tmp_path / "pipe").get_pipe("syncabel_linker")
    assert result["learned_gate"]["mentions"] == 4 * len(MIX)
    assert loaded.settings.composite_gate is True and loaded.settings.composite_split is None
    assert loaded.engine.composite_gate.threshold == result["learned_gate"]["threshold"]
    assert (tmp_path / "pipe" / "syncabel_linker" / GATE_FILE).is_file()


def test_cascade_asks_the_lm_only_when_a_composite_candidate_passes(fitted, monkeypatch):
    nlp, _, gate = fitted
    engine = nlp.get_pipe("syncabel_linker").engine.with_settings(
        composite_gate=True, cascade=True, cascade_margin=0.0)
    engine.composite_gate = gate
    # the second is no KB name (an exact match would settle it whatever the gate)
    mentions = ["cefalea y dolor abdominal", "ecografía de abdomen y de pelvis"]
    groups = ["SINTOMA", "PROCEDIMIENTO"]
    plan = engine.settle(mentions, groups)
    assert plan[1].exact is None
    assert [p.composite_open for p in plan] == [True, False]
    asked = []
    real = engine.score_candidates

    def spy(prompts, groups_, mentions_, retrieved=None):
        asked.extend(mentions_)
        return real(prompts, groups_, mentions_, retrieved)

    monkeypatch.setattr(engine, "score_candidates", spy)
    prompts = [engine.tokenizer(f"Presenta {m}.")["input_ids"] for m in mentions]
    out = engine.link(prompts, groups, mentions)
    assert asked == mentions[:1]  # the single-code one is the retriever's, without the LM
    assert out[1][0].code == plan[1].ranked[0].code


def test_calibrate_warns_when_the_training_corpus_teaches_the_gate_nothing(tiny_lm, small_kb,
                                                                           tmp_path):
    """A training corpus whose coordinated mentions are all single codes leaves nothing to
    learn: W630 says so, and the split gate is chosen on dev as before."""
    from spacy_syncabel.training.calibration import calibrate_pipeline

    nlp = _nlp(tiny_lm, small_kb)
    nlp.to_disk(tmp_path / "pipe")
    singles_only = [d for d in _docs() if "+" not in d.mentions[0].code]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = calibrate_pipeline(tmp_path / "pipe", _docs(copies=1)[:2], weights=(1000.0,),
                                    cascade=False, train_docs=singles_only)
    assert any("W630" in str(w.message) for w in caught)
    assert "learned_gate" not in result
    loaded = spacy.load(tmp_path / "pipe").get_pipe("syncabel_linker")
    assert loaded.settings.composite_gate is False
    assert not (tmp_path / "pipe" / "syncabel_linker" / GATE_FILE).exists()
