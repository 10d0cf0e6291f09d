"""The paper's Recall@k: exact code sets, canonical codes, exclusions, per label and seen/unseen;
one rule for evaluate, nlp.evaluate (recall_at_k_from_docs) and score."""
import warnings

import pytest
import spacy

from spacy_syncabel.evaluation.metrics import (LinkResult, canonical, hit, recall_at_k_from_docs,
                                               recall_report, score_links)
from spacy_syncabel.kb import ConceptKB

from ..conftest import DATA, needs_data


@pytest.fixture(scope="module")
def alt_kb():
    """CANTEMIST-like: main codes and '/H' alternative codes mapped to them."""
    rows = [("8000/6", "neoplasia metastásica", "MORF"), ("8140/3", "adenocarcinoma", "MORF"),
            ("8070/3", "carcinoma escamoso", "MORF")]
    return ConceptKB(rows, aliases={"8000/6/H": "8000/6", "8140/3/H": "8140/3"})


def test_hit_at_k():
    assert hit("A", ["B", "A"], 2) and not hit("A", ["B", "A"], 1)
    assert not hit("A", [], 5)


def test_composite_needs_the_same_code_set():
    assert hit("A+B", ["B+A"], 1) and hit("A+B", [" B + A "], 1)
    assert not hit("A+B", ["A", "B"], 2)  # two separate predictions are not one composite link
    assert not hit("A+B", ["A"], 1)
    # a superset is a hit only by the lenient rule
    assert not hit("A+B", ["A+B+C"], 1)
    assert hit("A+B", ["A+B+C"], 1, lenient=True)
    assert not hit("A+B", ["A+C"], 1, lenient=True)


def test_canonical_codes(alt_kb):
    assert canonical("8140/3/H+8000/6", alt_kb) == "8000/6+8140/3"
    assert hit("8000/6/H", ["8000/6"], 1, kb=alt_kb)
    assert not hit("8000/6/H", ["8000/6"], 1)


def test_only_no_code_is_excluded_and_out_of_kb_golds_are_misses(alt_kb):
    items = [("8000/6/H", ["8000/6"], "MORF"), ("NO_CODE", ["8000/6"], "MORF"),
             ("8140/3+NO_CODE", ["8140/3"], "MORF"), ("9999/9", ["8070/3"], "MORF"),
             ("NIL", [], "MORF"), (None, [], "MORF")]
    rep = score_links(items, (1, 5), alt_kb)
    # the gold outside the KB stays, as a miss; recall@1_in_kb is the former number
    assert rep["n_mentions"] == 2 and rep["recall@1"] == 0.5
    assert rep["n_mentions_in_kb"] == 1 and rep["recall@1_in_kb"] == 1.0
    assert rep["n_not_in_kb"] == 1
    assert rep["n_excluded"] == 2
    assert rep["excluded"] == {"no_code": 2, "duplicate": 0}
    # without a KB nothing is outside it (and alternative codes are not mapped)
    rep = score_links(items, (1, 5))
    assert rep["n_mentions"] == 2 and rep["recall@1"] == 0.0 and rep["n_excluded"] == 2
    assert rep["n_not_in_kb"] == 0 and rep["recall@1_in_kb"] == rep["recall@1"]


def test_duplicates_are_scored_once():
    """One gold mention per (document, label, start, end), the first: the reference's key."""
    items = [("A", ["A"], "X", "d1", 0, 4), ("B", ["A"], "X", "d1", 0, 4),  # duplicate: dropped
             ("A", ["A"], "Y", "d1", 0, 4),  # another label: kept
             ("C", ["A"], "X", "d2", 0, 4)]  # another document: kept
    rep = score_links(items, (1,))
    assert rep["n_mentions"] == 3 and rep["recall@1"] == pytest.approx(2 / 3)
    assert rep["excluded"] == {"no_code": 0, "duplicate": 1}
    # items that do not say where they are cannot be duplicates
    rep = score_links([it[:3] for it in items], (1,))
    assert rep["n_mentions"] == 4 and rep["excluded"]["duplicate"] == 0


def test_report_per_label_and_seen_unseen():
    results = [LinkResult("A", ["A", "B"], "X"), LinkResult("B", ["C", "B"], "X"),
               LinkResult("C", ["D"], "Y"), LinkResult("A+C", ["A+C+D"], "Y")]
    rep = recall_report(results, (1, 2), seen_codes={"A", "B"})
    assert rep["recall@1"] == pytest.approx(1 / 4) and rep["recall@2"] == pytest.approx(2 / 4)
    assert rep["recall@1_lenient"] == pytest.approx(2 / 4)
    assert rep["per_label"]["X"]["recall@1"] == pytest.approx(0.5)
    assert rep["per_label"]["Y"]["n_mentions"] == 2
    assert rep["seen"]["n_mentions"] == 2 and rep["seen"]["recall@2"] == 1.0
    assert rep["unseen"]["n_mentions"] == 2 and rep["unseen"]["recall@1"] == 0.0
    # the composite golds apart: A+C is missed exactly, hit leniently
    assert rep["composite"] == {"n_mentions": 1, "recall@1": 0.0, "recall@2": 0.0,
                                "recall@1_lenient": 1.0, "recall@1_in_kb": 0.0,
                                "n_mentions_in_kb": 1}


def _doc_pairs(nlp, rows):
    """(predicted, reference) Docs: rows of (text, [(start, end, label, gold, [ranked codes])])."""
    from spacy.tokens import Span

    from spacy_syncabel.pipeline import register_extensions

    register_extensions()
    pairs = []
    for text, ents in rows:
        ref, pred = nlp.make_doc(text), nlp.make_doc(text)
        ref.ents = [Span(ref, *_tokens(ref, s, e), label=lab, kb_id=gold)
                    for s, e, lab, gold, _ in ents]
        pred_ents = []
        for s, e, lab, _, codes in ents:
            span = Span(pred, *_tokens(pred, s, e), label=lab, kb_id=codes[0] if codes else "")
            pred_ents.append(span)
        pred.ents = pred_ents
        for span, (_, _, _, _, codes) in zip(pred.ents, ents):
            span._.syncabel = [{"code": c, "name": c, "score": 1.0, "logprob": 0.0} for c in codes]
        pairs.append((pred, ref))
    return pairs


def _tokens(doc, start, end):
    span = doc.char_span(start, end, alignment_mode="expand")
    return span.start, span.end


def test_docs_path_and_items_path_agree(alt_kb):
    """nlp.evaluate's path (Docs) and evaluate's/score's path (items) give the same numbers,
    alternative gold codes included; without the KB the docs path disagrees (as before)."""
    nlp = spacy.blank("es")
    text = "Neoplasia metastásica y adenocarcinoma; carcinoma escamoso."
    ents = [(0, 21, "MORF", "8000/6/H", ["8000/6", "8140/3"]),
            (24, 38, "MORF", "8140/3", ["8070/3", "8140/3"]),
            (40, 58, "MORF", "8070/3", ["8070/3"])]
    pairs = _doc_pairs(nlp, [(text, ents)])
    by_docs = recall_at_k_from_docs(pairs, ks=(1, 2), kb=alt_kb)
    by_items = score_links([(g, c, lab) for _, _, lab, g, c in ents], (1, 2), alt_kb)
    assert by_docs == {"recall@1": by_items["recall@1"], "recall@2": by_items["recall@2"]}
    assert by_docs["recall@1"] == pytest.approx(2 / 3) and by_docs["recall@2"] == 1.0
    assert recall_at_k_from_docs(pairs, ks=(1, 2))["recall@1"] == pytest.approx(1 / 3)


@needs_data
def test_cantemist_dev1_tfidf_docs_and_items_agree():
    """Real CANTEMIST dev1 rows (alternative '/H' gold codes) with TF-IDF predictions: the
    Docs path with the KB equals the items path; without the KB it is lower."""
    from spacy_syncabel.corpus import docs_to_spacy, read_corpus
    from spacy_syncabel.evaluation.baseline import TfidfLinker
    from spacy_syncabel.kb import read_file

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kb = read_file(DATA / "cantemist" / "cie_o3.jsonl")
        corpus = read_corpus(DATA / "cantemist" / "dev1")[:40]
    nlp = spacy.blank("es")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        refs = docs_to_spacy(nlp, corpus)
    mentions = [(e.text, e.label_, e.kb_id_) for d in refs for e in d.ents]
    group = kb.groups[0] if len(kb.groups) == 1 else None
    ranked = TfidfLinker(kb).link([m for m, _, _ in mentions], [group] * len(mentions), 5)
    rows, i = [], 0
    for d in refs:
        ents = []
        for e in d.ents:
            ents.append((e.start_char, e.end_char, e.label_, e.kb_id_, ranked[i]))
            i += 1
        rows.append((d.text, ents))
    n_alt = sum(1 for _, _, code in mentions if code and code not in kb and kb.canonical_code(code) in kb)
    assert n_alt > 0
    pairs = _doc_pairs(nlp, rows)
    by_docs = recall_at_k_from_docs(pairs, ks=(1, 5), kb=kb)
    by_items = score_links([(g, r, lab) for (_, lab, g), r in zip(mentions, ranked)], (1, 5), kb)
    assert by_docs["recall@1"] == by_items["recall@1"]
    assert by_docs["recall@5"] == by_items["recall@5"]
    assert recall_at_k_from_docs(pairs, ks=(1, 5))["recall@1"] < by_docs["recall@1"]
