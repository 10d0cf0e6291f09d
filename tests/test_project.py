"""The spaCy project's `all` workflow, CI-sized: fetch → kb → corpus → train → ner → assemble →
evaluate → evaluate-pipeline → package; and the README's Python examples run against its outputs."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
from confection import Config

from .conftest import DATA, needs_data

ROOT = Path(__file__).resolve().parents[1]
CI_VARS = ["--vars.shared", str(DATA), "--vars.linker_config", "configs/linker_ci.cfg",
           "--vars.eval_limit", "150", "--vars.ner_max_steps", "30",
           "--vars.ner_eval_frequency", "15", "--vars.e2e_limit", "8"]
#: the CI-sized linker: the default recipe (configs/linker_cpu.cfg) with these values
CI_RECIPE = {"model.base_model": "tiny:64,2", "training.max_steps": 30,
             "training.max_train": 300, "training.batch_size": 16, "training.dev_size": 40,
             "training.eval_steps": 15, "linker.context_chars": 80, "training.kb_names": False,
             "calibration.size": 60}


@pytest.fixture(scope="module")
def ci_project(tmp_path_factory):
    """One CI-sized run of `spacy project run all` (several minutes), shared by the tests here:
    the project folder and the command that ran it."""
    folder = tmp_path_factory.mktemp("project")
    shutil.copy(ROOT / "project.yml", folder / "project.yml")
    shutil.copytree(ROOT / "configs", folder / "configs")
    Config().from_disk(ROOT / "configs" / "linker_cpu.cfg", interpolate=False,
                       overrides=CI_RECIPE).to_disk(folder / "configs" / "linker_ci.cfg")
    cmd = [sys.executable, "-m", "spacy", "project", "run", "all", str(folder)] + CI_VARS
    res = subprocess.run(cmd, cwd=folder, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return folder, cmd


@needs_data
@pytest.mark.slow
def test_project_all_ci_sized(ci_project):
    tmp_path, cmd = ci_project
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
    # SPACCC's documents lack some annotation layers: one NER per layer, each on the
    # documents annotated for it (training/ner_layers.py)
    layers = json.loads((tmp_path / "corpus" / "spaccc" / "ner" / "layers.json").read_text())
    assert {layer["name"] for layer in layers["layers"]} == {
        "ENFERMEDAD", "PROCEDIMIENTO", "SINTOMA"}
    assert pipeline["nlp"]["pipeline"] == ["syncabel_sentencizer", "ner_enfermedad",
                                           "ner_procedimiento", "ner_sintoma",
                                           "syncabel_dictionary_proposer", "syncabel_linker"]
    # the linker's NIL threshold was chosen on the test split's gold mentions
    assembled = json.loads((tmp_path / "training" / "spaccc" / "pipeline" /
                            "assemble.json").read_text())
    assert assembled["nil_threshold"]["corpus"].endswith("test.jsonl")
    # on the calibrated probability (the linker was calibrated in training), saved with the
    # calibrator, not as the raw-score `threshold` setting
    assert assembled["nil_threshold"]["scale"] == "probability"
    probability = json.loads((tmp_path / "training" / "spaccc" / "pipeline" / "syncabel_linker" /
                              "probability.json").read_text())
    assert probability["nil_threshold"] == (assembled["nil_threshold"]["threshold"] or None)
    assert pipeline["components"]["syncabel_linker"]["threshold"] == 0.0
    # model-best is left as training wrote it
    assert "ner" not in spacy.util.load_config(best / "config.cfg")["nlp"]["pipeline"]
    e2e = json.loads((tmp_path / "metrics" / "spaccc_pipeline.json").read_text())
    assert {"ner_p", "ner_r", "ner_f", "linking_p", "linking_r", "linking_f",
            "baseline_tfidf_linking_f", "per_label_end_to_end", "recall@1"} <= set(e2e)
    assert set(e2e["per_label_end_to_end"]) >= {"ENFERMEDAD", "PROCEDIMIENTO", "SINTOMA"}
    # the installable package of the pipeline, with its wheel (package step; installing one
    # offline: tests/training/test_package_install.py)
    package = tmp_path / "packages" / "spaccc" / "es_syncabel_spaccc-0.1.0"
    assert [w.name for w in (package / "dist").glob("*.whl")] == [
        "es_syncabel_spaccc-0.1.0-py3-none-any.whl"]
    # a second run skips the steps whose inputs did not change
    res = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0
    assert res.stdout.count("Skipping") >= 8, res.stdout[-2000:]


def readme_python_blocks() -> list:
    """Every ```python block of README.md, in order."""
    text = (ROOT / "README.md").read_text(encoding="utf8")
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def syncabel_checkpoint(project: Path, folder: Path) -> Path:
    """A folder in a published SynCABEL checkpoint's layout (Hugging Face files, safetensors,
    text_to_code.json), made from the CI-sized project's trained linker and KB."""
    from spacy_syncabel.kb import read_file

    shutil.copytree(project / "training" / "spaccc" / "model-best" / "syncabel_linker" / "model",
                    folder)
    text_to_code: dict = {}
    for code, name, group in read_file(project / "corpus" / "spaccc" / "kb").entries():
        text_to_code.setdefault(group, {})[name] = code
    (folder / "text_to_code.json").write_text(json.dumps(text_to_code, ensure_ascii=False),
                                              encoding="utf8")
    return folder


@needs_data
@pytest.mark.slow
def test_readme_python_examples_run(ci_project, tmp_path):
    """Each README example runs as printed from the project folder after the main job; the only
    substitution is the checkpoint folder, through the SYNCABEL_CHECKPOINT variable it
    documents (a few seconds per example after the shared project run)."""
    project, _ = ci_project
    blocks = readme_python_blocks()
    assert len(blocks) >= 3
    script = tmp_path / "run_blocks.py"
    script.write_text(
        "import json, sys, traceback\n"
        "for i, code in enumerate(json.load(open(sys.argv[1], encoding='utf8'))):\n"
        "    try:\n"
        "        exec(compile(code, f'README python block {i + 1}', 'exec'), {'__name__': '__main__'})\n"
        "    except BaseException:\n"
        "        traceback.print_exc()\n"
        "        sys.exit(f'README python block {i + 1} failed:\\n{code}')\n",
        encoding="utf8")
    (tmp_path / "blocks.json").write_text(json.dumps(blocks), encoding="utf8")
    env = dict(os.environ, SYNCABEL_CHECKPOINT=str(syncabel_checkpoint(project,
                                                                       tmp_path / "ckpt")))
    res = subprocess.run([sys.executable, str(script), str(tmp_path / "blocks.json")],
                         cwd=project, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert (project / "my_pipeline" / "config.cfg").exists()
    # the entities the examples' entity rulers find were linked and printed
    assert "arteritis de la temporal" in res.stdout
    assert "[('cefalea', '" in res.stdout and "[('fiebre', '" in res.stdout
