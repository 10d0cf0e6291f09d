"""Composite candidates in the candidate modes: conjuncts and pairs proposed within a bound,
scored the reference's way (" a<SEP>b"), a fitted composite returned with its sorted code by
rerank and beam_in_candidates, and composite off giving the single-name candidates."""
import copy

import pytest
import spacy

from spacy_syncabel.linking import LinkSettings
from spacy_syncabel.linking.candidates import Retrieved
from spacy_syncabel.linking.composite import (composite_candidates, conjunct_queries,
                                              conjuncts, pair_candidates)
from spacy_syncabel.prompting import SEP_TOKEN, encode_completion, encode_prompt

TEXT = "Refiere fiebre y cefalea desde ayer, sin disnea."
MENTION = "fiebre y cefalea"
FITTED = "25064002+386661006"  # cefalea + fiebre, codes sorted


# -- proposing candidates (no LM) -------------------------------------------------------------
@pytest.mark.parametrize("mention,parts", [
    ("dolor abdominal y vómitos", ["dolor abdominal", "vómitos"]),
    ("Hemocultivos, coprocultivos y urinocultivos", ["Hemocultivos", "coprocultivos",
                                                     "urinocultivos"]),
    ("fiebre e ictericia", ["fiebre", "ictericia"]),
    ("macro/ microaneurismas", ["macro", "microaneurismas"]),
    ("fever and headache", ["fever", "headache"]),
    ("hipertensión arterial", []),
    ("yeyuno", []),  # coordinators are whole words
    ("a, b, c, d, e, f, g", []),  # a list longer than MAX_CONJUNCTS
])
def test_conjuncts(mention, parts):
    assert conjuncts(mention) == parts


def test_conjunct_queries_restore_elided_words():
    assert conjunct_queries(["biopsia pleural", "pulmonar"]) == [
        ["biopsia pleural"], ["pulmonar", "biopsia pulmonar"]]
    assert conjunct_queries(["dolor", "distensión abdominal"]) == [
        ["dolor", "dolor abdominal"], ["distensión abdominal"]]


CODES = {"a1": "A", "a2": "A", "b": "B", "c": "C", "d": "D"}


def _lookup(name, group):
    return CODES.get(name)


def test_pairs_have_distinct_codes_best_first():
    top = [Retrieved("a1", 0.9), Retrieved("a2", 0.8), Retrieved("b", 0.5),
           Retrieved("c", 0.1), Retrieved("d", 0.9)]
    pairs = pair_candidates(top, None, _lookup, top_m=4)
    names = [[p.name for p in parts] for parts, _ in pairs]
    assert ["a1", "a2"] not in names  # one code twice is no composite
    assert ["d", "b"] not in names  # d is 5th: beyond top_m
    assert names[0] == ["a1", "b"] and pairs[0][1] == pytest.approx(0.7)
    assert [s for _, s in pairs] == sorted((s for _, s in pairs), reverse=True)


@pytest.mark.parametrize("limit", [0, 1, 2, 3])
def test_composite_candidates_respect_the_limit_and_dedupe_code_sets(limit):
    calls = []

    def retrieve(queries, groups, n):
        calls.append(list(queries))
        return [[Retrieved({"x": "a1", "y": "b"}.get(q, "c"), 1.0)] for q in queries]

    def similarity(mention, texts, group):
        return [len(t) / 10 for t in texts]

    top = [[Retrieved("a1", 0.9), Retrieved("a2", 0.8), Retrieved("b", 0.5), Retrieved("c", 0.4)]]
    out = composite_candidates(["x y y"], [None], top, retrieve, similarity, _lookup, limit)[0]
    assert len(out) == min(limit, 3)  # {A,B} (conjuncts first, then a pair), {A,C}, {B,C}
    code_sets = [frozenset(CODES[n] for n in r.name.split(SEP_TOKEN)) for r in out]
    assert len(set(code_sets)) == len(code_sets)
    if limit:
        # the conjuncts' names, scored against the mention as one string "a1 b"
        assert out[0] == Retrieved("a1" + SEP_TOKEN + "b", 0.4)
        assert calls == [["x", "y"]]  # one retrieval call for the batch
    else:
        assert calls == []


def test_the_nbest_keeps_the_best_composite_only():
    from spacy_syncabel.linking.engine import best_composite_only

    sep = SEP_TOKEN
    ranked = [("a" + sep + "b", 0.9, -1.0, 3), ("a", 0.8, -1.0, 2), ("a" + sep + "c", 0.7, -1.0, 3),
              ("c", 0.6, -2.0, 2), ("b" + sep + "c", 0.5, -1.0, 3)]
    assert [r[0] for r in best_composite_only(ranked)] == ["a" + sep + "b", "a", "c"]
    assert best_composite_only(ranked[1:2]) == ranked[1:2]


# -- the engine ----------------------------------------------------------------------------------
def _nlp(model, tok, kb, **config):
    nlp = spacy.blank("es")
    linker = nlp.add_pipe("syncabel_linker", config={"num_beams": 4, "n_best": 4, **config})
    linker.set_model(model, tok, kb)
    return nlp


def _doc(nlp):
    doc = nlp.make_doc(TEXT)
    start = TEXT.index(MENTION)
    doc.ents = [doc.char_span(start, start + len(MENTION), label="SINTOMA")]
    return doc


@pytest.fixture(scope="module")
def fitted(tiny_lm, small_kb):
    """A copy of ``tiny_lm`` fitted to answer " fiebre<SEP>cefalea" for MENTION in TEXT, as
    the Spanish pipeline renders its prompt: ``(model, tok, prompt ids)``."""
    import torch

    model, tok = copy.deepcopy(tiny_lm[0]), tiny_lm[1]
    model.config.syncabel_fine_tuned = True  # no W103: it is fitted below
    nlp = _nlp(model, tok, small_kb, composite=True)
    linker = nlp.get_pipe("syncabel_linker")
    ent = _doc(nlp).ents[0]
    prompt = encode_prompt(tok, linker.mention_prompt(ent.doc, ent, "SINTOMA"))
    target = encode_completion(tok, ["fiebre", "cefalea"], tok.convert_tokens_to_ids(SEP_TOKEN))
    ids = torch.tensor([prompt + target])
    labels = torch.tensor([[-100] * len(prompt) + target])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    torch.manual_seed(0)
    model.train()
    for _ in range(60):
        opt.zero_grad()
        model(input_ids=ids, labels=labels).loss.backward()
        opt.step()
    model.eval()
    return model, tok, prompt


def _link(nlp):
    ent = nlp.get_pipe("syncabel_linker")(_doc(nlp)).ents[0]
    return ent.kb_id_, ent._.syncabel


@pytest.mark.parametrize("mode", ["rerank", "beam_in_candidates"])
def test_fitted_composite_is_returned_with_its_sorted_code(fitted, small_kb, mode):
    model, tok, _ = fitted
    on = _nlp(model, tok, small_kb, composite=True, mode=mode, candidates=2)
    code, nbest = _link(on)
    assert code == FITTED
    if mode == "rerank":  # the best composite only
        assert sum("+" in c["code"] for c in nbest) == 1
    assert nbest[0]["name"] == "cefalea" + SEP_TOKEN + "fiebre"  # parts in code order
    off = _nlp(model, tok, small_kb, composite=False, mode=mode, candidates=2)
    assert "+" not in _link(off)[0]


def test_beam_in_candidates_needs_the_conjuncts_names(fitted, small_kb):
    """With one retrieved name the candidate trie cannot spell the composite; the conjuncts'
    names added to it can."""
    model, tok, _ = fitted
    one = _nlp(model, tok, small_kb, composite=True, mode="beam_in_candidates", candidates=1)
    assert _link(one)[0] == FITTED
    no_pairs = _nlp(model, tok, small_kb, composite=True, mode="beam_in_candidates",
                    candidates=1, composite_pairs=0)
    assert "+" not in _link(no_pairs)[0]


def test_composite_scores_are_the_reference_completions(fitted, small_kb):
    from spacy_syncabel.decoding.scoring import score_completions

    model, tok, prompt = fitted
    engine = _nlp(model, tok, small_kb, composite=True, mode="rerank",
                  candidates=2).get_pipe("syncabel_linker").engine
    scored = engine.score_candidates([prompt], ["SINTOMA"], [MENTION])[0]
    composite = [s for s in scored if SEP_TOKEN in s[0]]
    assert composite and len(scored) == 2 + len(composite)
    sep = tok.convert_tokens_to_ids(SEP_TOKEN)
    ref = [encode_completion(tok, name.split(SEP_TOKEN), sep) for name, *_ in composite]
    assert [engine.completion_tokens(name) for name, *_ in composite] == ref
    alone = score_completions(model, [prompt], [ref], tok.pad_token_id)[0]
    assert [lp for _, _, lp, _, _ in composite] == pytest.approx(alone, abs=1e-4)
    assert [n for _, _, _, n, _ in composite] == [len(r) for r in ref]
    # the conjuncts' candidate is scored by the retriever as one string, "fiebre cefalea"
    name, prior, _, _, _ = composite[0]
    assert name == "fiebre" + SEP_TOKEN + "cefalea"
    assert prior == pytest.approx(engine.generator.similarity(MENTION, ["fiebre cefalea"],
                                                              "SINTOMA")[0])


def test_composite_off_scores_exactly_the_retrieved_names(fitted, small_kb):
    model, tok, prompt = fitted
    linker = _nlp(model, tok, small_kb, composite=False, mode="rerank",
                  candidates=4).get_pipe("syncabel_linker")
    scored = linker.engine.score_candidates([prompt], ["SINTOMA"], [MENTION])[0]
    retrieved = linker.engine.retrieve([MENTION], ["SINTOMA"])[0]
    assert [(s[0], s[1]) for s in scored] == [(r.name, r.score) for r in retrieved]
    # composite on without pairs ranks the same candidates with the same scores
    zero = _nlp(model, tok, small_kb, composite=True, mode="rerank", candidates=4,
                composite_pairs=0)
    assert _link(zero) == _link(_nlp(model, tok, small_kb, composite=False, mode="rerank",
                                     candidates=4))


@pytest.mark.parametrize("pairs", [1, 3])
def test_scoring_cost_is_bounded(fitted, small_kb, monkeypatch, pairs):
    import spacy_syncabel.decoding.scoring as scoring

    seen, positions = [], []
    real = scoring.score_completions
    tiny_sep = None

    def counting(model, prompts, completions, pad_id, **kw):
        for comps in completions:
            # the candidates, then the gate's completions: two per separator of a candidate
            n = next(n for n in range(len(comps) + 1)
                     if n + 2 * sum(list(c).count(tiny_sep) for c in comps[:n]) == len(comps))
            names = comps[:n]
            seen.append(len(names))
            positions.append((len(scoring._prefix_tree(comps)[0]),
                              len(scoring._prefix_tree(names)[0])))
        return real(model, prompts, completions, pad_id, **kw)

    monkeypatch.setattr(scoring, "score_completions", counting)
    model, tok, _ = fitted
    tiny_sep = tok.convert_tokens_to_ids(SEP_TOKEN)
    nlp = _nlp(model, tok, small_kb, composite=True, mode="rerank", candidates=3,
               composite_pairs=pairs)
    text = "Dolor abdominal, disnea y fiebre; hipertensión arterial o diabetes mellitus."
    doc = nlp.make_doc(text)
    doc.ents = [doc.char_span(text.index(m), text.index(m) + len(m), label=label) for m, label in
                [("Dolor abdominal, disnea y fiebre", "SINTOMA"),
                 ("hipertensión arterial o diabetes mellitus", "ENFERMEDAD")]]
    nlp.get_pipe("syncabel_linker")(doc)
    assert seen == [3 + pairs, 3 + pairs]  # both mentions have enough composite candidates
    assert all(a == b for a, b in positions)  # the gate's completions cost no position


def test_calibration_counts_composite_hits(fitted, small_kb):
    from spacy_syncabel.training.calibration import prior_weight_table
    from spacy_syncabel.training.examples import DevSet

    model, tok, prompt = fitted
    engine = _nlp(model, tok, small_kb, composite=True, mode="rerank",
                  candidates=2).get_pipe("syncabel_linker").engine
    dev = DevSet([prompt], ["SINTOMA"], ["386661006+25064002"], [MENTION])
    table = {r["prior_weight"]: r["recall@1"] for r in prior_weight_table(engine, dev, [0.0])}
    assert table[0.0] == 1.0
    off = engine.with_settings(composite=False)
    assert prior_weight_table(off, dev, [0.0])[0]["recall@1"] == 0.0


def test_composite_pairs_setting():
    assert LinkSettings(mode="rerank", composite=True).composite_candidates == 8
    assert LinkSettings(mode="rerank").composite_candidates == 0  # composite off
    assert LinkSettings(mode="beam", composite=True).composite_candidates == 0
    with pytest.raises(ValueError, match="composite_pairs"):
        LinkSettings(composite_pairs=-1)


def test_composite_pairs_in_the_config(fitted, small_kb, tmp_path):
    model, tok, _ = fitted
    nlp = _nlp(model, tok, small_kb, composite=True, mode="rerank", candidates=2,
               composite_pairs=3)
    nlp.to_disk(tmp_path / "pipe")
    loaded = spacy.load(tmp_path / "pipe")
    assert loaded.get_pipe("syncabel_linker").settings.composite_pairs == 3
    def names(nlp):
        code, nbest = _link(nlp)
        return code, [(c["name"], c["code"]) for c in nbest]

    assert names(loaded) == names(nlp)
    zero = spacy.load(tmp_path / "pipe",
                      config={"components.syncabel_linker.composite_pairs": 0})
    assert zero.get_pipe("syncabel_linker").settings.composite_candidates == 0
