"""The one writer of pipeline folders (training, calibration and DPO all save through it).

A folder is written beside its destination and renamed into place, so a killed process never
leaves a half-written pipeline. Its ``config.cfg`` holds the linker's settings (the one source
of settings) and no absolute path: the KB and weights live inside the folder, and the
``[initialize]`` loaders (used only to re-initialize from scratch) point at ``${paths.kb}`` and
``${paths.base_model}``, which a user sets on the command line like spaCy's ``${paths.train}``.
A moved folder loads and links the same.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Dict, Optional, Union

from ..evaluation.evaluate import find_linker
from ..linking import LinkSettings

PathLike = Union[str, Path]
LINKER = "syncabel_linker"


def _portable_config(config, settings: Optional[LinkSettings], dtype: Optional[str],
                     device: Optional[str]) -> None:
    """Settings written into the linker's block; loaders under [initialize] by variables."""
    comp = config["components"][LINKER]
    if settings is not None:
        comp.update(settings.to_dict())
    if dtype is not None:
        comp["dtype"] = dtype
    if device is not None:
        comp["device"] = device
    paths = config.setdefault("paths", {})
    paths.setdefault("kb", None)
    paths.setdefault("base_model", None)
    init = config.setdefault("initialize", {}).setdefault("components", {})
    init[LINKER] = {
        "kb_loader": {"@misc": "spacy_syncabel.KBFromFile.v1", "path": "${paths.kb}"},
        "model": {"@misc": "spacy_syncabel.HFCausalLM.v1", "name_or_path": "${paths.base_model}"},
    }


def save_pipeline(nlp, path: PathLike, *, lm=None, settings: Optional[LinkSettings] = None,
                  dtype: Optional[str] = None, device: Optional[str] = None,
                  meta: Optional[Dict[str, Any]] = None,
                  extra_files: Optional[Dict[str, Any]] = None,
                  fine_tuned: bool = True) -> Path:
    """Write ``nlp`` as a pipeline folder ``path``, atomically.

    ``lm``: weights to save instead of the linker's current ones (the live training model);
    ``settings``: the linker settings the folder links with (default: the linker's own);
    ``meta``: written as ``training.json``; ``extra_files``: name -> JSON-able object;
    ``fine_tuned``: flag the saved LM as fine-tuned for linking (False: leave its flag as it is,
    e.g. when assembling a pipeline from a linker that was never trained).
    """
    from spacy.util import load_config

    path = Path(path).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    linker = find_linker(nlp)
    tmp = path.with_name(path.name + ".tmp")
    old = path.with_name(path.name + ".old")
    for p in (tmp, old):
        if p.exists():
            shutil.rmtree(p)
    from ..pipeline import mark_fine_tuned

    previous = linker.lm
    if fine_tuned:
        mark_fine_tuned(lm if lm is not None else previous)
    if lm is not None:
        linker.set_weights(lm)
    try:
        nlp.to_disk(tmp)
    finally:
        linker.set_weights(previous)
    config = load_config(tmp / "config.cfg", interpolate=False)
    _portable_config(config, settings, dtype, device)
    config.to_disk(tmp / "config.cfg")
    files = dict(extra_files or {})
    if meta is not None:
        files["training.json"] = meta
    for name, obj in files.items():
        (tmp / name).write_text(json.dumps(obj, indent=2, ensure_ascii=False), encoding="utf8")
    if path.exists():
        os.replace(path, old)
    os.replace(tmp, path)
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)
    return path


def copy_pipeline(src: PathLike, dst: PathLike) -> Path:
    """Copy a pipeline folder (portable: nothing in it names its own location)."""
    dst = Path(dst)
    tmp = dst.with_name(dst.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(src, tmp)
    if dst.exists():
        shutil.rmtree(dst)
    os.replace(tmp, dst)
    return dst



def load_pipeline(path: PathLike, **settings: Any):
    """``spacy.load(path)`` with linker settings overridden through the config (the one
    source of settings), e.g. ``load_pipeline(p, mode="beam", num_beams=10)``."""
    import spacy
    from spacy.util import load_config

    path = Path(path)
    config = load_config(path / "config.cfg", interpolate=False)
    names = [n for n, c in config["components"].items() if c.get("factory") == LINKER]
    overrides = {f"components.{name}.{key}": value for name in names
                 for key, value in settings.items() if value is not None}
    return spacy.load(path, config=overrides)


__all__ = ["LINKER", "save_pipeline", "copy_pipeline", "load_pipeline"]
