"""End-to-end scores: an entity ruler as the "NER" (some gold spans, a wrong label, partial spans,
a spurious span) before a tiny linker; strict P/R/F1 recomputed here from the pipeline's output."""
import warnings

import pytest
import spacy

from spacy_syncabel.evaluation.end_to_end import end_to_end_metrics, entity_setters, entity_type
from spacy_syncabel.evaluation.evaluate import evaluate_linker
from spacy_syncabel.types import CorpusDoc, GoldMention

from ..conftest import TEXTS, add_linker

GOLD = [  # (text index, mention, label, code)
    (0, "hipertensión arterial", "ENFERMEDAD", "38341003"),
    (0, "diabetes mellitus tipo 2", "ENFERMEDAD", "44054006"),
    (0, "fiebre", "SINTOMA", "386661006"),
    (1, "dolor abdominal", "SINTOMA", "21522001"),
    (1, "cefalea", "SINTOMA", "25064002"),
    (1, "ecografía abdominal", "PROCEDIMIENTO", "45036003"),
    (2, "disnea", "SINTOMA", "267036007"),
    (2, "neumonía adquirida en la comunidad", "ENFERMEDAD", "385093006"),
    (3, "apendicectomía", "PROCEDIMIENTO", "NO_CODE"),
]
RULES = [  # what the "NER" finds
    ("hipertensión arterial", "ENFERMEDAD"),  # right
    ("diabetes mellitus", "ENFERMEDAD"),  # too short
    ("fiebre", "SINTOMA"),  # right
    ("cefalea", "ENFERMEDAD"),  # right span, wrong type
    ("ecografía abdominal", "PROCEDIMIENTO"),  # right
    ("neumonía", "ENFERMEDAD"),  # too short
    ("disnea", "SINTOMA"),  # right
    ("TAC", "PROCEDIMIENTO"),  # no gold there
]


def _corpus():
    docs = []
    for i, text in enumerate(TEXTS):
        mentions = []
        for j, mention, label, code in GOLD:
            if j == i:
                start = text.index(mention)
                mentions.append(GoldMention(start, start + len(mention), label, code))
        docs.append(CorpusDoc(f"d{i}", text, sorted(mentions, key=lambda m: m.start)))
    return docs


@pytest.fixture(scope="module")
def nlp(kb_tsv):
    nlp = spacy.blank("es")
    ruler = nlp.add_pipe("entity_ruler")
    # rerank with a strong retrieval prior: exact KB names get their own code
    add_linker(nlp, kb_tsv, mode="rerank", prior_weight=50.0, candidates=5, num_beams=3,
               n_best=3, max_new_tokens=16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nlp.initialize()
    ruler.add_patterns([{"label": lab, "pattern": txt} for txt, lab in RULES])
    return nlp


def _sets(nlp, corpus):
    """(NER, linking) sets of the pipeline's own output, and of the gold."""
    pred_ner, pred_link = set(), set()
    for i, doc in enumerate(nlp.pipe(d.text for d in corpus)):
        for e in doc.ents:
            pred_ner.add((i, e.start_char, e.end_char, e.label_))
            if e.kb_id_ and e.kb_id_ != "NIL":
                pred_link.add((i, e.start_char, e.end_char, e.kb_id_))
    gold_ner = {(i, m.start, m.end, m.label) for i, d in enumerate(corpus) for m in d.mentions}
    gold_link = {(i, m.start, m.end, m.code) for i, d in enumerate(corpus) for m in d.mentions}
    return pred_ner, pred_link, gold_ner, gold_link


def _f(p, r):
    return 2 * p * r / (p + r) if p + r else 0.0


def test_strict_ner_and_linking_scores(nlp):
    corpus = _corpus()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = end_to_end_metrics(nlp, corpus)
        pred_ner, pred_link, gold_ner, gold_link = _sets(nlp, corpus)
    assert len(pred_ner) == len(RULES) and len(gold_ner) == len(GOLD)
    tp = len(pred_ner & gold_ner)
    assert tp == 4  # the four right rules; a right span with a wrong type is wrong
    assert m["ner_p"] == pytest.approx(tp / len(pred_ner))
    assert m["ner_r"] == pytest.approx(tp / len(gold_ner))
    assert m["ner_f"] == pytest.approx(_f(tp / len(pred_ner), tp / len(gold_ner)))
    tp_link = len(pred_link & gold_link)
    assert tp_link >= 3  # exact KB names at right spans, reranked by a strong prior
    assert m["linking_p"] == pytest.approx(tp_link / len(pred_link))
    assert m["linking_r"] == pytest.approx(tp_link / len(gold_link))
    assert m["linking_f"] == pytest.approx(_f(tp_link / len(pred_link), tp_link / len(gold_link)))
    assert m["end_to_end"]["n_gold_unreachable"] == 1  # NO_CODE counts, and cannot be found
    assert m["end_to_end"]["ner_components"] == ["entity_ruler"]


def test_per_label_and_tfidf_baseline(nlp, small_kb):
    corpus = _corpus()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = end_to_end_metrics(nlp, corpus)
        pred_ner, _, gold_ner, gold_link = _sets(nlp, corpus)
    per = m["per_label_end_to_end"]
    assert set(per) == {"ENFERMEDAD", "SINTOMA", "PROCEDIMIENTO"}
    for label, s in per.items():
        pred = {x for x in pred_ner if x[3] == label}
        gold = {x for x in gold_ner if x[3] == label}
        assert (s["n_predicted"], s["n_gold"]) == (len(pred), len(gold))
        assert s["ner_p"] == pytest.approx(len(pred & gold) / len(pred))
        assert s["ner_r"] == pytest.approx(len(pred & gold) / len(gold))
    # TF-IDF top-1 of an exact KB name in its group is that name's code: the baseline is
    # right exactly where a predicted span is a gold span whose text is its gold code's name
    texts = [d.text for d in corpus]
    expected = {(i, s, e, small_kb.lookup(texts[i][s:e], lab)) for i, s, e, lab in pred_ner}
    tp = len(expected & gold_link)
    assert tp == 4
    assert m["baseline_tfidf_linking_p"] == pytest.approx(tp / len(pred_ner))
    assert m["baseline_tfidf_linking_r"] == pytest.approx(tp / len(gold_link))
    assert 0 < m["baseline_tfidf_linking_f"] < 1
    assert "baseline_tfidf_linking_f" in per["SINTOMA"]


def test_evaluate_adds_end_to_end_only_with_an_ner(nlp):
    corpus = _corpus()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = evaluate_linker(nlp, corpus, k=3)
        with nlp.select_pipes(disable=["entity_ruler"]):
            assert entity_setters(nlp, "syncabel_linker") == []
            gold_only = evaluate_linker(nlp, corpus, k=3)
    # the gold-mention keys stay, the linker alone linked the gold spans either way
    for key in ("recall@1", "recall@3", "n_mentions", "per_label", "baseline_tfidf_recall@1"):
        assert full[key] == gold_only[key]
    assert {"ner_p", "ner_r", "ner_f", "linking_p", "linking_r", "linking_f",
            "baseline_tfidf_linking_f", "per_label_end_to_end"} <= set(full)
    assert not {"ner_f", "linking_f", "per_label_end_to_end"} & set(gold_only)


def test_entity_type_maps_labels_to_groups():
    label_map = {"SpecificDisease": "Disease", "Modifier": None}
    assert entity_type("SpecificDisease", label_map) == "Disease"
    assert entity_type("Modifier", label_map) == "Modifier"  # no group: its own label
    assert entity_type("Chemical", label_map) == "Chemical"


def test_predictions_in_an_unannotated_layer_are_not_scored(nlp):
    """Doc 3 was annotated for procedures only: the ruler's ENFERMEDAD/SINTOMA there would be
    false positives if the doc were annotated for them; here they are left out and counted."""
    corpus = _corpus()
    extra = "Se practicó una apendicectomía sin complicaciones. TAC de control normal. Fiebre."
    corpus[3] = CorpusDoc("d3", extra, corpus[3].mentions, annotated_labels=["PROCEDIMIENTO"])
    nlp.get_pipe("entity_ruler").add_patterns([{"label": "SINTOMA", "pattern": "Fiebre"}])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        layered = end_to_end_metrics(nlp, corpus, baseline=False)
        corpus[3].annotated_labels = None
        plain = end_to_end_metrics(nlp, corpus, baseline=False)
    assert plain["end_to_end"]["n_predicted_unannotated"] == 0
    assert layered["end_to_end"]["n_predicted_unannotated"] == 1  # "Fiebre" (SINTOMA)
    assert layered["end_to_end"]["n_predicted"] == plain["end_to_end"]["n_predicted"] - 1
    assert layered["ner_p"] > plain["ner_p"]
    assert layered["ner_r"] == plain["ner_r"]
    # the procedure the ruler finds in doc 3 ("TAC") is still scored: that layer is there
    assert (layered["per_label_end_to_end"]["PROCEDIMIENTO"]["n_predicted"]
            == plain["per_label_end_to_end"]["PROCEDIMIENTO"]["n_predicted"])


def test_a_label_never_predicted_warns(nlp):
    corpus = _corpus()
    with nlp.select_pipes(disable=["entity_ruler"]), pytest.warns(UserWarning, match="W420"):
        m = end_to_end_metrics(nlp, corpus, baseline=False, source="dev.jsonl")
    assert m["per_label_end_to_end"]["PROCEDIMIENTO"]["n_predicted"] == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        try:
            end_to_end_metrics(nlp, corpus, baseline=False)
        except UserWarning as warning:  # every label here has a prediction: no W420
            assert "W420" not in str(warning)


NESTED_GOLD = GOLD + [(0, "diabetes mellitus", "ENFERMEDAD", "73211009"),  # nests in tipo 2
                      (2, "neumonía", "ENFERMEDAD", "233604007")]  # nests in ... comunidad
GROUP = [  # what a span categorizer writes to doc.spans["sc"]: nested spans, a repeat
    ("diabetes mellitus tipo 2", "ENFERMEDAD"), ("diabetes mellitus", "ENFERMEDAD"),
    ("neumonía adquirida en la comunidad", "ENFERMEDAD"), ("neumonía", "ENFERMEDAD"),
    ("fiebre", "SINTOMA"), ("fiebre", "SINTOMA"), ("dolor abdominal", "SINTOMA"),
    ("TAC", "PROCEDIMIENTO")]


@spacy.Language.component("test_e2e_span_group")
def _span_group(doc):
    spans = []
    for phrase, label in GROUP:
        start = doc.text.find(phrase)
        if start >= 0:
            spans.append(doc.char_span(start, start + len(phrase), label=label))
    doc.spans["sc"] = spans
    return doc


def test_a_span_group_is_scored_with_nested_gold_spans(kb_tsv):
    """With the linker's spans_key the predictions are its span group (nested spans kept, a
    repeated span counted once) and every gold span, nested ones too, can be matched once."""
    nlp = spacy.blank("es")
    nlp.add_pipe("test_e2e_span_group")
    add_linker(nlp, kb_tsv, mode="rerank", prior_weight=50.0, candidates=5, num_beams=3,
               n_best=3, max_new_tokens=16, spans_key="sc")
    corpus = []
    for i, text in enumerate(TEXTS):
        mentions = [GoldMention(text.index(m), text.index(m) + len(m), lab, code)
                    for j, m, lab, code in NESTED_GOLD if j == i]
        corpus.append(CorpusDoc(f"d{i}", text, sorted(mentions, key=lambda m: m.start)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nlp.initialize()
        m = end_to_end_metrics(nlp, corpus, baseline=False)
        docs = list(nlp.pipe(d.text for d in corpus))
    assert all(not doc.ents for doc in docs)  # nothing in doc.ents: only the group counts
    pred_ner, pred_link = set(), set()
    for i, doc in enumerate(docs):
        for s in doc.spans["sc"]:
            if (i, s.start_char, s.end_char, s.label_) in pred_ner:
                continue
            pred_ner.add((i, s.start_char, s.end_char, s.label_))
            if s.kb_id_ and s.kb_id_ != "NIL":
                pred_link.add((i, s.start_char, s.end_char, s.kb_id_))
    gold_ner = {(i, m.start, m.end, m.label) for i, d in enumerate(corpus) for m in d.mentions}
    gold_link = {(i, m.start, m.end, m.code) for i, d in enumerate(corpus) for m in d.mentions}
    tp = len(pred_ner & gold_ner)
    assert tp == 6  # both outer and both nested spans, fiebre, dolor abdominal; not TAC
    assert m["ner_tp"] == tp and m["end_to_end"]["n_predicted"] == len(pred_ner)
    assert len(pred_ner) == len(GROUP) - 1 and m["end_to_end"]["n_predicted_duplicate"] == 1
    assert m["ner_p"] == pytest.approx(tp / len(pred_ner))
    assert m["ner_r"] == pytest.approx(tp / len(gold_ner))
    tp_link = len(pred_link & gold_link)
    assert tp_link >= 4  # exact KB names at right spans, nested ones included
    assert m["linking_tp"] == tp_link
    assert m["linking_p"] == pytest.approx(tp_link / len(pred_link))
    assert m["linking_r"] == pytest.approx(tp_link / len(gold_link))
    assert m["end_to_end"]["spans_key"] == "sc"
