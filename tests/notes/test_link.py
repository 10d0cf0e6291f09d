"""`link` over raw notes: inputs, records, failures, resuming, brat."""
import csv
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from spacy_syncabel.corpus import read_corpus
from spacy_syncabel.notes import doc_to_record, iter_records, read_notes
from spacy_syncabel.notes.command import run_link
from spacy_syncabel.types import NIL

from .conftest import NOTES, same_records

ROOT = Path(__file__).resolve().parents[2]


def _records(path):
    return list(iter_records(path))


def _ids(path):
    return [r["id"] for r in _records(path)]


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                    encoding="utf-8")


def test_folder_jsonl_and_csv_give_the_records_of_nlp_pipe(nlp, pipeline_dir, notes_folder,
                                                           tmp_path):
    ids = [f"note{i:03d}" for i in range(len(NOTES))]
    _write_jsonl(tmp_path / "notes.jsonl", [{"id": i, "text": t} for i, t in zip(ids, NOTES)])
    with open(tmp_path / "notes.csv", "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["note_id", "extra", "body"])
        writer.writerows([(i, "x", t) for i, t in zip(ids, NOTES)])
    kb = nlp.get_pipe("syncabel_linker").kb
    expected = [doc_to_record(doc, i, kb) for doc, i in zip(nlp.pipe(NOTES), ids)]
    outputs = {}
    for name, source, kw in [("folder", notes_folder, {}), ("jsonl", tmp_path / "notes.jsonl", {}),
                             ("csv", tmp_path / "notes.csv",
                              {"id_column": "note_id", "text_column": "body"})]:
        out = tmp_path / f"{name}.jsonl"
        result = run_link(pipeline_dir, source, out, progress=False, batch_size=4, **kw)
        assert result["linked"] == len(NOTES) and result["errors"] == 0
        outputs[name] = _records(out)
    assert all(same_records(outputs[name], expected) for name in outputs)
    n_ents = 0
    for record, text in zip(expected, NOTES):
        for ent in record["entities"]:
            n_ents += 1
            assert text[ent["start"]:ent["end"]] == ent["text"]
            assert ent["code"] == NIL or ent["label"] in kb.groups_of(ent["code"])
            assert ent["n_best"] and ent["n_best"][0]["code"] == ent["code"]
            assert kb.lookup(ent["name"], ent["label"]) == ent["code"]
    assert n_ents >= len(NOTES)  # the ruler finds every KB name


def test_unreadable_notes_are_reported_with_file_and_line(pipeline_dir, tmp_path):
    lines = [json.dumps({"id": "a", "text": NOTES[0]}).encode(),
             b"{not json",
             json.dumps({"id": "b"}).encode(),
             json.dumps({"id": "a", "text": NOTES[1]}).encode(),  # duplicate id
             json.dumps({"id": "c", "text": "fiebre \udc80"}, ensure_ascii=True).encode()
             .replace(b"\\udc80", b"X") + b"\xff",  # a byte that is not UTF-8
             b"",
             json.dumps({"id": 7, "text": NOTES[2]}).encode()]
    source = tmp_path / "notes.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "out.jsonl"
    with pytest.warns(UserWarning, match="W151"):
        result = run_link(pipeline_dir, source, out, progress=False)
    assert _ids(out) == ["a", "7"]
    errors = {e["id"]: e for e in _records(tmp_path / "out.errors.jsonl")}
    assert set(errors) == {"line:2", "b", "a", "line:5"}
    assert "E154" in errors["line:2"]["error"] and errors["line:2"]["where"].endswith("line 2")
    assert "E155" in errors["b"]["error"] and "E158" in errors["a"]["error"]
    assert "E152" in errors["line:5"]["error"] and "--encoding" in errors["line:5"]["error"]
    assert result["errors"] == 4
    # a latin-1 note in a folder, then the same folder read as latin-1
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "ok.txt").write_text(NOTES[0], encoding="utf-8")
    (folder / "latin.txt").write_bytes("Mujer con cefalea y disnea.".encode("latin-1")
                                       + "ñ".encode("latin-1"))
    items = list(read_notes(folder))
    assert [type(i).__name__ for i in items] == ["NoteError", "Note"]
    assert items[0].id == "latin" and items[0].where.endswith("latin.txt")
    assert [i.text for i in read_notes(folder, encoding="latin-1")][0].endswith("ñ")
    with pytest.raises(ValueError, match="E157"):
        read_notes(folder, encoding="no-such-codec")


def test_csv_problems(tmp_path):
    path = tmp_path / "n.csv"
    path.write_bytes(b"id,text\n1,fiebre\n2,a,b\n3,\"cefalea\nen dos lineas\"\n4,dolor \xe9\n")
    items = list(read_notes(path))
    assert [(type(i).__name__, i.id) for i in items] == [
        ("Note", "1"), ("NoteError", "line:3"), ("Note", "3"), ("NoteError", "4")]
    assert items[2].text == "cefalea\nen dos lineas"
    assert "line 3" in items[1].error and items[3].where.endswith("line 6")
    path.write_text("id,body\n1,fiebre\n", encoding="utf-8")
    with pytest.raises(ValueError, match="E156.*--text-column"):
        list(read_notes(path))
    with pytest.raises(ValueError, match="E150"):
        read_notes(tmp_path / "missing.jsonl")


@pytest.mark.parametrize("n_process", [1, 2])
def test_a_crashing_component_loses_only_its_note(crash_pipeline_dir, tmp_path, n_process):
    notes = [{"id": f"n{i}", "text": t} for i, t in enumerate(NOTES[:12])]
    notes[5]["text"] += " BOOM"
    _write_jsonl(tmp_path / "notes.jsonl", notes)
    out = tmp_path / "out.jsonl"
    with pytest.warns(UserWarning, match="W151"):
        result = run_link(crash_pipeline_dir, tmp_path / "notes.jsonl", out, progress=False,
                          batch_size=3, n_process=n_process)
    assert _ids(out) == [n["id"] for n in notes if n["id"] != "n5"]
    errors = _records(tmp_path / "out.errors.jsonl")
    assert [e["id"] for e in errors] == ["n5"] and "BOOM" in errors[0]["error"]
    assert result["linked"] == 11 and result["failed"] == 1
    # all done: a second run links nothing and writes nothing (W151 again: the note still failed)
    with pytest.warns(UserWarning, match="W151"):
        again = run_link(crash_pipeline_dir, tmp_path / "notes.jsonl", out, progress=False)
    assert again["linked"] == 0 and again["skipped"] == 12 and len(_ids(out)) == 11


def test_torn_last_line_is_cut_and_linked_again(pipeline_dir, notes_folder, tmp_path):
    full = tmp_path / "full.jsonl"
    run_link(pipeline_dir, notes_folder, full, progress=False)
    data = full.read_bytes().splitlines(keepends=True)
    part = tmp_path / "part.jsonl"
    part.write_bytes(b"".join(data[:7]) + data[7][:25])  # killed in the middle of a line
    with pytest.warns(UserWarning, match="W150"):
        result = run_link(pipeline_dir, notes_folder, part, progress=False)
    assert result["skipped"] == 7 and result["linked"] == len(NOTES) - 7
    assert same_records(_records(part), _records(full))
    # a complete line that is not a record is not guessed at
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"no_id": 1}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="E159"):
        run_link(pipeline_dir, notes_folder, bad, progress=False)


def test_sigkill_halfway_then_restart_links_every_note_once(pipeline_dir, tmp_path):
    n = 40
    notes = [{"id": f"n{i:02d}", "text": NOTES[i % len(NOTES)]} for i in range(n)]
    source = tmp_path / "notes.jsonl"
    _write_jsonl(source, notes)
    out = tmp_path / "out.jsonl"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "spacy_syncabel", "link", str(pipeline_dir),
                             str(source), "--output", str(out), "--batch-size", "4",
                             "--no-progress", "--delay", "0.1"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if out.exists() and out.read_bytes().count(b"\n") >= n // 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    written = len(_ids(out))
    assert n // 2 <= written < n  # killed halfway
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # W150 when the kill tore a line
        result = run_link(pipeline_dir, source, out, progress=False, batch_size=4)
    ids = _ids(out)
    assert sorted(ids) == [r["id"] for r in notes]  # every note exactly once
    assert result["skipped"] == written and result["linked"] == n - written
    fresh = tmp_path / "fresh.jsonl"
    run_link(pipeline_dir, source, fresh, progress=False, batch_size=4)
    assert same_records(_records(out), _records(fresh))


def test_brat_output_reads_back_as_a_corpus(pipeline_dir, notes_folder, tmp_path):
    out = tmp_path / "brat"
    result = run_link(pipeline_dir, notes_folder, out, output_format="brat", progress=False,
                      brat_db="SCTID")
    assert result["linked"] == len(NOTES)
    records = {r["id"]: r for r in _records(out / "records.jsonl")}
    docs = {d.id: d for d in read_corpus(out, format="brat")}
    assert set(docs) == set(records)
    for note_id, doc in docs.items():
        assert doc.text == (notes_folder / f"{note_id}.txt").read_text(encoding="utf-8")
        got = [(m.start, m.end, m.label, m.code) for m in doc.mentions]
        want = [(e["start"], e["end"], e["label"], f"SCTID:{e['code']}")
                for e in records[note_id]["entities"]]
        assert got == want
    ann = (out / "note000.ann").read_text(encoding="utf-8")
    assert "\tReference T1 SCTID:" in ann
    again = run_link(pipeline_dir, notes_folder, out, output_format="brat", progress=False)
    assert again["linked"] == 0 and again["skipped"] == len(NOTES)


# --- outputs never overwrite inputs; one note never stops the run ---------------------------


def test_output_that_is_the_input_is_refused_and_the_input_kept(pipeline_dir, tmp_path):
    from typer.testing import CliRunner

    from spacy_syncabel.cli import app

    source = tmp_path / "notes.jsonl"
    _write_jsonl(source, [{"id": f"n{i}", "text": t} for i, t in enumerate(NOTES[:3])])
    data = source.read_bytes()[:-1]  # no final newline: resuming would cut the last line
    source.write_bytes(data)
    link = tmp_path / "link.jsonl"
    link.symlink_to(source)
    for output in (source, link):
        res = CliRunner().invoke(app, ["link", str(pipeline_dir), str(source), "--output",
                                       str(output), "--no-progress"])
        assert res.exit_code != 0 and "E300" in str(res.exception)
        assert source.read_bytes() == data
    # the errors file and the report are outputs too
    with pytest.raises(ValueError, match="E300"):
        run_link(pipeline_dir, source, tmp_path / "out.jsonl", errors_path=source,
                 progress=False)
    with pytest.raises(ValueError, match="E301"):
        run_link(pipeline_dir, source, tmp_path / "out.jsonl", html=tmp_path / "out.jsonl",
                 progress=False)
    assert source.read_bytes() == data and not (tmp_path / "out.jsonl").exists()


def test_jsonl_output_beside_the_notes_resumes_and_a_txt_output_is_refused(pipeline_dir,
                                                                           notes_folder):
    """Only a folder's .txt files are notes: a JSONL output beside them is no input, so a run
    that wrote it can resume (the second run was refused with E300, the output being 'part
    of' the input folder); a .txt output would be read as a note next time (E303)."""
    notes = {p: p.read_bytes() for p in notes_folder.iterdir()}
    out = notes_folder / "links.jsonl"
    first = run_link(pipeline_dir, notes_folder, out, progress=False)
    again = run_link(pipeline_dir, notes_folder, out, progress=False)
    assert first["linked"] == len(notes) and again["linked"] == 0
    assert again["skipped"] == len(notes)
    with pytest.raises(ValueError, match="E303"):
        run_link(pipeline_dir, notes_folder, notes_folder / "links.txt", progress=False)
    assert {p: p.read_bytes() for p in notes_folder.iterdir() if p.suffix == ".txt"} == notes


def test_brat_output_in_the_notes_folder_or_a_foreign_folder_is_refused(pipeline_dir,
                                                                      notes_folder, tmp_path):
    before = {p: p.read_bytes() for p in notes_folder.iterdir()}
    with pytest.raises(ValueError, match="E300"):
        run_link(pipeline_dir, notes_folder, notes_folder, output_format="brat", progress=False)
    with pytest.raises(ValueError, match="E303"):
        run_link(pipeline_dir, notes_folder, notes_folder / "brat", output_format="brat",
                 progress=False)
    assert {p: p.read_bytes() for p in notes_folder.iterdir()} == before
    # a brat corpus of the user's (not a `link` output) is never written over
    gold = tmp_path / "gold"
    gold.mkdir()
    (gold / "note000.ann").write_text("T1\tSINTOMA 0 6\tfiebre\n", encoding="utf-8")
    with pytest.raises(ValueError, match="E307"):
        run_link(pipeline_dir, notes_folder, gold, output_format="brat", progress=False)
    assert [p.name for p in gold.iterdir()] == ["note000.ann"]
    assert (gold / "note000.ann").read_text(encoding="utf-8") == "T1\tSINTOMA 0 6\tfiebre\n"


def test_a_jsonl_file_not_written_by_link_is_not_resumed(pipeline_dir, notes_folder, tmp_path):
    corpus = tmp_path / "corpus.jsonl"  # records with ids, but not link's
    _write_jsonl(corpus, [{"id": "a", "text": NOTES[0]}, {"id": "b", "text": NOTES[1]}])
    data = corpus.read_bytes()
    with pytest.raises(ValueError, match="E159"):
        run_link(pipeline_dir, notes_folder, corpus, progress=False)
    assert corpus.read_bytes() == data
    # a last record without its newline is whole: kept, not cut and linked again
    full = tmp_path / "full.jsonl"
    run_link(pipeline_dir, notes_folder, full, progress=False)
    lines = full.read_bytes().splitlines(keepends=True)
    part = tmp_path / "part.jsonl"
    part.write_bytes(b"".join(lines[:3])[:-1])
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=r"\[W150\]")  # nothing is cut
        result = run_link(pipeline_dir, notes_folder, part, progress=False)
    assert result["skipped"] == 3 and result["linked"] == len(NOTES) - 3
    assert same_records(_records(part), _records(full))


def test_brat_notes_whose_files_collide_go_to_the_errors_file(pipeline_dir, tmp_path):
    from spacy_syncabel.notes.records import safe_stem

    ids = ["q.txt/z", "q", "a b", safe_stem("a b"), "x" * 300, "ok", "records.jsonl/r",
           "../up", "/abs/x"]
    source = tmp_path / "notes.jsonl"
    _write_jsonl(source, [{"id": i, "text": NOTES[n]} for n, i in enumerate(ids)])
    out = tmp_path / "brat"
    with pytest.warns(UserWarning, match="W151"):
        result = run_link(pipeline_dir, source, out, output_format="brat", progress=False)
    linked = ["q.txt/z", "a b", "ok", "../up", "/abs/x"]
    assert _ids(out / "records.jsonl") == linked
    errors = {e["id"]: e for e in _records(out / "errors.jsonl")}
    assert set(errors) == {"q", safe_stem("a b"), "x" * 300, "records.jsonl/r"}
    assert "E305" in errors["q"]["error"] and "'q.txt/z'" in errors["q"]["error"]
    assert "E305" in errors[safe_stem("a b")]["error"] and "E306" in errors["x" * 300]["error"]
    assert "E305" in errors["records.jsonl/r"]["error"]
    assert all(e["where"] == "writing" for e in errors.values())
    assert result["linked"] == 5 and result["failed"] == 4
    assert not (tmp_path / "up.txt").exists() and not list(tmp_path.glob("*up*"))
    # each linked note's files hold its own text; no stray .txt without .ann or temporary file
    for n, note_id in enumerate(ids):
        if note_id in linked:
            assert (out / f"{safe_stem(note_id)}.txt").read_text(encoding="utf-8") == NOTES[n]
    txt = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.txt") if p.is_file())
    ann = sorted(p.relative_to(out).as_posix()[:-4] + ".txt" for p in out.rglob("*.ann"))
    assert txt == ann and not list(out.rglob("*.tmp"))
    # resuming never crashes on them and links nothing again
    with pytest.warns(UserWarning, match="W151"):
        again = run_link(pipeline_dir, source, out, output_format="brat", progress=False)
    assert again["linked"] == 0 and again["skipped"] == len(ids)
    # the notes after a colliding one are linked even when it comes first in a resumed run
    source2 = tmp_path / "more.jsonl"
    _write_jsonl(source2, [{"id": "q", "text": NOTES[0]}, {"id": "later", "text": NOTES[1]}])
    out2 = tmp_path / "brat2"
    run_link(pipeline_dir, source, out2, output_format="brat", progress=False)
    with pytest.warns(UserWarning, match="W151"):
        more = run_link(pipeline_dir, source2, out2, output_format="brat", progress=False)
    assert more["linked"] == 1 and "later" in _ids(out2 / "records.jsonl")


def test_ids_that_utf8_cannot_hold_never_stop_the_run(pipeline_dir, tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.txt").write_text(NOTES[0], encoding="utf-8")
    (folder / "B.TXT").write_text(NOTES[1], encoding="utf-8")  # upper-case suffix: a note too
    with open(os.path.join(os.fsencode(folder), b"nota\xe9.txt"), "wb") as f:
        f.write(NOTES[2].encode("utf-8"))
    out = tmp_path / "out.jsonl"
    with pytest.warns(UserWarning, match="W151"):
        result = run_link(pipeline_dir, folder, out, progress=False)
    assert _ids(out) == ["B", "a"]
    errors = _records(tmp_path / "out.errors.jsonl")
    assert [e["id"] for e in errors] == ["nota\\xe9"] and "E309" in errors[0]["error"]
    assert result["linked"] == 2 and result["failed"] == 1
    # JSON ids and texts with lone surrogates: the id is written escaped and read back (the
    # note is resumed, not linked again); a text the tokenizer cannot encode is its error
    source = tmp_path / "notes.jsonl"
    source.write_text('{"id": "n\\udc80", "text": "fiebre"}\n'
                      '{"id": "m", "text": "HTA \\udcff"}\n', encoding="utf-8")
    out2 = tmp_path / "out2.jsonl"
    for fmt, path in (("jsonl", out2), ("brat", tmp_path / "brat")):
        with pytest.warns(UserWarning, match="W151"):
            first = run_link(pipeline_dir, source, path, output_format=fmt, progress=False)
        assert first["linked"] == 1 and first["failed"] == 1
    assert _ids(out2) == ["n\udc80"]
    assert [e["id"] for e in _records(tmp_path / "out2.errors.jsonl")] == ["m"]
    with pytest.warns(UserWarning, match="W151"):
        again = run_link(pipeline_dir, source, out2, progress=False)
    assert again["skipped"] == 2 and again["linked"] == again["failed"] == 0
    assert len(_records(tmp_path / "out2.errors.jsonl")) == 1


def test_csv_with_an_unterminated_quote_is_refused_naming_its_line(tmp_path):
    path = tmp_path / "n.csv"
    path.write_text('id,text\n1,fiebre\n2,"cefalea\n3,disnea\n4,HTA\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"E304.*line 3"):
        list(read_notes(path))
    # a header with the text column twice: which one is the note is not guessed
    path.write_text('id,text,text\n1,fiebre,\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"E156.*'text'.*more than once"):
        list(read_notes(path))
    # a stray quote closes its field early: that row is an error, the next ones are notes
    path.write_text('id,text\n1,"fiebre" alta\n2,disnea\n', encoding="utf-8")
    items = list(read_notes(path))
    assert [(type(i).__name__, i.id) for i in items] == [("NoteError", "line:2"),
                                                         ("Note", "2")]


def test_a_note_whose_id_looks_like_an_unreadable_line_is_still_linked(pipeline_dir, tmp_path):
    source = tmp_path / "notes.jsonl"
    source.write_text('{"id": "a", "text": "fiebre"}\n{not json\n'
                      '{"id": "line:2", "text": "HTA y cefalea"}\n', encoding="utf-8")
    out = tmp_path / "out.jsonl"
    with pytest.warns(UserWarning, match="W151"):
        result = run_link(pipeline_dir, source, out, progress=False)
    assert result["linked"] == 2 and result["failed"] == 1 and result["skipped"] == 0
    assert _ids(out) == ["a", "line:2"]
    with pytest.warns(UserWarning, match="W151"):
        again = run_link(pipeline_dir, source, out, progress=False)
    assert again["skipped"] == 3 and again["linked"] == again["failed"] == 0
    assert [e["id"] for e in _records(tmp_path / "out.errors.jsonl")] == ["line:2"]


def test_render_doc_draws_each_linked_entity_with_its_code_and_kb_link(nlp):
    from spacy_syncabel.notes import render_doc
    from spacy_syncabel.visualize import KBLinks

    doc = nlp(NOTES[0])
    linked = [e for e in doc.ents if e.kb_id_ and e.kb_id_ != NIL]
    assert linked
    page = render_doc(doc, KBLinks.parse(["https://kb.example/{}"]), nlp.get_pipe("syncabel_linker").kb)
    assert page.startswith("<div") and page.count("<mark") == len(doc.ents)
    for ent in linked:
        assert f"https://kb.example/{ent.kb_id_}" in page
