"""The syncabel_linker component on real SPACCC sentences with a tiny random Llama."""
import warnings

import pytest
import spacy
from spacy.tokens import Span

from spacy_syncabel.corpus import docs_to_spacy, read_corpus
from spacy_syncabel.types import NIL, NO_CODE

from .conftest import DATA, TEXTS, add_linker, needs_data


@pytest.fixture(scope="module")
def spaccc_rows():
    return read_corpus(DATA / "spaccc" / "test_half.tsv")[:500]


@pytest.fixture(scope="module")
def spaccc_nlp(spaccc_rows, tmp_path_factory):
    """Entity ruler built from the gold mentions, then the linker: a full NER + EL pipeline."""
    nlp = spacy.blank("es")
    ruler = nlp.add_pipe("entity_ruler")
    add_linker(nlp, DATA / "spaccc" / "kb_snomed_es_lite.tsv", num_beams=3, n_best=3,
               max_new_tokens=24, batch_size=64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nlp.initialize()
    # initialize() resets the ruler: add the patterns afterwards
    mentions = {(d.text[m.start:m.end], m.label) for d in spaccc_rows for m in d.mentions}
    ruler.add_patterns([{"label": lab, "pattern": txt} for txt, lab in sorted(mentions)])
    return nlp


def _links(docs):
    return [[(e.start_char, e.end_char, e.label_, e.kb_id_,
              [(c["code"], round(c["logprob"], 3)) for c in e._.syncabel or []])
             for e in d.ents] for d in docs]


@needs_data
def test_links_are_codes_of_the_entity_group(spaccc_nlp, spaccc_rows):
    texts = [d.text for d in spaccc_rows]
    docs = list(spaccc_nlp.pipe(texts, batch_size=50))
    kb = spaccc_nlp.get_pipe("syncabel_linker").kb
    n_ents = 0
    for doc in docs:
        for ent in doc.ents:
            n_ents += 1
            assert ent.kb_id_ == NIL or ent.label_ in kb.groups_of(ent.kb_id_), ent
            nbest = ent._.syncabel
            assert 1 <= len(nbest) <= 3
            # ranked as HF generate (length_penalty 1.0): by exp(log-prob / length)
            scores = [c["score"] for c in nbest]
            assert scores == sorted(scores, reverse=True)
            assert len({c["code"] for c in nbest}) == len(nbest)  # merged by code
            for cand in nbest:
                assert kb.lookup(cand["name"], ent.label_) == cand["code"]
                assert 0.0 < cand["score"] <= 1.0
    assert n_ents >= 500

    # nlp(text) one at a time gives the same links as the batched nlp.pipe
    single = [spaccc_nlp(t) for t in texts[:120]]
    assert _links(single) == _links(docs[:120])


@needs_data
def test_to_disk_and_load_reproduce_outputs(spaccc_nlp, spaccc_rows, tmp_path):
    texts = [d.text for d in spaccc_rows[:150]]
    before = _links(spaccc_nlp.pipe(texts))
    spaccc_nlp.to_disk(tmp_path / "pipe")
    saved = {p.name for p in (tmp_path / "pipe" / "syncabel_linker" / "model").iterdir()}
    assert "model.safetensors" in saved and "tokenizer.json" in saved
    nlp2 = spacy.load(tmp_path / "pipe")
    assert _links(nlp2.pipe(texts)) == before
    # several processes
    assert _links(nlp2.pipe(texts, n_process=2, batch_size=25)) == before


@needs_data
def test_tokenizer_mismatch_is_detected(spaccc_nlp, tmp_path):
    spaccc_nlp.to_disk(tmp_path / "pipe")
    tok_file = tmp_path / "pipe" / "syncabel_linker" / "model" / "tokenizer.json"
    import json

    data = json.loads(tok_file.read_text())
    vocab = data["model"]["vocab"]
    a, b = sorted(vocab)[10:12]
    vocab[a], vocab[b] = vocab[b], vocab[a]
    tok_file.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="E021"):
        spacy.load(tmp_path / "pipe")


@pytest.fixture(scope="module")
def small_nlp(kb_tsv):
    nlp = spacy.blank("es")
    add_linker(nlp, kb_tsv, num_beams=2, n_best=2)
    nlp.initialize()
    return nlp


def _doc_with_ents(nlp, text, spans):
    doc = nlp.make_doc(text)
    doc.ents = [doc.char_span(text.index(s), text.index(s) + len(s), label=lab,
                              alignment_mode="expand") for s, lab in spans]
    return doc


def test_docs_without_ents_and_unknown_labels(small_nlp):
    linker = small_nlp.get_pipe("syncabel_linker")
    doc = linker(small_nlp.make_doc("Sin hallazgos relevantes."))
    assert doc.ents == ()
    doc = _doc_with_ents(small_nlp, TEXTS[0], [("fiebre", "SIGNO")])
    with pytest.warns(UserWarning, match="W002"):
        doc = linker.with_settings(label_map={})(doc)
    assert doc.ents[0].kb_id_ in linker.kb.codes  # linked against all groups


def test_label_map_to_unknown_group_is_an_error_at_initialize(kb_tsv):
    nlp = spacy.blank("es")
    add_linker(nlp, kb_tsv, label_map={"SIGNO": "NO_SUCH_GROUP"})
    with pytest.raises(ValueError, match="E104"):
        nlp.initialize()  # caught before any doc uses the label


def test_label_map_routes_labels_to_groups(small_nlp):
    linker = small_nlp.get_pipe("syncabel_linker").with_settings(
        label_map={"DISEASE": "ENFERMEDAD"})
    doc = linker(_doc_with_ents(small_nlp, TEXTS[0], [("hipertensión arterial", "DISEASE")]))
    assert "ENFERMEDAD" in linker.kb.groups_of(doc.ents[0].kb_id_)


def test_odd_unicode_and_overlong_context(small_nlp):
    linker = small_nlp.get_pipe("syncabel_linker")
    text = ("\u200b\u00a0Paciente con  fiebre\u2028 alta [sic] {nota}. " + "Texto de relleno. " * 400
            + "Finalmente cefalea\u0301.")
    doc = _doc_with_ents(small_nlp, text, [("fiebre", "SINTOMA"), ("cefalea\u0301", "SINTOMA")])
    doc = linker(doc)
    for ent in doc.ents:
        assert ent.kb_id_ in linker.kb.codes
    prompt = linker.mention_prompt(doc, doc.ents[1], "SINTOMA")
    assert len(linker.tokenizer(prompt)["input_ids"]) <= linker.cfg["max_context_tokens"]
    assert "[cefal" in prompt and "]{SINTOMA}" in prompt and "\u0301" not in prompt  # NFC
    assert "\u200b" not in prompt and "\u2028" not in prompt


def test_whitespace_entity_is_nil(small_nlp):
    linker = small_nlp.get_pipe("syncabel_linker")
    doc = small_nlp.make_doc("fiebre \n\n y tos")
    ws = [t for t in doc if not t.text.strip()][0]
    doc.ents = [Span(doc, ws.i, ws.i + 1, label="SINTOMA")]
    with pytest.warns(UserWarning, match="W003"):
        doc = linker(doc)
    assert doc.ents[0].kb_id_ == NIL and doc.ents[0]._.syncabel == []


def test_threshold_gives_nil_and_overwrite_off_keeps_links(small_nlp):
    linker = small_nlp.get_pipe("syncabel_linker")
    doc = linker.with_settings(threshold=1.01)(
        _doc_with_ents(small_nlp, TEXTS[1], [("cefalea", "SINTOMA")]))
    assert doc.ents[0].kb_id_ == NIL and doc.ents[0]._.syncabel  # n-best kept for inspection
    doc = _doc_with_ents(small_nlp, TEXTS[1], [("cefalea", "SINTOMA")])
    for t in doc.ents[0]:
        t.ent_kb_id_ = "MANUAL"
    doc = linker.with_settings(overwrite=False)(doc)
    assert doc.ents[0].kb_id_ == "MANUAL"


def test_unconstrained_mode_gives_no_code_for_unknown_names(small_nlp):
    linker = small_nlp.get_pipe("syncabel_linker").with_settings(constrained=False)
    doc = linker(_doc_with_ents(small_nlp, TEXTS[0], [("fiebre", "SINTOMA")]))
    for cand in doc.ents[0]._.syncabel:
        expected = linker.kb.lookup(cand["name"], "SINTOMA") or NO_CODE
        assert cand["code"] == expected
    # a random model does not spell KB names by chance
    assert doc.ents[0].kb_id_ == NO_CODE


def test_not_initialized_and_missing_loaders(kb_tsv):
    nlp = spacy.blank("es")
    linker = nlp.add_pipe("syncabel_linker")
    with pytest.raises(ValueError, match="E020"):
        linker(nlp.make_doc("fiebre"))
    with pytest.raises(ValueError, match="E023"):
        nlp.initialize()


def test_extension_registered_once():
    from spacy_syncabel.pipeline import register_extensions

    register_extensions()
    register_extensions()
    assert Span.has_extension("syncabel")


def test_score_with_gold_ents(small_nlp, small_kb):
    """use_gold_ents links the gold entities itself: spacy evaluate on a linker-only pipeline."""
    from spacy.training import Example

    from spacy_syncabel.types import CorpusDoc, GoldMention

    text = TEXTS[0]
    mentions = [GoldMention(text.index(n), text.index(n) + len(n), g, small_kb.lookup(n, g))
                for n, g in [("fiebre", "SINTOMA"), ("hipertensión arterial", "ENFERMEDAD")]]
    gold = docs_to_spacy(small_nlp, [CorpusDoc("d", text, mentions)])[0]
    eg = Example(small_nlp.make_doc(text), gold)
    linker = small_nlp.get_pipe("syncabel_linker").with_settings(use_gold_ents=True)
    scores = linker.score([eg])
    assert 0.0 <= scores["syncabel_recall@1"] <= scores["syncabel_recall@5"] <= 1.0
    assert scores["nel_micro_r"] is not None


def test_candidate_restricted_decoding_stays_within_tfidf_candidates(small_nlp):
    linker = small_nlp.get_pipe("syncabel_linker").with_settings(
        mode="beam_in_candidates", candidates=2, prior_weight=0.0)
    text = "Presenta dolores de cabeza y fiebre alta."
    doc = linker(_doc_with_ents(small_nlp, text, [("dolores de cabeza", "SINTOMA")]))
    top2 = linker.candidate_index.top(["dolores de cabeza"], ["SINTOMA"], 2)[0]
    allowed = {linker.kb.lookup(name, "SINTOMA") for name, _ in top2}
    assert {c["code"] for c in doc.ents[0]._.syncabel} <= allowed
    assert "25064002" in allowed  # "dolor de cabeza" is the closest name


def test_prior_reranks_by_similarity(small_nlp):
    # the prior dominates a random model's log-probs
    linker = small_nlp.get_pipe("syncabel_linker").with_settings(prior_weight=100.0)
    text = "Presenta dolores de cabeza y fiebre alta."
    doc = linker(_doc_with_ents(small_nlp, text, [("dolores de cabeza", "SINTOMA")]))
    nbest = doc.ents[0]._.syncabel
    sims = [c["similarity"] for c in nbest]
    assert sims == sorted(sims, reverse=True)


def test_rerank_scores_every_candidate(small_nlp):
    linker = small_nlp.get_pipe("syncabel_linker").with_settings(
        mode="rerank", candidates=3, prior_weight=1000.0)
    text = "Presenta dolores de cabeza y fiebre alta."
    doc = linker(_doc_with_ents(small_nlp, text, [("dolores de cabeza", "SINTOMA")]))
    top = linker.candidate_index.top(["dolores de cabeza"], ["SINTOMA"], 3)[0]
    nbest = doc.ents[0]._.syncabel
    # a dominant prior gives back exactly the TF-IDF order: no candidate is pruned
    assert [c["name"] for c in nbest] == [n for n, _ in top][: len(nbest)]
    assert doc.ents[0].kb_id_ == "25064002"


@needs_data
def test_tries_are_saved_and_loaded_not_rebuilt(spaccc_nlp, tmp_path, monkeypatch):
    from spacy_syncabel.decoding import TrieSet

    spaccc_nlp.to_disk(tmp_path / "pipe")
    assert (tmp_path / "pipe" / "syncabel_linker" / "tries" / "tries.json").is_file()

    def no_build(*args, **kwargs):
        raise AssertionError("the tries were rebuilt instead of loaded")

    monkeypatch.setattr(TrieSet, "build", no_build)
    linker = spacy.load(tmp_path / "pipe").get_pipe("syncabel_linker")
    assert linker.engine.tries.names is linker.engine.kb.name_table


# -- composite mentions: saved pipelines ----------------------------------------------------
def _composite_nlp(composite_lm, small_kb, composite=True):
    """A Spanish pipeline whose linker holds the LM fitted to " fiebre<SEP>cefalea"."""
    model, tok, _, _ = composite_lm
    nlp = spacy.blank("es")
    linker = nlp.add_pipe("syncabel_linker", config={"composite": composite, "num_beams": 4,
                                                     "n_best": 4})
    linker.set_model(model, tok, small_kb)
    return nlp


def _composite_links(nlp):
    doc = _doc_with_ents(nlp, TEXTS[0], [("fiebre", "SINTOMA")])
    return _links([nlp.get_pipe("syncabel_linker")(doc)])


def test_composite_pipeline_saves_loads_and_links_identically(composite_lm, small_kb,
                                                              tmp_path, monkeypatch):
    from spacy_syncabel.decoding import TrieSet

    nlp = _composite_nlp(composite_lm, small_kb)
    before = _composite_links(nlp)
    assert before[0][0][3] == "25064002+386661006"  # cefalea + fiebre, parts sorted
    nlp.to_disk(tmp_path / "pipe")
    tries_dir = tmp_path / "pipe" / "syncabel_linker" / "tries"
    assert (tries_dir / "after_sep" / "tries.json").is_file()
    assert not (tries_dir / "after_sep" / "names.marisa").exists()  # the parts share names

    def no_build(*args, **kwargs):
        raise AssertionError("the tries were rebuilt instead of loaded")

    with monkeypatch.context() as m:
        m.setattr(TrieSet, "_build", no_build)
        loaded = spacy.load(tmp_path / "pipe")
        # the same folder without composite mentions keeps the first part only: no rebuild
        single = spacy.load(tmp_path / "pipe",
                            config={"components.syncabel_linker.composite": False})
    assert loaded.get_pipe("syncabel_linker").engine.tries.composite
    assert _composite_links(loaded) == before
    assert not single.get_pipe("syncabel_linker").engine.tries.composite
    assert _composite_links(single) == _composite_links(
        _composite_nlp(composite_lm, small_kb, composite=False))
    assert "+" not in _composite_links(single)[0][0][3]


def test_composite_tries_of_the_old_format_load_with_a_warning(composite_lm, small_kb,
                                                               tmp_path):
    """Tries saved before the after-separator part existed (a separator id, no after_sep/)
    load: that part is built from the KB (W210) and the pipeline links as a new one."""
    import json
    import shutil

    from spacy_syncabel.decoding.trie_io import sha256

    nlp = _composite_nlp(composite_lm, small_kb)
    before = _composite_links(nlp)
    nlp.to_disk(tmp_path / "pipe")
    tries_dir = tmp_path / "pipe" / "syncabel_linker" / "tries"
    shutil.rmtree(tries_dir / "after_sep")
    meta = json.loads((tries_dir / "tries.json").read_text(encoding="utf-8"))
    del meta["after_sep"], meta["sha256"]["after_sep/tries.json"]
    assert meta["sep_id"] is not None  # what the old format wrote
    (tries_dir / "tries.json").write_text(json.dumps(meta), encoding="utf-8")
    state_file = tries_dir.parent / "state.json"  # and the state.json of that time
    state = json.loads(state_file.read_text(encoding="utf-8"))
    del state["sha256"]
    state_file.write_text(json.dumps(state), encoding="utf-8")
    with pytest.warns(UserWarning, match="W210"):
        loaded = spacy.load(tmp_path / "pipe")
    assert loaded.get_pipe("syncabel_linker").engine.tries.composite
    assert _composite_links(loaded) == before


def test_pipelines_without_composite_save_no_second_trie(composite_lm, small_kb, tmp_path):
    nlp = _composite_nlp(composite_lm, small_kb, composite=False)
    before = _composite_links(nlp)
    nlp.to_disk(tmp_path / "pipe")
    tries_dir = tmp_path / "pipe" / "syncabel_linker" / "tries"
    assert not (tries_dir / "after_sep").exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no W210 for a pipeline that never was composite
        loaded = spacy.load(tmp_path / "pipe")
    assert _composite_links(loaded) == before


def test_saving_over_the_folder_it_was_loaded_from(small_nlp, tmp_path):
    """The loaded tries and weights are memory-mapped from the folder: saving over it writes a
    new folder and renames it into place, so neither the loaded pipeline nor the saved one is
    damaged (np.save over a mapped file truncated it: the next load failed with E141)."""
    small_nlp.to_disk(tmp_path / "pipe")
    nlp = spacy.load(tmp_path / "pipe")
    spans = [("hipertensión arterial", "ENFERMEDAD"), ("fiebre", "SINTOMA")]
    linker = nlp.get_pipe("syncabel_linker")
    before = _links([linker(_doc_with_ents(nlp, TEXTS[0], spans))])
    nlp.to_disk(tmp_path / "pipe")
    assert _links([linker(_doc_with_ents(nlp, TEXTS[0], spans))]) == before
    again = spacy.load(tmp_path / "pipe")
    after = _links([again.get_pipe("syncabel_linker")(_doc_with_ents(again, TEXTS[0], spans))])
    assert after == before
    assert sorted(p.name for p in (tmp_path / "pipe").iterdir() if p.name.startswith("."))\
        == []  # no temporary folder left beside the component's
    # a part left out of the save is carried over from the folder saved before
    nlp.get_pipe("syncabel_linker").to_disk(tmp_path / "pipe" / "syncabel_linker",
                                            exclude=["model"])
    assert (tmp_path / "pipe" / "syncabel_linker" / "model" / "model.safetensors").is_file()
    spacy.load(tmp_path / "pipe")


def test_spans_key_links_overlapping_spans_of_a_group(small_nlp, small_kb):
    """With spans_key the linker links a span group's nested spans, each as it links alone in
    doc.ents, and leaves doc.ents alone."""
    from spacy.tokens import SpanGroup

    linker = small_nlp.get_pipe("syncabel_linker").with_settings(spans_key="mentions")
    text = TEXTS[2]
    outer, inner = "neumonía adquirida en la comunidad", "neumonía"
    doc = small_nlp.make_doc(text)
    start = text.index(outer)
    spans = [doc.char_span(start, start + len(outer), label="ENFERMEDAD"),
             doc.char_span(start, start + len(inner), label="ENFERMEDAD"),
             doc.char_span(text.index("disnea"), text.index("disnea") + 6, label="SINTOMA")]
    doc.spans["mentions"] = SpanGroup(doc, name="mentions", attrs={"source": "test"},
                                      spans=spans)
    doc = linker(doc)
    group = doc.spans["mentions"]
    assert doc.ents == () and group.attrs == {"source": "test"}
    assert [(s.start, s.end, s.label_) for s in group] == [(s.start, s.end, s.label_)
                                                           for s in spans]
    alone = small_nlp.get_pipe("syncabel_linker")
    for span in group:
        assert span.kb_id_ in small_kb.codes
        assert span.kb_id_ in {c for c, _, g in small_kb.entries() if g == span.label_}
        assert [c["code"] for c in span._.syncabel][:1] == [span.kb_id_]
        single = alone(_doc_with_ents(small_nlp, text, [(span.text, span.label_)]))
        assert single.ents[0].kb_id_ == span.kb_id_
    # a doc without the group is left as it is
    assert linker(small_nlp.make_doc(text)).spans.get("mentions") is None
    assert linker.cfg["spans_key"] == "mentions"


def test_spans_key_is_saved_in_the_config(kb_tsv, small_kb, tmp_path):
    nlp = spacy.blank("es")
    add_linker(nlp, kb_tsv, num_beams=2, n_best=2, spans_key="sc")
    nlp.initialize()
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    assert loaded.get_pipe("syncabel_linker").spans_key == "sc"
    doc = loaded.make_doc(TEXTS[0])
    doc.spans["sc"] = [doc.char_span(TEXTS[0].index("fiebre"), TEXTS[0].index("fiebre") + 6,
                                     label="SINTOMA")]
    span = loaded(doc).spans["sc"][0]
    assert span.kb_id_ in {c for c, _, g in small_kb.entries() if g == "SINTOMA"}
    assert span._.syncabel and not doc.ents
