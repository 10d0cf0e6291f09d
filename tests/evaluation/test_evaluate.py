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
        "num_beams": 3, "n_best": 3, "max_new_tokens": 12, "score_gold_ents": True})
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
