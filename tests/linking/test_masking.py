"""The dev-masked view: KB names only the calibration split's own mentions gave are hidden
while it is linked, so that it meets the KB as unseen text does."""
import json
import warnings

import pytest
import spacy
from spacy.util import registry

from spacy_syncabel.kb import ConceptKB
from spacy_syncabel.linking.masking import masked_engine, masked_kb, plan_masking
from spacy_syncabel.pipes import find_linker
from spacy_syncabel.training.probability import masked_dev_mentions
from spacy_syncabel.types import CorpusDoc, GoldMention

TINY = {"@misc": "spacy_syncabel.TinyLlama.v1", "hidden_size": 32, "num_layers": 1,
        "num_heads": 2, "intermediate_size": 64, "vocab_size": 400, "seed": 5}
# a corpus-built KB (as SPACCC-lite): a terminology name per code plus the surfaces of the
# annotated mentions, those of the dev documents included
ROWS = [("C1", "dolor torácico", "SINTOMA"), ("C1", "dolor en el pecho", "SINTOMA"),
        ("C2", "cefalea tensional", "SINTOMA"), ("C2", "cefalea de tensión", "SINTOMA"),
        ("C3", "tos seca", "SINTOMA"),
        ("C4", "fiebre", "SINTOMA"), ("C4", "febrícula", "SINTOMA"),
        ("C5", "cefalea", "SINTOMA")]
TRAIN_TEXT = "Acude por dolor torácico y febrícula desde ayer."
DEV_TEXT = "Refiere cefalea tensional, tos seca y dolor torácico; febrícula."


def _doc(doc_id, text, spans):
    return CorpusDoc(doc_id, text, [GoldMention(text.index(s), text.index(s) + len(s),
                                                "SINTOMA", code) for s, code in spans])


TRAIN = [_doc("t0", TRAIN_TEXT, [("dolor torácico", "C1"), ("febrícula", "C4")])]
DEV = [_doc("d0", DEV_TEXT, [("cefalea tensional", "C2"), ("tos seca", "C3"),
                             ("dolor torácico", "C1"), ("febrícula", "C5")])]


def test_only_names_the_calibration_split_alone_gave_are_hidden():
    kb = ConceptKB(ROWS)
    aliases = [("cefalea tensional", "cefalea", "SINTOMA"),
               ("dolor torácico", "dolor en el pecho", "SINTOMA")]
    masking = plan_masking(kb, aliases, DEV, TRAIN)
    # a dev surface with its gold code and no training mention: hidden
    assert masking.entries == {("C2", "cefalea tensional", "SINTOMA")}
    # "tos seca" is C3's only name: kept (a code never loses every name); "febrícula" is a
    # training surface; dev's "febrícula" -> C5 names no KB entry of C5
    assert masking.kept_last_names == 1
    # an alias whose text only a dev mention has: hidden; one training also has: kept
    assert masking.aliases == {("cefalea tensional", "cefalea", "SINTOMA")}
    view = masked_kb(kb, masking)
    assert view.lookup("cefalea tensional", "SINTOMA") is None
    assert view.names_of("C2") == ["cefalea de tensión"]
    assert view.lookup("tos seca", "SINTOMA") == "C3" and len(view.codes) == len(kb.codes)


@pytest.fixture(scope="module")
def nlp():
    nlp = spacy.blank("es")
    linker = nlp.add_pipe("syncabel_linker", config={
        "num_beams": 3, "n_best": 3, "max_new_tokens": 12, "mode": "rerank",
        "candidates": 4, "cascade": True, "cascade_margin": None})
    kb = ConceptKB(ROWS)
    linker.initialize(kb_loader=lambda: kb, get_examples=lambda: [],
                      model=registry.resolve({"m": TINY})["m"])
    return nlp


def test_the_masked_view_links_a_dev_only_name_without_its_exact_match(nlp):
    linker = find_linker(nlp)
    engine = linker.engine
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain, none = masked_dev_mentions(nlp, linker, DEV, None)
        masked, summary = masked_dev_mentions(nlp, linker, DEV, TRAIN)
    assert none is None and summary["hidden_kb_names"] == 1
    assert linker.engine is engine  # the saved linker is left as it was
    assert {m.doc for m in masked} == {"d0"} and {m.gold for m in masked} == {"C1", "C2", "C3",
                                                                             "C5"}
    by_text = {m.text: m for m in plain}
    masked_by_text = {m.text: m for m in masked}
    # as saved, the dev mention matches its own surface: the dictionary settles it, right
    assert by_text["cefalea tensional"].path == "dictionary"
    assert by_text["cefalea tensional"].correct
    # masked, that name is gone: the LM ranks the retrieved names (no exact match)
    hidden = masked_by_text["cefalea tensional"]
    assert hidden.path == "lm"
    assert all(c["name"] != "cefalea tensional" for c in hidden.nbest)
    # what training also gave is untouched
    for text in ("dolor torácico", "tos seca"):
        assert masked_by_text[text].path == "dictionary" and masked_by_text[text].correct


def test_a_beam_mode_view_rebuilds_its_tries(nlp):
    linker = find_linker(nlp)
    beam = linker.engine.with_settings(mode="beam")
    view = masked_engine(beam, plan_masking(beam.kb, beam.aliases, DEV, TRAIN))
    assert beam.has_name("cefalea tensional") and not view.has_name("cefalea tensional")
    assert view.has_name("cefalea de tensión")


def test_calibrate_fits_on_the_masked_view_and_records_it(nlp, tmp_path):
    from spacy_syncabel.training.probability import calibrate_pipeline_probability

    folder = tmp_path / "p"
    nlp.to_disk(folder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = calibrate_pipeline_probability(folder, DEV, lm_ranked=False)
        cal = calibrate_pipeline_probability(folder, DEV, train_docs=TRAIN)
    assert plain.fit["dev_view"] == "plain" and "dev_masking" not in plain.fit
    # the cascade is on: the LM also ranked every dev mention the (masked) dictionary left
    assert "lm_ranked_rows" not in plain.fit
    assert cal.fit["lm_ranked_rows"] == 4 - cal.fit["dev_mentions_per_path"]["dictionary"]
    assert cal.fit["dev_view"] == "masked" and cal.fit["dev_masking"]["hidden_kb_names"] == 1
    # the hidden mention left the dictionary path: dev looks as unseen text would
    assert plain.fit["dev_mentions_per_path"]["dictionary"] == 4
    assert cal.fit["dev_mentions_per_path"]["dictionary"] == 3
    saved = json.loads((folder / "syncabel_linker" / "probability.json").read_text())
    assert saved["fit"]["dev_view"] == "masked"


def _rerank_linker(rows):
    nlp = spacy.blank("es")
    linker = nlp.add_pipe("syncabel_linker", config={
        "num_beams": 3, "n_best": 3, "max_new_tokens": 12, "mode": "rerank",
        "candidates": 3})
    kb = ConceptKB(rows, warn=False)
    linker.initialize(kb_loader=lambda: kb, get_examples=lambda: [],
                      model=registry.resolve({"m": TINY})["m"])
    return nlp, linker


def test_a_rerank_view_scores_a_name_the_masking_made_unambiguous():
    # "cefalea" names two codes that both have other names: the KB as saved resolves it to
    # neither (no trie holds it); dev alone coded it C5, so the masked KB leaves it to C2
    # and retrieves it
    from spacy_syncabel.training.examples import build_dev_set

    nlp, linker = _rerank_linker(ROWS + [("C2", "cefalea", "SINTOMA"),
                                         ("C5", "cefalea primaria", "SINTOMA")])
    engine = linker.engine
    dev = [_doc("d1", "Refiere cefalea desde ayer.", [("cefalea", "C5")])]
    assert engine.kb.lookup("cefalea", "SINTOMA") is None and not engine.has_name("cefalea")
    view = masked_engine(engine, plan_masking(engine.kb, engine.aliases, dev, TRAIN))
    assert view.kb.lookup("cefalea", "SINTOMA") == "C2"
    split = build_dev_set(dev, linker, size=0, nlp=nlp)
    # every retrieved name scored by the LM, "cefalea" among them (one candidate per name)
    cands = view.with_settings(merge_by_code=False).link(split.prompt_ids, split.groups,
                                                         split.mentions)[0]
    assert ("cefalea", "C2") in {(c.name, c.code) for c in cands}
    assert view.has_name("cefalea") and not engine.has_name("cefalea")


def test_a_code_left_nameless_by_the_masking_takes_its_dropped_name_and_the_tries_hold_it():
    # "pérdida de visión" names C6 and C7, so the KB drops it. Masking C6's dev-only name
    # leaves C6 nameless but for it: the masked KB (as if built without dev's names) gives it
    # back to C6, and the view's tries must hold it (candidate scoring raised KeyError on the
    # LM-ranked pass over SPACCC dev), while the cascade-off view still links
    nlp, linker = _rerank_linker([("C6", "pérdida de visión", "SINTOMA"),
                                  ("C7", "pérdida de visión", "SINTOMA"),
                                  ("C6", "pérdida visual súbita", "SINTOMA"),
                                  ("C7", "amaurosis", "SINTOMA"), ("C4", "fiebre", "SINTOMA")])
    engine = linker.engine
    assert engine.kb.lookup("pérdida de visión", "SINTOMA") is None
    dev = [_doc("d1", "Refiere pérdida visual súbita.", [("pérdida visual súbita", "C6")])]
    view = masked_engine(engine, plan_masking(engine.kb, [], dev, TRAIN))
    assert view.kb.names_of("C6") == ["pérdida de visión"]
    assert all(view.has_name(name) for _, name, _ in view.kb.entries())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ranked, _ = masked_dev_mentions(nlp, linker, dev, TRAIN)
    # linked without the cascade (the LM ranks every retrieved name): no KeyError
    assert len(ranked) == 1 and ranked[0].nbest
