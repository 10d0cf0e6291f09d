"""The project's `package` step on a small assembled pipeline (syncabel_sentencizer + an
entity_ruler as the NER + a tiny linker), its wheel installed offline into a fresh virtual
environment beside a wheel of spacy-syncabel built from this checkout, and `spacy.load(name)`
there linking a raw note exactly as the pipeline folder does."""
import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import spacy

from spacy_syncabel.training.fresh_env import (build_wheel_of_source, fresh_venv, pip_install,
                                               run_python)

from ..conftest import KB_ROWS, TEXTS

ROOT = Path(__file__).resolve().parents[2]
DATASET, VERSION = "tiny", "0.0.1"
PACKAGE = f"es_syncabel_{DATASET}"
NOTE = TEXTS[0] + " " + TEXTS[1]

LINK = """
import json, sys
import spacy
nlp = spacy.load(sys.argv[1])
doc = nlp(sys.argv[2])
import spacy_syncabel, importlib
modules = [spacy_syncabel.__file__, importlib.import_module(sys.argv[1]).__file__]
print(json.dumps({"ents": [[e.start_char, e.end_char, e.label_, e.kb_id_] for e in doc.ents],
                  "pipeline": nlp.pipe_names, "modules": modules}))
"""
VISIBLE = """
import importlib.util, importlib.metadata, sys
def dist(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None
print([importlib.util.find_spec("spacy") is not None, importlib.util.find_spec("spacy_syncabel"),
       importlib.util.find_spec(sys.argv[1]), dist("spacy-syncabel")])
"""


def test_packaged_pipeline_installs_offline_and_links(tiny_pipeline, tmp_path):
    project = tmp_path / "project"
    pipeline = project / "training" / DATASET / "pipeline"
    shutil.copytree(tiny_pipeline, pipeline)
    shutil.copy(ROOT / "project.yml", project / "project.yml")
    # the step exactly as project.yml runs it; meanwhile the wheel of spacy-syncabel and the
    # fresh environment are made
    with (tmp_path / "step.log").open("w") as log:
        step = subprocess.Popen([sys.executable, "-m", "spacy", "project", "run", "package",
                                 str(project), "--vars.dataset", DATASET, "--vars.version",
                                 VERSION], cwd=project, stdout=log, stderr=subprocess.STDOUT)
        try:
            links = tmp_path / "wheels"
            build_wheel_of_source(ROOT, links, tmp_path / "src")
            venv = fresh_venv(tmp_path / "venv", hide=("spacy-syncabel", PACKAGE))
            before = run_python(venv, VISIBLE, PACKAGE)
        finally:
            returncode = step.wait(timeout=300)
    assert returncode == 0, (tmp_path / "step.log").read_text()[-3000:]
    assert before.returncode == 0, before.stderr[-3000:]
    # spaCy is seen, spacy-syncabel (editable or not) and the package are not
    assert before.stdout.strip() == "[True, None, None, None]"

    folder = project / "packages" / DATASET / f"{PACKAGE}-{VERSION}"
    wheels = list((folder / "dist").glob("*.whl"))
    assert [w.name for w in wheels] == [f"{PACKAGE}-{VERSION}-py3-none-any.whl"]
    meta = json.loads((folder / "meta.json").read_text(encoding="utf8"))
    assert any(r.startswith("spacy-syncabel>=") for r in meta["requirements"])
    # what the folder links, in this process
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = [[e.start_char, e.end_char, e.label_, e.kb_id_]
                    for e in spacy.load(pipeline)(NOTE).ents]
    assert len(expected) >= 4 and all(code for *_, code in expected)
    shutil.copy(wheels[0], links)
    shutil.rmtree(project)  # the installed package reads nothing from the project

    res = pip_install(venv, links, PACKAGE)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    res = run_python(venv, LINK, PACKAGE, NOTE)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    site = str((venv / "lib").resolve())
    assert all(str(Path(m).resolve()).startswith(site) for m in out["modules"]), out["modules"]
    assert out["pipeline"] == ["syncabel_sentencizer", "entity_ruler", "syncabel_linker"]
    codes = {code for code, _, _ in KB_ROWS}
    assert out["ents"] == expected and {code for *_, code in out["ents"]} <= codes
