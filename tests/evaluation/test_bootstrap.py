"""Document-level bootstrap intervals of Recall@1 (`score --bootstrap`) and the paired
comparison of two prediction files (`compare`)."""
import json
import random

import pytest
from typer.testing import CliRunner

from spacy_syncabel.cli import app
from spacy_syncabel.evaluation.bootstrap import paired_difference, recall_cis
from spacy_syncabel.evaluation.metrics import LinkResult
from spacy_syncabel.evaluation.scoring_file import compare_files, score_files

from ..conftest import DATA, needs_data

CODES = {"SINTOMA": ["386661006", "25064002", "422587007"],
         "ENFERMEDAD": ["38341003", "44054006", "195967001"]}
NAMES = {"386661006": "fiebre", "25064002": "cefalea", "422587007": "náuseas",
         "38341003": "hipertensión", "44054006": "diabetes", "195967001": "asma"}


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                    encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """24 clinical notes of 2-5 mentions; system A right 3 times in 4, system B 1 time in 2."""
    rng = random.Random(3)
    tmp = tmp_path_factory.mktemp("boot")
    gold, pred_a, pred_b = [], [], []
    for i in range(24):
        text, ents = "", []
        for _ in range(rng.randint(2, 5)):
            label = rng.choice(sorted(CODES))
            code = rng.choice(CODES[label])
            start = len(text)
            text += NAMES[code] + ". "
            ents.append({"start": start, "end": start + len(NAMES[code]), "label": label,
                         "code": code})
            wrong = next(c for c in CODES[label] if c != code)
            for preds, p_right in ((pred_a, 0.75), (pred_b, 0.5)):
                preds.append({"doc_id": f"caso-{i}", "start": start, "end": ents[-1]["end"],
                              "codes": [code if rng.random() < p_right else wrong]})
        gold.append({"id": f"caso-{i}", "text": text, "entities": ents})
    return (_write_jsonl(tmp / "gold.jsonl", gold), _write_jsonl(tmp / "a.jsonl", pred_a),
            _write_jsonl(tmp / "b.jsonl", pred_b))


def test_intervals_are_seeded_and_hold_the_estimate(corpus):
    gold, pred, _ = corpus
    one = score_files(gold, pred, bootstrap=300, seed=1)
    again = score_files(gold, pred, bootstrap=300, seed=1)
    other = score_files(gold, pred, bootstrap=300, seed=2)
    assert one["recall@1_ci"] == again["recall@1_ci"]
    assert one["recall@1_ci"] != other["recall@1_ci"]
    low, high = one["recall@1_ci"]
    assert low < one["recall@1"] < high
    for label, block in one["per_label"].items():
        lo, hi = block["recall@1_ci"]
        assert lo <= block["recall@1"] <= hi, label
    assert one["bootstrap"] == {"resamples": 300, "seed": 1, "confidence": 0.95,
                                "unit": "document", "n_documents": 24}
    assert "recall@1_ci" not in score_files(gold, pred)


def test_resamples_are_documents():
    """Two documents, one all right and one all wrong: every resample's recall is 0, 1/2 or
    1 (weighted by mentions), never what resampling single mentions would give."""
    results = ([LinkResult("A", ["A"], "X", "d1")] * 3 + [LinkResult("A", ["B"], "X", "d2")] * 3)
    low, high = recall_cis(results, 500, seed=0)["overall"]
    assert (low, high) == (0.0, 1.0)
    single = [LinkResult("A", ["A"], "X", f"d{i}") if i < 3 else
              LinkResult("A", ["B"], "X", f"d{i}") for i in range(6)]
    assert 0.0 < recall_cis(single, 500, seed=0)["overall"][0] < 0.5


def test_compare_is_paired(corpus):
    gold, a, b = corpus
    res = compare_files(gold, a, b, bootstrap=500, seed=0)
    assert res["difference"] == pytest.approx(res["recall@1_a"] - res["recall@1_b"])
    assert res["difference"] > 0
    low, high = res["difference_ci"]
    assert low <= res["difference"] <= high
    assert res["p_value"] < 0.05
    same = compare_files(gold, a, a, bootstrap=500, seed=0)
    assert same["difference"] == 0.0 and same["p_value"] == 1.0
    assert compare_files(gold, a, b, bootstrap=500, seed=0) == res


def test_paired_difference_needs_the_same_mentions():
    a = [LinkResult("A", ["A"], "X", "d1")]
    with pytest.raises(ValueError, match="E361"):
        paired_difference(a, [LinkResult("B", ["A"], "X", "d1")], 10)
    with pytest.raises(ValueError, match="E360"):
        recall_cis(a, 0)


def test_cli_score_bootstrap_and_compare(corpus, tmp_path):
    gold, a, b = corpus
    out = tmp_path / "m.json"
    result = CliRunner().invoke(app, ["score", str(gold), str(a), "--bootstrap", "100",
                                      "--seed", "3", "--output", str(out)])
    assert result.exit_code == 0, result.output
    metrics = json.loads(out.read_text(encoding="utf-8"))
    assert len(metrics["recall@1_ci"]) == 2 and '"recall@1_ci"' in result.output
    result = CliRunner().invoke(app, ["compare", str(gold), str(a), str(b), "--bootstrap", "100"])
    assert result.exit_code == 0, result.output
    assert '"p_value"' in result.output


@needs_data
def test_published_test_half_interval_holds_the_papers_number():
    """SPACCC test_half, the published predictions: 130 documents; the paper's 68.04."""
    path = DATA / "spaccc" / "test_half.tsv"
    rep = score_files(path, path, bootstrap=1000, seed=42)
    assert rep["bootstrap"]["n_documents"] == 130
    low, high = rep["recall@1_ci"]
    assert low < 0.6804 < high
