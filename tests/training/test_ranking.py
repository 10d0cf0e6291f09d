"""Candidate-ranking fine-tuning: its loss is the inference score's, and it teaches the LM to
overrule the TF-IDF prior where the corpus links a mention to another concept than the
closest name."""
import warnings

import pytest
import spacy
import torch

from spacy_syncabel.decoding.scoring import completion_logprobs, score_completions
from spacy_syncabel.training import build_examples, train_linker
from spacy_syncabel.training.ranking import build_rank_examples, rank_loss
from spacy_syncabel.types import CorpusDoc, GoldMention

# mentions whose closest KB name (char 3-gram TF-IDF) is another concept's
CONFUSED = [("diabetes", "ENFERMEDAD", "44054006"),  # closest: diabetes mellitus (73211009)
            ("neumonía grave", "ENFERMEDAD", "385093006"),  # closest: neumonía
            ("ecografía", "PROCEDIMIENTO", "418394000"),  # closest: ecografía abdominal
            ("dolor", "SINTOMA", "25064002")]
PATTERNS = ["Paciente que presenta {} desde hace días.", "Se observa {} en la exploración.",
            "Antecedentes de {} sin otros hallazgos.", "Refiere {} de larga evolución."]


def confused_corpus():
    docs = []
    for i, (mention, label, code) in enumerate(CONFUSED):
        for j, pattern in enumerate(PATTERNS):
            text = pattern.format(mention)
            start = text.index(mention)
            docs.append(CorpusDoc(f"c{i}-{j}", text,
                                  [GoldMention(start, start + len(mention), label, code)]))
    return docs


@pytest.fixture()
def linker(tiny_lm, small_kb):
    nlp = spacy.blank("es")
    lin = nlp.add_pipe("syncabel_linker", config={"candidates": 5, "prior_weight": 2.0,
                                                   "mode": "rerank"})
    lin.set_model(tiny_lm[0], tiny_lm[1], small_kb)
    return lin


def test_tfidf_prior_is_wrong_on_the_fixture(linker):
    top = linker.candidate_index.top([m for m, _, _ in CONFUSED], [g for _, g, _ in CONFUSED], 1)
    assert all(linker.kb.lookup(t[0][0], g) != c for t, (_, g, c) in zip(top, CONFUSED))


def test_rank_examples_and_loss_match_inference_scores(linker):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        examples, _ = build_examples(confused_corpus(), linker)
    ranked = build_rank_examples(examples, linker, k=4)
    assert len(ranked) == len(examples)
    for ex, rex in zip(examples, ranked):
        assert rex.completions[0] == ex.input_ids[ex.n_prompt:] and rex.positive[0]
        assert len(rex.completions) == len(rex.sims) == len(rex.positive) >= 3
        assert not all(rex.positive)  # every mention has a wrong candidate to beat
    pad = linker.tokenizer.pad_token_id
    batch = ranked[:6]
    # with grad, the summed log-probs are the inference ones
    total, lengths, rows = completion_logprobs(linker.lm, [r.prompt_ids for r in batch],
                                               [r.completions for r in batch], pad)
    assert total.requires_grad
    ref = score_completions(linker.lm, [r.prompt_ids for r in batch],
                            [r.completions for r in batch], pad)
    got = [[0.0] * len(r.completions) for r in batch]
    for (i, j), v in zip(rows, total.tolist()):
        got[i][j] = v
    for a, b in zip(got, ref):
        assert a == pytest.approx(b, abs=1e-4)
    out = rank_loss(linker.lm, batch, pad, prior_weight=2.0)
    out["loss"].backward()
    grads = [p.grad for p in linker.lm.parameters() if p.grad is not None]
    assert grads and any(float(g.abs().sum()) > 0 for g in grads)
    assert float(out["rank"]) > 0 and float(out["nll"]) > 0
    linker.lm.zero_grad(set_to_none=True)


def top1_codes(lin, docs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        examples, _ = build_examples(docs, lin)
    prompts = [e.input_ids[:e.n_prompt] for e in examples]
    cands = lin.engine.link(prompts, [e.group for e in examples], [e.mention for e in examples])
    return [e.code for e in examples], [c[0].code if c else None for c in cands]


def test_ranking_training_overrules_the_prior(kb_tsv, tmp_path):
    """At the project's prior weight (10) plain SFT leaves the prior's wrong choice on some
    mentions; the same steps with the ranking loss fix them."""
    docs = confused_corpus()
    linker_config = {"candidates": 5, "prior_weight": 10.0, "mode": "rerank", "num_beams": 2,
                     "n_best": 2}
    correct = {}
    for k in (0, 4):
        torch.manual_seed(0)
        train_linker(kb_tsv, docs, tmp_path / f"rank{k}", base_model="tiny:64,2", max_steps=60,
                     batch_size=8, lr=5e-3, warmup=0.1, logging_steps=10, progress=False,
                     bf16=False, rank_candidates=k, linker_config=linker_config)
        lin = spacy.load(tmp_path / f"rank{k}" / "model-last").get_pipe("syncabel_linker")
        assert lin.cfg["mode"] == "rerank" and lin.cfg["candidates"] == 5
        gold, pred = top1_codes(lin, docs)
        correct[k] = sum(g == p for g, p in zip(gold, pred))
    # TF-IDF's top-1 is wrong on every mention
    assert correct[4] >= 0.9 * len(docs) and correct[4] > correct[0], correct
