"""Composite candidates from coordination-ellipsis expansion (``composite_expand``), composite
aliases from training mentions, and the split gate (``composite_split``)."""
import pytest
import spacy

from spacy_syncabel.linking import LinkSettings
from spacy_syncabel.linking.candidates import Retrieved
from spacy_syncabel.linking.composite import (CompositeAliases, composite_proposals,
                                              expanded_conjuncts, expanded_queries,
                                              split_evidence)
from spacy_syncabel.prompting import SEP_TOKEN
from spacy_syncabel.training.examples import composite_aliases


# -- expansion (no retrieval) -----------------------------------------------------------------
@pytest.mark.parametrize("mention,parts", [
    ("biopsia pleural y pulmonar", ["biopsia pleural", "pulmonar"]),
    ("hemograma, la bioquímica y la coagulación normales",
     ["hemograma", "bioquímica", "coagulación normales"]),
    ("ecografía abdomino-pélvica", ["ecografía abdomino", "ecografía pélvica"]),
    ("TAC toraco-abdominal normal", ["TAC toraco normal", "TAC abdominal normal"]),
    ("varices esófago-gástricas", ["varices esófago", "varices gástricas"]),
    ("auscultación cardio-pulmonar", ["auscultación cardio", "auscultación pulmonar"]),
])
def test_expanded_conjuncts_split_coordinations_and_compounds(mention, parts):
    assert expanded_conjuncts(mention) == parts


@pytest.mark.parametrize("mention", [
    "hipertensión arterial",
    "eco-Doppler de troncos supraaórticos",  # a 3-letter first member: a word, not a form
    "tinción de Ziehl-Neelsen",  # a proper name
    "virus varicela-zoster",
    "Staphylococcus aureus meticilin-sensible",
    "TAC toraco-abdominal y cérvico-facial",  # two compounds: which distributes is unclear
])
def test_expanded_conjuncts_leave_non_compounds_whole(mention):
    assert expanded_conjuncts(mention) == ([] if " y " not in mention else
                                           ["TAC toraco-abdominal", "cérvico-facial"])


def test_expanded_queries_distribute_the_shared_head_with_each_length():
    queries = expanded_queries(["metástasis en ganglios regionales", "hígado"])
    assert queries[0] == ["metástasis en ganglios regionales"]
    # the former rule only gave "metástasis en ganglios hígado"
    assert {"metástasis hígado", "metástasis en hígado",
            "metástasis en ganglios hígado"} <= set(queries[1])
    queries = expanded_queries(["hemograma", "coagulación normales"])
    assert "hemograma normales" in queries[0]
    assert expanded_queries(["biopsia pleural", "pulmonar"])[1] == ["pulmonar", "biopsia pulmonar"]


# -- the split gate and composite aliases (fake retriever) ------------------------------------
CODES = {"biopsia pleural": "116025006", "biopsia de pulmón": "78603008",
         "ictericia de piel y mucosas": "18165001", "ictericia": "18165001",
         "mucosas secas": "123640000"}


def _lookup(name, group):
    return CODES.get(name)


def _retrieve(queries, groups, n):
    best = {"biopsia pleural": "biopsia pleural", "pulmonar": "biopsia de pulmón",
            "biopsia pulmonar": "biopsia de pulmón", "ictericia de piel": "ictericia",
            "mucosas": "mucosas secas", "ictericia de mucosas": "ictericia"}
    return [[Retrieved(best[q], 0.9 if q.startswith("biopsia") else 0.6)] if q in best else []
            for q in queries]


def _similarity(mention, texts, group):
    return [0.5 for _ in texts]


def test_split_gate_keeps_a_coordinated_single_code_mention_single():
    mentions = ["biopsia pleural y pulmonar", "ictericia de piel y mucosas"]
    top = [[Retrieved("biopsia pleural", 0.7), Retrieved("biopsia de pulmón", 0.6)],
           [Retrieved("ictericia de piel y mucosas", 1.0), Retrieved("mucosas secas", 0.4)]]
    found = composite_proposals(mentions, [None, None], top, _retrieve, _similarity, _lookup,
                                8, expand=True)
    assert found[0][0][0].name == "biopsia pleural" + SEP_TOKEN + "biopsia de pulmón"
    assert found[0][0][1] == pytest.approx(split_evidence([0.9, 0.9], 0.7)) == \
        pytest.approx(0.2)
    assert found[1] and all(ev < 0 for _, ev in found[1])  # the whole is a KB name
    gated = composite_proposals(mentions, [None, None], top, _retrieve, _similarity, _lookup,
                                8, expand=True, split=0.0)
    assert [r.name for r, _ in gated[0]] == ["biopsia pleural" + SEP_TOKEN + "biopsia de pulmón"]
    assert gated[1] == []


def test_composite_alias_comes_first_with_full_score():
    aliases = CompositeAliases([("síndrome constitucional",
                                 "biopsia pleural" + SEP_TOKEN + "biopsia de pulmón", None),
                                ("ictericia", "ictericia", None),  # single: not composite
                                ("x", "ictericia" + SEP_TOKEN + "ictericia de piel y mucosas",
                                 None)], _lookup)  # one code twice: not composite
    assert len(aliases) == 1
    assert aliases("Síndrome  Constitucional", None) == [["biopsia pleural",
                                                          "biopsia de pulmón"]]
    found = composite_proposals(["síndrome constitucional"], [None],
                                [[Retrieved("mucosas secas", 0.3)]], _retrieve, _similarity,
                                _lookup, 8, expand=True, aliases=aliases)
    assert found[0][0][0] == Retrieved("biopsia pleural" + SEP_TOKEN + "biopsia de pulmón", 1.0)
    assert found[0][0][1] == pytest.approx(0.7)


def test_composite_aliases_from_training_mentions(small_kb):
    rows = [("fiebre y cefalea", "386661006+25064002", "SINTOMA"),
            ("Fiebre y cefalea", "386661006+25064002", "SINTOMA"),
            ("fiebre y cefalea", "386661006", "SINTOMA"),  # outvoted
            ("fiebre", "386661006", "SINTOMA"),  # single code
            ("disnea y tos", "267036007+49727002", "SINTOMA"),  # 49727002 not in the KB
            ("fiebre y HTA", "386661006+NO_CODE", "SINTOMA")]
    out = composite_aliases(rows, small_kb)
    assert out == [("fiebre y cefalea", "cefalea" + SEP_TOKEN + "fiebre", "SINTOMA")]


def test_composite_settings():
    s = LinkSettings(mode="rerank", composite=True)
    assert s.composite_expand is False and s.composite_split is None  # the former behaviour
    with pytest.raises(ValueError, match="composite_split"):
        LinkSettings(composite_split=float("nan"))


# -- the linker with a tiny model -------------------------------------------------------------
TEXT = "Ingresa por cuadro febril con cefalea intensa desde ayer."
MENTION = "cuadro febril con cefalea"


def _nlp(tiny_lm, small_kb, **config):
    model, tok = tiny_lm
    nlp = spacy.blank("es")
    linker = nlp.add_pipe("syncabel_linker", config={
        "mode": "rerank", "composite": True, "candidates": 3, "num_beams": 3, "n_best": 3,
        "cascade": True, **config})
    with pytest.warns(UserWarning):  # the tiny model is not fine-tuned (W103)
        linker.set_model(model, tok, small_kb)
    linker.set_aliases([(MENTION, "fiebre" + SEP_TOKEN + "cefalea", "SINTOMA"),
                        ("cefaleas", "cefalea", "SINTOMA")])
    return nlp


def _link(nlp):
    doc = nlp.make_doc(TEXT)
    start = TEXT.index(MENTION)
    doc.ents = [doc.char_span(start, start + len(MENTION), label="SINTOMA")]
    ent = nlp.get_pipe("syncabel_linker")(doc).ents[0]
    return ent.kb_id_, ent._.syncabel


def test_linker_proposes_and_settles_a_composite_alias(tiny_lm, small_kb, tmp_path):
    nlp = _nlp(tiny_lm, small_kb, composite_expand=True, composite_split=0.0)
    engine = nlp.get_pipe("syncabel_linker").engine
    top = engine.retrieve([MENTION], ["SINTOMA"])
    cands = engine.composite_candidates([MENTION], ["SINTOMA"], top)[0]
    assert cands[0] == Retrieved("fiebre" + SEP_TOKEN + "cefalea", 1.0)
    code, nbest = _link(nlp)
    assert code == "25064002+386661006"
    assert nbest[0]["path"] == "dictionary"
    # saved and loaded with the pipeline: settings and the composite alias
    nlp.to_disk(tmp_path / "pipe")
    loaded = spacy.load(tmp_path / "pipe")
    settings = loaded.get_pipe("syncabel_linker").settings
    assert settings.composite_expand is True and settings.composite_split == 0.0
    assert _link(loaded)[0] == code


def test_linker_without_expansion_has_no_composite_alias(tiny_lm, small_kb):
    nlp = _nlp(tiny_lm, small_kb)
    engine = nlp.get_pipe("syncabel_linker").engine
    top = engine.retrieve([MENTION], ["SINTOMA"])
    cands = engine.composite_candidates([MENTION], ["SINTOMA"], top)[0]
    assert all(r.score < 1.0 for r in cands)
    assert "+" not in _link(nlp)[0] or _link(nlp)[1][0]["path"] != "dictionary"


# -- choosing the split gate on dev -----------------------------------------------------------
def test_below_split_drops_only_weak_composites():
    from spacy_syncabel.training.calibration import below_split

    ab, ac = "a" + SEP_TOKEN + "b", "a" + SEP_TOKEN + "c"
    scored = [[("a", 0.9, -1.0, 2, None), (ab, 0.5, -2.0, 4, -1.0), (ac, 0.4, -2.0, 4, 0.5)],
              None]
    proposals = [[(Retrieved(ab, 0.5), 0.2), (Retrieved(ac, 0.4), -0.1)], []]
    assert [r[0] for r in below_split(scored, proposals, 0.0)[0]] == ["a", ab]
    assert [r[0] for r in below_split(scored, proposals, None)[0]] == ["a", ab, ac]
    assert below_split(scored, proposals, 0.0)[1] is None


def test_choose_composite_split_prefers_precise_then_highest_split():
    from spacy_syncabel.training.calibration import OFF, choose_composite_split

    def row(split, gate, r1, answers, right):
        return {"split": split, "gate": gate, "recall@1": r1, "composite_answers": answers,
                "composite_right": right,
                "composite_precision": right / answers if answers else 0.0}

    table = [row(None, None, 0.80, 10, 2), row(0.0, None, 0.81, 4, 2), row(0.1, None, 0.81, 2, 1),
             row(0.1, 0.0, 0.81, 2, 1), row(0.2, None, 0.79, 0, 0), row(None, OFF, 0.79, 0, 0)]
    assert (lambda r: (r["split"], r["gate"]))(choose_composite_split(table)) == (0.1, 0.0)
    bad = [row(None, None, 0.70, 10, 1), row(0.1, None, 0.75, 4, 1), row(None, OFF, 0.80, 0, 0)]
    assert choose_composite_split(bad)["split"] is None  # none qualifies: no gate at all


def test_calibrate_chooses_and_saves_the_split_gate(tiny_lm, small_kb, tmp_path):
    import warnings

    from spacy_syncabel.training.calibration import DEFAULT_COMPOSITE_SPLITS, calibrate_pipeline
    from spacy_syncabel.types import CorpusDoc, GoldMention

    from .test_composite import MENTION as COORD, TEXT as COORD_TEXT

    nlp = _nlp(tiny_lm, small_kb, composite_expand=True, cascade=False, candidates=2)
    nlp.to_disk(tmp_path / "pipe")
    start = COORD_TEXT.index(COORD)  # "fiebre y cefalea": each conjunct a KB name
    dev = [CorpusDoc("d0", COORD_TEXT, [GoldMention(start, start + len(COORD), "SINTOMA",
                                                    "386661006+25064002")])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = calibrate_pipeline(tmp_path / "pipe", dev, weights=(1000.0,), cascade=False)
    gate = result["composite_gate"]
    assert {r["split"] for r in gate["table"]} == set(DEFAULT_COMPOSITE_SPLITS)
    # the parts match their conjuncts exactly, the whole mention no name as well: the
    # composite is kept by every split gate, and the highest is chosen
    assert gate["split"] == max(s for s in DEFAULT_COMPOSITE_SPLITS if s is not None)
    assert gate["recall@1"] == 1.0
    loaded = spacy.load(tmp_path / "pipe").get_pipe("syncabel_linker")
    assert loaded.settings.composite_split == gate["split"]
