"""Choosing the TF-IDF prior's weight on dev: the grid's ends are the retriever alone and the
LM alone, and the saved weight is the one the loaded pipeline links with."""
import json
import warnings

import pytest
import spacy

from spacy_syncabel.decoding.scoring import score_completions
from spacy_syncabel.training.calibration import (DEFAULT_MARGINS, calibrate_pipeline,
                                                 cascade_table, choose_margin,
                                                 prior_weight_table, score_dev)
from spacy_syncabel.training.examples import build_dev_set
from spacy_syncabel.types import CorpusDoc, GoldMention

from .test_ranking import CONFUSED, PATTERNS

# mentions whose closest KB name is their own concept's, beside the confused ones
CLEAR = [("hipertensión", "ENFERMEDAD", "38341003"), ("dolor de cabeza", "SINTOMA", "25064002"),
         ("apendicectomía", "PROCEDIMIENTO", "80146002"), ("fiebre alta", "SINTOMA", "386661006")]


def dev_corpus():
    docs = []
    for i, (mention, label, code) in enumerate(CONFUSED + CLEAR):
        text = PATTERNS[i % len(PATTERNS)].format(mention)
        start = text.index(mention)
        docs.append(CorpusDoc(f"d{i}", text, [GoldMention(start, start + len(mention), label,
                                                          code)]))
    return docs


@pytest.fixture()
def nlp(tiny_lm, small_kb):
    nlp = spacy.blank("es")
    lin = nlp.add_pipe("syncabel_linker", config={"mode": "beam_in_candidates",
                                                   "candidates": 4, "num_beams": 2,
                                                   "n_best": 2})
    lin.set_model(tiny_lm[0], tiny_lm[1], small_kb)
    return nlp


def test_grid_ends_are_the_retriever_and_the_lm(nlp):
    linker = nlp.get_pipe("syncabel_linker")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dev = build_dev_set(dev_corpus(), linker, size=0)
    assert len(dev) == len(CONFUSED + CLEAR)
    table = {r["prior_weight"]: r["recall@1"]
             for r in prior_weight_table(linker.engine, dev)}
    top = linker.candidate_index.top(dev.mentions, dev.groups, 4)
    tfidf = sum(linker.kb.lookup(c[0][0], g) == gold
                for c, g, gold in zip(top, dev.groups, dev.codes)) / len(dev)
    assert tfidf == pytest.approx(len(CLEAR) / len(dev))  # right on CLEAR only
    assert table[1000.0] == pytest.approx(tfidf)
    eos = linker.tokenizer.eos_token_id
    comps = [[linker.engine.name_tokens(n) + [eos] for n, _ in c] for c in top]
    logps = score_completions(linker.lm, dev.prompt_ids, comps, linker.tokenizer.pad_token_id)
    lm_only = 0
    for cands, comp, lps, g, gold in zip(top, comps, logps, dev.groups, dev.codes):
        best = max(range(len(cands)), key=lambda j: lps[j] / len(comp[j]))
        lm_only += linker.kb.lookup(cands[best][0], g) == gold
    assert table[0.0] == pytest.approx(lm_only / len(dev))


def test_calibrated_weight_is_saved_and_used(nlp, tmp_path):
    from spacy_syncabel.evaluation.evaluate import evaluate_linker

    nlp.to_disk(tmp_path / "pipe")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = calibrate_pipeline(tmp_path / "pipe", dev_corpus(), candidates=3)
    assert result["recall@1"] == max(r["recall@1"] for r in result["table"])
    loaded = spacy.load(tmp_path / "pipe")
    linker = loaded.get_pipe("syncabel_linker")
    assert linker.cfg["mode"] == "rerank" and linker.cfg["candidates"] == 3
    assert not (tmp_path / "pipe" / "syncabel_linker" / "cfg.json").exists()
    assert linker.cfg["prior_weight"] == result["prior_weight"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = spacy.load(tmp_path / "pipe",
                          config={"components.syncabel_linker.cascade": False})
        metrics = evaluate_linker(full, dev_corpus(), baseline=False)
    assert metrics["recall@1"] == pytest.approx(result["recall@1"])


def test_cascade_margin_is_chosen_saved_and_linked_with(nlp, tmp_path):
    """The most aggressive cut-off that keeps the full model's dev Recall@1 is saved on, and
    the loaded pipeline links the dev set exactly as the offline table said."""
    from spacy_syncabel.evaluation.evaluate import evaluate_linker

    nlp.to_disk(tmp_path / "pipe")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = calibrate_pipeline(tmp_path / "pipe", dev_corpus(), candidates=3)
    cas = result["cascade"]
    assert [r["margin"] for r in cas["table"]] == list(DEFAULT_MARGINS)
    assert cas["tolerance"] == 0.002  # 0.2 points by default
    ok = [r for r in cas["table"] if r["recall@1"] >= result["recall@1"] - 0.002 - 1e-12]
    assert cas["on"] and cas["margin"] == ok[0]["margin"]
    assert cas["recall@1"] == ok[0]["recall@1"] >= result["recall@1"] - 0.002 - 1e-12
    exact_only = cas["table"][-1]
    assert exact_only["skipped"] >= 2 / len(dev_corpus())  # two dev mentions are KB names
    assert cas["table"][0]["skipped"] >= exact_only["skipped"]
    saved = json.loads((tmp_path / "pipe" / "calibration.json").read_text("utf8"))
    assert saved["cascade"]["table"] == cas["table"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = spacy.load(tmp_path / "pipe")
        settings = loaded.get_pipe("syncabel_linker").settings
        assert settings.cascade and settings.cascade_margin == cas["margin"]
        metrics = evaluate_linker(loaded, dev_corpus(), baseline=False)
    assert metrics["recall@1"] == pytest.approx(cas["recall@1"])


def test_cascade_table_reuses_the_scores(nlp):
    linker = nlp.get_pipe("syncabel_linker")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dev = build_dev_set(dev_corpus(), linker, size=0)
    scored = score_dev(linker.engine, dev)
    calls = []
    handle = linker.lm.register_forward_pre_hook(lambda *_: calls.append(1))
    try:
        table = cascade_table(linker.engine, dev, scored, 1000.0, margins=(0.0, 0.5, None))
    finally:
        handle.remove()
    assert not calls and len(table) == 3
    # at margin 0 every mention takes the retriever's answer: the weight-1000 ranking's
    assert table[0]["skipped"] == 1.0
    assert table[0]["recall@1"] == pytest.approx(
        prior_weight_table(linker.engine, dev, (1000.0,), scored)[0]["recall@1"])


def test_choose_margin_takes_the_most_aggressive_cut_off_that_keeps_recall():
    table = [{"margin": 0.0, "recall@1": 0.60}, {"margin": 0.1, "recall@1": 0.64},
             {"margin": 0.2, "recall@1": 0.63}, {"margin": None, "recall@1": 0.65}]
    assert choose_margin(table, 0.64)["margin"] == 0.1
    assert choose_margin(table, 0.65)["margin"] is None
    assert choose_margin(table, 0.65, tolerance=0.01)["margin"] == 0.1
    assert choose_margin(table, 0.66) is None


def test_cascade_is_saved_off_when_it_loses(nlp, tmp_path):
    nlp.to_disk(tmp_path / "pipe")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = calibrate_pipeline(tmp_path / "pipe", dev_corpus(), candidates=3,
                                    cascade_tolerance=-1.0)  # demands a gain of 100 points
    assert any("W220" in str(w.message) for w in caught)
    assert not result["cascade"]["on"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        settings = spacy.load(tmp_path / "pipe").get_pipe("syncabel_linker").settings
    assert settings.mode == "rerank" and settings.cascade is False


def test_calibrate_command(nlp, tmp_path):
    from typer.testing import CliRunner

    from spacy_syncabel.cli import app
    from spacy_syncabel.corpus import write_jsonl

    nlp.to_disk(tmp_path / "pipe")
    write_jsonl(dev_corpus(), tmp_path / "dev.jsonl")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = CliRunner().invoke(app, ["calibrate", str(tmp_path / "pipe"),
                                       str(tmp_path / "dev.jsonl"), "--candidates", "3"])
    assert res.exit_code == 0, res.output
    chosen = [line for line in res.output.splitlines() if line.startswith("chosen")]
    saved = spacy.load(tmp_path / "pipe").get_pipe("syncabel_linker").cfg
    assert chosen and f"prior_weight {saved['prior_weight']:g} " in chosen[0]
    assert saved["candidates"] == 3 and saved["mode"] == "rerank" and saved["cascade"]
    cascade = [line for line in res.output.splitlines() if line.startswith("chosen: cascade")]
    assert cascade and f"cascade_margin {saved['cascade_margin']:g} " in cascade[0] \
        or "exact-only" in cascade[0] and saved["cascade_margin"] is None


def test_calibration_needs_candidate_mode(nlp):
    linker = nlp.get_pipe("syncabel_linker").with_settings(mode="beam")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dev = build_dev_set(dev_corpus(), linker, size=0)
    with pytest.raises(ValueError, match="E066"):
        prior_weight_table(linker.engine, dev)
