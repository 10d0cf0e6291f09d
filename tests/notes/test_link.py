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
