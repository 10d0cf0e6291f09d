"""`python -m spacy_syncabel evaluate` on the same mentions in two formats."""
import csv
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

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


def _snapshot(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.mark.parametrize("args", [
    ["evaluate", "{pipe}", "{corpus}", "--output", "{corpus}"],
    ["evaluate", "{pipe}", "{corpus}", "--train", "{train}", "--output", "{train}"],
    ["evaluate", "{pipe}", "{corpus}", "--output", "{pipe}/config.cfg"],
    ["score", "{corpus}", "{preds}", "--output", "{preds}"],
    ["render", "{pipe}", "{corpus}", "--output", "{corpus}"],
    ["synth", "{kb}", "{kb}"],
    ["synth", "{kb}", "{out}/synth.jsonl", "--corpus", "{train}", "--raw-log", "{train}"],
    ["train", "{recipe}", "--paths.kb", "{kb}", "--paths.train", "{train}", "--output",
     "{train}"],
    ["train", "{recipe}", "--paths.kb", "{kb}", "--paths.train", "{train}", "--paths.dev",
     "{pipe}/model-best/dev.jsonl", "--output", "{pipe}"],
    ["dpo", "{dpo_recipe}", "--paths.pipeline", "{pipe}/model-best", "--paths.train", "{train}",
     "--output", "{pipe}"],
    ["calibrate", "{pipe}", "{pipe}/model-best/dev.jsonl"],
    ["calibrate", "{pipe}", "{corpus}", "--train", "{pipe}/model-best/dev.jsonl"],
    ["ner-corpus", "spaccc", "{data}", "{out}", "--config", "{out}/config.cfg"],
    ["migrate", "{pipe}", "{pipe}"],
    ["migrate", "{pipe}", "{pipe}/model-best/migrated"],
    ["migrate", "{pipe}/model-best", "{pipe}", "--force"],
    ["assemble", "{pipe}", "--linker", "{pipe}/model-best", "--ner", "{pipe}", "--force"],
    ["package", "{pipe}", "{pipe}"],
    ["package", "{pipe}", "{pipe}/model-best", "--force"],
])
def test_no_command_writes_over_its_inputs(tmp_path, args):
    """Every command whose output is one of its inputs, or a folder holding one, refuses with
    E300 before reading anything, and leaves every file as it was."""
    pipe, data, out = tmp_path / "pipe", tmp_path / "data", tmp_path / "out"
    for folder in (pipe / "model-best", data, out):
        folder.mkdir(parents=True)
    (pipe / "config.cfg").write_text("[nlp]\nlang = \"es\"\n", encoding="utf-8")
    (pipe / "model-best" / "dev.jsonl").write_text('{"id": "d", "text": "x"}\n')
    (out / "config.cfg").write_text("[nlp]\nlang = \"es\"\n", encoding="utf-8")
    paths = {"pipe": pipe, "data": data, "out": out, "kb": data / "kb.tsv",
             "corpus": data / "test.jsonl", "train": data / "train.jsonl",
             "preds": data / "preds.jsonl", "recipe": ROOT / "configs" / "linker_cpu.cfg",
             "dpo_recipe": ROOT / "configs" / "dpo_cpu.cfg"}
    paths["kb"].write_text("code\tname\tgroup\n386661006\tfiebre\tSINTOMA\n", encoding="utf-8")
    for name in ("corpus", "train"):
        paths[name].write_text(json.dumps({"id": "d", "text": "fiebre", "entities": [
            {"start": 0, "end": 6, "label": "SINTOMA", "code": "386661006"}]}) + "\n")
    paths["preds"].write_text('{"doc_id": "d", "start": 0, "end": 6, "codes": ["1"]}')
    before = _snapshot(tmp_path)
    res = CliRunner().invoke(app, [a.format(**paths) for a in args])
    assert res.exit_code != 0 and "E300" in str(res.exception), res.output
    assert _snapshot(tmp_path) == before


def test_folder_outputs_need_force(tmp_path):
    src, dst = tmp_path / "old_pipeline", tmp_path / "new_pipeline"
    src.mkdir()
    (src / "config.cfg").write_text("[nlp]\n", encoding="utf-8")
    dst.mkdir()
    (dst / "mine.txt").write_text("the user's own file", encoding="utf-8")
    for args in (["migrate", str(src), str(dst)],
                 ["assemble", str(dst), "--linker", str(src), "--ner", str(src)]):
        res = CliRunner().invoke(app, args)
        assert res.exit_code != 0 and "E302" in str(res.exception) and "--force" in str(
            res.exception)
        assert [p.name for p in dst.iterdir()] == ["mine.txt"]


ROOT = Path(__file__).resolve().parents[1]
#: imported by every Python process started with its folder on PYTHONPATH: reports, at exit,
#: the process set-up the command line did (stderr, so stdout is the command's own output)
PROBE = """import atexit, os, sys
atexit.register(lambda: print("SETUP", os.environ.get("OMP_WAIT_POLICY"),
                              "torch" in sys.modules, file=sys.stderr))
"""


def _console_script() -> str:
    """Python code doing what the installed `spacy-syncabel` script does: import the function
    pyproject.toml's [project.scripts] names and exit with what it returns."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf8"))
    module, _, func = pyproject["project"]["scripts"]["spacy-syncabel"].partition(":")
    return (f"import sys; from {module} import {func}; sys.argv[0] = 'spacy-syncabel'; "
            f"sys.exit({func}())")


@pytest.mark.parametrize("user_setting", [None, "ACTIVE"])
def test_module_and_console_script_set_up_the_same(tmp_path, user_setting):
    """`python -m spacy_syncabel` and the `spacy-syncabel` script run one entry function: the
    same commands and the same process set-up (OpenMP threads wait passively unless the user
    says otherwise), done before torch is imported. Two short subprocesses (about a second)."""
    (tmp_path / "sitecustomize.py").write_text(PROBE, encoding="utf8")
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}  # conftest sets it
    if user_setting:
        env["OMP_WAIT_POLICY"] = user_setting
    env.update(PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]), COLUMNS="100",
               NO_COLOR="1", TERM="dumb")
    runs = {}
    for form, cmd in (("-m", [sys.executable, "-m", "spacy_syncabel", "--help"]),
                      ("script", [sys.executable, "-c", _console_script(), "--help"])):
        proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0, proc.stderr
        setup = [line for line in proc.stderr.splitlines() if line.startswith("SETUP ")]
        # the usage line names the program; the commands listed must be the same
        help_text = [line for line in proc.stdout.splitlines() if "Usage:" not in line]
        runs[form] = (setup, help_text)
    expected = ["SETUP " + (user_setting or "PASSIVE") + " False"]
    assert runs["-m"][0] == runs["script"][0] == expected
    assert runs["-m"][1] == runs["script"][1]
    assert "evaluate" in "\n".join(runs["-m"][1])
