"""package_pipeline: spaCy's package folder of an assembled pipeline (the wheel itself is built
and installed in test_package_install.py), what it refuses, and which site-packages entries a
fresh environment hides."""
import json
import os
import shutil
import warnings

import pytest
import spacy

from spacy_syncabel.training.fresh_env import is_hidden
from spacy_syncabel.training.packaging import finds_entities, package_pipeline, requirement

from ..conftest import TEXTS


def _ents(nlp, text):
    return [(e.start_char, e.end_char, e.label_, e.kb_id_) for e in nlp(text).ents]


def test_package_folder_loads_and_requires_spacy_syncabel(tiny_pipeline, tmp_path):
    info = package_pipeline(tiny_pipeline, tmp_path / "packages", name="syncabel_tiny",
                            version="0.0.2", wheel=False)
    folder = tmp_path / "packages" / "es_syncabel_tiny-0.0.2"
    assert info["package"] == "es_syncabel_tiny" and info["folder"] == str(folder)
    assert "wheel" not in info
    assert requirement() in info["requirements"]
    assert any(r.startswith("spacy>=") for r in info["requirements"])
    assert {"setup.py", "meta.json", "MANIFEST.in", "es_syncabel_tiny"} <= set(os.listdir(folder))
    # no temporary folder is left beside it
    assert os.listdir(tmp_path / "packages") == [folder.name]
    # the pipeline as the installed package holds it, with the files spaCy adds (README.md),
    # passes the linker's load checks (file types, sizes, checksums) and links as the folder does
    data = folder / "es_syncabel_tiny" / "es_syncabel_tiny-0.0.2"
    assert (data / "README.md").is_file()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        packaged, original = spacy.load(data), spacy.load(tiny_pipeline)
    assert packaged.pipe_names == original.pipe_names
    got = _ents(packaged, TEXTS[1])
    assert got and got == _ents(original, TEXTS[1])


def test_existing_package_folder_is_replaced_only_with_force(tiny_pipeline, tmp_path):
    out = tmp_path / "packages"
    info = package_pipeline(tiny_pipeline, out, wheel=False)
    meta = json.loads((tiny_pipeline / "meta.json").read_text(encoding="utf8"))
    folder = out / f"es_{meta['name']}-{meta['version']}"  # meta.json's name and version
    assert info["folder"] == str(folder)
    assert folder.is_dir()
    (folder / "stale.txt").write_text("from an earlier build")
    with pytest.raises(ValueError, match="E302"):
        package_pipeline(tiny_pipeline, out, wheel=False)
    assert (folder / "stale.txt").exists()
    package_pipeline(tiny_pipeline, out, wheel=False, force=True)
    assert folder.is_dir() and not (folder / "stale.txt").exists()
    assert os.listdir(out) == [folder.name]


def test_refuses_links_hidden_files_non_pipelines_and_outputs_inside_it(tiny_pipeline, tmp_path):
    linked = tmp_path / "linked"
    shutil.copytree(tiny_pipeline, linked)
    outside = tmp_path / "secret.txt"
    outside.write_text("not part of the pipeline")
    # spaCy's copy would follow the link and package the file it points at
    (linked / "syncabel_linker" / "notes.txt").symlink_to(outside)
    with pytest.raises(ValueError, match="E320"):
        package_pipeline(linked, tmp_path / "packages", wheel=False)
    assert not (tmp_path / "packages").exists()
    (linked / "syncabel_linker" / "notes.txt").unlink()
    (linked / "syncabel_linker" / ".notes").write_text("left out of the wheel")
    with pytest.raises(ValueError, match="E522"):
        package_pipeline(linked, tmp_path / "packages", wheel=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="E520"):
        package_pipeline(tmp_path / "empty", tmp_path / "packages", wheel=False)
    with pytest.raises(ValueError, match="E300"):
        package_pipeline(tiny_pipeline, tiny_pipeline / "packages", wheel=False)
    assert not (tiny_pipeline / "packages").exists()


@pytest.mark.parametrize("entry,hidden", [
    ("spacy_syncabel", True), ("spacy_syncabel-0.1.0.dist-info", True),
    ("__editable__.spacy_syncabel-0.1.0.pth", True),
    ("__editable___spacy_syncabel_0_1_0_finder.py", True), ("spacy_syncabel.egg-link", True),
    ("spacy", False), ("spacy-3.8.18.dist-info", False), ("spacy_legacy", False),
    ("spacy_syncabelx", False), ("__editable___spacy_0_1_finder.py", False)])
def test_fresh_environment_hides_only_the_named_distribution(entry, hidden):
    assert is_hidden(entry, ["spacy-syncabel"]) is hidden


def test_warns_when_no_component_sets_the_entities_to_link(tiny_pipeline, tmp_path):
    linker_only = tiny_pipeline.parent / "linker"  # the linker alone, as training saves it
    assert finds_entities(tiny_pipeline) and not finds_entities(linker_only)
    assert finds_entities(tiny_pipeline.parent / "ner")  # no linker: nothing to warn about
    with pytest.warns(UserWarning, match="W520"):
        package_pipeline(linker_only, tmp_path / "packages", wheel=False)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=r"\[W520\]")
        package_pipeline(tiny_pipeline, tmp_path / "assembled", wheel=False)


def test_a_fresh_process_sees_the_ner_of_an_assembled_pipeline(tiny_pipeline):
    """spaCy 3.8 registers its built-in factories (and their `assigns`) when a Language is first
    made: `package` in a fresh process must still see that `ner` sets the entities."""
    import subprocess
    import sys

    code = ("import sys\nfrom spacy_syncabel.training.packaging import finds_entities\n"
            f"sys.exit(0 if finds_entities({str(tiny_pipeline)!r}) else 3)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
