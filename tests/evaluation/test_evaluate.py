"""CLI `evaluate` (evaluate_linker) and the component's nlp.evaluate agree on gold codes that are
alternative codes of the KB (CANTEMIST '/H', MEDIC alt ids)."""
import warnings

import pytest
import spacy
from spacy.training import Example
from spacy.util import registry

from spacy_syncabel.evaluation.evaluate import evaluate_linker
from spacy_syncabel.evaluation.metrics import recall_at_k_from_docs
from spacy_syncabel.kb import ConceptKB
from spacy_syncabel.types import CorpusDoc, GoldMention

TINY = {"@misc": "spacy_syncabel.TinyLlama.v1", "hidden_size": 32, "num_layers": 1,
        "num_heads": 2, "intermediate_size": 64, "vocab_size": 400, "seed": 5}
ROWS = [("8000/6", "neoplasia metastásica", "MORF"), ("8140/3", "adenocarcinoma", "MORF"),
        ("8070/3", "carcinoma escamoso", "MORF"), ("8010/3", "carcinoma", "MORF")]
ALIASES = {"8000/6/H": "8000/6", "8140/3/H": "8140/3"}
TEXTS = ["Biopsia con adenocarcinoma y neoplasia metastásica hepática.",
         "Se confirma carcinoma escamoso; sin carcinoma residual.",
         "Adenocarcinoma de colon con neoplasia metastásica pulmonar."]


def _corpus():
    docs = []
    for i, text in enumerate(TEXTS):
        mentions = []
        low = text.lower()
        for code, name, _ in ROWS:
            start = low.find(name)
            if start >= 0 and not any(m.start <= start < m.end or start <= m.start < start + len(name)
                                      for m in mentions):
                alt = next((a for a, c in ALIASES.items() if c == code and i % 2 == 0), code)
                mentions.append(GoldMention(start, start + len(name), "MORF", alt))
        docs.append(CorpusDoc(f"d{i}", text, sorted(mentions, key=lambda m: m.start)))
    return docs


@pytest.fixture(scope="module")
def nlp():
    nlp = spacy.blank("es")
    linker = nlp.add_pipe("syncabel_linker", config={
        "num_beams": 3, "n_best": 3, "max_new_tokens": 12, "use_gold_ents": True})
    kb = ConceptKB(ROWS, aliases=ALIASES)
    linker.initialize(kb_loader=lambda: kb, get_examples=lambda: [],
                      model=registry.resolve({"m": TINY})["m"])
    return nlp


def _examples(nlp, corpus):
    from spacy_syncabel.corpus import docs_to_spacy

    refs = docs_to_spacy(nlp, corpus)
    return [Example(nlp.make_doc(r.text), r) for r in refs]


def test_evaluate_and_docs_path_agree(nlp):
    corpus = _corpus()
    assert any(m.code in ALIASES for d in corpus for m in d.mentions)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metrics = evaluate_linker(nlp, corpus, k=3, baseline=True)
        linker = nlp.get_pipe("syncabel_linker")
        examples = [linker._gold_linked(eg) for eg in _examples(nlp, corpus)]
    pairs = [(eg.predicted, eg.reference) for eg in examples]
    by_docs = recall_at_k_from_docs(pairs, ks=(1, 3), kb=linker.kb)
    assert metrics["n_mentions"] == sum(len(d.mentions) for d in corpus)
    assert by_docs["recall@1"] == metrics["recall@1"]
    assert by_docs["recall@3"] == metrics["recall@3"]
    # 3 beams over a 4-code group: most golds are among them, aliases included
    assert metrics["recall@3"] > 0.5
    assert recall_at_k_from_docs(pairs, ks=(1, 3))["recall@3"] < metrics["recall@3"]
    assert "recall@1_lenient" in metrics and "baseline_tfidf_recall@1_lenient" in metrics
    assert metrics["n_excluded"] == 0


def test_nlp_evaluate_agrees_with_evaluate(nlp):
    corpus = _corpus()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metrics = evaluate_linker(nlp, corpus, k=5, baseline=False)
        scores = nlp.evaluate(_examples(nlp, corpus))
    # the component reports Recall@1 and @5 (pipeline.SCORE_KS)
    assert scores["syncabel_recall@1"] == metrics["recall@1"]
    assert scores["syncabel_recall@5"] == metrics["recall@5"]


def _reference_count(corpus):
    """The reference's rule, written out: one mention per (document, label, start, end), the
    codes holding NO_CODE dropped, nothing else."""
    keys = {(d.id, m.label, m.start, m.end) for d in corpus for m in d.mentions
            if m.code and "NO_CODE" not in m.code}
    return len(keys)


def test_evaluate_counts_mentions_as_the_reference(nlp):
    """A gold code outside the KB stays (as a miss), a duplicate mention counts once, NO_CODE
    is dropped: n_mentions is the reference's count; recall@1_in_kb is the former number."""
    text = "Biopsia con adenocarcinoma y neoplasia metastásica; carcinoma de ovario."
    a, b, c = text.find("adenocarcinoma"), text.find("neoplasia"), text.find("carcinoma de")
    corpus = [
        CorpusDoc("d0", text, [
            GoldMention(a, a + 14, "MORF", "8140/3"),
            GoldMention(a, a + 14, "MORF", "8140/3"),  # the same mention twice
            GoldMention(b, b + 22, "MORF", "8000/6"),
            GoldMention(c, c + 21, "MORF", "9999/9")]),  # not in the KB
        CorpusDoc("d1", "Sin neoplasia.", [GoldMention(4, 13, "MORF", "NO_CODE")]),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metrics = evaluate_linker(nlp, corpus, k=3, baseline=True)
    assert metrics["n_mentions"] == _reference_count(corpus) == 3
    assert metrics["n_not_in_kb"] == 1 and metrics["n_mentions_in_kb"] == 2
    assert metrics["excluded"] == {"no_code": 1, "duplicate": 1}
    hits = round(metrics["recall@1"] * 3)
    assert metrics["recall@1_in_kb"] == pytest.approx(hits / 2)  # the out-of-KB gold: a miss
    assert "baseline_tfidf_recall@1_in_kb" in metrics


def test_evaluate_bootstrap_is_seeded(nlp):
    corpus = _corpus()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runs = [evaluate_linker(nlp, corpus, k=3, baseline=False, bootstrap=200, seed=s)
                for s in (7, 7)]
    assert runs[0]["recall@1_ci"] == runs[1]["recall@1_ci"]
    low, high = runs[0]["recall@1_ci"]
    assert low <= runs[0]["recall@1"] <= high
    assert runs[0]["bootstrap"]["n_documents"] == len(corpus)
    assert "recall@1_ci" in runs[0]["per_label"]["MORF"]
