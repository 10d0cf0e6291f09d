"""`python -m spacy_syncabel render`: the exact prompt and target of every gold mention."""
import json
import warnings

import pytest
import spacy
from typer.testing import CliRunner

import spacy_syncabel.segmentation  # noqa: F401 - registers syncabel_sentencizer
from spacy_syncabel.cli import app
from spacy_syncabel.corpus import write_jsonl
from spacy_syncabel.prompting import SEP_TOKEN, PromptTemplate
from spacy_syncabel.types import NO_CODE, CorpusDoc, GoldMention

from .conftest import add_linker


TEXT = ("Varón de 54 años con diabetes mellitus tipo 2.\n"
        "Acude por fiebre y cefalea desde ayer. Dolor abdominal3 leve.")


def _m(text, label, code, nth=0):
    start = -1
    for _ in range(nth + 1):
        start = TEXT.index(text, start + 1)
    return GoldMention(start, start + len(text), label, code)


MENTIONS = [
    _m("diabetes mellitus tipo 2", "ENFERMEDAD", "44054006"),
    _m("diabetes mellitus", "ENFERMEDAD", "73211009"),  # nested in the one above
    _m("fiebre", "SINTOMA", "386661006"),
    _m("fiebre y cefalea", "SINTOMA", "386661006+25064002"),  # composite
    _m("Dolor abdominal", "SINTOMA", "21522001"),  # ends inside the token "abdominal3"
    _m("cefalea", "SINTOMA", NO_CODE),
    _m("leve", "SINTOMA", "999999"),  # not in the KB
]


@pytest.fixture(scope="module")
def pipeline_dir(kb_tsv, tmp_path_factory):
    nlp = spacy.blank("es")
    nlp.add_pipe("syncabel_sentencizer")
    add_linker(nlp, kb_tsv, context_chars=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nlp.initialize()
    path = tmp_path_factory.mktemp("render") / "pipeline"
    nlp.to_disk(path)
    return path


def test_render_writes_one_line_per_gold_mention(pipeline_dir, tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    write_jsonl([CorpusDoc("note-1", TEXT, MENTIONS)], corpus)
    out = tmp_path / "prompts.jsonl"
    res = CliRunner().invoke(app, ["render", str(pipeline_dir), str(corpus), "--output", str(out)])
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert sorted((r["start"], r["end"], r["label"], r["code"]) for r in lines) == sorted(
        (m.start, m.end, m.label, m.code) for m in MENTIONS)
    assert all(r["doc_id"] == "note-1" for r in lines)
    by_text = {TEXT[r["start"]:r["end"]]: r for r in lines}

    # the prompt is the mention marked in the sentence the segmenter found, SynCABEL's input
    assert by_text["fiebre"]["prompt"] == (
        "Acude por [fiebre]{SINTOMA} y cefalea desde ayer.<SEP>[fiebre] es")
    assert by_text["diabetes mellitus"]["prompt"] == (
        "Varón de 54 años con [diabetes mellitus]{ENFERMEDAD} tipo 2."
        "<SEP>[diabetes mellitus] es")
    # a mention ending inside a token keeps its exact characters
    assert by_text["Dolor abdominal"]["prompt"] == (
        "[Dolor abdominal]{SINTOMA}3 leve.<SEP>[Dolor abdominal] es")

    # targets: the closest KB name of the gold code, as the training writes the completion
    assert by_text["fiebre"]["target"] == PromptTemplate.completion(["fiebre"], SEP_TOKEN)
    assert by_text["diabetes mellitus tipo 2"]["target"] == " diabetes mellitus tipo 2"
    assert by_text["fiebre y cefalea"]["target"] == PromptTemplate.completion(
        ["fiebre", "cefalea"], SEP_TOKEN) == " fiebre<SEP>cefalea"  # SynCABEL's spelling
    assert by_text["cefalea"]["target"] is None  # NO_CODE
    assert by_text["leve"]["target"] is None  # code missing from the KB


def test_prompts_are_the_linkers_own(pipeline_dir):
    """render's prompt is what the linker itself renders for the same entity at inference."""
    from spacy_syncabel.render import render_docs

    nlp = spacy.load(pipeline_dir)
    text = "Ingresa por neumonía. Se pauta antibiótico y presenta fiebre alta."
    start = text.index("fiebre")
    rec = next(render_docs(nlp, [CorpusDoc("d", text, [GoldMention(start, start + 6,
                                                                   "SINTOMA", "386661006")])]))
    doc = nlp.make_doc(text)
    for name, proc in nlp.pipeline[:-1]:
        doc = proc(doc)
    doc.ents = [doc.char_span(start, start + 6, label="SINTOMA")]
    linker = nlp.get_pipe("syncabel_linker")
    assert rec["prompt"] == linker.mention_prompt(doc, doc.ents[0], "SINTOMA")
    assert rec["prompt"] == "Se pauta antibiótico y presenta [fiebre]{SINTOMA} alta.<SEP>[fiebre] es"


def test_render_needs_a_linker(tmp_path):
    nlp = spacy.blank("es")
    nlp.add_pipe("syncabel_sentencizer")
    nlp.to_disk(tmp_path / "seg")
    corpus = tmp_path / "corpus.jsonl"
    write_jsonl([CorpusDoc("note-1", TEXT, MENTIONS)], corpus)
    res = CliRunner().invoke(app, ["render", str(tmp_path / "seg"), str(corpus), "--output",
                                   str(tmp_path / "out.jsonl")])
    assert res.exit_code != 0
    assert "E181" in str(res.exception)
