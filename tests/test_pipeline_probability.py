"""The linker with a probability calibrator: ``probability`` on every n-best entry, NIL under
the threshold (the n-best kept), scispaCy's ``Span._.kb_ents``, and probability.json saved and
loaded with the pipeline; ``evaluate`` reports ECE and precision/coverage, as text and HTML."""
import json
import warnings

import pytest
import spacy
from spacy.tokens import Span
from spacy.util import registry

from spacy_syncabel.evaluation.evaluate import evaluate_linker
from spacy_syncabel.evaluation.summary import label_tables
from spacy_syncabel.kb import ConceptKB
from spacy_syncabel.linking.probability import (FORMAT_V2, JOINT, ProbabilityCalibrator,
                                                ScoreMap)
from spacy_syncabel.linking.probability_features import FeatureModel
from spacy_syncabel.notes import doc_to_record
from spacy_syncabel.pipeline import KB_ENTS, UNDER_NIL_THRESHOLD
from spacy_syncabel.types import NIL, CorpusDoc, GoldMention
from spacy_syncabel.visualize import Summary, calibration_html, report_html

TINY = {"@misc": "spacy_syncabel.TinyLlama.v1", "hidden_size": 32, "num_layers": 1,
        "num_heads": 2, "intermediate_size": 64, "vocab_size": 400, "seed": 5}
ROWS = [("C1", "neoplasia metastásica", "DIS"), ("C2", "adenocarcinoma", "DIS"),
        ("C3", "carcinoma escamoso", "DIS"), ("C4", "carcinoma", "DIS"),
        ("C5", "fiebre alta", "DIS")]
TEXT = "Biopsia con adenocarcinoma y carcinoma escamosa hepática; fiebre."
CAL = ProbabilityCalibrator({JOINT: ScoreMap("platt", coef=6.0, intercept=-3.0),
                             "dictionary": ScoreMap("platt", coef=0.0, intercept=3.0)})


@pytest.fixture(scope="module")
def nlp():
    nlp = spacy.blank("es")
    linker = nlp.add_pipe("syncabel_linker", config={
        "num_beams": 3, "n_best": 3, "max_new_tokens": 12, "mode": "rerank",
        "candidates": 4, "cascade": True, "cascade_margin": 0.5})
    kb = ConceptKB(ROWS)
    linker.initialize(kb_loader=lambda: kb, get_examples=lambda: [],
                      model=registry.resolve({"m": TINY})["m"])
    linker.calibrator = CAL
    return nlp


def _doc(nlp):
    doc = nlp.make_doc(TEXT)
    doc.ents = [doc.char_span(12, 26, "DIS"), doc.char_span(29, 47, "DIS"),
                doc.char_span(58, 64, "DIS")]
    return doc


def _linked(nlp, linker):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return linker(_doc(nlp))


def test_probability_nil_threshold_and_kb_ents(nlp):
    linker = nlp.get_pipe("syncabel_linker")
    doc = _linked(nlp, linker)
    paths = set()
    for ent in doc.ents:
        nbest = ent._.syncabel
        assert nbest and all("probability" in c for c in nbest)
        probs = [c["probability"] for c in nbest]
        assert probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-9
        assert ent._.get(KB_ENTS) == [(c["code"], c["probability"]) for c in nbest]
        assert ent.kb_id_ == nbest[0]["code"]
        paths.add(nbest[0]["path"])
    for ent, rec in zip(doc.ents, doc_to_record(doc, "n1")["entities"]):  # `link`'s record
        assert rec["code"] == ent.kb_id_
        assert rec["probability"] == round(ent._.syncabel[0]["probability"], 6)
    assert "dictionary" in paths and paths - {"dictionary"}  # both scales, one probability
    # a threshold above the exact match's probability: every mention NIL, n-best kept
    strict = linker.with_settings()
    strict.calibrator = ProbabilityCalibrator(CAL.maps, nil_threshold=0.99)
    doc = _linked(nlp, strict)
    for ent in doc.ents:
        assert ent.kb_id_ == NIL and ent._.syncabel and ent._.get(KB_ENTS) == []
        assert ent._.syncabel_nil_reason == UNDER_NIL_THRESHOLD
    assert all(r["code"] == NIL and r["probability"] < 0.99
               for r in doc_to_record(doc, "n1")["entities"])
    # between the exact match and the rest: only the exact match keeps its code
    mid = linker.with_settings()
    mid.calibrator = ProbabilityCalibrator(CAL.maps, nil_threshold=0.9)
    doc = _linked(nlp, mid)
    kept = [e for e in doc.ents if e.kb_id_ != NIL]
    assert kept and all(e._.syncabel[0]["path"] == "dictionary" for e in kept)
    assert all(p >= 0.9 for e in doc.ents for _, p in e._.get(KB_ENTS))


def test_kb_ents_registered_once_and_not_clobbered():
    from spacy_syncabel.pipeline import register_extensions

    before = Span.get_extension(KB_ENTS)
    register_extensions()
    assert Span.get_extension(KB_ENTS) is before


def test_probability_json_saved_and_loaded(nlp, tmp_path):
    linker = nlp.get_pipe("syncabel_linker")
    linker.calibrator = ProbabilityCalibrator(CAL.maps, nil_threshold=0.3)
    try:
        nlp.to_disk(tmp_path / "p")
    finally:
        linker.calibrator = CAL
    saved = json.loads((tmp_path / "p" / "syncabel_linker" / "probability.json").read_text())
    assert saved["nil_threshold"] == 0.3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = spacy.load(tmp_path / "p").get_pipe("syncabel_linker")
    assert loaded.nil_threshold == 0.3
    assert loaded.calibrator.to_dict() == linker.calibrator.to_dict() | {"nil_threshold": 0.3}


def test_a_v2_calibrator_links_saves_and_loads_with_the_pipeline(nlp, tmp_path):
    # the feature model gives the top entry's probability; the maps the other entries
    model = FeatureModel(("dictionary", "dictionary:margin", "retriever", "retriever:score",
                          "retriever:margin", "retriever:entries", "lm"),
                         (0.0, 0.3, 0.0, 0.6, 0.1, 4.0, 0.0), (1.0, 0.2, 1.0, 0.2, 0.1, 1.0, 1.0),
                         (2.0, 0.5, -1.0, 0.3, 1.2, -0.4, -1.5), 0.8,
                         ("dictionary", "retriever", "lm"), 1.0)
    linker = nlp.get_pipe("syncabel_linker")
    linker.calibrator = ProbabilityCalibrator(CAL.maps, model=model)
    try:
        doc = _linked(nlp, linker)
        nlp.to_disk(tmp_path / "p")
    finally:
        linker.calibrator = CAL
    for ent in doc.ents:
        nbest = ent._.syncabel
        assert nbest[0]["probability"] == pytest.approx(model.probability(nbest))
    saved = json.loads((tmp_path / "p" / "syncabel_linker" / "probability.json").read_text())
    assert saved["format"] == FORMAT_V2 and saved["model"]["coef"][1] == 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = spacy.load(tmp_path / "p").get_pipe("syncabel_linker")
    assert loaded.calibrator.model == model
    again = _linked(nlp, loaded)
    assert [e._.syncabel for e in again.ents] == [e._.syncabel for e in doc.ents]


def test_evaluate_prints_ece_and_precision_coverage_and_the_html_draws_the_curve(nlp):
    corpus = [CorpusDoc("d0", TEXT, [GoldMention(12, 26, "DIS", "C2"),
                                     GoldMention(29, 47, "DIS", "C3"),
                                     GoldMention(58, 64, "DIS", "C5")])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metrics = evaluate_linker(nlp, corpus, k=3, baseline=False)
    cal = metrics["calibration"]
    assert cal["probability"] == "probability" and cal["n_mentions"] == 3
    assert sum(s["n_mentions"] for s in cal["per_path"].values()) == 3
    text = label_tables(metrics)
    assert "ECE" in text and "Precision / coverage" in text
    assert f"{cal['ece']:.3f}" in text
    page = calibration_html(cal)
    assert page.count("<svg") == 1 and 'class="pc-curve"' in page and "<path d=\"M" in page
    # the link report draws the expected curve from the records' probabilities
    summary = Summary()
    summary.add({"id": "n", "entities": [
        {"label": "DIS", "code": c, "n_best": [{"code": c, "probability": p}]}
        for c, p in (("C1", 0.9), ("C2", 0.4), (NIL, 0.1))]})
    assert summary.expected_curve()[0] == {"coverage": 1 / 3, "precision": 0.9,
                                            "threshold": 0.9}
    page = report_html(summary, [])
    assert 'class="pc-curve"' in page and 'class="operating"' in page
