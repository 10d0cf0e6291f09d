"""`python -m spacy_syncabel evaluate` on the same mentions in two formats."""
import csv
import json
import warnings

import pytest
import spacy
from typer.testing import CliRunner

from spacy_syncabel.cli import app
from spacy_syncabel.corpus import read_corpus, write_jsonl

from .conftest import DATA, add_linker, needs_data


@pytest.fixture(scope="module")
def tiny_pipeline(tmp_path_factory):
    nlp = spacy.blank("es")
    add_linker(nlp, DATA / "spaccc" / "kb_snomed_es_lite.tsv", num_beams=3, n_best=3,
               max_new_tokens=24)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nlp.initialize()
    path = tmp_path_factory.mktemp("pipe") / "pipeline"
    nlp.to_disk(path)
    return path


@needs_data
def test_evaluate_tsv_and_jsonl_agree(tiny_pipeline, tmp_path):
    # the first 120 rows of test_half.tsv, as TSV and as JSONL
    with open(DATA / "spaccc" / "test_half.tsv", newline="", encoding="utf8") as f:
        rows = list(csv.reader(f, delimiter="\t"))[:121]
    tsv = tmp_path / "part.tsv"
    with open(tsv, "w", newline="", encoding="utf8") as f:
        csv.writer(f, delimiter="\t").writerows(rows)
    jsonl = tmp_path / "part.jsonl"
    write_jsonl(read_corpus(tsv), jsonl)
    runner = CliRunner()
    outs = []
    for corpus in (tsv, jsonl):
        out = tmp_path / f"{corpus.suffix[1:]}.json"
        res = runner.invoke(app, ["evaluate", str(tiny_pipeline), str(corpus), "--output",
                                  str(out), "--train", str(DATA / "spaccc" / "train.tsv"),
                                  "--bootstrap", "200", "--seed", "1"])
        assert res.exit_code == 0, res.output
        outs.append(json.loads(out.read_text()))
    a, b = outs
    assert a["n_mentions"] == b["n_mentions"] == 120
    for key in ("recall@1", "recall@5", "baseline_tfidf_recall@1", "baseline_tfidf_recall@5",
                "per_label", "seen", "unseen"):
        assert a[key] == b[key], key
    assert a["mentions_per_second"] > 0 and a["peak_rss_mb"] > 0
    assert a["seen"]["n_mentions"] + a["unseen"]["n_mentions"] == 120
    # a random model links (almost) nothing right; TF-IDF does
    assert a["baseline_tfidf_recall@1"] > 0.4 > a["recall@1"]
    # the TSV's bootstrap resamples its clinical cases (filename), as the reference does; the
    # JSONL conversion keeps one document per row
    files = {r[0] for r in rows[1:]}
    assert a["bootstrap"]["n_documents"] == len(files) < 120 == b["bootstrap"]["n_documents"]
    low, high = a["recall@1_ci"]
    assert low <= a["recall@1"] <= high


def test_evaluate_reports_bad_corpus(tiny_pipeline, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "d", "text": "fiebre", "entities": [
        {"start": 0, "end": 60, "label": "SINTOMA", "code": "386661006"}]}) + "\n")
    res = CliRunner().invoke(app, ["evaluate", str(tiny_pipeline), str(bad)])
    assert res.exit_code != 0
    assert "E041" in str(res.exception)
