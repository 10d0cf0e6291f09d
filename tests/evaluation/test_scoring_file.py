"""The `score` command: predictions files (JSONL, SynCABEL inference TSV) against a gold corpus."""
import csv
import json

import pytest
from typer.testing import CliRunner

from spacy_syncabel.cli import app
from spacy_syncabel.evaluation.scoring_file import read_predictions, score_files

from ..conftest import DATA, needs_data

GOLD = [
    {"id": "a", "text": "Fiebre y cefalea.", "entities": [
        {"start": 0, "end": 6, "label": "SINTOMA", "code": "386661006"},
        {"start": 9, "end": 16, "label": "SINTOMA", "code": "25064002"}]},
    {"id": "b", "text": "HTA y DM2 sin NO.", "entities": [
        {"start": 0, "end": 9, "label": "ENFERMEDAD", "code": "44054006+38341003"},
        {"start": 14, "end": 16, "label": "ENFERMEDAD", "code": "NO_CODE"}]},
]
KB = "code\tname\tgroup\n386661006\tfiebre\tSINTOMA\n25064002\tcefalea\tSINTOMA\n" \
     "38341003\tHTA\tENFERMEDAD\n44054006\tDM2\tENFERMEDAD\n"


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                    encoding="utf-8")
    return path


@pytest.fixture()
def files(tmp_path):
    gold = _write_jsonl(tmp_path / "gold.jsonl", GOLD)
    kb = tmp_path / "kb.tsv"
    kb.write_text(KB, encoding="utf-8")
    preds = _write_jsonl(tmp_path / "pred.jsonl", [
        {"doc_id": "a", "start": 0, "end": 6, "codes": ["25064002", "386661006"]},
        {"doc_id": "a", "start": 9, "end": 16, "codes": ["25064002"]},
        {"doc_id": "b", "start": 0, "end": 9, "codes": ["38341003+44054006+1", "38341003+44054006"]},
        {"doc_id": "b", "start": 14, "end": 16, "codes": ["1"]},
        {"doc_id": "zz", "start": 0, "end": 1, "codes": ["1"]},
    ])
    return gold, preds, kb


def test_jsonl_predictions(files):
    gold, preds, kb = files
    with pytest.warns(UserWarning, match=r"W130"):
        rep = score_files(gold, preds, kb=kb, k=2)
    assert rep["n_mentions"] == 3 and rep["n_excluded"] == 1
    assert rep["excluded"] == {"no_code": 1, "duplicate": 0}
    assert rep["recall@1"] == pytest.approx(1 / 3)  # the composite's top-1 is a superset
    assert rep["recall@1_lenient"] == pytest.approx(2 / 3)
    assert rep["recall@2"] == 1.0
    assert rep["per_label"]["SINTOMA"]["recall@2"] == 1.0


def test_missing_prediction_is_a_miss(files, tmp_path):
    gold, _, kb = files
    preds = _write_jsonl(tmp_path / "few.jsonl", [
        {"doc_id": "a", "start": 9, "end": 16, "codes": ["25064002"]}])
    with pytest.warns(UserWarning, match=r"W131"):
        rep = score_files(gold, preds, kb=kb)
    assert rep["n_mentions"] == 3 and rep["recall@1"] == pytest.approx(1 / 3)
    assert rep["n_without_prediction"] == 2


@pytest.mark.parametrize("line, problem", [
    ('{"doc_id": "a", "start": 0, "end": 6, "codes": ["x"]\n', "invalid JSON"),
    ('{"doc_id": "a", "start": 0, "codes": ["x"]}\n', "missing field"),
    ('{"doc_id": "a", "start": "x", "end": 6, "codes": ["x"]}\n', "'start'"),
    ('{"doc_id": "a", "start": 6, "end": 6, "codes": ["x"]}\n', "reversed"),
    ('{"doc_id": "a", "start": 0, "end": 6, "codes": "x"}\n', "'codes'"),
    ('[1, 2]\n', "one JSON object"),
])
def test_malformed_jsonl_names_file_and_line(tmp_path, line, problem):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"doc_id": "a", "start": 0, "end": 6, "codes": []}\n\n' + line,
                    encoding="utf-8")
    with pytest.raises(ValueError, match=r"E132") as err:
        read_predictions(path)
    assert f"{path}, line 3" in str(err.value) and problem in str(err.value)


def test_non_utf8_and_unknown_files(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes('{"doc_id": "a", "start": 0, "end": 6, "codes": []}\n'.encode()
                     + '{"doc_id": "fiebre ñ", "start": 0, "end": 6, "codes": []}\n'.encode("latin-1"))
    with pytest.raises(ValueError, match=r"E190.*line 2.*UTF-8"):
        read_predictions(path)
    with pytest.raises(FileNotFoundError, match=r"E130"):
        read_predictions(tmp_path / "missing.jsonl")
    (tmp_path / "p.csv").write_text("x", encoding="utf-8")
    with pytest.raises(ValueError, match=r"E131"):
        read_predictions(tmp_path / "p.csv")
    (tmp_path / "p.tsv").write_text("a\tb\n1\t2\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"E131"):
        read_predictions(tmp_path / "p.tsv")


def _tsv(path, rows):
    cols = ["filename", "mention_id", "label", "start_span", "end_span", "span", "code",
            "sentence", "Prediction", "Predicted_code"]
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter="\t")
        w.writerow(cols)
        for r in rows:
            w.writerow([r.get(c, "") for c in cols])
    return path


def test_syncabel_tsv_scored_against_itself_and_bad_row(tmp_path):
    rows = [
        {"filename": "d1", "mention_id": "d1.1", "label": "SINTOMA", "start_span": 10,
         "end_span": 16, "span": "fiebre", "code": "386661006",
         "sentence": "Presenta [fiebre]{SINTOMA}.", "Predicted_code": "386661006"},
        {"filename": "d1", "mention_id": "d1.2", "label": "ENFERMEDAD", "start_span": 30,
         "end_span": 37, "span": "HTA DM2", "code": "44054006+38341003",
         "sentence": "Con [HTA DM2]{ENFERMEDAD}.", "Predicted_code": "38341003+44054006"},
        {"filename": "d1", "mention_id": "d1.3", "label": "SINTOMA", "start_span": 40,
         "end_span": 47, "span": "cefalea", "code": "25064002",
         "sentence": "Y [cefalea]{SINTOMA}.", "Predicted_code": ""},
    ]
    path = _tsv(tmp_path / "pred.tsv", rows)
    rep = score_files(path, path)
    assert rep["n_mentions"] == 3 and rep["recall@1"] == pytest.approx(2 / 3)
    bad = _tsv(tmp_path / "bad.tsv", rows[:1] + [{**rows[1], "start_span": "x"}])
    with pytest.raises(ValueError, match=r"E132.*line 3.*start_span"):
        read_predictions(bad)


def test_score_command(files, tmp_path):
    gold, preds, kb = files
    out = tmp_path / "m" / "metrics.json"
    with pytest.warns(UserWarning, match=r"W130"):
        result = CliRunner().invoke(app, ["score", str(gold), str(preds), "--kb", str(kb),
                                          "--output", str(out), "--k", "2"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(out.read_text(encoding="utf-8"))
    assert metrics["recall@2"] == 1.0 and metrics["n_excluded"] == 1
    assert '"recall@1"' in result.output


@needs_data
def test_published_test_half_predictions():
    """The published SPACCC predictions: our score equals the share of rows whose gold code is
    the predicted one (the reference's rule on this file: no NO_CODE, composites sorted)."""
    path = DATA / "spaccc" / "test_half.tsv"
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    expected = sum(r["code"] == r["Predicted_code"] for r in rows) / len(rows)
    rep = score_files(path, path)
    assert rep["n_mentions"] == len(rows) == 4408
    assert rep["recall@1"] == pytest.approx(expected)
    assert abs(rep["recall@1"] - 0.680) < 0.001


def test_gold_without_coded_mentions_or_with_a_document_twice_is_refused(files, tmp_path):
    _, preds, kb = files
    uncoded = _write_jsonl(tmp_path / "uncoded.jsonl", [
        {"id": "a", "text": "Fiebre y cefalea.", "entities": [
            {"start": 0, "end": 6, "label": "SINTOMA", "code": "NO_CODE"},
            {"start": 9, "end": 16, "label": "SINTOMA"}]}])
    res = CliRunner().invoke(app, ["score", str(uncoded), str(preds)])
    assert res.exit_code != 0 and "E050" in str(res.exception)
    twice = _write_jsonl(tmp_path / "twice.jsonl", GOLD + GOLD[:1])
    with pytest.raises(ValueError, match=r"E308.*'a' appears 2 times"):
        score_files(twice, preds, kb=kb)


def test_score_output_over_an_input_is_refused(files):
    gold, preds, kb = files
    for output, victim in ((gold, gold), (preds, preds), (kb, kb)):
        before = victim.read_bytes()
        res = CliRunner().invoke(app, ["score", str(gold), str(preds), "--kb", str(kb),
                                       "--output", str(output)])
        assert res.exit_code != 0 and "E300" in str(res.exception)
        assert victim.read_bytes() == before


def test_reference_rule_on_an_inference_tsv(tmp_path):
    """The reference's count on its own file format: one row per (filename, label,
    start_span, end_span), NO_CODE rows dropped, a gold outside the KB kept as a miss; the
    bootstrap's documents are the files, not the rows."""
    kb = tmp_path / "kb.tsv"
    kb.write_text(KB, encoding="utf-8")
    fiebre = {"filename": "caso1", "mention_id": "caso1.1", "label": "SINTOMA",
              "start_span": 10, "end_span": 16, "span": "fiebre", "code": "386661006",
              "sentence": "Presenta [fiebre]{SINTOMA}.", "Predicted_code": "386661006"}
    rows = [
        fiebre,
        {**fiebre, "mention_id": "caso1.1b", "Predicted_code": "25064002"},  # duplicate row
        {"filename": "caso1", "mention_id": "caso1.2", "label": "ENFERMEDAD", "start_span": 30,
         "end_span": 36, "span": "asma", "code": "195967001",  # not in the KB
         "sentence": "Con [asma]{ENFERMEDAD}.", "Predicted_code": "38341003"},
        {"filename": "caso2", "mention_id": "caso2.1", "label": "SINTOMA", "start_span": 3,
         "end_span": 10, "span": "cefalea", "code": "25064002",
         "sentence": "Y [cefalea]{SINTOMA}.", "Predicted_code": "25064002"},
        {"filename": "caso2", "mention_id": "caso2.2", "label": "SINTOMA", "start_span": 20,
         "end_span": 23, "span": "dolor", "code": "NO_CODE",
         "sentence": "Sin [dolor]{SINTOMA}.", "Predicted_code": "25064002"},
    ]
    path = _tsv(tmp_path / "pred.tsv", rows)
    reference = {(r["filename"], r["label"], r["start_span"], r["end_span"]) for r in rows
                 if "NO_CODE" not in r["code"]}
    with pytest.warns(UserWarning, match=r"W132"):  # the duplicate prediction row
        rep = score_files(path, path, kb=kb, bootstrap=50)
    assert rep["n_mentions"] == len(reference) == 3
    assert rep["recall@1"] == pytest.approx(2 / 3)
    assert rep["recall@1_in_kb"] == 1.0 and rep["n_not_in_kb"] == 1
    assert rep["excluded"] == {"no_code": 1, "duplicate": 1}
    assert rep["bootstrap"]["n_documents"] == 2
