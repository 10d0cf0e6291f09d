"""The linking cascade: mentions the dictionary or the retriever settle skip the LM; the rest
are linked as without it; mining never uses it; the settings round-trip through the config."""
import warnings

import pytest
import spacy

from spacy_syncabel.linking import LinkSettings
from spacy_syncabel.linking.candidates import ExactIndex, Retrieved
from spacy_syncabel.linking.cascade import code_margin, settle
from spacy_syncabel.prompting import encode_prompt

from ..conftest import TEXTS

NLP = spacy.blank("es")
MODES = ("beam", "beam_in_candidates", "rerank")
# (text, label, the code its exact match names); the mentions of TEXTS written as KB names
EXACT = [("hipertensión arterial", "ENFERMEDAD", "38341003"), ("FIEBRE", "SINTOMA", "386661006"),
         ("Neumonia", "ENFERMEDAD", "233604007"), ("tac", "PROCEDIMIENTO", "77477000")]
# no KB name or alias: the LM decides unless the margin settles them
FREE = [("dolor de cabeza intenso", "SINTOMA"), ("diabetes", "ENFERMEDAD"),
        ("ecografía", "PROCEDIMIENTO")]


class LMCalls:
    """Counts the LM's forward passes (a hook: every decoding path calls the module)."""

    def __init__(self, lm):
        self.n = 0
        self.handle = lm.register_forward_pre_hook(self._count)

    def _count(self, *_):
        self.n += 1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.remove()


@pytest.fixture()
def linker(tiny_lm, small_kb):
    nlp = spacy.blank("es")
    lin = nlp.add_pipe("syncabel_linker", config={"candidates": 4, "num_beams": 3, "n_best": 3})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lin.set_model(tiny_lm[0], tiny_lm[1], small_kb)
    return lin


def encoded(lin, items):
    """Prompts, groups and texts of mentions in a sentence of their own."""
    prompts, groups, texts = [], [], []
    for text, label in items:
        sentence = f"Paciente con {text} desde ayer."
        doc = NLP.make_doc(sentence)
        start = sentence.index(text)
        ent = doc.char_span(start, start + len(text), label=label, alignment_mode="expand")
        doc.ents = [ent]
        prompts.append(encode_prompt(lin.tokenizer, lin.mention_prompt(doc, ent, label)))
        groups.append(label)
        texts.append(text)
    return prompts, groups, texts


@pytest.mark.parametrize("mode", MODES)
def test_exact_matches_skip_the_lm(linker, mode):
    lin = linker.with_settings(mode=mode, cascade=True)
    prompts, groups, texts = encoded(lin, [(t, g) for t, g, _ in EXACT])
    with LMCalls(lin.lm) as calls:
        out = lin.engine.link(prompts, groups, texts)
    assert calls.n == 0
    assert [c[0].code for c in out] == [code for _, _, code in EXACT]
    assert [c[0].score for c in out] == [1.0] * len(EXACT) and out[0][0].logprob == 0.0
    # an n-best still: the retriever's other codes after the exact one, one per code
    assert all(1 < len(c) <= 3 and len({x.code for x in c}) == len(c) for c in out)
    off = lin.with_settings(cascade=False)
    with LMCalls(lin.lm) as calls:
        off.engine.link(prompts, groups, texts)
    assert calls.n > 0


@pytest.mark.parametrize("mode", MODES)
def test_the_rest_is_linked_as_without_the_cascade(linker, mode):
    lin = linker.with_settings(mode=mode, cascade=True)
    items = [(t, g) for t, g, _ in EXACT] + FREE
    prompts, groups, texts = encoded(lin, items)
    with LMCalls(lin.lm) as calls:
        on = lin.engine.link(prompts, groups, texts)
    assert calls.n > 0  # the free mentions
    n = len(EXACT)
    # the free mentions alone, linked without the cascade: the same n-best (the same batches:
    # padding moves float32 sums, so other batch mates could reorder near-tied beams)
    assert on[n:] == lin.with_settings(cascade=False).engine.link(prompts[n:], groups[n:],
                                                                  texts[n:])


def test_ambiguous_alias_goes_to_the_lm(linker):
    # "fiebre" is a KB name of 386661006; as an alias of "cefalea" it names two codes
    linker.set_aliases([("Fiebre", "cefalea", "SINTOMA")])
    # as many answers as candidates: the two readings (cosine 1) come out whatever the tiny
    # LM thinks of the two cosine-0 names that fill the candidate list
    lin = linker.with_settings(mode="rerank", cascade=True, cascade_margin=None, n_best=4,
                               num_beams=4)
    plan = lin.engine.settle(["fiebre"], ["SINTOMA"])
    assert plan[0].ambiguous and plan[0].exact is None and not plan[0].settled(0.0)
    prompts, groups, texts = encoded(lin, [("fiebre", "SINTOMA")])
    with LMCalls(lin.lm) as calls:
        out = lin.engine.link(prompts, groups, texts)
    assert calls.n > 0 and {c.code for c in out[0]} >= {"386661006", "25064002"}


def test_an_alias_naming_one_code_settles(linker):
    linker.set_aliases([("cefalalgia", "cefalea", "SINTOMA")])
    lin = linker.with_settings(mode="rerank", cascade=True)
    prompts, groups, texts = encoded(lin, [("Cefalalgia", "SINTOMA")])
    with LMCalls(lin.lm) as calls:
        out = lin.engine.link(prompts, groups, texts)
    assert calls.n == 0 and out[0][0].code == "25064002" and out[0][0].name == "cefalea"


def test_exact_index_folds_case_and_accents_within_the_group(small_kb):
    index = ExactIndex(small_kb, [("ca pulmón", "neumonía", "ENFERMEDAD")])
    assert index.codes("NEUMONIA", "ENFERMEDAD") == ["233604007"]
    assert index.codes("Ca Pulmon", "ENFERMEDAD") == ["233604007"]
    assert index.codes("fiebre", "ENFERMEDAD") == []  # a SINTOMA name
    assert index.codes("fiebre", None) == ["386661006"]  # no group: every group
    assert index.names("hta", "ENFERMEDAD") == ["HTA"]


def test_margin_is_against_the_best_other_code():
    coded = [("a", "1", 0.9), ("a2", "1", 0.85), ("b", "2", 0.6), ("c", "3", 0.7)]
    assert code_margin(coded) == pytest.approx(0.2)
    assert code_margin([("a", "1", 0.5), ("a2", "1", 0.4)]) == pytest.approx(0.5)
    assert code_margin([]) == 0.0


def test_margin_semantics(small_kb):
    index = ExactIndex(small_kb)
    retrieved = [Retrieved("dolor abdominal", 0.75), Retrieved("dolor de cabeza", 0.5),
                 Retrieved("cefalea", 0.25)]
    s = settle("dolor abdomen", "SINTOMA", retrieved, index, small_kb.lookup, n_best=5)
    assert s.exact is None and not s.ambiguous and s.margin == 0.25
    assert s.settled(0.25) and s.settled(0.0) and not s.settled(0.26)
    assert not s.settled(None)  # exact matches only
    # the retriever's list merged by code: cefalea shares dolor de cabeza's code
    assert [(c.name, c.code, c.score) for c in s.ranked] == [
        ("dolor abdominal", "21522001", 0.75), ("dolor de cabeza", "25064002", 0.5)]
    exact = settle("Cefalea", "SINTOMA", retrieved, index, small_kb.lookup, n_best=2)
    assert exact.settled(None) and [c.code for c in exact.ranked] == ["25064002", "21522001"]
    assert not settle("x", "SINTOMA", [], index, small_kb.lookup, n_best=5).settled(0.0)


def test_margin_zero_settles_every_unambiguous_mention_on_the_retriever(linker):
    lin = linker.with_settings(mode="rerank", cascade=True, cascade_margin=0.0)
    prompts, groups, texts = encoded(lin, FREE)
    with LMCalls(lin.lm) as calls:
        out = lin.engine.link(prompts, groups, texts)
    assert calls.n == 0
    top = lin.engine.retrieve(texts, groups)
    assert [c[0].name for c in out] == [t[0].name for t in top]
    assert [c[0].score for c in out] == pytest.approx([t[0].score for t in top])
    strict = lin.with_settings(cascade_margin=1.0)
    with LMCalls(lin.lm) as calls:
        strict.engine.link(prompts, groups, texts)
    assert calls.n > 0


def test_mining_ignores_the_cascade(linker):
    lin = linker.with_settings(mode="rerank", cascade=True, cascade_margin=0.0)
    prompts, groups, _ = encoded(lin, [(t, g) for t, g, _ in EXACT])
    with LMCalls(lin.lm) as calls:
        mined = lin.engine.mine(prompts, groups, 3)
    assert calls.n > 0 and all(len(m) == 3 for m in mined)
    assert mined == linker.with_settings(mode="beam").engine.mine(prompts, groups, 3)


def test_cascade_needs_the_mention_texts(linker):
    lin = linker.with_settings(mode="beam", cascade=True)
    prompts, groups, _ = encoded(lin, FREE[:1])
    with pytest.raises(ValueError, match="E220"):
        lin.engine.link(prompts, groups)
    assert lin.with_settings(cascade=False).engine.link(prompts, groups)


def test_settings_defaults_and_checks():
    assert LinkSettings().cascade is False and LinkSettings().cascade_margin is None
    with pytest.raises(ValueError, match="E100"):
        LinkSettings(cascade_margin=-0.1)


@pytest.mark.parametrize("margin", [0.15, None])
def test_config_round_trip(kb_tsv, tmp_path, margin):
    from ..conftest import add_linker

    nlp = spacy.blank("es")
    ruler = nlp.add_pipe("entity_ruler")
    add_linker(nlp, kb_tsv, mode="rerank", candidates=3, cascade=True, cascade_margin=margin)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nlp.initialize()
    ruler.add_patterns([{"label": "SINTOMA", "pattern": "fiebre"}])
    nlp.to_disk(tmp_path / "pipe")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = spacy.load(tmp_path / "pipe")
    settings = loaded.get_pipe("syncabel_linker").settings
    assert settings.cascade is True and settings.cascade_margin == margin
    doc = loaded(TEXTS[0])
    assert [e.kb_id_ for e in doc.ents] == ["386661006"]
    assert doc.ents[0]._.syncabel[0]["score"] == 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        off = spacy.load(tmp_path / "pipe", config={"components.syncabel_linker.cascade": False})
    assert off.get_pipe("syncabel_linker").settings.cascade is False


def test_the_component_renders_no_prompt_for_a_settled_mention(linker, monkeypatch):
    lin = linker.with_settings(mode="rerank", cascade=True)
    rendered = []
    builder = lin.prompt_builder
    render = builder.prompt_ids
    monkeypatch.setattr(builder, "prompt_ids",
                        lambda mention: rendered.append(mention.surface) or render(mention))
    doc = NLP.make_doc("Fiebre y dolor de cabeza intenso.")
    doc.ents = [doc.char_span(0, 6, label="SINTOMA"), doc.char_span(9, 32, label="SINTOMA")]
    doc = lin(doc)
    assert rendered == ["dolor de cabeza intenso"]
    assert [e.kb_id_ for e in doc.ents][0] == "386661006" and doc.ents[1].kb_id_


def test_a_coordinated_mention_is_never_settled_by_margin_when_composites_are_on(linker):
    """With composite candidates on, "fiebre y dolor abdominal" may be a composite: the
    retriever's margin does not settle it (the LM scores it), without composites it does."""
    items = [("fiebre y dolor abdominal", "SINTOMA")]
    off = linker.with_settings(mode="rerank", cascade=True, cascade_margin=0.0)
    prompts, groups, texts = encoded(off, items)
    assert off.engine.settle(texts, groups)[0].settled(0.0)
    on = off.with_settings(composite=True)
    assert on.engine.settings.composite_candidates > 0
    assert not on.engine.settle(texts, groups)[0].settled(0.0)
    with LMCalls(on.lm) as calls:
        on.engine.link(prompts, groups, texts)
    assert calls.n > 0
