"""`link` composing with other spaCy components: their extension attributes in the records
(--span-attrs, --doc-attrs) and the linked docs as a DocBin (--format spacy)."""
import json
import uuid
import warnings

import pytest
import spacy
from spacy.language import Language
from spacy.tokens import Doc, DocBin, Span

from spacy_syncabel.notes import iter_records
from spacy_syncabel.notes.command import run_link

from ..conftest import KB_ROWS, add_linker
from .conftest import TINY

try:  # negspacy registers the "negex" factory on import
    import negspacy.negation  # noqa: F401

    HAVE_NEGSPACY = True
except ImportError:  # pragma: no cover - a component of our own sets the same attribute
    HAVE_NEGSPACY = False

NEGATIONS = ["niega", "sin"]
NOTES = {"a": "Niega fiebre. Refiere cefalea.",
         "b": "Paciente con neumonía, sin fiebre.",
         "c": "Hipertensión arterial conocida."}


@Language.component("test_negation")
def fake_negex(doc):
    """Negation as negspacy marks it (``span._.negex``), for when negspacy is missing."""
    for ent in doc.ents:
        before = doc[max(ent.sent.start if doc.has_annotation("SENT_START") else 0,
                         ent.start - 2):ent.start]
        ent._.negex = any(t.lower_ in NEGATIONS for t in before)
    return doc


@Language.component("test_note_info")
def note_info(doc):
    """Sets a Doc attribute JSON can hold (a dict) besides a getter one it cannot (a Token)."""
    doc._.note_info = {"n_ents": len(doc.ents), "labels": sorted({e.label_ for e in doc.ents})}
    return doc


def _register():
    if not Span.has_extension("negex"):
        Span.set_extension("negex", default=False)
    if not Doc.has_extension("note_info"):
        Doc.set_extension("note_info", default=None)
    if not Doc.has_extension("first_token"):
        Doc.set_extension("first_token", getter=lambda doc: doc[0])


@pytest.fixture(scope="module")
def negation_pipeline(kb_tsv, tmp_path_factory):
    _register()
    nlp = spacy.blank("es")
    nlp.add_pipe("sentencizer")
    ruler = nlp.add_pipe("entity_ruler")
    if HAVE_NEGSPACY:
        nlp.add_pipe("negex", config={"neg_termset": {
            "pseudo_negations": [], "preceding_negations": NEGATIONS,
            "following_negations": [], "termination": ["pero"]}})
    else:
        nlp.add_pipe("test_negation")
    nlp.add_pipe("test_note_info")
    add_linker(nlp, kb_tsv, TINY, num_beams=2, n_best=2, max_new_tokens=16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nlp.initialize()
    ruler.add_patterns([{"label": group, "pattern": [{"LOWER": w} for w in name.split()]}
                        for _, name, group in KB_ROWS])
    path = tmp_path_factory.mktemp("negation") / "pipeline"
    nlp.to_disk(path)
    return path


@pytest.fixture()
def notes_file(tmp_path):
    path = tmp_path / "notes.jsonl"
    path.write_text("".join(json.dumps({"id": k, "text": t}, ensure_ascii=False) + "\n"
                            for k, t in NOTES.items()), encoding="utf-8")
    return path


def test_span_and_doc_attrs_are_copied_into_the_records(negation_pipeline, notes_file,
                                                        tmp_path):
    out = tmp_path / "out.jsonl"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run_link(negation_pipeline, notes_file, out, progress=False,
                          span_attrs="negex", doc_attrs="note_info, first_token")
    assert result["linked"] == 3 and result["errors"] == 0
    records = {r["id"]: r for r in iter_records(out)}
    negated = {(i, e["text"]): e["attrs"]["negex"] for i, r in records.items()
               for e in r["entities"]}
    assert negated == {("a", "fiebre"): True, ("a", "cefalea"): False,
                       ("b", "neumonía"): False, ("b", "fiebre"): True,
                       ("c", "Hipertensión arterial"): False}
    assert all(e["code"] for r in records.values() for e in r["entities"])
    assert records["b"]["attrs"] == {"note_info": {"n_ents": 2, "labels": ["ENFERMEDAD",
                                                                            "SINTOMA"]},
                                     "first_token": "Paciente"}  # a Token: str()'d
    plain = tmp_path / "plain.jsonl"  # without the options the records are as before
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_link(negation_pipeline, notes_file, plain, progress=False)
    assert all("attrs" not in r and all("attrs" not in e for e in r["entities"])
               for r in iter_records(plain))


def test_an_attribute_no_component_registers_is_refused_before_linking(negation_pipeline,
                                                                       notes_file, tmp_path):
    for out, kw in zip((tmp_path / "out.jsonl", tmp_path / "out.spacy"),
                       ({"span_attrs": "negex,is_negatedd"}, {"doc_attrs": "no_such_attr"})):
        with pytest.raises(ValueError, match="E451") as err, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run_link(negation_pipeline, notes_file, out, progress=False, **kw)
        assert "negex" not in str(err.value).split("registered:")[0]
        assert not out.exists()  # no note was linked, no output written


def test_spacy_output_gives_back_the_linked_docs(negation_pipeline, notes_file, tmp_path):
    out = tmp_path / "linked.spacy"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run_link(negation_pipeline, notes_file, out, progress=False,
                          output_format="auto")
        jsonl = run_link(negation_pipeline, notes_file, tmp_path / "same.jsonl",
                         progress=False)
    assert result["linked"] == 3 and jsonl["linked"] == 3
    expected = {r["id"]: [(e["start"], e["end"], e["label"], e["code"], e["n_best"])
                          for e in r["entities"]] for r in iter_records(tmp_path / "same.jsonl")}
    nlp = spacy.blank("es")
    docs = list(DocBin().from_disk(out).get_docs(nlp.vocab))
    got = {doc._.syncabel_note_id: [(e.start_char, e.end_char, e.label_, e.kb_id_,
                                     e._.syncabel) for e in doc.ents] for doc in docs}
    assert got.keys() == expected.keys()
    for note_id, ents in got.items():
        assert [e[:4] for e in ents] == [e[:4] for e in expected[note_id]]
        assert all(e[3] for e in ents)  # every entity has its kb_id (a code or NIL)
        assert [[c["code"] for c in e[4]] for e in ents] == \
            [[c["code"] for c in e[4]] for e in expected[note_id]]
    negex = {(d._.syncabel_note_id, e.text): e._.negex for d in docs for e in d.ents}
    assert negex[("a", "fiebre")] is True and negex[("a", "cefalea")] is False
    with pytest.raises(ValueError, match="E452"):  # not resumable: refused, file kept
        run_link(negation_pipeline, notes_file, out, progress=False)
    assert len(list(DocBin().from_disk(out).get_docs(nlp.vocab))) == 3


def test_cli_link_with_attrs_to_a_docbin(negation_pipeline, notes_file, tmp_path):
    from typer.testing import CliRunner

    from spacy_syncabel.cli import app

    out = tmp_path / "cli.spacy"
    res = CliRunner().invoke(app, ["link", str(negation_pipeline), str(notes_file), "-o",
                                   str(out), "--span-attrs", "negex", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output[res.output.index("{"):])["linked"] == 3
    docs = list(DocBin().from_disk(out).get_docs(spacy.blank("es").vocab))
    assert sorted(d._.syncabel_note_id for d in docs) == ["a", "b", "c"]
    res = CliRunner().invoke(app, ["link", str(negation_pipeline), str(notes_file), "-o",
                                   str(tmp_path / "x.jsonl"), "--span-attrs", "nope",
                                   "--no-progress"])
    assert res.exit_code != 0 and "E451" in str(res.exception)


def test_a_doc_docbin_cannot_store_is_that_notes_error(tmp_path):
    from spacy_syncabel.notes import DocBinOutput, Note
    from spacy_syncabel.notes.writers import NoteOutputError

    nlp = spacy.blank("es")
    out = DocBinOutput(tmp_path / "o.spacy").open()
    good = nlp("Niega fiebre.")
    out.write(Note("ok", good.text), {"id": "ok", "entities": []}, doc=good)
    bad = nlp("Refiere cefalea.")
    bad.user_data["odd"] = object()  # msgpack cannot hold it
    with pytest.raises(NoteOutputError, match="E453"):
        out.write(Note("bad", bad.text), {"id": "bad", "entities": []}, doc=bad)
    out.close()
    docs = list(DocBin().from_disk(tmp_path / "o.spacy").get_docs(nlp.vocab))
    assert [d.text for d in docs] == ["Niega fiebre."]


def with_component(pipeline, folder, name):
    """A copy of ``pipeline`` whose config adds the stateless component ``name`` before the
    linker (nothing of it is saved on disk: spacy.load builds it from the config)."""
    import shutil

    from spacy.util import load_config

    shutil.copytree(pipeline, folder)
    config = load_config(folder / "config.cfg")
    names = list(config["nlp"]["pipeline"])
    names.insert(names.index("syncabel_linker"), name)
    config["nlp"]["pipeline"] = names
    config["components"][name] = {"factory": name}
    config.to_disk(folder / "config.cfg")
    return folder


def test_link_code_imports_the_file_that_registers_a_component(pipeline_dir, tmp_path):
    """`link --code FILE` (spaCy's convention): a pipeline holding a component that only the
    user's file registers loads, and its span attribute reaches the records."""
    from typer.testing import CliRunner

    from spacy_syncabel.cli import app

    from ..test_user_code import code_file

    name = f"comp_{uuid.uuid4().hex[:8]}"  # registered nowhere in this process yet
    code = code_file(tmp_path, name)
    pipeline = with_component(pipeline_dir, tmp_path / "pipeline", name)
    first = KB_ROWS[0][1]
    notes = tmp_path / "notes.jsonl"
    notes.write_text(json.dumps({"id": "a", "text": f"Paciente sin {first}. Refiere {first}."},
                                ensure_ascii=False) + "\n", encoding="utf-8")
    args = ["link", str(pipeline), str(notes), "--output", str(tmp_path / "out.jsonl"),
            "--span-attrs", f"negated_{name}", "--no-progress"]
    runner = CliRunner()
    without = runner.invoke(app, args)
    assert without.exit_code != 0 and name in str(without.exception)
    assert not (tmp_path / "out.jsonl").exists()
    with_code = runner.invoke(app, args + ["--code", str(code)])
    assert with_code.exit_code == 0, with_code.output
    (record,) = list(iter_records(tmp_path / "out.jsonl"))
    assert [e["attrs"][f"negated_{name}"] for e in record["entities"]] == [True, False]
