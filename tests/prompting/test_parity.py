"""One prompt per mention: the component, training and ``render`` build the same prompt for
real mentions of SPACCC, CANTEMIST and NCBI-disease (sentences from the pipeline's
segmenter, mentions cut to their token budget, contexts narrowed to the prompt's budget)."""
import warnings
from itertools import islice

import pytest
import spacy
from spacy.util import filter_spans

import spacy_syncabel.segmentation  # noqa: F401 - registers syncabel_sentencizer
from spacy_syncabel.corpus import read_corpus
from spacy_syncabel.pipes import find_linker
from spacy_syncabel.prompting import encode_prompt
from spacy_syncabel.prompting.docs import gold_spans, prepare_doc
from spacy_syncabel.render import render_docs
from spacy_syncabel.training.examples import iter_mention_prompts
from spacy_syncabel.types import CorpusDoc

from ..conftest import DATA, add_linker, needs_data

N_MENTIONS = 30
# name: (corpus, language, label -> KB group or None for the label itself)
CORPORA = {
    "spaccc": (DATA / "spaccc" / "test_half.tsv", "es", None),
    "cantemist": (DATA / "cantemist" / "dev1", "es", None),
    "ncbi": (DATA / "ncbi-disease" / "NCBItestset_corpus.txt", "en", "Disease"),
}


def _slice(docs, n):
    """The first documents holding ``n`` mentions (the last one cut to fit)."""
    out, left = [], n
    for d in docs:
        if left <= 0:
            break
        if d.mentions:
            out.append(CorpusDoc(d.id, d.text, list(d.mentions[:left]), d.sentences))
            left -= len(out[-1].mentions)
    return out


@pytest.fixture(scope="module", params=sorted(CORPORA))
def case(request, tmp_path_factory):
    path, lang, group = CORPORA[request.param]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        docs = _slice(read_corpus(path), N_MENTIONS)
    # a KB of the slice's own mention texts: a tokenizer trained on them, one group per label
    rows = sorted({(" ".join(d.text[m.start:m.end].split()), group or m.label)
                   for d in docs for m in d.mentions if d.text[m.start:m.end].strip()})
    kb = tmp_path_factory.mktemp(request.param) / "kb.tsv"
    kb.write_text("code\tname\tgroup\n" + "".join(
        f"C{i}\t{n}\t{g}\n" for i, (n, g) in enumerate(rows)), encoding="utf8")
    nlp = spacy.blank(lang)
    nlp.add_pipe("syncabel_sentencizer")
    labels = {m.label for d in docs for m in d.mentions}
    # small budgets, so that mentions are cut and contexts narrowed in every corpus
    add_linker(nlp, kb, num_beams=1, n_best=1, max_new_tokens=4, max_context_tokens=40,
               max_mention_tokens=4, context_chars=120,
               label_map={label: group for label in labels} if group else {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nlp.initialize()
    return nlp, docs


def _component_prompt_ids(nlp, docs, monkeypatch):
    """(doc id, start, end) -> the prompt ids ``predict`` hands the engine."""
    linker = find_linker(nlp)
    seen = []

    def link(prompts, groups, texts=None):
        seen.extend(list(prompts))
        return [[] for _ in prompts]

    monkeypatch.setattr(linker.engine, "link", link)
    monkeypatch.setattr(linker, "_nonfinite_logits", lambda prompt: False)
    out = {}
    for cdoc in docs:
        doc = prepare_doc(nlp, cdoc)
        doc.ents = filter_spans([s for _, s in gold_spans(doc, cdoc) if s is not None])
        seen.clear()
        linker.predict([doc])
        assert len(seen) == len(doc.ents)
        for ent, ids in zip(doc.ents, seen):
            out[(cdoc.id, ent.start_char, ent.end_char)] = ids
    return out


@needs_data
def test_component_training_and_render_build_the_same_prompt(case, monkeypatch):
    nlp, docs = case
    linker = find_linker(nlp)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rendered = list(render_docs(nlp, docs))
        trained = list(iter_mention_prompts(docs, linker, nlp=nlp))
        component = _component_prompt_ids(nlp, docs, monkeypatch)
    assert len(rendered) == len(trained) >= N_MENTIONS - 3  # a few may not align
    spans = {}
    for cdoc in docs:
        doc = prepare_doc(nlp, cdoc)
        for m, span in gold_spans(doc, cdoc):
            if span is not None:
                spans[(cdoc.id, m.start, m.end)] = (cdoc.id, span.start_char, span.end_char)
    compared = 0
    for rec, (cdoc, prompt, mention, code, group) in zip(rendered, trained):
        assert (rec["doc_id"], rec["code"] or "") == (cdoc.id, code)
        assert rec["prompt"] == prompt
        ids = component.get(spans[(rec["doc_id"], rec["start"], rec["end"])])
        if ids is not None:  # the component links the mentions filter_spans keeps
            assert ids == encode_prompt(linker.tokenizer, prompt), prompt
            compared += 1
    assert compared >= len(rendered) // 2
    # the budgets are at work: some prompts were narrowed, some mentions cut
    ents = list(islice(_ents(nlp, docs), 200))
    unfitted = [linker.prompt_builder.prompt(linker.mention(e, None), fit=False) for e in ents]
    assert any(linker.prompt_builder.count_tokens(p) > 40 for p in unfitted)
    assert any(linker.mention_text(e) != e.text for e in ents)


def _ents(nlp, docs):
    for cdoc in docs:
        doc = prepare_doc(nlp, cdoc)
        for _, span in gold_spans(doc, cdoc):
            if span is not None:
                yield span
