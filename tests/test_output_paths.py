"""The guards every command's outputs go through: no output over an input, folders replaced
only with force and only once complete, nothing beside them touched."""
import os

import pytest

from spacy_syncabel.output_paths import check_outputs, replace_folder, same_path


def test_same_path_follows_symlinks_and_hard_links(tmp_path):
    a = tmp_path / "a.jsonl"
    a.write_text("x", encoding="utf-8")
    (tmp_path / "link.jsonl").symlink_to(a)
    os.link(a, tmp_path / "hard.jsonl")
    assert same_path(a, tmp_path / "link.jsonl") and same_path(a, tmp_path / "hard.jsonl")
    assert same_path(tmp_path / "sub" / ".." / "a.jsonl", a)
    assert not same_path(a, tmp_path / "b.jsonl")
    with pytest.raises(ValueError, match=r"E300.*the same path as the corpus"):
        check_outputs({"--output": tmp_path / "link.jsonl"}, {"the corpus": a})
    with pytest.raises(ValueError, match=r"E300.*a folder holding the corpus"):
        check_outputs({"--output": tmp_path}, {"the corpus": a})
    check_outputs({"--output": tmp_path}, {"the corpus": a}, whole=False)  # written inside
    pipeline = tmp_path / "pipeline"
    pipeline.mkdir()
    (pipeline / "config.cfg").write_text("[nlp]", encoding="utf-8")
    with pytest.raises(ValueError, match=r"E300.*already part of the pipeline"):
        check_outputs({"--output": pipeline / "config.cfg"}, {"the pipeline": pipeline})
    check_outputs({"--output": pipeline / "metrics.json"}, {"the pipeline": pipeline})
    with pytest.raises(ValueError, match="E301"):
        check_outputs({"--output": a, "--html": tmp_path / "hard.jsonl"}, {})
    check_outputs({"--output": tmp_path / "out.jsonl", "--html": None}, {"the corpus": a})


def test_replace_folder_needs_force_and_keeps_the_old_folder_until_done(tmp_path):
    dst = tmp_path / "pipeline"
    dst.mkdir()
    (dst / "old.txt").write_text("old", encoding="utf-8")
    for name in ("pipeline.tmp", "pipeline.old"):  # the user's folders beside it
        (tmp_path / name).mkdir()
        (tmp_path / name / "keep.txt").write_text("keep", encoding="utf-8")
    with pytest.raises(ValueError, match="E302"):
        with replace_folder(dst):
            pytest.fail("the block must not run")
    with pytest.raises(RuntimeError, match="half-way"):
        with replace_folder(dst, force=True) as tmp:
            (tmp / "new.txt").write_text("new", encoding="utf-8")
            raise RuntimeError("killed half-way")
    assert [p.name for p in dst.iterdir()] == ["old.txt"]
    with replace_folder(dst, force=True) as tmp:
        assert tmp.parent == tmp_path and tmp != dst
        (tmp / "new.txt").write_text("new", encoding="utf-8")
        assert (dst / "old.txt").exists()  # still there while the new one is written
    assert [p.name for p in dst.iterdir()] == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipeline", "pipeline.old",
                                                          "pipeline.tmp"]
    assert all((tmp_path / n / "keep.txt").exists() for n in ("pipeline.tmp", "pipeline.old"))
