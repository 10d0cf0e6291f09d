"""The spaCy project's `all` workflow, CI-sized: fetch → kb → corpus → train → ner → assemble →
evaluate → evaluate-pipeline."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import spacy

from .conftest import DATA, needs_data

ROOT = Path(__file__).resolve().parents[1]


@needs_data
@pytest.mark.slow
def test_project_all_ci_sized(tmp_path):
    shutil.copy(ROOT / "project.yml", tmp_path / "project.yml")
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    cmd = [sys.executable, "-m", "spacy", "project", "run", "all", str(tmp_path),
           "--vars.shared", str(DATA), "--vars.base_model", "tiny:64,2",
           "--vars.max_steps", "30", "--vars.max_train", "300", "--vars.batch_size", "16",
           "--vars.dev_size", "40", "--vars.eval_steps", "15", "--vars.eval_limit", "150",
           "--vars.context_chars", "80", "--vars.kb_names", "no-kb-names",
           "--vars.calibration_size", "60", "--vars.ner_max_steps", "30",
           "--vars.ner_eval_frequency", "15", "--vars.e2e_limit", "8"]
    res = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    best = tmp_path / "training" / "spaccc" / "model-best"
    assert (best / "config.cfg").exists()
    # the prior's weight was chosen on dev and the pipeline reranks with it
    calibration = json.loads((best / "calibration.json").read_text())
    cfg = spacy.util.load_config(best / "config.cfg")["components"]["syncabel_linker"]
    assert calibration["dev_mentions"] == 60 and cfg["mode"] == "rerank"
    assert cfg["prior_weight"] == calibration["prior_weight"]
    metrics = json.loads((tmp_path / "metrics" / "spaccc.json").read_text())
    assert metrics["n_mentions"] == 150
    assert 0.4 < metrics["baseline_tfidf_recall@1"] < 0.9
    assert 0.0 <= metrics["recall@1"] <= metrics["recall@5"] <= 1.0
    assert {"seen", "unseen", "per_label", "mentions_per_second", "peak_rss_mb"} <= set(metrics)
    # the pipeline for raw notes: segmenter + NER + linker, scored end to end on dev documents
    pipeline = spacy.util.load_config(tmp_path / "training" / "spaccc" / "pipeline" / "config.cfg")
    assert pipeline["nlp"]["pipeline"] == ["syncabel_sentencizer", "tok2vec", "ner",
                                           "syncabel_linker"]
    # model-best is left as training wrote it
    assert "ner" not in spacy.util.load_config(best / "config.cfg")["nlp"]["pipeline"]
    e2e = json.loads((tmp_path / "metrics" / "spaccc_pipeline.json").read_text())
    assert {"ner_p", "ner_r", "ner_f", "linking_p", "linking_r", "linking_f",
            "baseline_tfidf_linking_f", "per_label_end_to_end", "recall@1"} <= set(e2e)
    # a second run skips the steps whose inputs did not change
    res = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0
    assert res.stdout.count("Skipping") >= 7, res.stdout[-2000:]
